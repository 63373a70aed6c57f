"""Turn a finished analysis into the model's graph and write it in one atomic, batched write."""

import json

import numpy as np

from neurocypher.errors import UserError
from neurocypher.progress import progress_bar
from neurocypher.queries.declared import RELAYS_PER_CLASS
from neurocypher.queries.graph import ModelGraph, NodeSet, RelSet
from neurocypher.queries.store import Store

from .analysis import Analysis
from .communities import MEMBERSHIP_FLOOR

ATTRIBUTIONS_PER_CLASS = 32  # strongest input features stored per class as ATTRIBUTES


def write(store: Store, analysis: Analysis, *, replace: bool = False) -> dict[str, int]:
    """Store `analysis` as model `analysis.name`; returns the nodes per label and relationships per type."""
    if not isinstance(analysis, Analysis):
        raise UserError(f"write() stores what ingest.analyze returns, not a {type(analysis).__name__}")
    graph = model_graph(analysis)
    with progress_bar(graph.size, f"writing {analysis.name}") as advance:
        store.write_model(graph, replace=replace, progress=advance)
    return graph.counts()


def model_graph(a: Analysis) -> ModelGraph:
    layers = layer_rows(a)
    widths, first = a.widths, a.offsets  # first: position of each layer's first neuron in the Neuron rows
    feeds = np.array(a.feeds, dtype=np.int64).reshape(-1, 2)  # the layer DAG: (lower, upper) rows
    rels = [
        RelSet("HAS_LAYER", "Model", "Layer", np.zeros(len(layers), np.int64), np.arange(len(layers))),
        RelSet("HAS_CLASS", "Model", "Class", np.zeros(a.n_classes, np.int64), np.arange(a.n_classes)),
        RelSet("HAS_NEURON", "Layer", "Neuron", np.repeat(np.arange(len(widths)), widths), np.arange(first[-1])),
        RelSet("FEEDS", "Layer", "Layer", feeds[:, 0], feeds[:, 1]),
    ]
    for flow in a.flows:
        rels.append(
            RelSet(
                "FLOWS_TO",
                "Neuron",
                "Neuron",
                flow.source + first[flow.lower],
                flow.target + first[flow.upper],
                {"bits": flow.bits, "share": flow.share},
            )
        )
    if a.attribution is not None:
        rels.append(attribution_rels(a.attribution))
    rels += community_rels(a, first)
    return ModelGraph(
        model_id=a.name,
        nodes=[
            NodeSet("Model", [model_props(a)]),
            NodeSet("Layer", layers),
            NodeSet("Class", class_rows(a)),
            NodeSet("Neuron", neuron_rows(a)),
            NodeSet("Community", community_rows(a)),
        ],
        rels=rels,
    )


def community_rows(a: Analysis) -> list[dict]:
    rows = []
    for c in a.communities:
        props = {k: v.tolist() if isinstance(v, np.ndarray) else v for k, v in c.props.items()}
        rows.append(
            {
                "uid": a.community_uid(c),
                "method": c.method,
                "layer": c.layer,
                "index": c.index,
                "size": c.size,
                **props,
            }
        )
    return rows


def community_rels(a: Analysis, first: np.ndarray) -> list[RelSet]:
    """MEMBER_OF {p, primary}, community FLOWS_TO {bits, edges, mean (, weight for neurflow)} between
    connected layers of one method, and RELAYS from every community to every class: for class k,
    entry k of the community's per-class properties that `queries.declared.RELAYS_PER_CLASS` names
    (0 where its method stores none, as NeurFlow's circuit weight for the other methods)."""
    if not a.communities:
        return []
    position = {(c.method, c.layer, c.index): i for i, c in enumerate(a.communities)}
    soft = {(m.method, m.layer): m.p for m in a.memberships}
    neuron, community, p, primary = [], [], [], []
    for i, c in enumerate(a.communities):  # primary members; p from the soft memberships if any
        neuron.append(c.members + first[c.layer])
        community.append(np.full(c.size, i))
        p.append(soft[(c.method, c.layer)][c.members, c.index] if (c.method, c.layer) in soft else np.ones(c.size))
        primary.append(np.ones(c.size, dtype=np.int64))
    for m in a.memberships:  # other memberships of at least MEMBERSHIP_FLOOR
        rows, cols = np.nonzero((m.p >= MEMBERSHIP_FLOOR) & (m.p.argmax(axis=1)[:, None] != np.arange(m.p.shape[1])))
        neuron.append(rows + first[m.layer])
        community.append(np.array([position[(m.method, m.layer, c)] for c in cols], dtype=np.int64))
        p.append(m.p[rows, cols])
        primary.append(np.zeros(len(rows), dtype=np.int64))
    rels = [
        RelSet(
            "MEMBER_OF",
            "Neuron",
            "Community",
            np.concatenate(neuron),
            np.concatenate(community),
            {"p": np.concatenate(p), "primary": np.concatenate(primary)},
        )
    ]
    for f in a.community_flows:
        props = {"bits": f.bits, "edges": f.edges, "mean": f.mean, **f.props}
        rels.append(
            RelSet(
                "FLOWS_TO",
                "Community",
                "Community",
                np.array([position[(f.method, f.lower, i)] for i in f.source], dtype=np.int64),
                np.array([position[(f.method, f.upper, j)] for j in f.target], dtype=np.int64),
                props,
            )
        )
    zeros = np.zeros(a.n_classes)
    rels.append(
        RelSet(
            "RELAYS",
            "Community",
            "Class",
            np.repeat(np.arange(len(a.communities)), a.n_classes),
            np.tile(np.arange(a.n_classes), len(a.communities)),
            {
                name: np.array([c.props.get(key, zeros) for c in a.communities]).ravel()
                for name, key in RELAYS_PER_CLASS.items()
            },
        )
    )
    return rels


