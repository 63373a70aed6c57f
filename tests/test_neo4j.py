"""The Neo4j backend against a real Neo4j 5 server (tests/neo4j_server.py): batched writes under a
hidden generation, writers killed part way (a real process, SIGKILL) and an interrupted drop, two
writers of one id at once, answers equal to the embedded store's, errors by their Neo4j code, the
console's scoping and stored matches. The tests of the store contract, the query library, the
console, export and series run here too (`both_backends`)."""

import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import (
    assert_invisible,
    cli,
    expected_checksums,
    hidden,
    put,
    store_missing,
    tiny_graph,
)

from neurocypher.errors import UserError
from neurocypher.ingest import analyze, write
from neurocypher.ingest.demo_models import mlp
from neurocypher.ingest.matching import match_communities, store_matches
from neurocypher.queries import EmbeddedServer, explore, schema
from neurocypher.queries.falkordb_store import FalkorStore
from neurocypher.queries.library import QUERIES
from neurocypher.queries.neo4j_store import BATCH_ROWS, neo4j_batches

pytestmark = pytest.mark.neo4j
CHILD = str(Path(__file__).with_name("crash_ingest.py"))  # writes a pickled graph; see its docstring
CRASH = "neo4j-crash"
CHECKSUMS = {  # of one generation: nodes per label, relationships per type, the sum of FLOWS_TO bits
    "nodes": "MATCH (n {generation: $g}) RETURN labels(n)[0] AS key, count(n) AS n",
    "relationships": "MATCH (n {generation: $g})-[r]->() RETURN type(r) AS key, count(r) AS n",
    "bits": "MATCH (n {generation: $g})-[f:FLOWS_TO]->() RETURN 'bits' AS key, round(sum(f.bits), 6) AS n",
}


@pytest.fixture()
def neo4j_store(store):
    yield store
    store.drop("neo4j-probe")


@pytest.fixture(scope="module")
def probe(digits):
    """The demo MLP on 300 digits, analysed as neo4j-probe (communities by flow only: quick)."""
    return analyze(mlp(), digits.X[:300], digits.y[:300], name="neo4j-probe", methods=("flow",))


def test_write_replace_read_and_refuse_writes(neo4j_store, probe):
    for _ in range(2):  # the second write replaces the first: hidden, batched, then published
        write(neo4j_store, probe, replace=True)
    assert neo4j_store.read("MATCH (n:Neuron {model_id: $m}) RETURN count(n) AS c", {"m": "neo4j-probe"}) == [
        {"c": 138}
    ]
    with pytest.raises(UserError, match="already stored"):
        write(neo4j_store, probe)
    with pytest.raises(UserError, match="^refused"):
        neo4j_store.read("MATCH (n:Neuron {model_id: 'neo4j-probe'}) SET n.mean = 0")
    assert neo4j_store.drop("neo4j-probe") and not neo4j_store.has_model("neo4j-probe")


def test_matches_are_stored_where_both_models_share_one_graph(store, stored):
    matches = match_communities(store, "q-spec", "q-spec2")
    store_matches(store, matches)
    between = "MATCH (:Community {model_id: $a})-[s:MATCHES]->(:Community {model_id: $b}) "
    try:
        stored_ = store.read(between + "RETURN count(s) AS c", {"a": "q-spec", "b": "q-spec2"})
        assert matches and stored_ == [{"c": len(matches)}]
    finally:
        store.write(between + "DELETE s", {"a": "q-spec", "b": "q-spec2"}, model="q-spec")


def test_nodes_left_by_an_interrupted_drop_are_removed(neo4j_store, probe):
    write(neo4j_store, probe, replace=True)
    neo4j_store.write("MATCH (m:Model {model_id: 'neo4j-probe'}) DETACH DELETE m", model="neo4j-probe")
    write(neo4j_store, probe)  # no Model node: the orphans are removed, no uid constraint error
    neo4j_store.write("MATCH (m:Model {model_id: 'neo4j-probe'}) DETACH DELETE m", model="neo4j-probe")
    assert neo4j_store.drop("neo4j-probe")
    count = "MATCH (n {model_id: 'neo4j-probe'}) RETURN count(n) AS c"
    assert neo4j_store.read(count) == [{"c": 0}]


