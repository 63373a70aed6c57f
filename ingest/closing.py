"""Closing evaluation (InnerSightNet): switch a community off without retraining and measure the
accuracy lost, overall and per class.

A closed community's members are set to 0 (or to their mean over the probe set) where its layer is
read in the forward pass (`ingest.taps.watching`); input features are replaced in the data, class
outputs in the class scores. Roles follow the overall accuracy drop d (in accuracy units, 0..1):
**key** when d > 0.005, **noise** when d < -0.005 (closing it helps), **irrelevant** otherwise.
"""

from dataclasses import dataclass
from itertools import combinations

import numpy as np
import torch
from torch import nn

from queries.progress import progress_bar
from queries.schema import ROLE_THRESHOLD

from .taps import device_of, watching


@dataclass
class Closing:
    layer: object  # an ingest.analysis.Layer, or a ReadPoint
    members: np.ndarray
    values: np.ndarray  # what each member is set to


@dataclass(frozen=True)
class ReadPoint:
    """What closing needs of a layer (as an `ingest.analysis.Layer` has it): its kind, and for a
    hidden layer where it is read and its width."""

    kind: str
    point: object = None  # ingest.taps.Point
    layout: object = None  # ingest.taps.Layout
    width: int = 0


def closable_layers(recording) -> list[ReadPoint]:
    """The layers of a recording (`ingest.neuronize.record`: input, hidden, output), as closings
    take them: for closing communities of a reloaded model outside an analysis."""
    hidden = [ReadPoint(t.kind, t.point, t.layout, h.shape[1]) for t, h in zip(recording.taps, recording.hidden)]
    return [ReadPoint("input"), *hidden, ReadPoint("output")]


def role(drop: float) -> str:
    return "key" if drop > ROLE_THRESHOLD else "noise" if drop < -ROLE_THRESHOLD else "irrelevant"


def evaluate_closing(
    model: nn.Module,
    X: np.ndarray,
    labels: np.ndarray,
    layers,
    communities,
    *,
    to_mean: bool = False,
    pairs: bool = False,
    batch_size: int = 256,
) -> dict[str, float]:
    """Fill each community's `acc_drop`, `class_acc_drop` and `role` (and `pair_acc_drop` with
    `pairs`); return the accuracy after closing all noise communities of each method. The closings
    of one layer run together, as copies of the probe set in each forward pass."""
    n_classes = layers[-1].width
    base = class_accuracies(predict_closed(model, X, [], batch_size), labels, n_classes)

    def drops(layer, sets) -> list[tuple[float, np.ndarray]]:
        masks = np.zeros((len(sets), layer.width), dtype=bool)
        for row, members in zip(masks, sets):
            row[members] = True
        values = layer.acts.mean(axis=0) if to_mean else np.zeros(layer.width)
        closed = [
            class_accuracies(p, labels, n_classes)
            for p in masked_predictions(model, X, layer, masks, values, batch_size)
        ]
        return [(base[0] - overall, base[1] - per_class) for overall, per_class in closed]

    with progress_bar(len(communities), "closing communities") as advance:
        for layer_index, group in _grouped(communities, lambda c: c.layer).items():
            for c, (overall, per_class) in zip(group, drops(layers[layer_index], [c.members for c in group])):
                c.props.update(acc_drop=overall, class_acc_drop=per_class, role=role(overall))
            advance(len(group))
    if pairs:
        for group in _grouped(communities, lambda c: (c.method, c.layer)).values():
            both = list(combinations(group, 2))
            for c in group:
                c.props["pair_acc_drop"] = np.zeros(len(group))
            found = drops(layers[group[0].layer], [np.union1d(a.members, b.members) for a, b in both]) if both else []
            for (a, b), (overall, _) in zip(both, found):
                a.props["pair_acc_drop"][b.index] = b.props["pair_acc_drop"][a.index] = overall

    def closing(c):
        layer = layers[c.layer]
        values = layer.acts[:, c.members].mean(axis=0) if to_mean else np.zeros(len(c.members))
        return Closing(layer, c.members, values)

    pruned = {}
    for method in dict.fromkeys(c.method for c in communities):
        noise = [closing(c) for c in communities if c.method == method and c.props["role"] == "noise"]
        pruned[f"prune_accuracy_{method}"] = class_accuracies(
            predict_closed(model, X, noise, batch_size), labels, n_classes
        )[0]
    return pruned


