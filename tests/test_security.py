"""Security: a read-only console (a lexical guard, then the backend's read-only mode), user values
only as parameters, no secrets in output or files, and no code run from data or weights files."""

import json
import stat

import models
import numpy as np
import pytest
import torch
from helpers import cli, put, snapshot

from neurocypher.errors import UserError
from neurocypher.ingest import analyze, write
from neurocypher.ingest.writer import model_graph
from neurocypher.queries import EmbeddedServer
from neurocypher.queries.library import QUERIES
from neurocypher.queries.neo4j_store import Neo4jStore, neo4j_batches
from neurocypher.queries.readonly import check_read_only

REFUSED = [
    "CREATE (n:Neuron {uid: 'x'})",
    "MATCH (n:Neuron) SET n.mean = 0",
    "MATCH (n:Neuron) REMOVE n.mean",
    "MATCH (n) DETACH DELETE n",
    "MATCH (n) DELETE n",
    "MERGE (n:Model {model_id: 'x'})",
    "INSERT (n:Model {model_id: 'x'})",
    "MATCH (n:Neuron) FOREACH (x IN [1] | SET n.x = x)",
    "CREATE INDEX FOR (n:Neuron) ON (n.mean)",
    "DROP INDEX ON :Neuron(uid)",
    "CREATE CONSTRAINT FOR (n:Model) REQUIRE n.model_id IS UNIQUE",
    "LOAD CSV FROM 'file:///etc/passwd' AS row RETURN row",
    "LOAD CSV WITH HEADERS FROM 'https://example.com/x.csv' AS row RETURN row",
    "CALL db.idx.fulltext.createNodeIndex('Neuron', 'uid')",
    "CALL db.idx.fulltext.drop('Neuron')",
    "CALL db.createLabel('Evil')",
    "CALL dbms.security.createUser('eve', 'pw', false)",
    "CALL db.clearQueryCaches()",
    "CALL `db.idx.fulltext.drop`('Neuron')",
    "CALL { MATCH (n) RETURN n } IN TRANSACTIONS",
    "MATCH (n) CALL { WITH n DETACH DELETE n }",
    "CREATE USER eve SET PASSWORD 'pw'",
    "GRANT ALL ON DATABASE * TO PUBLIC",
    "ALTER USER neo4j SET PASSWORD 'x'",
    "STOP DATABASE neo4j",
    "USE system SHOW USERS",
    "match (n) /* lower case */ set n.x = 1",
    "MATCH (n)\u00a0SET\u2003n.x = 1",
    "MATCH (n) SET/**/n.x = 1",
    "MATCH (n) WHERE n.uid = 'it\\'s' SET n.x = 1",
    "MATCH (n) // a comment's quote\nSET n.x = 1",
]
PAST_THE_GUARD = [  # (backend, statement): sent straight to the backend, refused by its read-only mode
    *[(backend, REFUSED[i]) for backend in ("falkordb", "neo4j") for i in (0, 1, 2, 3, 5, 7, 8, 26)],
    *[("falkordb", REFUSED[i]) for i in (9, 13, 14)],  # its index syntax and full-text procedures
    *[("neo4j", REFUSED[i]) for i in (10, 15, 21, 22, 23, 24)],  # a constraint, a label, users, privileges, databases
]
READS = [
    "CALL db.labels()",
    "CALL db.propertyKeys() YIELD propertyKey RETURN propertyKey",
    "MATCH (n:Neuron) RETURN 'CREATE or DELETE' AS text, n.set AS s, n.create AS c // DROP",
    "MATCH (n:Neuron) /* SET n.x = 1 */ RETURN count(n) AS c",
    "MATCH (n:Neuron) RETURN n.mean AS drop, n.uid AS set",  # aliases are names
    "RETURN 1 AS start, {create: 1, delete: 2} AS m",  # ... and so are map keys
    "MATCH (set:Neuron) RETURN set.uid AS uid",  # a variable before its label
]


@pytest.fixture()
def guarded(store):
    if not store.has_model("guarded"):
        put(store, "guarded", n=2)
    return store


@pytest.mark.parametrize("cypher", REFUSED)
def test_console_guard_refuses_every_write_schema_and_admin_statement(guarded, cypher):
    before = snapshot(guarded)
    with pytest.raises(
        UserError,
        match=r"^refused: .*(would change the store|is not a read-only procedure|reads files|leave neurocypher)",
    ):
        guarded.console(cypher, model="guarded")
    assert snapshot(guarded) == before