def test_an_interrupted_write_leaves_the_stored_model_visible_and_is_removed_by_the_next(neo4j_store):
    put(neo4j_store, "neo4j-probe", n=3, replace=True)
    graph = tiny_graph("neo4j-probe", n=3 * BATCH_ROWS)
    for cypher, rows in list(neo4j_batches(graph))[:3]:  # a writer on another machine that died after 3 batches
        rows = [{**row, "writer": "elsewhere:1"} if "writer" in row else row for row in rows]
        neo4j_store.write(cypher, {"rows": rows, "generation": graph.generation}, model="neo4j-probe")
    count = "MATCH (n:Neuron) RETURN count(n) AS c"
    assert neo4j_store.console(count, model="neo4j-probe") == [{"c": 3}]  # the hidden generation is not seen
    assert neo4j_store.ask("models")[0]["model"] == "neo4j-probe"
    put(neo4j_store, "neo4j-probe", n=4, replace=True)
    everything = "MATCH (n {model_id: 'neo4j-probe'}) RETURN n.generation AS g, count(n) AS c"
    assert [row["c"] for row in neo4j_store.read(everything)] == [5]  # one generation: its Model node and 4 neurons


def test_the_console_honours_the_model_choice_and_runs_once_per_model(neo4j_store):
    put(neo4j_store, "neo4j-probe", n=3, replace=True)
    put(neo4j_store, "neo4j-probe2", n=5, replace=True)
    try:
        count = "MATCH (n:Neuron) RETURN count(n) AS c"
        assert neo4j_store.console(count, model="neo4j-probe2") == [{"c": 5}]
        every = neo4j_store.console(count)
        assert {"c": 3} in every and {"c": 5} in every and len(every) == len(neo4j_store.models())
        rows = neo4j_store.console("MATCH (a:Neuron)-[r:FLOWS_TO]->(b) RETURN r ORDER BY a.index", model="neo4j-probe")
        assert rows == [{"r": {"bits": 1.0}}, {"r": {"bits": 1.0}}]  # relationship properties kept
    finally:
        neo4j_store.drop("neo4j-probe2")


@pytest.fixture(scope="module")
def crash_graphs(tmp_path_factory):
    """A synthetic model of 6,000 flow edges (about 20 relationship batches of the child's), pickled
    for the child, and a smaller earlier version of the same id."""
    from neurocypher.ingest.synthetic import synthetic_analysis
    from neurocypher.ingest.writer import model_graph

    graph = model_graph(synthetic_analysis(CRASH, layers=4, width=100, edges=6000, communities=4))
    earlier = model_graph(synthetic_analysis(CRASH, layers=3, width=20, edges=200, communities=2, seed=1))
    path = tmp_path_factory.mktemp("graph") / "graph.pkl"
    path.write_bytes(pickle.dumps(graph))
    return graph, earlier, str(path)


def start_child(graph_file: str, point: str, *flags: str, **popen) -> subprocess.Popen:
    """The child that writes the pickled graph to the store of NEO4J_URI, stopping at `point`."""
    return subprocess.Popen(
        [sys.executable, CHILD, graph_file, point, *flags],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,
    )


def run_child(graph_file: str, point: str, *flags: str) -> subprocess.CompletedProcess:
    child = start_child(graph_file, point, *flags)
    out, err = child.communicate(timeout=300)
    return subprocess.CompletedProcess(child.args, child.returncode, out, err)


def checksums(store, generation: str) -> dict:
    """Nodes per label, relationships per type and the sum of FLOWS_TO bits of one generation."""
    return {row["key"]: row["n"] for cypher in CHECKSUMS.values() for row in store.read(cypher, {"g": generation})}


def relationships(sums: dict) -> int:
    return sum(n for key, n in sums.items() if key.isupper())


