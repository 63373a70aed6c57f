"""No statement can take the embedded server down: it runs every statement under a per-query memory
cap and timeouts (`queries.server.LIMITS`); one past a limit ends with one line naming it and what
to do, and the server goes on answering. The Neo4j side is in tests/test_neo4j_plan.py."""

import json
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from helpers import cli, tiny_graph

from neurocypher.errors import UserError
from neurocypher.queries.falkordb_store import FalkorStore
from neurocypher.queries.graph import ModelGraph, NodeSet, RelSet
from neurocypher.queries.server import LIMITS, EmbeddedServer
from neurocypher.queries.store import CONSOLE_SECONDS

LAYERS, WIDTH = 10, 4  # a deep model: 4 communities per layer, each linked to all 4 of the next
HOPS = LAYERS - 1
CHAINS = (  # every chain of communities from layer 0 up, as relay-path asks: 4^9 chains, GBs to rank
    "MATCH (m:Model {model_id: 'deep'}) WHERE m.status = 'complete'\n"
    "MATCH (c0:Community {generation: m.generation, layer: 0})\n"
    + "".join(
        f"MATCH (c{i - 1})-[f{i}:FLOWS_TO]->(c{i}:Community) WHERE c{i}.class IS NULL OR c{i}.class = 3\n"
        for i in range(1, LAYERS)
    )
    + "RETURN ["
    + ", ".join(f"c{i}.uid" for i in range(LAYERS))
    + "] AS chain, "
    + " + ".join(f"f{i}.mean" for i in range(1, LAYERS))
    + " AS flow ORDER BY flow DESC LIMIT 5"
)
TUPLES = "MATCH (a:Community), (b:Community), (c:Community), (d:Community), (e:Community) RETURN count(*) AS n"  # 1e8
COUNT = "MATCH (c:Community) RETURN count(c) AS n"
CAP_MB = 64  # the cap this module's server gets for the memory tests, so that they run in seconds


def deep_graph() -> ModelGraph:
    """Model `deep`: LAYERS layers of WIDTH communities, each linked to every community of the next
    layer; those of the last layer are class outputs (property `class`)."""
    communities = [
        {"uid": f"deep/L{layer}/c{i}", "layer": layer} | ({"class": i} if layer == HOPS else {})
        for layer in range(LAYERS)
        for i in range(WIDTH)
    ]
    pairs = [
        (layer * WIDTH + i, (layer + 1) * WIDTH + j)
        for layer in range(HOPS)
        for i in range(WIDTH)
        for j in range(WIDTH)
    ]
    start, end = np.array(pairs).T
    return ModelGraph(
        "deep",
        [NodeSet("Model", [{"uid": "deep", "kind": "model", "status": "complete"}]), NodeSet("Community", communities)],
        [RelSet("FLOWS_TO", "Community", "Community", start, end, {"mean": np.linspace(0, 1, len(pairs))})],
    )


@pytest.fixture(scope="module")
def limited():
    """A server of this module's own with model `deep` stored, and a store on it."""
    home = Path(tempfile.mkdtemp(prefix="nc-limits-", dir="/tmp"))
    server = EmbeddedServer(home)
    server.start()
    store = FalkorStore(server)
    store.write_model(deep_graph())
    yield server, store
    store.close()
    server.stop()
    shutil.rmtree(home, ignore_errors=True)


def settings(store) -> dict:
    """The server's values of the settings in LIMITS."""
    return {name: store._setting(name) for name in LIMITS}


@contextmanager
def configured(store, **values):
    """The server's settings set to `values` (in that order) for the block, then set back."""
    before = settings(store)
    try:
        for name, value in values.items():
            store._command("GRAPH.CONFIG", "SET", name, value)
        yield
    finally:
        for name in reversed(values):
            store._command("GRAPH.CONFIG", "SET", name, before[name])