@pytest.mark.parametrize(
    ("backend", "cypher"),
    [pytest.param(*pair, marks=[pytest.mark.neo4j] if pair[0] == "neo4j" else []) for pair in PAST_THE_GUARD],
    indirect=["backend"],
)
def test_backend_read_only_mode_refuses_writes_past_the_guard(guarded, cypher):
    """FalkorDB runs reads with GRAPH.RO_QUERY; Neo4j in READ access mode (execute_query
    routing_=READ), which a single server enforces, on the system database too."""
    before = snapshot(guarded)
    with pytest.raises(UserError, match="^refused: the statement writes, but this query runs read-only"):
        guarded.read(cypher, model="guarded")
    assert snapshot(guarded) == before


@pytest.mark.neo4j
def test_neo4j_as_composed_refuses_load_csv_from_files_past_the_guard(store):
    """READ access mode lets LOAD CSV read files and URLs on Neo4j too: docker-compose.yml turns
    file URLs off (dbms.security.allow_csv_import_from_file_urls), so the server refuses them."""
    with pytest.raises(UserError, match="^query failed: .*allow_csv_import_from_file_urls"):
        store.read(REFUSED[11])


@pytest.mark.both_backends
def test_a_console_query_is_stopped_after_its_timeout(guarded):
    slow = "UNWIND range(1, 20000) AS x UNWIND range(1, 20000) AS y RETURN count(*) AS c"  # 4e8 rows
    with pytest.raises(UserError, match=r"^the query ran longer than 0.05 s and was stopped"):
        guarded.console(slow, model="guarded", timeout=0.05)
    assert guarded.console("RETURN 1 AS one", model="guarded") == [{"one": 1}]  # the default: 30 s


@pytest.mark.both_backends
@pytest.mark.parametrize("cypher", READS)
def test_console_allows_reads_and_read_only_procedures(guarded, cypher):
    check_read_only(cypher)
    assert guarded.console(cypher, model="guarded")


SENTINEL = "zq7sntnl"
LIMIT = 997  # a number no query text contains


def _sentinel_params(query, model):
    """Every parameter of a named query, each string holding the sentinel (via the model id)."""
    values = {
        "model": model,
        "uid": f"{model}/L1/0" if query.name == "neuron" else f"{model}/innersight/L1/c0",
        "source": f"{model}/L0/0",
        "target": f"{model}/L2/1",
        "models": [model],
        "class": 1,
        "method": "innersight",
        "min_bits": 0.0,
        "score": "closing",
        "min_overlap": 0.3,
        "limit": LIMIT,
    }
    return {p.name: values[p.name] for p in query.params}