def stored_generation(store, model: str) -> str:
    return store.read(schema.STORED_GENERATION, {"model": model})[0]["generation"]


def assert_stored_once(store, graph) -> None:
    """`graph` is stored, whole, and nothing else of its id is left."""
    assert checksums(store, stored_generation(store, graph.model_id)) == expected_checksums(graph)
    assert hidden(store) == []


@pytest.mark.parametrize(
    ("point", "earlier"),
    [("kill:0", True), ("kill:0.5", False), ("kill:publish", True)],
    ids=["after-first-rel-batch-replacing", "mid-rels", "before-publish-replacing"],
)
def test_a_killed_writer_leaves_nothing_visible_and_the_next_write_removes_what_it_left(
    store, crash_graphs, point, earlier
):
    """A real writer process, SIGKILLed part way: its generation stays hidden (the earlier version,
    if any, is what every read sees), and the next write of the id removes it and stores the model once."""
    graph, previous, graph_file = crash_graphs
    store.drop(CRASH)
    if earlier:
        store.write_model(previous)
    assert run_child(graph_file, point, "--replace").returncode == -signal.SIGKILL
    [left] = hidden(store)  # what the killed child wrote, hidden
    assert left["model"] == CRASH
    written, total = relationships(checksums(store, left["generation"])), relationships(expected_checksums(graph))
    assert written == total if point == "kill:publish" else 0 < written < total
    if earlier:
        assert stored_generation(store, CRASH) == previous.generation
        assert checksums(store, previous.generation) == expected_checksums(previous)
        neurons = store.console("MATCH (n:Neuron) RETURN count(n) AS c", model=CRASH)
        assert neurons == [{"c": expected_checksums(previous)["Neuron"]}]
    else:
        assert_invisible(store, CRASH)
    rerun = run_child(graph_file, "none", "--replace")
    assert rerun.returncode == 0, rerun.stderr
    assert_stored_once(store, graph)


def test_a_drop_killed_part_way_leaves_the_model_invisible_and_the_next_write_finishes_it(store, crash_graphs):
    graph, _, graph_file = crash_graphs
    store.write_model(graph, replace=True)
    assert run_child(graph_file, "kill:drop").returncode == -signal.SIGKILL
    [left] = hidden(store)  # every node is left, hidden, and some of the relationships
    assert left["nodes"] == sum(
        n for key, n in expected_checksums(graph).items() if not key.isupper() and key != "bits"
    )
    assert 0 < relationships(checksums(store, left["generation"])) < relationships(expected_checksums(graph))
    assert_invisible(store, CRASH)
    store.write_model(graph)  # no stored model: no --replace needed, and no uid clashes with what was left
    assert_stored_once(store, graph)
    assert store.drop(CRASH)


def test_a_live_writer_of_the_same_id_is_left_alone_and_the_last_to_publish_wins(store, crash_graphs):
    graph, previous, graph_file = crash_graphs
    store.drop(CRASH)
    child = start_child(graph_file, "pause", "--replace", stdin=subprocess.PIPE)
    try:
        assert child.stdout.readline() == "paused\n"  # its first relationship batch is stored, hidden
        store.write_model(previous)  # meanwhile another writer stores the id: it keeps the live generation
        assert stored_generation(store, CRASH) == previous.generation
        [live] = hidden(store)
        _, err = child.communicate("\n", timeout=300)
    finally:
        child.kill()
    assert child.returncode == 0, err
    assert stored_generation(store, CRASH) == live["generation"]  # it published last, replacing the other
    assert_stored_once(store, graph)
    assert store.drop(CRASH)


def test_the_writers_statements_hold_no_batch_whole_and_seek_both_ends_by_the_constraint(store, crash_graphs):
    """Neo4j's plans: no Eager (which would hold a batch's rows before the first write), and each
    relationship's ends found by the (generation, uid) uniqueness constraint's index."""
    with store._driver.session() as session:
        for cypher in {cypher for cypher, _ in neo4j_batches(crash_graphs[0])}:
            plan = str(session.run("EXPLAIN " + cypher, rows=[], generation="g").consume().plan)
            assert "Eager" not in plan and plan.count("NodeUniqueIndexSeek") == (2 if "MATCH" in cypher else 0)


