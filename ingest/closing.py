"""Closing evaluation (InnerSightNet): switch a community off without retraining and measure the
accuracy lost, overall and per class.

A closed community's members are set to 0 (or to their mean over the probe set) where its layer is
read in the forward pass (`ingest.taps.watching`); input features are replaced in the data (input
tokens are deleted, `ingest.tokens`), class outputs in the class scores. Roles follow the overall
accuracy drop d (in accuracy units, 0..1): **key** when d > 0.005, **noise** when d < -0.005
(closing it helps), **irrelevant** otherwise.
"""

from contextlib import nullcontext
from dataclasses import dataclass
from itertools import combinations

import numpy as np
import torch
from torch import nn

from neurocypher.progress import progress_bar
from neurocypher.queries.schema import ROLE_THRESHOLD

from .communities import specificity
from .neuronize import token_input
from .segments import WHOLE_MODEL, Plan, Plans, closed_output
from .taps import Layout, device_of, rows, watching


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
    inputs = ReadPoint("input", layout=Layout(), width=recording.inputs.shape[1])
    outputs = ReadPoint("output", layout=Layout(), width=recording.outputs.shape[1])
    return [inputs, *hidden, outputs]


def role(drop: float) -> str:
    return "key" if drop > ROLE_THRESHOLD else "noise" if drop < -ROLE_THRESHOLD else "irrelevant"


def evaluate_closing(
    plans: Plans,
    X: np.ndarray,
    labels: np.ndarray,
    layers,
    communities,
    *,
    to_mean: bool = True,
    pairs: bool = False,
    batch_size: int = 256,
) -> dict[str, float]:
    """Fill each community's `acc_drop`, `class_acc_drop`, `closing_specificity` (per class k, the
    accuracy class k loses minus the most another class loses) and `role` (and `pair_acc_drop` with
    `pairs`); return the accuracy after closing all noise communities of each method. The closings
    of one layer run together, as copies of the probe set in each forward pass, as the model's
    `plans` say (`masked_predictions`)."""
    model, n_classes = plans.model, layers[-1].width
    base = class_accuracies(predict_closed(model, X, [], batch_size), labels, n_classes)

    def drops(layer, sets) -> list[tuple[float, np.ndarray]]:
        masks = np.zeros((len(sets), layer.width), dtype=bool)
        for row, members in zip(masks, sets):
            row[members] = True
        distinct, same = np.unique(masks, axis=0, return_inverse=True)  # methods often find the same set
        values = layer.acts.mean(axis=0) if to_mean else np.zeros(layer.width)
        closed = [
            class_accuracies(p, labels, n_classes)
            for p in masked_predictions(plans, X, layer, distinct, values, batch_size)
        ]
        return [(base[0] - closed[i][0], base[1] - closed[i][1]) for i in same.ravel()]

    with progress_bar(len(communities), "closing communities") as advance:
        for layer_index, group in _grouped(communities, lambda c: c.layer).items():
            for c, (overall, per_class) in zip(group, drops(layers[layer_index], [c.members for c in group])):
                c.props.update(
                    acc_drop=overall,
                    class_acc_drop=per_class,
                    closing_specificity=specificity(per_class),
                    role=role(overall),
                )
            advance(len(group))
    if pairs:
        for group in _grouped(communities, lambda c: (c.method, c.layer)).values():
            both = list(combinations(group, 2))
            for c in group:
                c.props["pair_acc_drop"] = np.zeros(len(group))
            found = drops(layers[group[0].layer], [np.union1d(a.members, b.members) for a, b in both]) if both else []
            for (a, b), (overall, _) in zip(both, found):
                a.props["pair_acc_drop"][b.index] = b.props["pair_acc_drop"][a.index] = overall

    pruned = {}
    for method in dict.fromkeys(c.method for c in communities):
        noise = [
            closing_of(layers[c.layer], c.members, to_mean)
            for c in communities
            if c.method == method and c.props["role"] == "noise"
        ]
        pruned[f"prune_accuracy_{method}"] = class_accuracies(
            predict_closed(model, X, noise, batch_size), labels, n_classes
        )[0]
    return pruned


