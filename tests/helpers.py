"""What several test modules share (no test module imports another, nor conftest): the console
script, the statements sent and held, a tiny model, the store's contents on either backend, and polling."""

import importlib
import os
import pkgutil
import re
import subprocess
import sys
import time
from pathlib import Path

import networkx as nx
import numpy as np
import pytest

from neurocypher import ingest, queries
from neurocypher.errors import UserError
from neurocypher.queries.falkordb_store import STAGING_PREFIX
from neurocypher.queries.graph import ModelGraph, NodeSet, RelSet

NEUROCYPHER = str(Path(sys.executable).with_name("neurocypher"))
SENT_CYPHER: set[str] = set()  # every statement the package sent during the session, for the linter


def cli(*args: str, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run the installed `neurocypher` console script."""
    return subprocess.run(
        [NEUROCYPHER, *args], capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})}
    )


def tiny_graph(model_id, n=3, broken=False) -> ModelGraph:
    """A tiny model: one Model node and `n` neurons in a chain; with `broken`, the last neuron holds
    a value that cannot be stored, so a write fails part way."""
    neurons = [{"uid": f"{model_id}/L0/{i}", "index": i, "mean": i / 2} for i in range(n)]
    if broken:
        neurons[-1]["mean"] = {"not": "storable"}
    return ModelGraph(
        model_id,
        [
            NodeSet("Model", [{"uid": model_id, "kind": "model", "status": "complete", "created_at": str(n)}]),
            NodeSet("Neuron", neurons),
        ],
        [RelSet("FLOWS_TO", "Neuron", "Neuron", np.arange(n - 1), np.arange(1, n), {"bits": np.ones(n - 1)})],
    )


def put(store, model_id, n=3, replace=False, broken=False):
    """Store `tiny_graph(model_id, n, broken)`, published atomically."""
    store.write_model(tiny_graph(model_id, n, broken), replace=replace)


NEO4J_CONTENTS = {  # Neo4j's whole database, as snapshot() counts it
    "nodes": "MATCH (n) RETURN labels(n) AS key, count(n) AS n, sum(size(keys(n))) AS properties ORDER BY key",
    "relationships": "MATCH ()-[r]->() RETURN type(r) AS key, count(r) AS n, sum(size(keys(r))) AS properties "
    "ORDER BY key",
    "indexes": "SHOW INDEXES YIELD name, state RETURN name AS key, state ORDER BY key",
    "constraints": "SHOW CONSTRAINTS YIELD name RETURN name AS key ORDER BY key",
}


def store_missing(store, analyses) -> None:
    """Write each analysis whose model `store` does not hold yet (so a session's shared models are
    written once per backend)."""
    for analysis in analyses:
        if not store.has_model(analysis.name):
            ingest.write(store, analysis)


def snapshot(store) -> dict:
    """What a bad input must leave unchanged. On the embedded store every key, with (nodes,
    relationships) for each graph (FalkorDB's own `telemetry{graph}` streams of query statistics
    aside); on Neo4j the nodes and properties per label set, the relationships and properties per
    type, the indexes and the constraints."""
    if store.backend == "neo4j":
        return {what: store.read(cypher) for what, cypher in NEO4J_CONTENTS.items()}
    db = store._db
    graphs = set(db.list_graphs())
    keys = {k.decode() if isinstance(k, bytes) else k for k in db.connection.keys()}
    counts = ("MATCH (n) RETURN count(n)", "MATCH ()-[r]->() RETURN count(r)")
    return {
        key: tuple(db.select_graph(key).ro_query(q).result_set[0][0] for q in counts) if key in graphs else None
        for key in sorted(keys)
        if not key.startswith("telemetry{")
    }


HIDDEN_NODES = """
MATCH (n)
WHERE NOT EXISTS { MATCH (m:Model {model_id: n.model_id, generation: n.generation}) WHERE m.status = 'complete' }
RETURN n.model_id AS model, n.generation AS generation, count(n) AS nodes ORDER BY model, generation"""


def hidden(store) -> list:
    """What the store holds besides its stored models: staging graphs on the embedded store; on
    Neo4j, nodes of a generation that is not its model's stored one (with their count)."""
    if store.backend == "neo4j":
        return store.read(HIDDEN_NODES)
    return [key for key in store._db.list_graphs() if key.startswith(STAGING_PREFIX)]


def expected_checksums(graph) -> dict:
    """Nodes per label, relationships per type and the sum of FLOWS_TO bits of `graph` once stored."""
    bits = sum(float(r.props["bits"].sum()) for r in graph.rels if r.type == "FLOWS_TO")
    return graph.counts() | {"bits": round(bits, 6)}


def assert_invisible(store, model) -> None:
    """No query of any kind sees `model`: the store's own, the named queries, the console's."""
    assert not store.has_model(model)
    assert model not in [m["model_id"] for m in store.models()]
    assert model not in [m["model"] for m in store.ask("models")]
    assert model not in [row["m"] for row in store.console("MATCH (n:Neuron) RETURN DISTINCT n.model_id AS m")]
    with pytest.raises(UserError, match="no model named"):
        store.ask("relay-path", model=model, **{"class": 0})


def wait_until(done, seconds: float, what: str, every: float = 0.05):
    """Poll `done()` every `every` seconds until it returns a true value, which is returned; the test
    fails, saying it waited for `what`, once `seconds` have passed without one."""
    deadline = time.monotonic() + seconds
    while not (result := done()):
        assert time.monotonic() < deadline, f"waited {seconds:g} s for {what}"
        time.sleep(every)
    return result


def ingest_demo_mlp(name: str, *options: str) -> subprocess.CompletedProcess:
    """`neurocypher ingest` of the demo MLP (untrained) on sklearn's digits as `name`, with `options`."""
    return cli("ingest", "--model", "ingest/demo_models.py:mlp", "--data", "sklearn:digits", "--name", name, *options)


CYPHER_START = re.compile(r"\s*(MATCH|OPTIONAL|CREATE|MERGE|UNWIND|RETURN|WITH|CALL)\s+\S")


def package_statements() -> set[str]:
    """Public module-level strings (or lists of strings) in `queries` and `ingest` that are Cypher
    (private ones, like a shared first clause, are parts of statements)."""
    found = set()
    for package in (queries, ingest):
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            module = importlib.import_module(info.name)
            for name, value in vars(module).items():
                if name.startswith("_"):
                    continue
                texts = value if isinstance(value, (list, tuple)) else [value]
                found.update(t for t in texts if isinstance(t, str) and CYPHER_START.match(t))
    return found


def python_relay_paths(a, c, method="innersight", min_bits=None, score="closing_specificity"):
    """All chains from the input layer to class c's output, scored as documented, best first."""
    last = len(a.layers) - 1
    graph = nx.DiGraph()
    for x in a.communities:
        hidden = 0 < x.layer < last
        mine = x.props.get("class") in (None, c) if hidden else x.layer == 0 or x.props["class"] == c
        if x.method == method and mine and (not hidden or min_bits is None or x.props["relay_bits"][c] >= min_bits):
            graph.add_node(a.community_uid(x), layer=x.layer, score=x.props[score][c] if x.layer < last else 0.0)
    for f in a.community_flows:
        if f.method == method:
            for i, j, bits, edges in zip(f.source, f.target, f.bits, f.edges):
                u, v = (f"{a.name}/{method}/L{f.lower + d}/c{k}" for d, k in ((0, i), (1, j)))
                if u in graph and v in graph:
                    graph.add_edge(u, v, mean=bits / edges)
    chains = []
    for start in [n for n, d in graph.nodes(data=True) if d["layer"] == 0]:
        for end in [n for n, d in graph.nodes(data=True) if d["layer"] == last]:
            for path in nx.all_simple_paths(graph, start, end, cutoff=last):
                if len(path) == last + 1:
                    score = sum(graph.nodes[n]["score"] for n in path)
                    flow = sum(graph.edges[u, v]["mean"] for u, v in zip(path, path[1:]))
                    chains.append((score, flow, path))
    return [(score, path) for score, flow, path in sorted(chains, key=lambda sfp: (-sfp[0], -sfp[1]))]