@pytest.mark.both_backends
def test_user_values_reach_cypher_only_as_parameters(store, monkeypatch):
    """Every statement sent while writing and asking with sentinel values carries them only in its
    parameters; the Neo4j writer's statements too."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 4)).astype(np.float32)
    model = f"{SENTINEL}-model"
    analysis = analyze(
        models.small(),
        X,
        (X[:, 0] > 0).astype(int),
        name=model,
        dataset=f"{SENTINEL}-data",
        class_names=[f"{SENTINEL}-a", f"{SENTINEL}-b"],
        deletion=False,
    )
    sent = []
    names, at = (("read", "write"), 0) if store.backend == "neo4j" else (("_query",), 1)  # (cypher, params) at
    for name in names:
        send = getattr(store, name)
        monkeypatch.setattr(
            store, name, lambda *args, send=send, **kw: sent.append(args[at : at + 2]) or send(*args, **kw)
        )
    write(store, analysis, replace=True)
    for named in QUERIES.values():
        store.ask(named.name, **_sentinel_params(named, model))
    assert store.console("MATCH (c:Class {name: $n}) RETURN c.index AS i", {"n": f"{SENTINEL}-b"}, model=model) == [
        {"i": 1}
    ]
    assert not [cypher for cypher, _ in sent if SENTINEL in cypher or str(LIMIT) in cypher]
    assert len([params for _, params in sent if SENTINEL in json.dumps(params)]) >= len(QUERIES)
    batches = list(neo4j_batches(model_graph(analysis)))
    assert not [cypher for cypher, _ in batches if SENTINEL in cypher]
    assert any(SENTINEL in json.dumps(rows) for _, rows in batches)
    store.drop(model)


NEO4J_SECRET = "n4j-Secret-8f3e1c"


def test_secrets_never_reach_output_files_or_errors(home, tmp_path, store):
    """Neither the embedded server's password nor NEO4J_PASSWORD appears in any command's output, in
    an exception message, or in a file under NEUROCYPHER_HOME but the two 0600 files that hold it
    (`password`, and the server's `falkordb.conf`, where redis reads it as `requirepass`)."""
    data = tmp_path / "d.npz"
    X = np.random.default_rng(0).normal(size=(40, 4)).astype(np.float32)
    np.savez(data, X=X, y=(X[:, 0] > 0).astype(np.int64))
    unreachable = {"NEO4J_URI": "bolt://127.0.0.1:9", "NEO4J_PASSWORD": NEO4J_SECRET}
    runs = [
        cli(
            "ingest",
            "--model",
            "tests/models.py:small",
            "--data",
            str(data),
            "--name",
            "secret-probe",
            "--methods",
            "",
            "--no-deletion",
            "--replace",
        ),
        cli("query", "attribution", "--model", "secret-probe", "--param", "class=0"),
        cli("query", "--model", "secret-probe", "--cypher", "MATCH (n RETURN n"),
        cli("db", "status"),
        cli("models", env=unreachable),
        cli("db", "status", env=unreachable),
    ]
    assert [r.returncode for r in runs] == [0, 0, 2, 0, 2, 0], [r.stderr for r in runs]
    errors = []
    for call in (
        lambda: store.console("MATCH (n RETURN n", model="secret-probe"),
        lambda: Neo4jStore("bolt://127.0.0.1:9", "neo4j", NEO4J_SECRET),
    ):
        with pytest.raises(UserError) as raised:
            call()
        errors += [str(raised.value), repr(raised.value.__cause__)]
    password = EmbeddedServer(home).password
    holding = [
        path.relative_to(home).as_posix()
        for path in home.rglob("*")
        if path.is_file() and password.encode() in path.read_bytes()
    ]
    assert sorted(holding) == ["db/falkordb.conf", "db/password"]
    assert all(stat.S_IMODE((home / path).stat().st_mode) == 0o600 for path in holding)
    for text in [r.stdout + r.stderr for r in runs] + errors:
        assert password not in text and NEO4J_SECRET not in text
    for path in home.rglob("*"):
        assert not path.is_file() or NEO4J_SECRET.encode() not in path.read_bytes()


@pytest.mark.neo4j
def test_a_wrong_neo4j_password_is_not_echoed(neo4j_env):
    with pytest.raises(UserError, match="refused the credentials") as raised:
        Neo4jStore(neo4j_env["NEO4J_URI"], neo4j_env["NEO4J_USER"], NEO4J_SECRET)
    assert NEO4J_SECRET not in str(raised.value) + repr(raised.value.__cause__)


class Payload:
    """Unpickling this calls open(marker, "w"): code that loading a data or weights file must never run."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return open, (self.marker, "w")


@pytest.mark.parametrize("where", ["pt data", "npz data", "weights"])
def test_pickled_code_in_a_data_or_weights_file_is_refused_and_never_runs(store, tmp_path, where):
    marker, good, evil = (
        tmp_path / "ran",
        tmp_path / "good.npz",
        tmp_path / ("evil.npz" if where == "npz data" else "evil.pt"),
    )
    y = np.zeros(40, np.int64)
    np.savez(good, X=np.zeros((40, 4), np.float32), y=y)
    if where == "npz data":
        np.savez(evil, X=np.array([Payload(marker)], dtype=object), y=y)
        np.load(evil, allow_pickle=True)["X"]  # the payload is live: a trusting load runs it
    else:
        torch.save(
            {"X": Payload(marker), "y": torch.from_numpy(y)} if where == "pt data" else {"0.weight": Payload(marker)},
            evil,
        )
        torch.load(evil, weights_only=False)
    assert marker.exists()
    marker.unlink()
    files = ["--data", str(evil)] if where != "weights" else ["--data", str(good), "--weights", str(evil)]
    before = snapshot(store)
    done = cli("ingest", "--model", "tests/models.py:small", *files, "--name", "evil")
    assert done.returncode == 2 and done.stderr.startswith("error: ") and done.stderr.count("\n") == 1, done.stderr
    assert (
        "Object arrays cannot be loaded" if where == "npz data" else "refuses to run (Unsupported global"
    ) in done.stderr
    assert not marker.exists() and snapshot(store) == before