def attribution_rels(attribution: np.ndarray) -> RelSet:
    """(input Neuron)-[:ATTRIBUTES {score, rank}]->(Class) for each class's strongest features."""
    k = min(ATTRIBUTIONS_PER_CLASS, attribution.shape[1])
    order = np.argsort(-attribution, axis=1, kind="stable")[:, :k]  # C x k input indices
    classes = np.repeat(np.arange(attribution.shape[0]), k)
    features = order.ravel()
    keep = attribution[classes, features] > 0
    return RelSet(
        "ATTRIBUTES",
        "Neuron",
        "Class",
        features[keep],
        classes[keep],
        {"score": attribution[classes, features][keep], "rank": np.tile(np.arange(k), attribution.shape[0])[keep]},
    )


def model_props(a: Analysis) -> dict:
    return {
        "uid": a.name,
        "kind": "model",
        "name": a.name,
        "arch": a.arch,
        "dataset": a.dataset,
        "status": "complete",
        "n_samples": len(a.labels),
        "n_classes": a.n_classes,
        "n_layers": len(a.layers),
        "n_neurons": sum(layer.width for layer in a.layers),
        "layer_widths": [layer.width for layer in a.layers],
        "accuracy": a.accuracy,
        "class_accuracy": a.class_accuracy.tolist(),
        "created_at": a.created_at,
        "params": json.dumps(a.params, sort_keys=True),
        "methods": ",".join(a.methods),
        "stages": ",".join(a.stage_seconds),
        "stage_seconds": list(a.stage_seconds.values()),
        **a.metrics,
    }


def layer_rows(a: Analysis) -> list[dict]:
    rows = [
        {
            "uid": a.uid(layer.index),
            "index": layer.index,
            "name": layer.name,
            "kind": layer.kind,
            "activation": layer.activation,
            "width": layer.width,
            "module": layer.module,
            "path": layer.path,
            "read_at": str(layer.point or ""),
            "fed_by": list(layer.inputs),
            "batch_axis": layer.layout.batch_axis,
            "token_reduce": layer.layout.reduce,
            **a.layer_props.get(layer.index, {}),
        }
        for layer in a.layers
    ]
    for flow in a.flows:  # on the upper layer: what its incoming flow edges had to beat
        row = rows[flow.upper]
        row["flow_edges"] = row.get("flow_edges", 0) + len(flow.source)
        row["flow_threshold"] = max(row.get("flow_threshold", 0.0), flow.threshold)
    return rows


def class_rows(a: Analysis) -> list[dict]:
    support = np.bincount(a.labels, minlength=a.n_classes)
    return [
        {
            "uid": f"{a.name}/class/{c}",
            "index": c,
            "name": name,
            "support": int(support[c]),
            "accuracy": float(a.class_accuracy[c]),
        }
        for c, name in enumerate(a.class_names)
    ]


def _column_moments(acts: np.ndarray, block: int = 512) -> dict[str, list[float]]:
    """Each neuron's mean and standard deviation, `block` neurons at a time (no copy of the layer)."""
    blocks = [acts[:, j : j + block] for j in range(0, acts.shape[1], block)]
    return {
        "mean": np.concatenate([b.mean(axis=0) for b in blocks]).tolist(),
        "std": np.concatenate([b.std(axis=0) for b in blocks]).tolist(),
    }


def neuron_rows(a: Analysis) -> list[dict]:
    rows = []
    for layer in a.layers:
        columns = {
            **_column_moments(layer.acts),
            "entropy": layer.entropy.tolist(),
            "constant": layer.constant.tolist(),
            **{key: values.tolist() for key, values in layer.props.items()},
        }
        class_means = layer.class_means.T.tolist()
        names = a.feature_names if layer.index == 0 and a.feature_names else None
        for i in range(layer.width):
            rows.append(
                {
                    "uid": a.uid(layer.index, i),
                    "layer": layer.index,
                    "index": i,
                    "kind": layer.neuron_kind,
                    **({"name": names[i]} if names else {}),
                    **{k: v[i] for k, v in columns.items()},
                    "class_means": class_means[i],
                }
            )
    return rows
