"""Turn a finished analysis into the model's graph and write it in one atomic, batched write."""

import json

import numpy as np

from queries.graph import ModelGraph, NodeSet, RelSet
from queries.store import Store

from .analysis import Analysis
from .progress import progress_bar


def write(store: Store, analysis: Analysis, *, replace: bool = False) -> dict[str, int]:
    """Store `analysis` as model `analysis.name`; returns the nodes per label and relationships per type."""
    graph = model_graph(analysis)
    with progress_bar(graph.size, f"writing {analysis.name}") as advance:
        store.write_model(graph, replace=replace, progress=advance)
    return graph.counts()


def model_graph(a: Analysis) -> ModelGraph:
    layers = layer_rows(a)
    neurons = neuron_rows(a)
    first_neuron = np.cumsum([0] + [layer.width for layer in a.layers])
    neuron_layer = np.repeat(np.arange(len(a.layers)), [layer.width for layer in a.layers])
    return ModelGraph(
        model_id=a.name,
        nodes=[NodeSet("Model", [model_props(a)]), NodeSet("Layer", layers),
               NodeSet("Class", class_rows(a)), NodeSet("Neuron", neurons)],
        rels=[
            RelSet("HAS_LAYER", "Model", "Layer", np.zeros(len(layers), np.int64), np.arange(len(layers))),
            RelSet("HAS_CLASS", "Model", "Class", np.zeros(a.n_classes, np.int64), np.arange(a.n_classes)),
            RelSet("HAS_NEURON", "Layer", "Neuron", neuron_layer, np.arange(first_neuron[-1])),
        ],
    )


def model_props(a: Analysis) -> dict:
    return {
        "uid": a.name, "model_id": a.name, "name": a.name, "arch": a.arch, "dataset": a.dataset,
        "status": "complete", "n_samples": len(a.labels), "n_classes": a.n_classes,
        "n_layers": len(a.layers), "n_neurons": sum(layer.width for layer in a.layers),
        "layer_widths": [layer.width for layer in a.layers], "accuracy": a.accuracy,
        "class_accuracy": a.class_accuracy.tolist(), "created_at": a.created_at,
        "params": json.dumps(a.params, sort_keys=True),
    }


def layer_rows(a: Analysis) -> list[dict]:
    return [{"uid": a.uid(l.index), "model_id": a.name, "index": l.index, "name": l.name, "kind": l.kind,
             "activation": l.activation, "width": l.width} for l in a.layers]


def class_rows(a: Analysis) -> list[dict]:
    support = np.bincount(a.labels, minlength=a.n_classes)
    return [{"uid": f"{a.name}/class/{c}", "model_id": a.name, "index": c, "name": name,
             "support": int(support[c]), "accuracy": float(a.class_accuracy[c])}
            for c, name in enumerate(a.class_names)]


def neuron_rows(a: Analysis) -> list[dict]:
    rows = []
    for layer in a.layers:
        columns = {"mean": layer.acts.mean(axis=0).tolist(), "std": layer.acts.std(axis=0).tolist(),
                   "entropy": layer.entropy.tolist(), "constant": layer.constant.tolist()}
        class_means = layer.class_means.T.tolist()
        for i in range(layer.width):
            rows.append({"uid": a.uid(layer.index, i), "model_id": a.name, "layer": layer.index, "index": i,
                         "kind": layer.neuron_kind, **{k: v[i] for k, v in columns.items()},
                         "class_means": class_means[i]})
    return rows
