"""Write a finished analysis into the store: batched `UNWIND $rows` statements, published atomically."""

import json

from queries.store import Store

from .analysis import Analysis
from .progress import progress_bar

CREATE_MODEL = "CREATE (m:Model) SET m += $props"
CREATE_LAYERS = """
MATCH (m:Model {model_id: $model})
UNWIND $rows AS row
CREATE (m)-[:HAS_LAYER]->(l:Layer) SET l += row
"""
CREATE_CLASSES = """
MATCH (m:Model {model_id: $model})
UNWIND $rows AS row
CREATE (m)-[:HAS_CLASS]->(c:Class) SET c += row
"""
CREATE_NEURONS = """
UNWIND $rows AS row
MATCH (l:Layer {uid: row.layer_uid})
CREATE (l)-[:HAS_NEURON]->(n:Neuron) SET n += row.props
"""
PUBLISH_MODEL = "MATCH (m:Model {model_id: $model}) SET m.status = 'complete'"


def write(store: Store, analysis: Analysis, *, replace: bool = False) -> dict:
    """Store `analysis` as model `analysis.name`; returns the number of nodes written per label."""
    a = analysis
    neurons = neuron_rows(a)
    with store.model_writer(a.name, replace=replace) as tx, \
            progress_bar(len(neurons), f"writing {a.name}") as advance:
        tx.run(CREATE_MODEL, {"props": model_props(a)})
        tx.run(CREATE_LAYERS, {"model": a.name, "rows": layer_rows(a)})
        tx.run(CREATE_CLASSES, {"model": a.name, "rows": class_rows(a)})
        tx.rows(CREATE_NEURONS, neurons, progress=advance)
        tx.run(PUBLISH_MODEL, {"model": a.name})
    return {"Model": 1, "Layer": len(a.layers), "Class": a.n_classes, "Neuron": len(neurons)}


def model_props(a: Analysis) -> dict:
    return {
        "model_id": a.name, "name": a.name, "arch": a.arch, "dataset": a.dataset, "status": "writing",
        "n_samples": len(a.labels), "n_classes": a.n_classes, "n_layers": len(a.layers),
        "n_neurons": sum(layer.width for layer in a.layers), "layer_widths": [l.width for l in a.layers],
        "accuracy": a.accuracy, "class_accuracy": a.class_accuracy.tolist(),
        "created_at": a.created_at, "params": json.dumps(a.params, sort_keys=True),
    }


def layer_rows(a: Analysis) -> list[dict]:
    return [{"uid": a.uid(l.index), "model_id": a.name, "index": l.index, "name": l.name, "kind": l.kind,
             "activation": l.activation, "width": l.width} for l in a.layers]


def class_rows(a: Analysis) -> list[dict]:
    support = [int((a.labels == c).sum()) for c in range(a.n_classes)]
    return [{"uid": f"{a.name}/class/{c}", "model_id": a.name, "index": c, "name": name,
             "support": support[c], "accuracy": float(a.class_accuracy[c])}
            for c, name in enumerate(a.class_names)]


def neuron_rows(a: Analysis) -> list[dict]:
    rows = []
    for layer in a.layers:
        mean, std = layer.acts.mean(axis=0), layer.acts.std(axis=0)
        constant = layer.constant
        for i in range(layer.width):
            rows.append({"layer_uid": a.uid(layer.index), "props": {
                "uid": a.uid(layer.index, i), "model_id": a.name, "layer": layer.index, "index": i,
                "kind": layer.neuron_kind, "mean": float(mean[i]), "std": float(std[i]),
                "entropy": float(layer.entropy[i]), "constant": bool(constant[i]),
                "class_means": layer.class_means[:, i].tolist(),
            }})
    return rows