def closing_of(layer, members: np.ndarray, to_mean: bool) -> Closing:
    """The closing of `members` of `layer`: set to 0, or to their mean over the probe set."""
    return Closing(layer, members, layer.acts[:, members].mean(axis=0) if to_mean else np.zeros(len(members)))


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
    outputs, closers = [], {}
    inputs = [c for c in closed if c.layer.kind == "input"]
    keep = torch.ones(1, inputs[0].layer.width if inputs else 0, device=device)
    fill = torch.zeros_like(keep)
    for c in closed:
        if c.layer.kind == "input":
            keep[0, c.members] = 0
            fill[0, c.members] = torch.as_tensor(c.values, dtype=torch.float32, device=device)
        elif c.layer.kind == "output":
            outputs.append(c)
        else:
            closers[c.layer.point] = _closer([c], device, closers.get(c.layer.point))

    def batch(start):
        x = rows(X, start, start + batch_size, device)
        return closed_inputs(model, x, keep, fill) if inputs else x

    with watching(model, closers) if closers else nullcontext(), torch.no_grad():
        logits = torch.cat([model(batch(i)).cpu() for i in range(0, len(X), batch_size)])
    for c in outputs:
        logits[:, c.members] = torch.as_tensor(c.values, dtype=logits.dtype)
    return logits


def _closer(closings: list[Closing], device, before=None):
    """What replaces the tensor a layer is read from when it holds len(closings) copies of a batch
    (copy-major), each closed by its own closing of that layer (after `before`, another closer at
    the same point)."""
    layer = closings[0].layer
    keep = torch.ones(len(closings), layer.width, device=device)
    fill = torch.zeros(len(closings), layer.width, device=device)
    for row, c in enumerate(closings):
        keep[row, c.members] = 0
        fill[row, c.members] = torch.as_tensor(c.values, dtype=torch.float32, device=device)

    def close(output):
        return layer.layout.masked(output if before is None else before(output), keep, fill)

    return close