def peak_mb(pid: int, key: str) -> int:
    """`key` (VmRSS, VmHWM) of process `pid` in MB."""
    line = next(x for x in Path(f"/proc/{pid}/status").read_text().splitlines() if x.startswith(key + ":"))
    return int(line.split()[1]) // 1024


def test_the_server_starts_with_the_measured_limits(store):
    assert settings(store) == LIMITS
    assert LIMITS["TIMEOUT_MAX"] == CONSOLE_SECONDS * 1000 >= LIMITS["TIMEOUT_DEFAULT"]


def test_a_server_started_without_limits_gets_them_when_next_started(limited):
    server, store = limited
    with configured(store, TIMEOUT_DEFAULT=0, TIMEOUT_MAX=0, QUERY_MEM_CAPACITY=0):
        assert server.start() is False  # it runs: what `connect()` and `neurocypher db start` call
        assert settings(store) == LIMITS


def test_a_model_is_written_whole_under_a_cap_far_below_its_size(limited):
    """GRAPH.BULK, which loads a model, is no query: the limits do not apply to it."""
    _, store = limited
    with configured(store, QUERY_MEM_CAPACITY=2**20):
        store.write_model(tiny_graph("long", n=50_000))
        assert store.read("MATCH (n:Neuron) RETURN count(n) AS n", model="long") == [{"n": 50_000}]
    assert store.drop("long")


def test_a_query_over_the_memory_cap_ends_with_one_line_and_the_server_answers_on(limited):
    server, store = limited
    pid = server.pid()
    with configured(store, QUERY_MEM_CAPACITY=CAP_MB * 2**20):
        Path(f"/proc/{pid}/clear_refs").write_text("5")  # resets the peak (VmHWM) to the resident size now
        baseline = peak_mb(pid, "VmRSS")
        with pytest.raises(
            UserError, match=rf"^the query needed more .* \(QUERY_MEM_CAPACITY {CAP_MB} MB\).*narrow it"
        ):
            store.console(CHAINS, model="deep")
        assert peak_mb(pid, "VmHWM") < baseline + CAP_MB
        assert store.console(COUNT, model="deep") == [{"n": LAYERS * WIDTH}]
    assert server.pid() == pid


def test_the_cli_says_which_limit_a_query_passed_in_one_line(limited):
    server, store = limited
    home = {"NEUROCYPHER_HOME": str(server.dir.parent)}
    with configured(store, QUERY_MEM_CAPACITY=CAP_MB * 2**20):
        over = cli("query", "--cypher", CHAINS, "--model", "deep", env=home)
        assert (over.returncode, over.stdout) == (2, "")
        assert over.stderr.startswith("error: the query needed more") and over.stderr.count("\n") == 1
        assert f"QUERY_MEM_CAPACITY {CAP_MB} MB" in over.stderr
        after = cli("query", "--cypher", COUNT, "--model", "deep", "--format", "json", env=home)
        assert after.returncode == 0 and json.loads(after.stdout) == [{"n": LAYERS * WIDTH}]


def test_a_statement_asking_no_timeout_is_stopped_by_the_servers_default(limited):
    _, store = limited
    with configured(store, TIMEOUT_DEFAULT=100):
        with pytest.raises(UserError, match=r"^the query ran longer than 0.1 s \(the server's TIMEOUT_DEFAULT\)"):
            store.read(TUPLES, model="deep")
    assert store.read(COUNT, model="deep") == [{"n": LAYERS * WIDTH}]


def test_a_timeout_beyond_the_servers_maximum_is_refused(limited):
    _, store = limited
    most = LIMITS["TIMEOUT_MAX"] / 1000
    with pytest.raises(UserError, match=rf"^a timeout of {most + 1:g} s is more than the server allows \(TIMEOUT_MAX"):
        store.console("RETURN 1 AS one", model="deep", timeout=most + 1)
    assert store.console("RETURN 1 AS one", model="deep", timeout=most) == [{"one": 1}]
