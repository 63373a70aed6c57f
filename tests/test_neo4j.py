"""The Neo4j backend, when a Neo4j 5 server is given in NEO4J_URI (skipped otherwise): batched
writes under a hidden generation, what a crash leaves, drops, console parity and stored matches."""

import os

import pytest
from helpers import NEO4J_URI, put, tiny_graph

from ingest import analyze, write
from ingest.data import load_data
from ingest.demo_models import mlp
from queries import UserError
from queries.matching import match_communities, store_matches
from queries.neo4j_store import BATCH_ROWS, Neo4jStore, neo4j_batches

pytestmark = pytest.mark.neo4j


@pytest.fixture()
def neo4j_store():
    store = Neo4jStore(
        NEO4J_URI,
        os.environ.get("NEO4J_USER", "neo4j"),
        os.environ.get("NEO4J_PASSWORD"),
        os.environ.get("NEO4J_DATABASE"),
    )
    yield store
    store.drop("neo4j-probe")
    store.close()


def test_write_replace_read_and_refuse_writes(neo4j_store):
    data = load_data("sklearn:digits")
    analysis = analyze(mlp(), data.X[:300], data.y[:300], name="neo4j-probe")
    for _ in range(2):  # the second write replaces the first: hidden, batched, then published
        write(neo4j_store, analysis, replace=True)
    assert neo4j_store.read("MATCH (n:Neuron {model_id: $m}) RETURN count(n) AS c", {"m": "neo4j-probe"}) == [
        {"c": 138}
    ]
    with pytest.raises(UserError, match="already stored"):
        write(neo4j_store, analysis)
    with pytest.raises(UserError, match="^refused"):
        neo4j_store.read("MATCH (n:Neuron {model_id: 'neo4j-probe'}) SET n.mean = 0")
    assert neo4j_store.drop("neo4j-probe") and not neo4j_store.has_model("neo4j-probe")


def test_matches_are_stored_where_both_models_share_one_graph(neo4j_store):
    data = load_data("sklearn:digits")
    for name in ("neo4j-probe", "neo4j-probe2"):
        write(neo4j_store, analyze(mlp(), data.X[:300], data.y[:300], name=name), replace=True)
    try:
        matches = match_communities(neo4j_store, "neo4j-probe", "neo4j-probe2")
        store_matches(neo4j_store, matches)
        stored = neo4j_store.read(
            "MATCH (:Community {model_id: $a})-[s:MATCHES]->(:Community {model_id: $b}) RETURN count(s) AS c",
            {"a": "neo4j-probe", "b": "neo4j-probe2"},
        )
        assert matches and stored == [{"c": len(matches)}]
    finally:
        neo4j_store.drop("neo4j-probe2")


def test_nodes_left_by_an_interrupted_drop_are_removed(neo4j_store):
    data = load_data("sklearn:digits")
    analysis = analyze(mlp(), data.X[:300], data.y[:300], name="neo4j-probe", methods=("flow",))
    write(neo4j_store, analysis, replace=True)
    neo4j_store.write("MATCH (m:Model {model_id: 'neo4j-probe'}) DETACH DELETE m", model="neo4j-probe")
    write(neo4j_store, analysis)  # no Model node: the orphans are removed, no uid constraint error
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


def test_a_checkpoint_series_is_stored_and_followed_as_on_the_embedded_store(neo4j_store, tmp_path):
    import torch

    from ingest.checkpoints import ingest_series, load_checkpoints

    data = load_data("sklearn:digits")
    state = mlp().state_dict()
    for step in (10, 20):  # the same weights twice: every community continues
        torch.save(state, tmp_path / f"ckpt-{step}.pt")
    found = load_checkpoints(str(tmp_path / "*.pt"))
    ingest_series(
        neo4j_store, mlp, found, data.X[:300], data.y[:300], name="neo4j-probe", replace=True, methods=("innersight",)
    )
    try:
        rows = neo4j_store.ask("evolution", model="neo4j-probe", method="innersight", **{"class": 0})
        assert rows and all(row["event"] == "continued" for row in rows if row["step"] == 20)
        assert "neo4j-probe" not in {m["model_id"] for m in neo4j_store.models()}
    finally:
        for step in (10, 20):
            neo4j_store.drop(f"neo4j-probe-step{step}")