def _grouped(communities, key) -> dict:
    """Communities by `key(community)`, in their order."""
    groups: dict = {}
    for c in communities:
        groups.setdefault(key(c), []).append(c)
    return groups


def class_accuracies(predictions, labels, n_classes) -> tuple[float, np.ndarray]:
    """The accuracy of `predictions`, overall and per class (a fraction of each class's samples)."""
    hits = predictions == labels
    per_class = np.bincount(labels, weights=hits, minlength=n_classes) / np.maximum(
        np.bincount(labels, minlength=n_classes), 1
    )
    return float(hits.mean()), per_class


def predict_closed(model: nn.Module, X: np.ndarray, closed: list[Closing], batch_size: int = 256) -> np.ndarray:
    """Predicted classes with the given communities closed."""
    return closed_logits(model, X, closed, batch_size).argmax(dim=1).numpy()


def closed_logits(model: nn.Module, X: np.ndarray, closed: list[Closing], batch_size: int = 256) -> torch.Tensor:
    """The model's class scores (on the CPU) with the given communities closed."""
    device = device_of(model)
    X = X.copy()
    flat = X.reshape(len(X), -1)
    outputs, closers = [], {}
    for c in closed:
        if c.layer.kind == "input":
            flat[:, c.members] = c.values
        elif c.layer.kind == "output":
            outputs.append(c)
        else:
            closers[c.layer.point] = _closer(c, device, closers.get(c.layer.point))
    with watching(model, closers), torch.no_grad():
        logits = torch.cat(
            [model(torch.from_numpy(X[i : i + batch_size]).to(device)).cpu() for i in range(0, len(X), batch_size)]
        )
    for c in outputs:
        logits[:, c.members] = torch.as_tensor(c.values, dtype=logits.dtype)
    return logits


def _closer(c: Closing, device, before=None):
    """What replaces the tensor a closed community's layer is read from (after `before`, another
    closing at the same point)."""
    keep = torch.ones(1, c.layer.width, device=device)
    fill = torch.zeros(1, c.layer.width, device=device)
    keep[0, c.members] = 0
    fill[0, c.members] = torch.as_tensor(c.values, dtype=torch.float32, device=device)

    def close(output):
        return c.layer.layout.masked(output if before is None else before(output), keep, fill)

    return close


MASKS_PER_PASS = 32  # closings run together in one forward pass (each on a copy of the batch)


def masked_predictions(
    model: nn.Module, X: np.ndarray, layer, masks: np.ndarray, values: np.ndarray | None = None, batch_size: int = 256
) -> np.ndarray:
    """Predicted classes of every sample of X with the neurons of `layer` where `masks[i]` is True
    set to `values` (default 0), for each mask i: masks.shape[0] x len(X). Up to MASKS_PER_PASS masks
    share a forward pass, each on its own copy of the batch."""
    device = device_of(model)
    masks = np.asarray(masks, dtype=bool)
    values = np.zeros(layer.width) if values is None else values
    found = [
        _masked_chunk(model, X, layer, masks[i : i + MASKS_PER_PASS], values, batch_size, device)
        for i in range(0, len(masks), MASKS_PER_PASS)
    ]
    return np.concatenate(found) if found else np.zeros((0, len(X)), dtype=np.int64)


def _masked_chunk(model, X, layer, masks, values, batch_size, device) -> np.ndarray:
    copies = len(masks)
    keep = torch.as_tensor(~masks, dtype=torch.float32, device=device)
    fill = torch.as_tensor(masks * np.asarray(values, dtype=np.float32), device=device)

    def close(output):  # copies x batch x neurons (x positions: a closed channel's whole map)
        return layer.layout.masked(output, keep, fill)

    closers = {} if layer.kind in ("input", "output") else {layer.point: close}
    predicted = []
    with watching(model, closers), torch.no_grad():
        for start in range(0, len(X), batch_size):
            x = torch.from_numpy(np.ascontiguousarray(X[start : start + batch_size])).to(device)
            tiled = x.repeat(copies, *([1] * (x.ndim - 1)))
            if layer.kind == "input":
                tiled = close(tiled.reshape(len(tiled), -1)).reshape(tiled.shape)
            logits = model(tiled)
            if layer.kind == "output":
                logits = close(logits)
            predicted.append(logits.argmax(dim=1).view(copies, -1).cpu().numpy())
    return np.concatenate(predicted, axis=1) if predicted else np.zeros((copies, 0), dtype=np.int64)
