"""Crash safety and durability, on an embedded server of this module's own (these tests kill it): an
ingest killed part way, the server killed under a write, and stored models surviving `db stop`/start
and a SIGKILL of the server."""

import os
import pickle
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from helpers import assert_invisible, cli, expected_checksums, hidden, wait_until

from neurocypher.queries import EmbeddedServer
from neurocypher.queries.falkordb_store import GRAPH_PREFIX, FalkorStore

CHILD = str(Path(__file__).with_name("crash_ingest.py"))  # writes a pickled graph; see its docstring
MODEL = "crash"
NODES = "MATCH (n) RETURN labels(n)[0] AS key, count(n) AS n"
RELATIONSHIPS = "MATCH ()-[r]->() RETURN type(r) AS key, count(r) AS n"
BITS = "MATCH ()-[f:FLOWS_TO]->() RETURN sum(f.bits) AS bits"


@pytest.fixture(scope="module")
def server():
    """A running server in a home of its own, so that the session's server is never killed; stopped
    and removed at the end."""
    home = Path(tempfile.mkdtemp(prefix="nc-rel-", dir="/tmp"))
    server = EmbeddedServer(home)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="module")
def graph():
    """A synthetic model of 6,000 flow edges and 4 communities per layer: 23 relationship batches
    in the child's small GRAPH.BULK calls."""
    from neurocypher.ingest.synthetic import synthetic_analysis
    from neurocypher.ingest.writer import model_graph

    return model_graph(synthetic_analysis(MODEL, layers=4, width=100, edges=6000, communities=4))


@pytest.fixture(scope="module")
def graph_file(graph, tmp_path_factory):
    path = tmp_path_factory.mktemp("graph") / "graph.pkl"
    path.write_bytes(pickle.dumps(graph))
    return str(path)


def home_env(server) -> dict:
    return {"NEUROCYPHER_HOME": str(server.dir.parent)}


def start_ingest(server, graph_file, point="none", **popen) -> subprocess.Popen:
    """Start the child that writes the graph, stopping at `point`."""
    return subprocess.Popen(
        [sys.executable, CHILD, graph_file, point],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **home_env(server)},
        **popen,
    )


def run_ingest(server, graph_file, point="none") -> subprocess.CompletedProcess:
    """Run the child to its end."""
    child = start_ingest(server, graph_file, point)
    out, err = child.communicate(timeout=120)
    return subprocess.CompletedProcess(child.args, child.returncode, out, err)


def open_store(server) -> FalkorStore:
    """A store on `server`, started again if it is down."""
    server.start()
    return FalkorStore(server)


def kill_server(server) -> None:
    """SIGKILL the server and wait until its socket stops answering."""
    os.kill(server.pid(), signal.SIGKILL)
    wait_until(lambda: not server.is_running(), 30, "the killed server to stop answering")


def aof_written(store) -> bool:
    """Whether the server has written every acknowledged write to its append-only file (INFO
    persistence: an empty AOF buffer, no background fsync queued), which a SIGKILL cannot undo."""
    info = store._db.connection.info("persistence")
    return (
        info["aof_last_write_status"] == "ok" and info["aof_buffer_length"] == 0 and info["aof_pending_bio_fsync"] == 0
    )


def checksums(store, key) -> dict:
    """Nodes per label, relationships per type and the sum of FLOWS_TO bits of graph `key`."""
    rows = store._query(key, NODES, None, True) + store._query(key, RELATIONSHIPS, None, True)
    bits = store._query(key, BITS, None, True)[0]["bits"]
    return {row["key"]: row["n"] for row in rows} | {"bits": round(bits, 6)}


def relationships(sums: dict) -> int:
    return sum(n for key, n in sums.items() if key.isupper())


def assert_rerun_stores_it_once(server, graph, graph_file) -> None:
    """A rerun of the ingest succeeds and stores every node and relationship exactly once."""
    rerun = run_ingest(server, graph_file)
    assert rerun.returncode == 0, rerun.stderr
    with open_store(server) as store:
        assert checksums(store, GRAPH_PREFIX + MODEL) == expected_checksums(graph)
        assert hidden(store) == []


@pytest.mark.parametrize(
    "point", ["kill:0", "kill:0.5", "kill:publish"], ids=["after-first-rel-batch", "mid-rels", "before-rename"]
)
def test_ingest_killed_part_way_leaves_nothing_visible(server, graph, graph_file, point):
    with open_store(server) as store:
        store.drop(MODEL)
        assert run_ingest(server, graph_file, point).returncode == -signal.SIGKILL
        [stage] = hidden(store)  # what the killed child wrote, left hidden
        staged = relationships(checksums(store, stage))
        total = relationships(expected_checksums(graph))
        assert staged == total if point == "kill:publish" else 0 < staged < total
        assert_invisible(store, MODEL)
    assert_rerun_stores_it_once(server, graph, graph_file)


def test_server_killed_under_a_write(server, graph, graph_file):
    with open_store(server) as store:
        store.drop(MODEL)
    child = start_ingest(server, graph_file, "pause", stdin=subprocess.PIPE)
    try:
        assert child.stdout.readline() == "paused\n"  # its first relationship batch is stored
        kill_server(server)
        _, err = child.communicate("\n", timeout=120)
    finally:
        child.kill()
    assert child.returncode == 1
    assert err == (
        "error: lost the connection to the embedded FalkorDB server (did it stop?); "
        "run `neurocypher db start` and try again\n"
    )
    restarted = cli("models", "--format", "json", env=home_env(server))  # starts the server again
    assert restarted.returncode == 0 and restarted.stderr.startswith("started the embedded FalkorDB server")
    assert MODEL not in restarted.stdout
    with open_store(server) as store:
        assert_invisible(store, MODEL)
    assert_rerun_stores_it_once(server, graph, graph_file)


@pytest.fixture()
def stored_sums(server, graph):
    """The checksums of two models, stored just now."""
    from neurocypher.ingest.synthetic import synthetic_analysis
    from neurocypher.ingest.writer import model_graph

    graphs = (graph, model_graph(synthetic_analysis("small", layers=3, width=20, edges=200, communities=2, seed=1)))
    with open_store(server) as store:
        for g in graphs:
            store.write_model(g, replace=True)
    sums = checksums_of(server, [g.model_id for g in graphs])
    assert sums == {g.model_id: expected_checksums(g) for g in graphs}
    return sums


def checksums_of(server, models) -> dict:
    with open_store(server) as store:
        return {model: checksums(store, GRAPH_PREFIX + model) for model in models}


def test_models_survive_db_stop_and_start(server, stored_sums):
    env = home_env(server)
    assert cli("db", "stop", env=env).stdout.startswith("stopped")
    assert not server.is_running()
    assert cli("db", "start", env=env).stdout.startswith("started")
    assert checksums_of(server, stored_sums) == stored_sums


def test_acknowledged_models_survive_a_server_sigkill(server, stored_sums):
    with open_store(server) as store:
        wait_until(lambda: aof_written(store), 10, "the append-only file to hold every write")
    old_pid = server.pid()
    kill_server(server)
    assert checksums_of(server, stored_sums) == stored_sums
    assert server.pid() != old_pid