def predict_chains(model: nn.Module, X: np.ndarray, chains: list[list[Closing]], batch_size: int = 256) -> np.ndarray:
    """Predicted classes of every sample of X with each chain's closings (of hidden layers, the same
    layers in the same order in every chain): len(chains) x len(X). Several chains share a forward
    pass of the whole model, each on its own copy of the batch (at most CHAIN_ROWS rows a pass)."""
    device = device_of(model)
    predicted = np.zeros((len(chains), len(X)), dtype=np.int64)
    copies = max(1, min(len(chains), CHAIN_ROWS // batch_size))
    with torch.no_grad():
        for first in range(0, len(chains), copies):
            group = chains[first : first + copies]
            closers = {}
            for closings in zip(*group):  # one layer, closed in every chain
                point = closings[0].layer.point
                closers[point] = _closer(list(closings), device, closers.get(point))
            with watching(model, closers):
                for start in range(0, len(X), batch_size):
                    x = rows(X, start, start + batch_size, device)
                    scores = model(x.repeat(len(group), *([1] * (x.ndim - 1))))
                    predicted[first : first + len(group), start : start + len(x)] = (
                        scores.argmax(dim=1).view(len(group), -1).cpu().numpy()
                    )
    return predicted


MASKS_PER_PASS = 32  # closings run together in one forward pass (each on a copy of the batch)
CHAIN_ROWS = 8192  # most rows (samples x chains) of one forward pass of `predict_chains`
PASS_BYTES = 256 * 2**20  # at most this much of live values repeated for the copies of one pass


def masked_predictions(
    plans: Plans, X: np.ndarray, layer, masks: np.ndarray, values: np.ndarray | None = None, batch_size: int = 256
) -> np.ndarray:
    """Predicted classes of every sample of X with the neurons of `layer` where `masks[i]` is True
    set to `values` (default 0), for each mask i: masks.shape[0] x len(X), by the model of `plans`.

    Several masks share a forward pass, each on its own copy of the batch. For the input or a hidden
    layer whose plan to the class scores has a segment (`ingest.segments.Plans`), the part before the
    layer runs once per batch and only the part after it runs per copy; a Linear or Conv module
    reading the layer adds the response to the closed channels alone to its output on the batch
    (`ingest.segments.closed_output`); else the whole model runs on the copies, as it does from a
    pass on where the segment fails. Class outputs are closed in the class scores of the batch."""
    model = plans.model
    device = device_of(model)
    masks = np.asarray(masks, dtype=bool)
    values = np.asarray(np.zeros(layer.width) if values is None else values, dtype=np.float32)
    keep = torch.as_tensor(~masks, dtype=torch.float32, device=device)
    fill = torch.as_tensor(masks * values, device=device)
    predicted = np.zeros((len(masks), len(X)), dtype=np.int64)
    if not len(masks):
        return predicted
    with torch.no_grad():
        plan = plans.plan([layer.point], None) if layer.kind != "output" and layer.layout is not None else WHOLE_MODEL
        for start in range(0, len(X), batch_size):
            x = rows(X, start, start + batch_size, device)
            kept = _prefix(plan, x)
            plan = plan if kept is not None else WHOLE_MODEL
            scores = model(x) if layer.kind == "output" else None
            step = _masks_per_pass(kept)
            for i in range(0, len(masks), step):
                keep_i, fill_i = keep[i : i + step], fill[i : i + step]
                if scores is not None:  # the class outputs themselves are closed
                    closed = layer.layout.masked(scores.repeat(len(keep_i), 1), keep_i, fill_i)
                else:
                    try:
                        closed = _chunk_scores(model, plan, kept, x, layer, keep_i, fill_i)
                    except Exception:  # noqa: BLE001 (a shortcut that fails is not taken: the whole model runs)
                        if plan.segment is None:
                            raise
                        plan, kept = WHOLE_MODEL, None
                        closed = _chunk_scores(model, plan, None, x, layer, keep_i, fill_i)
                predicted[i : i + step, start : start + len(x)] = closed.argmax(dim=1).view(-1, len(x)).cpu().numpy()
    return predicted


def _prefix(plan: Plan, x: torch.Tensor) -> dict | None:
    """The values the plan's segment reads for batch x; None without a segment or where it fails
    (then the caller runs the whole model)."""
    if plan.segment is None:
        return None
    try:
        return plan.segment.prefix(x)
    except Exception:  # noqa: BLE001 (a shortcut that fails is not taken: the whole model runs)
        return None


def _masks_per_pass(kept) -> int:
    """How many copies of a batch one pass takes: MASKS_PER_PASS, fewer where the values a segment
    repeats for them would exceed PASS_BYTES."""
    if not kept:
        return MASKS_PER_PASS
    size = sum(value.numel() * value.element_size() for value in kept.values())
    return int(max(1, min(MASKS_PER_PASS, PASS_BYTES // max(size, 1))))


def _chunk_scores(model, plan: Plan, kept, x, layer, keep, fill) -> torch.Tensor:
    """Class scores of len(keep) copies of batch x (copy-major), each copy's neurons of the input or
    a hidden `layer` multiplied by its row of `keep` and `fill` added: from `kept`, the values the
    plan's segment reads, where it has one, else by the whole model."""

    def close(output):  # copies x batch x neurons (x positions: a closed channel's whole map)
        if layer.kind == "input":
            return closed_inputs(model, output, keep, fill)
        return layer.layout.masked(output, keep, fill)

    copies, suffix = len(keep), plan.segment
    if suffix is not None:
        start = suffix.starts[0]
        h = kept[start]
        if layer.layout.batch_axis or not (h.ndim == 2 or (layer.layout.channels and layer.kind != "input")):
            return suffix.run(kept, copies, {start: close})
        given = {node: closed_output(module, h, keep, fill) for node, module in plan.dense_readers.items()}
        if plan.start_read_elsewhere:
            return suffix.run(kept, copies, {start: close}, given)
        return suffix.run({node: value for node, value in kept.items() if node is not start}, copies, given=given)
    tiled = x.repeat(copies, *([1] * (x.ndim - 1)))
    if layer.kind == "input":
        return model(close(tiled))
    with watching(model, {layer.point: close}):
        return model(tiled)


def closed_inputs(model, x: torch.Tensor, keep: torch.Tensor, fill: torch.Tensor) -> torch.Tensor:
    """len(keep) copies of a batch of model inputs (copy-major), each with the input neurons where its
    row of `keep` is 0 closed: features set to `fill` (flattened), tokens deleted (`ingest.tokens`)."""
    tokens = token_input(model)
    if tokens is not None:
        return tokens.delete(x, (keep == 0).repeat_interleave(len(x) // len(keep), dim=0))
    return Layout().masked(x.reshape(len(x), -1), keep, fill).reshape(x.shape)