@pytest.fixture()
def embedded(home, specialist_analyses):
    """The session's embedded store, holding q-spec and q-spec2 too."""
    server = EmbeddedServer(home)
    server.start()
    with FalkorStore(server) as falkordb:
        store_missing(falkordb, specialist_analyses)
        yield falkordb


def rounded(value):
    """`value` with every float to 12 significant digits (FalkorDB replies with 15, Neo4j with 17)."""
    if isinstance(value, float):
        return float(f"{value:.12g}")
    if isinstance(value, list):
        return [rounded(v) for v in value]
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    return value


VALUES = {  # a parameter of every named query or explorer read, on q-spec
    "model": "q-spec",
    "models": ["q-spec", "q-spec2"],
    "class": 1,
    "method": "innersight",
    "score": "closing",
    "min_bits": 0.0,
    "min_overlap": 0.3,
    "source": "q-spec/L0/5",
    "target": "q-spec/L3/1",
    "limit": 20,
    "skip": 0,
}


def uid(name: str) -> str:
    return "q-spec/L1/7" if name.lower() == "neuron" else "q-spec/innersight/L1/c0"


def test_every_named_query_answers_as_on_the_embedded_store(store, stored, embedded):
    """The same rows, in the same order, with the same values (floats to 12 digits)."""
    answers = {store.backend: {}, embedded.backend: {}}
    for named in QUERIES.values():
        params = {p.name: VALUES.get(p.name, uid(named.name)) for p in named.params if p.name in {*VALUES, "uid"}}
        for each in (store, embedded):
            rows = each.ask(named.name, **params)
            if not named.per_model:  # every model's: those both stores hold
                rows = [row for row in rows if row["model"] in VALUES["models"]]
            answers[each.backend][named.name] = rounded(rows)
    assert answers["neo4j"] == answers["falkordb"]
    assert [name for name, rows in answers["neo4j"].items() if not rows] == ["noise-communities", "evolution"]


def test_every_explorer_read_answers_as_on_the_embedded_store(store, stored, embedded):
    reads = {name: text for name, text in vars(explore).items() if name.isupper() and isinstance(text, str)}
    answers = {store.backend: {}, embedded.backend: {}}
    params = {**VALUES, "limit": explore.PAGE_MAX}
    for name, text in reads.items():
        for each in (store, embedded):
            if "$model" in text:
                rows = each.read(text, {**params, "uid": uid(name)}, model="q-spec")
            else:  # every model's: those both stores hold
                rows = [row for row in each.read(text) if row.get("model") in VALUES["models"]]
            answers[each.backend][name] = rounded(rows)
    assert answers["neo4j"] == answers["falkordb"]


def test_a_read_past_the_transaction_memory_is_stopped_at_once_in_one_line(store, caplog):
    """dbms.memory.transaction.total.max of docker-compose.yml (1500m) stops it. The driver would try
    a managed transaction again for 30 s (the error is transient), logging each retry; a read runs once."""
    started = time.monotonic()
    with pytest.raises(UserError, match=r"^Neo4j ran out of memory .* dbms\.memory\.transaction\.total\.max"):
        store.read("UNWIND range(1, 300000000) AS x RETURN size(collect(x)) AS n", timeout=60)
    assert time.monotonic() - started < 40 and not [r for r in caplog.records if "retried" in r.getMessage()]
    assert store.read("RETURN 1 AS one") == [{"one": 1}]


def test_the_cli_on_neo4j_prints_its_answer_and_nothing_else(stored):
    """No server notification (here: a property key no node has) reaches stderr."""
    done = cli(
        "query", "--model", "q-spec", "--cypher", "MATCH (n:Neuron) RETURN n.no_such_key AS x LIMIT 1",
        "--format", "json",
    )  # fmt: skip
    assert done.returncode == 0 and done.stdout.strip() == '[\n  {\n    "x": null\n  }\n]' and done.stderr == ""
