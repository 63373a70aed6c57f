"""A stored model in the tools researchers already use: rows as a pandas DataFrame, a model's neuron
graph or one method's community graph as a networkx DiGraph with every stored property, and those
graphs as files Gephi and Cytoscape open (GraphML, GEXF, or a nodes and an edges CSV).

A graph is read a page at a time, by uid (keyset paging: each page starts after the last uid of the
one before, which an index serves), never in one giant read.
"""

import json
import os
from pathlib import Path

from neurocypher.errors import UserError, no_such_model
from neurocypher.progress import progress_bar

from .schema import on_complete_model

LEVELS = ("neurons", "communities")
FORMATS = ("graphml", "gexf", "csv")
PAGE = 2000  # nodes per read (a page of edges holds the outgoing edges of that many nodes)


def _node_page(label: str, where: str) -> str:
    return on_complete_model(f"""
MATCH (n:{label} {{generation: m.generation{where}}}) WHERE n.uid > $after
WITH n ORDER BY n.uid LIMIT $limit
RETURN n""")


def _edge_page(label: str, where: str) -> str:
    return on_complete_model(f"""
MATCH (a:{label} {{generation: m.generation{where}}}) WHERE a.uid > $after
WITH a ORDER BY a.uid LIMIT $limit
OPTIONAL MATCH (a)-[r:FLOWS_TO]->(b:{label})
RETURN a.uid AS source, b.uid AS target, r AS flow""")


NEURON_PAGE, NEURON_FLOWS_PAGE = _node_page("Neuron", ""), _edge_page("Neuron", "")
COMMUNITY_PAGE = _node_page("Community", ", method: $method")
COMMUNITY_FLOWS_PAGE = _edge_page("Community", ", method: $method")
STATEMENTS = {"neurons": (NEURON_PAGE, NEURON_FLOWS_PAGE), "communities": (COMMUNITY_PAGE, COMMUNITY_FLOWS_PAGE)}
SIZES = on_complete_model("""
OPTIONAL MATCH (c:Community {generation: m.generation, method: $method})
RETURN m.n_neurons AS neurons, count(c) AS communities, m.methods AS methods""")


def as_frame(rows: list[dict]):
    """Rows (a list of dicts, as every read returns them) as a pandas DataFrame, columns in the
    order the query returns them."""
    import pandas as pd

    return pd.DataFrame.from_records(rows, columns=list(dict.fromkeys(key for row in rows for key in row)))


def model_digraph(store, model: str, level: str = "neurons", method: str | None = None, page: int = PAGE):
    """The stored graph of `model` as a `networkx.DiGraph`, nodes keyed by uid.

    Parameters
    ----------
    store : queries.store.Store
    model : str
        A stored model's id.
    level : {"neurons", "communities"}
        "neurons": every Neuron node (input, hidden and output neurons) with its FLOWS_TO edges
        (`bits`, `share`); "communities": the Community nodes of `method` with their FLOWS_TO
        edges (`bits`, summed over member edges, `mean`, `edges`).
    method : str, optional
        The community method, one the model was analysed with (needed for "communities").
    page : int
        Nodes per read.

    Returns
    -------
    networkx.DiGraph
        Every stored property on its node or edge; the graph's `model`, `level` and `method` in
        `graph.graph`.
    """
    import networkx as nx

    params = _checked(store, model, level, method)
    nodes, edges = STATEMENTS[level]
    graph = nx.DiGraph(model=model, level=level, method=method or "")
    with progress_bar(2 * params.pop("size"), f"reading {model} ({level})") as advance:
        for row in _pages(store, nodes, model, params, page, lambda row: row["n"]["uid"], advance):
            graph.add_node(row["n"]["uid"], **row["n"])
        for row in _pages(store, edges, model, params, page, lambda row: row["source"], advance):
            if row["target"] is not None:
                graph.add_edge(row["source"], row["target"], **row["flow"])
    return graph


def export(
    store, model: str, to: str, directory: Path, level: str = "neurons", method: str | None = None
) -> list[Path]:
    """Write `model_digraph(store, model, level, method)` into `directory` as `to` ("graphml",
    "gexf": one file; "csv": `...nodes.csv` and `...edges.csv` with Gephi's Id/Label and
    Source/Target columns). Lists (e.g. `class_means`) are written as JSON text, which these
    formats need; each file is written whole or not at all. Returns the paths written."""
    import networkx as nx

    if to not in FORMATS:
        raise UserError(f"--to {to!r} is not a format; use one of: {', '.join(FORMATS)}")
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create the directory {directory} ({exc.strerror}): pass a writable DIR") from exc
    graph = flat(model_digraph(store, model, level, method))
    stem = directory / f"{model}.{method if level == 'communities' else level}"
    if to == "csv":
        nodes = as_frame([{"Id": uid, "Label": label_of(uid, props), **props} for uid, props in graph.nodes(data=True)])
        edges = as_frame([{"Source": a, "Target": b, **props} for a, b, props in graph.edges(data=True)])
        paths = [stem.with_name(stem.name + ".nodes.csv"), stem.with_name(stem.name + ".edges.csv")]
        for frame, path in zip((nodes, edges), paths):
            _written(path, lambda tmp, frame=frame: frame.to_csv(tmp, index=False))
        return paths
    for uid, props in graph.nodes(data=True):
        props["label"] = label_of(uid, props)
    write = nx.write_graphml if to == "graphml" else nx.write_gexf
    path = stem.with_name(f"{stem.name}.{to}")
    _written(path, lambda tmp: write(graph, tmp))
    return [path]


def flat(graph):
    """A copy of `graph` whose property values are numbers, text or booleans only (lists and maps
    as JSON text; missing values left out), as GraphML, GEXF and CSV need them."""
    out = graph.__class__(**graph.graph)
    out.add_nodes_from((n, _flat(p)) for n, p in graph.nodes(data=True))
    out.add_edges_from((a, b, _flat(p)) for a, b, p in graph.edges(data=True))
    return out


def label_of(uid: str, props: dict) -> str:
    """A node's label in a drawing: a community's concept label, else its uid without the model id."""
    return props.get("label") or uid.split("/", 1)[-1]


def _flat(props: dict) -> dict:
    return {k: json.dumps(v) if isinstance(v, (list, dict)) else v for k, v in props.items() if v is not None}


def _checked(store, model: str, level: str, method: str | None) -> dict:
    if level not in LEVELS:
        raise UserError(f"--level {level!r} is not a level; use one of: {', '.join(LEVELS)}")
    rows = store.read(SIZES, {"model": model, "method": method}, model=model)
    if not rows:
        raise no_such_model(model)
    methods = [m for m in (rows[0]["methods"] or "").split(",") if m]
    if level == "communities" and method not in methods:
        listed = ", ".join(methods) or "none"
        raise UserError(f"{model} has no communities of method {method!r}; pass --method with one of: {listed}")
    return {"method": method, "size": rows[0][level] or 0}


def _pages(store, cypher: str, model: str, params: dict, size: int, key, advance):
    """The rows of a keyset-paged statement: each page starts after the last key of the one before."""
    after = ""
    while True:
        rows = store.read(cypher, {"model": model, **params, "after": after, "limit": size}, model=model)
        yield from rows
        keys = {key(row) for row in rows}
        advance(len(keys))
        if len(keys) < size:
            return
        after = max(keys)


def _written(path: Path, write) -> None:
    """Run `write(tmp)` into a file beside `path`, then move it into place: whole or not at all."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    except OSError as exc:
        raise UserError(f"cannot write {path} ({exc.strerror or exc}): pass a writable DIR") from exc
    finally:
        tmp.unlink(missing_ok=True)
