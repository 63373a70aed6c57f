"""Closing evaluation (InnerSightNet): switch a community off without retraining and measure the
accuracy lost, overall and per class.

A closed community's members are set to 0 (or to their mean over the probe set) by a forward hook
on the module its layer is read from; input features are replaced in the data, class outputs in the
logits. Roles follow the overall accuracy drop d (in accuracy units, 0..1): **key** when d > 0.005,
**noise** when d < -0.005 (closing it helps), **irrelevant** otherwise.
"""

from contextlib import ExitStack
from dataclasses import dataclass
from itertools import combinations

import numpy as np
import torch
from torch import nn

from queries.schema import ROLE_THRESHOLD

from .progress import progress_bar
from .taps import at_call, device_of



@dataclass
class Closing:
    layer: object  # ingest.analysis.Layer
    members: np.ndarray
    values: np.ndarray  # what each member is set to


def role(drop: float) -> str:
    return "key" if drop > ROLE_THRESHOLD else "noise" if drop < -ROLE_THRESHOLD else "irrelevant"


def evaluate_closing(model: nn.Module, X: np.ndarray, labels: np.ndarray, layers, communities, *,
                     to_mean: bool = False, pairs: bool = False, batch_size: int = 256) -> dict[str, float]:
    """Fill each community's `acc_drop`, `class_acc_drop` and `role` (and `pair_acc_drop` with
    `pairs`); return the accuracy after closing all noise communities of each method."""
    n_classes = int(labels.max()) + 1 if len(labels) else 0
    base = _accuracies(predict_closed(model, X, [], batch_size), labels, n_classes)

    def closing(c):
        layer = layers[c.layer]
        values = layer.acts[:, c.members].mean(axis=0) if to_mean else np.zeros(len(c.members))
        return Closing(layer, c.members, values)

    def drop(closed):
        acc = _accuracies(predict_closed(model, X, closed, batch_size), labels, n_classes)
        return base[0] - acc[0], base[1] - acc[1]

    with progress_bar(len(communities), "closing communities") as advance:
        for c in communities:
            overall, per_class = drop([closing(c)])
            c.props.update(acc_drop=overall, class_acc_drop=per_class, role=role(overall))
            advance()
    if pairs:
        for group in _same_layer(communities).values():
            for c in group:
                c.props["pair_acc_drop"] = np.zeros(len(group))
            for a, b in combinations(group, 2):
                a.props["pair_acc_drop"][b.index] = b.props["pair_acc_drop"][a.index] = drop(
                    [closing(a), closing(b)])[0]
    pruned = {}
    for method in dict.fromkeys(c.method for c in communities):
        noise = [closing(c) for c in communities if c.method == method and c.props["role"] == "noise"]
        pruned[f"prune_accuracy_{method}"] = base[0] - drop(noise)[0]
    return pruned


def _same_layer(communities) -> dict:
    groups: dict = {}
    for c in communities:
        groups.setdefault((c.method, c.layer), []).append(c)
    return groups


def _accuracies(predictions, labels, n_classes) -> tuple[float, np.ndarray]:
    hits = predictions == labels
    per_class = np.bincount(labels, weights=hits, minlength=n_classes) / np.maximum(
        np.bincount(labels, minlength=n_classes), 1)
    return float(hits.mean()), per_class


def predict_closed(model: nn.Module, X: np.ndarray, closed: list[Closing], batch_size: int = 256) -> np.ndarray:
    """Predicted classes with the given communities closed."""
    return closed_logits(model, X, closed, batch_size).argmax(dim=1).numpy()


def closed_logits(model: nn.Module, X: np.ndarray, closed: list[Closing], batch_size: int = 256) -> torch.Tensor:
    """The model's outputs (on the CPU) with the given communities closed."""
    device = device_of(model)
    X = X.copy()
    flat = X.reshape(len(X), -1)
    modules = dict(model.named_modules())
    outputs = []
    with ExitStack() as hooks, torch.no_grad():
        for c in closed:
            if c.layer.kind == "input":
                flat[:, c.members] = c.values
            elif c.layer.kind == "output":
                outputs.append(c)
            else:
                hooks.enter_context(at_call(model, modules[c.layer.tap], c.layer.tap_call, _closer(c, device)))
        logits = torch.cat([model(torch.from_numpy(X[i:i + batch_size]).to(device)).cpu()
                            for i in range(0, len(X), batch_size)])
    for c in outputs:
        logits[:, c.members] = torch.as_tensor(c.values, dtype=logits.dtype)
    return logits


def _closer(c: Closing, device):
    """What replaces the output of the module a closed community's layer is read from."""
    members = torch.as_tensor(c.members, device=device)
    values = torch.as_tensor(c.values, dtype=torch.float32, device=device)

    def close(output):
        output = output.clone()
        if c.layer.kind == "linear":
            output[..., members] = values
        else:  # channels: the whole map of a closed channel takes its value
            output[:, members] = values.view(-1, *([1] * (output.ndim - 2)))
        return output
    return close


def masked_predictions(model: nn.Module, X: np.ndarray, layer, masks: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Predicted classes of every sample of X with the neurons of `layer` (a hidden layer) where
    `masks[i]` is True zeroed, for each mask i: masks.shape[0] x len(X), in one pass of copies of X."""
    device = device_of(model)
    keep = torch.as_tensor(~np.asarray(masks, dtype=bool), dtype=torch.float32, device=device)
    copies = len(keep)

    def close(output):
        shape = (copies, -1, output.shape[-1]) if layer.kind == "linear" else (copies, -1, *output.shape[1:])
        view = keep[:, None, :] if layer.kind == "linear" else keep.view(copies, 1, -1, *([1] * (output.ndim - 2)))
        return (output.reshape(shape) * view).reshape(output.shape)

    rows = max(1, batch_size // copies) if len(X) else 1
    predicted = []
    with torch.no_grad(), at_call(model, dict(model.named_modules())[layer.tap], layer.tap_call, close):
        for start in range(0, len(X), rows):
            x = torch.from_numpy(np.ascontiguousarray(X[start:start + rows])).to(device)
            tiled = x.repeat(copies, *([1] * (x.ndim - 1)))
            predicted.append(model(tiled).argmax(dim=1).view(copies, -1).cpu().numpy())
    return np.concatenate(predicted, axis=1) if predicted else np.zeros((copies, 0), dtype=np.int64)
