"""Debugging one sample with NeurFlow's groups: which groups fire on it, and how the logits move
when each group is masked (its members set to 0).

A group fires as much as its members' mean z-score on the sample (activation minus the neuron's
probe-set mean, over its standard deviation, both as stored)."""

import numpy as np
from torch import nn

from neurocypher.errors import UserError
from neurocypher.queries.reads import model_params, model_source, neurflow_groups
from neurocypher.queries.store import Store

from .closing import Closing, closable_layers, closed_logits
from .data import load_data
from .modelfile import load_model
from .neuronize import ClassScores, record
from .options import AnalysisOptions
from .pipeline import runnable


def debug_sample(
    model: nn.Module, X: np.ndarray, label: int, groups: list[dict], options: AnalysisOptions | None = None
) -> list[dict]:
    """For one sample `X` (a batch of one, as `model` takes it: a `ClassScores` for token data), every
    group with its firing z-score and the change of the predicted and the true class's logits when it
    is masked; the strongest firing first. `options`
    are those of the analysis (how its layers were chosen and read)."""
    options = options or AnalysisOptions()
    model = model if isinstance(model, ClassScores) else ClassScores(model, options.logits)
    rec = record(model, X, layers=options.layers, batch_size=1, token_reduce=options.token_reduce)
    acts = [rec.inputs[0]] + [h[0] for h in rec.hidden] + [rec.outputs[0]]
    layers = closable_layers(rec)
    base = closed_logits(model, X, [])[0]
    predicted = int(base.argmax())
    rows = []
    for g in groups:
        members = np.asarray(g["members"])
        z = (acts[g["layer"]][members] - np.asarray(g["means"])) / np.maximum(np.asarray(g["stds"]), 1e-9)
        masked = closed_logits(model, X, [Closing(layers[g["layer"]], members, np.zeros(len(members)))])[0]
        rows.append(
            {
                "group": g["group"],
                "label": g["label"],
                "firing": float(z.mean()),
                "predicted_logit_change": float(masked[predicted] - base[predicted]),
                "true_logit_change": float(masked[label] - base[label]),
                "prediction_when_masked": int(masked.argmax()),
            }
        )
    return sorted(rows, key=lambda r: -r["firing"])


def debug_stored(store: Store, name: str, index: int) -> tuple[dict, list[dict]]:
    """`debug_sample` for sample `index` of a stored model, reloading the model and data it was
    ingested from; also returns the sample's true and predicted class."""
    params = model_params(store, name)
    source = model_source(params, name, "debug it")
    groups = neurflow_groups(store, name)
    if not groups:
        raise UserError(f"{name} has no NeurFlow groups; ingest it with --methods including neurflow")
    data = load_data(source["data"])
    if not 0 <= index < len(data.X):
        raise UserError(f"sample index {index} is outside 0..{len(data.X) - 1}")
    options = AnalysisOptions.reading(params)
    model, X = runnable(
        load_model(source["model"], source.get("weights")), data.X, data.mask, data.vocab, options.logits
    )
    found = debug_sample(model, X[index : index + 1], int(data.y[index]), groups, options)
    predicted = int(closed_logits(model, X[index : index + 1], [])[0].argmax())
    return {"sample": index, "true": int(data.y[index]), "predicted": predicted}, found
