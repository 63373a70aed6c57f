"""The store, on both backends (the write contract: atomic writes, replace, what a failure leaves),
and the embedded server, against the real servers."""

import stat
import subprocess
import threading
from pathlib import Path

import pytest
from helpers import NEUROCYPHER, cli, hidden, put, snapshot, tiny_graph

from neurocypher.errors import UserError
from neurocypher.queries import EmbeddedServer, connect, schema
from neurocypher.queries.falkordb_store import STAGING_PREFIX


@pytest.mark.both_backends
def test_round_trip_returns_plain_values(store):
    put(store, "rt", n=4)
    rows = store.console("MATCH (n:Neuron) RETURN n, n.mean AS mean, collect(n.index) AS i ORDER BY mean", model="rt")
    generation = store.read(schema.STORED_GENERATION, {"model": "rt"}, model="rt")[0]["generation"]
    neuron = {"uid": "rt/L0/0", "model_id": "rt", "generation": generation, "index": 0, "mean": 0.0}
    assert rows[0] == {"n": neuron, "mean": 0.0, "i": [0]}
    assert [r["mean"] for r in rows] == [0.0, 0.5, 1.0, 1.5]
    chain = store.console(
        "MATCH (a:Neuron)-[f:FLOWS_TO]->(b:Neuron) RETURN a.index AS a, b.index AS b, f.bits AS bits ORDER BY a",
        model="rt",
    )
    assert chain == [{"a": i, "b": i + 1, "bits": 1.0} for i in range(3)]
    assert store.has_model("rt") and "rt" in [m["model_id"] for m in store.models()]
    assert store.read(schema.STORED_GENERATION, {"model": "no-such-model"}, model="no-such-model") == []
    assert store.drop("rt") and not store.has_model("rt") and not store.drop("rt")


@pytest.mark.both_backends
def test_a_console_read_without_model_spans_every_model(store):
    put(store, "span-a", n=2)
    put(store, "span-b", n=5)
    rows = store.console("MATCH (n:Neuron) RETURN n.model_id AS m, count(n) AS c")
    assert {r["m"]: r["c"] for r in rows if r["m"].startswith("span-")} == {"span-a": 2, "span-b": 5}
    assert store.drop("span-a") and store.drop("span-b")


@pytest.mark.both_backends
def test_parameters_carry_any_text_safely(store):
    put(store, "text", n=1)
    tricky = "x\" OR 1=1 //\n'é\\"
    assert store.read("RETURN $s AS s", {"s": tricky}, model="text") == [{"s": tricky}]
    with pytest.raises(UserError, match="holds nan; NaN and inf cannot be stored"):
        store.read("RETURN $x AS x", {"x": float("nan")}, model="text")


@pytest.mark.both_backends
def test_failed_write_leaves_nothing(store):
    """A property value the store cannot hold (a map): FalkorDB's bulk encoding raises TypeError,
    Neo4j refuses the batch; either way nothing is left."""
    before = snapshot(store)
    with pytest.raises((TypeError, UserError)):
        put(store, "half", n=5, broken=True)
    assert not store.has_model("half") and snapshot(store) == before


@pytest.mark.both_backends
def test_the_same_graph_written_again_replaces_itself(store):
    """Each write is a generation of its own: on Neo4j a graph that kept its generation would clash
    with its stored nodes (the uid constraint), and removing the failed write removed the stored model."""
    graph = tiny_graph("twice", n=3)
    store.write_model(graph)
    first = graph.generation
    store.write_model(graph, replace=True)
    assert graph.generation != first and store.read(schema.STORED_GENERATION, {"model": "twice"}) == [
        {"generation": graph.generation}
    ]
    assert store.console("MATCH (n:Neuron) RETURN count(n) AS c", model="twice") == [{"c": 3}] and hidden(store) == []
    assert store.drop("twice")


@pytest.mark.both_backends
def test_existing_model_needs_replace_and_replace_never_hides_it(store):
    put(store, "swap", n=3)
    with pytest.raises(UserError, match="already stored; pass --replace"):
        put(store, "swap", n=4)
    seen, reading, done = [], threading.Event(), threading.Event()

    def watch():
        with connect() as reader:
            while not done.is_set():
                seen.append(reader.has_model("swap"))
                reading.set()

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        assert reading.wait(60), "the reader never read"  # so that its reads overlap the replacing writes
        for n in (40, 3, 40):
            put(store, "swap", n=n, replace=True)
    finally:
        done.set()
        watcher.join()
    assert seen and all(seen)
    assert store.console("MATCH (n:Neuron) RETURN count(n) AS c", model="swap") == [{"c": 40}]
    assert hidden(store) == []
    assert store.drop("swap")


def test_abandoned_staging_graph_is_removed_by_the_next_write(store):
    dead_pid = 2**22 + 12345  # above the default pid_max, so no such process
    store._db.select_graph(f"{STAGING_PREFIX}ghost:{dead_pid}:abcd").query("CREATE (:Model {model_id: 'ghost'})")
    put(store, "after-ghost")
    assert hidden(store) == []
    assert not store.has_model("ghost")


def test_data_survives_a_restart(home, store):
    put(store, "durable", n=6)
    server = EmbeddedServer(home)
    old_pid = server.pid()
    assert server.stop() and not server.is_running()
    assert cli("db", "status").stdout.startswith("running: False")
    with connect() as fresh:  # starts the server again
        assert server.pid() != old_pid
        assert fresh.read("MATCH (n:Neuron) RETURN count(n) AS c", model="durable") == [{"c": 6}]


def test_concurrent_starts_share_one_server(home):
    server = EmbeddedServer(home)
    server.stop()
    starts = [subprocess.Popen([NEUROCYPHER, "db", "start"], stdout=subprocess.PIPE, text=True) for _ in range(4)]
    outputs = [p.communicate(timeout=60)[0] for p in starts]
    assert sum(out.startswith("started") for out in outputs) == 1
    assert sum(out.startswith("already running") for out in outputs) == 3
    assert len({out.split("pid ")[1].split(",")[0] for out in outputs}) == 1
    assert _servers_in(server.dir) == [server.pid()]


def test_socket_is_private_and_no_tcp_port(home, store):
    server = EmbeddedServer(home)
    assert stat.S_IMODE(server.dir.stat().st_mode) == 0o700
    assert stat.S_IMODE(server.socket.stat().st_mode) == 0o700
    assert stat.S_IMODE((server.dir / "password").stat().st_mode) == 0o600
    config = store._db.connection.execute_command("CONFIG", "GET", "port")
    assert [v.decode() if isinstance(v, bytes) else v for v in config] == ["port", "0"]
    assert _listening_ports(server.pid()) == set()


def _servers_in(directory):
    """Ids of the processes whose working directory is `directory` (the server runs there)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and (proc / "cwd").resolve() == directory.resolve():
                found.append(int(proc.name))
        except OSError:
            continue
    return found


def _listening_ports(pid):
    """TCP ports that the process listens on, from /proc (state 0A = LISTEN)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        target = str(fd.readlink())
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in open(table).read().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:
                ports.add(int(fields[1].split(":")[1], 16))
    return ports
