"""NeurFlow (Cao et al., ICLR 2025): core neurons, neuron groups and a hierarchical circuit, built
top-down from each class logit, one class at a time as the reference's `run.py` does.

For class c, everything is computed on the concept inputs of the probe samples the model predicts
as c:
- Concept inputs: for images, the samples and their crops at 1/2 and 1/4 of the side (stride half a
  crop), resized back to the input size; for tabular data, the samples. A neuron's concept (for c)
  is its top-k (50) concept inputs of class c by activation.
- Core neurons of u: Integrated Gradients (baseline 0; 50 steps) of u with respect to the
  activations of the layer below, on u's concept inputs, averaged over space (on a DAG, the layer
  below is every layer feeding u's, side by side, replaced together); the tau lower neurons
  with the largest mean |IG| (leaving out any with none), tau = min(16, ceil(width below / 4)) so
  that a narrow layer is not flagged whole. From the class logit down, the union of a layer's core
  sets is the set explained at the next layer down, to the first hidden layer.
- Sub-concepts: u's concept inputs clustered by Ward on their lower-layer activations, 2..5 clusters
  by silhouette; concept vector = cluster mean; edge weight from core neuron v to (u, j) = mean
  signed IG over cluster j, divided by the exact L1 norm over u's core neurons.
- Groups per layer and class: Ward clustering of that layer's concept vectors for c, K in 2..100 by
  silhouette, except that a circuit no larger than one core set (at most `core_size` neurons at the
  layer) is one group (see `group_labels`); a group's members are the neurons whose sub-concepts it
  holds, and its `class` is c.
  Group-to-group weight: the sum of member edge weights, each edge counted once (a core neuron
  counts in its primary group of class c: the one holding most of its sub-concepts).
- Fidelity per layer, from the top hidden layer down, at tau in {4, 8, 16}: the retention of class
  c (share of its correctly predicted samples still predicted as c) with c's core neurons of that
  layer zeroed, against as many random neurons of the layer (seeded draws).

Differences from the reference code: exact L1 normalisation (it normalises in place and drifts),
IG on the lower layers' activations (replaced where they are read in the forward pass, `ingest.taps`)
rather than a split model, tau capped by the layer width.
"""

import dataclasses
import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import pdist, squareform
from torch import nn
from torch.nn import functional as F

from queries.progress import progress_bar

from ..closing import masked_predictions
from ..communities import Community, Found, Method, silhouette
from ..neuronize import record
from ..segments import segment
from ..taps import Point, device_of, watching


@dataclass(frozen=True)
class Options:
    top_k: int = 50  # concept inputs per neuron
    tau: int = 16  # core neurons per explained neuron, at most (see `core_size`)
    steps: int = 50  # Integrated Gradients steps
    draws: int = 20  # random sets per class, layer and tau in the fidelity check
    seed: int = 0


FIDELITY_TAUS = (4, 8, 16)
MAX_GROUPS = 100


def core_size(tau: int, width: int) -> int:
    """Core neurons kept per explained neuron above a layer of `width`.

    Parameters
    ----------
    tau : int
        The paper's tau (16 on layers of hundreds of channels).
    width : int
        Neurons in the layer the core neurons are taken from.

    Returns
    -------
    int
        min(tau, ceil(width / 4)), at least 1: a narrow layer is not flagged whole.

    References
    ----------
    .. [1] Cao et al., NeurFlow, ICLR 2025, arXiv:2502.16105, section 3.2.
    """
    return max(1, min(tau, math.ceil(width / 4)))


def find(run, options: Options) -> Found:
    """NeurFlow's core neurons (neuron property `core`: one 0/1 per class), its neuron groups of each
    class as communities (property `class`), their circuit weights (link property `weight`), and
    the fidelity check per layer (layer properties, and the top hidden layer's on the Model).

    Parameters
    ----------
    run : ingest.stages.Run
        The analysis so far, the model and the probe inputs (crops of them for image data).
    options : Options

    Returns
    -------
    Found

    References
    ----------
    .. [1] Cao et al., "NeurFlow: Interpreting Neural Networks through Neuron Groups and Functional
       Interactions", ICLR 2025, arXiv:2502.16105; reference code github.com/tue147/neurflow.
    .. [2] Sundararajan, Taly, Yan, "Axiomatic Attribution for Deep Networks", arXiv:1703.01365.
    """
    a = run.analysis
    concepts = _Concepts(run.model, a, run.X, run.options)
    circuits = [_Circuit(run.model, a, concepts, c, options) for c in range(a.n_classes)]
    with progress_bar(a.n_classes * (len(a.layers) - 1), "NeurFlow circuits") as advance:
        for circuit in circuits:
            circuit.build(advance)
    groups, weights = _groups(a, circuits)
    core = [np.array([circuit.core(layer.index, options.tau) for circuit in circuits]) for layer in a.layers]
    layer_props, metrics = fidelity(run.model, a, run.X, circuits, options)
    return Found(
        communities=groups,
        neuron_props={layer.index: {"core": flags.T} for layer, flags in zip(a.layers, core)},
        link_props={"weight": weights},
        layer_props=layer_props,
        metrics=metrics,
    )


@dataclass
class Explanation:
    """One neuron explained against the layer below, for one class."""

    order: np.ndarray  # lower neurons with any |IG|, by decreasing mean |IG|
    labels: np.ndarray  # sub-concept of each concept input
    weights: np.ndarray  # sub-concepts x core: L1-normalised mean signed IG over the core neurons
    vectors: np.ndarray  # sub-concepts x lower width: concept vectors (cluster means)
    core: np.ndarray  # the core neurons: the first `core_size` of `order`


def concept_inputs(X: np.ndarray, image_shape: tuple[int, int] | None) -> np.ndarray:
    """NeurFlow's concept inputs.

    Parameters
    ----------
    X : np.ndarray
        The probe samples.
    image_shape : tuple of int or None
        (height, width) for images.

    Returns
    -------
    np.ndarray
        X, and for images also its crops at 1/2 and 1/4 of the side (stride half a crop) resized back
        bilinearly: row r comes from sample r % len(X).

    References
    ----------
    .. [1] Cao et al., NeurFlow, ICLR 2025, arXiv:2502.16105, section 3.1.
    """
    if image_shape is None:
        return X
    images = torch.from_numpy(X).reshape(len(X), -1, *image_shape)
    height, width = image_shape
    windows = [(0, 0, height, width)]
    for scale in (2, 4):
        size_h, size_w = max(1, height // scale), max(1, width // scale)
        for top in range(0, height - size_h + 1, max(1, size_h // 2)):
            for left in range(0, width - size_w + 1, max(1, size_w // 2)):
                windows.append((top, left, size_h, size_w))
    crops = np.empty((len(windows) * len(X), *X.shape[1:]), dtype=np.float32)  # filled in place: no copy
    for i, (top, left, size_h, size_w) in enumerate(windows):
        crop = images[:, :, top : top + size_h, left : left + size_w]
        resized = (
            crop
            if (size_h, size_w) == (height, width)
            else F.interpolate(crop, size=image_shape, mode="bilinear", align_corners=False)
        )
        crops[i * len(X) : (i + 1) * len(X)] = resized.reshape(len(X), *X.shape[1:]).numpy()
    return crops


class _Concepts:
    """The concept inputs of the whole probe set and every layer's activations on them, recorded once
    (for data without crops: the analysis's layers); row r comes from probe sample r % N."""

    def __init__(self, model: nn.Module, a, X: np.ndarray, options):
        self.inputs = concept_inputs(X, a.image_shape)
        if self.inputs is X:  # no crops: the analysis's own recording
            self.acts = [layer.acts for layer in a.layers]
        else:
            rec = record(
                model,
                self.inputs,
                layers=options.layers,
                batch_size=1024,
                token_reduce=options.token_reduce,
                memory_budget=options.memory_bytes(),
            )
            self.acts = [rec.inputs] + rec.hidden + [rec.outputs]
        self.sample = np.arange(len(self.inputs)) % len(X)


class _Circuit:
    """One class's circuit: its neurons explained top-down on the concept inputs of the samples
    predicted as the class."""

    def __init__(self, model: nn.Module, a, concepts: _Concepts, c: int, options: Options):
        self.model, self.a, self.c, self.options = model, a, c, options
        self.rows = np.flatnonzero(a.predictions[concepts.sample] == c)
        self.concepts = concepts  # read through `rows`, not copied: the concepts of images are large
        self.explained: dict[tuple[int, int], Explanation] = {}
        self._walks: dict[int, dict[int, list[int]]] = {}  # tau: `_walk(tau)`, once built

    def build(self, advance) -> None:
        """Explain from the class logit down to the first hidden layer, deep enough for the circuit's
        tau and every fidelity tau."""

        def explain(layer: int, units: list[int]) -> None:
            for u, e in zip(units, self._explain(layer, units)):
                self.explained[(layer, u)] = e
            advance()

        self._walk(max(self.options.tau, *FIDELITY_TAUS), explain)

    def at(self, layer: int, tau: int) -> list[int]:
        """The neurons of `layer` in the circuit with core sets of `core_size(tau, width)`: the class
        logit at the output, else the union of the core sets, within `layer`, of the circuit's
        neurons in the layers it feeds."""
        if tau not in self._walks:
            self._walks[tau] = self._walk(tau)
        return self._walks[tau].get(layer, [])

    def _walk(self, tau: int, explain=None) -> dict[int, list[int]]:
        """The circuit's neurons of every layer, from the class logit down the layer DAG (layers are
        numbered in dataflow order, so a layer's consumers all come before it top-down); `explain`
        sees each hidden layer's neurons before their core sets are read."""
        todo = {len(self.a.layers) - 1: {self.c}} if len(self.rows) else {}  # none for a class nobody is predicted as
        for layer in range(len(self.a.layers) - 1, 0, -1):
            units = todo[layer] = sorted(todo.get(layer, ()))
            if explain is not None:
                explain(layer, units)
            size = core_size(tau, sum(self.a.layers[lower].width for lower in self.a.layers[layer].inputs))
            core = {int(v) for u in units for v in self.explained[(layer, u)].order[:size]}
            for lower, v in map(self.locate(layer), core):
                todo.setdefault(lower, set()).add(v)
        return {layer: sorted(units) for layer, units in todo.items()}

    def _below(self, layer: int) -> np.ndarray:
        """The activations of the layers feeding `layer`, side by side (its "layer below")."""
        return np.hstack([self.acts(lower) for lower in self.a.layers[layer].inputs])

    def acts(self, layer: int) -> np.ndarray:
        """The layer's activations on the class's concept inputs."""
        return self.concepts.acts[layer][self.rows]

    def locate(self, layer: int):
        """A function from a neuron of `_below(layer)` to (its layer, its index there)."""
        lowers = self.a.layers[layer].inputs
        starts = np.cumsum([0] + [self.a.layers[lower].width for lower in lowers])

        def locate(v: int) -> tuple[int, int]:
            i = int(np.searchsorted(starts, v, side="right")) - 1
            return lowers[i], v - int(starts[i])

        return locate

    def core(self, layer: int, tau: int) -> np.ndarray:
        """0/1 per neuron of `layer`: in the circuit at `tau` (see `at`)."""
        flags = np.zeros(self.a.layers[layer].width, dtype=np.int64)
        flags[self.at(layer, tau)] = 1
        return flags

    def circuit(self) -> dict[tuple[int, int], Explanation]:
        """The explanations of the neurons in the circuit at the options' tau, by (layer, neuron)."""
        return {
            (layer, u): self.explained[(layer, u)]
            for layer in range(1, len(self.a.layers))
            for u in self.at(layer, self.options.tau)
        }

    def _explain(self, layer: int, units: list[int]) -> list[Explanation]:
        if not units:
            return []
        k = min(self.options.top_k, len(self.rows))
        acts = self.acts(layer)
        tops = [np.argsort(-acts[:, u], kind="stable")[:k] for u in units]
        ig = self._integrated_gradients(layer, units, tops).astype(np.float64)
        below = self._below(layer)
        size = core_size(self.options.tau, below.shape[1])
        return [self._explanation(ig[i * k : (i + 1) * k], below[top], size) for i, top in enumerate(tops)]

    @staticmethod
    def _explanation(ig: np.ndarray, lower: np.ndarray, size: int) -> Explanation:
        importance = np.abs(ig).mean(axis=0)
        order = np.argsort(-importance, kind="stable")
        order = order[importance[order] > 0]  # a neuron that contributes nothing is not core
        core = order[:size]
        labels = _ward(lower, range(2, 6))
        weights = np.array([ig[labels == j].mean(axis=0)[core] for j in range(labels.max() + 1)])
        norm = np.abs(weights).sum(axis=1, keepdims=True)
        weights = np.divide(weights, norm, out=np.zeros_like(weights), where=norm > 0)  # a dead neuron: 0
        vectors = np.array([lower[labels == j].mean(axis=0) for j in range(labels.max() + 1)])
        return Explanation(order, labels, weights, vectors, core)

    def _integrated_gradients(self, layer: int, units: list[int], tops: list[np.ndarray]) -> np.ndarray:
        """IG of each unit of `layer` w.r.t. the activations of the layers feeding it (all replaced
        together, so each gets its direct contribution) on its concept inputs, all units in one
        batched computation, averaged over space: (units x k) x width of `_below(layer)`."""
        upper = self.a.layers[layer]
        lowers = [self.a.layers[lower] for lower in upper.inputs]
        picked = self.rows[np.concatenate(tops)]  # units share many of their concept inputs
        distinct, copies = np.unique(picked, return_inverse=True)
        x = torch.from_numpy(np.ascontiguousarray(self.concepts.inputs[distinct])).to(device_of(self.model))
        targets = torch.as_tensor(np.repeat(units, [len(t) for t in tops]), device=x.device)
        between = _Between(self.model, lowers, upper, x, torch.as_tensor(copies.ravel(), device=x.device), targets)
        x = between.x
        starts, steps = between.starts, self.options.steps
        sizes = [start[0].numel() for start in starts]
        ig = between.integrated_gradients(steps, self.options.top_k * steps)
        per_layer = [
            part.reshape(len(x), -1)
            if lower.kind == "input"
            else dataclasses.replace(lower.layout, batch_axis=0).neurons(part.reshape(start.shape))
            for lower, part, start in zip(lowers, ig.split(sizes, dim=1), starts)
        ]
        return torch.cat(per_layer, dim=1).cpu().numpy()


class _Between:
    """The `forward` of `integrated_gradients` from the layers `lowers` to `upper`'s neurons, for the
    rows x = `distinct[copies]` explaining `targets`, and `starts`, the lower layers' values on x
    (batch first; the forward scales them side by side), computed once per distinct row.

    The forward runs through the whole model, or on the segment of the model between the layers
    (`ingest.segments`) where there is one and it agrees with the whole model on the rows of the
    first target (its values of the lower layers, and `upper` at half scale; checked once per
    segment). On a segment whose rows all explain one unit of a Linear or Conv layer read after
    channel-wise operations only, just that unit is computed (`ingest.segments.OneChannel`): the
    other outputs, which IG does not read, stay 0. `integrated_gradients` takes the closed form of
    such a unit where its module reads the lower layer itself, and a merge unit's own channels alone."""

    def __init__(self, model, lowers, upper, distinct: torch.Tensor, copies: torch.Tensor, targets: torch.Tensor):
        self.model, self.lowers, self.upper, self.targets = model, lowers, upper, targets
        self.x = distinct[copies]
        check = slice(0, int((targets == targets[0]).sum()))
        self.piece = self.narrow = None
        if all(lower.kind == "input" or lower.layout.batch_axis == 0 for lower in lowers):
            points = [None if lower.kind == "input" else lower.point for lower in lowers]
            self.piece = segment(model, points, upper.point, self.x[check])
        with torch.no_grad():
            if self.piece is not None:
                self._check(check)
            trusted = self.piece is not None and self.piece.agrees
            if trusted:
                kept = self.piece.prefix(distinct)
                self.starts = [kept[node][copies] for node in self.piece.starts]
            else:
                self.starts = [start[copies] for start in self._eager_starts(distinct)]
        self._take_shapes(self.starts)
        self.forward = self.segmented if trusted else self.whole

    def whole(self, scaled: torch.Tensor, rows: slice) -> torch.Tensor:
        """`upper`'s neurons from the scaled lower layers, through the whole model."""
        inputs = self.x[rows].repeat(len(scaled) // (rows.stop - rows.start), *([1] * (self.x.ndim - 1)))
        replace = {}
        for lower, part in zip(self.lowers, self._parts(scaled)):
            if lower.kind == "input":
                inputs = part
            else:
                replace[lower.point] = part.movedim(0, lower.layout.batch_axis)
        return self.upper.layout.neurons(_run(self.model, inputs, replace=replace, capture=self.upper.point))

    def segmented(self, scaled: torch.Tensor, rows: slice) -> torch.Tensor:
        """`upper`'s neurons from the scaled lower layers, on the segment (one unit alone where the
        rows explain one)."""
        unit = self.targets[rows.start : rows.stop].unique()
        if self.narrow is None or len(unit) != 1:
            return self.upper.layout.neurons(self._on(self.piece, scaled, rows))
        alone = self._alone(scaled, rows, unit)
        return torch.zeros(len(scaled), self.upper.width, dtype=alone.dtype, device=alone.device).index_copy(
            1, unit, alone
        )

    def _alone(self, scaled: torch.Tensor, rows: slice, unit: torch.Tensor) -> torch.Tensor:
        return self.upper.layout.neurons(self.narrow.value(self._on(self.narrow.head, scaled, rows), int(unit[0])))

    def _on(self, piece, scaled: torch.Tensor, rows: slice) -> torch.Tensor:
        with torch.no_grad():
            kept = {} if piece.reads_only_starts else piece.prefix(self.x[rows])
        given = dict(zip(piece.starts, self._parts(scaled)))
        return piece.run(kept, len(scaled) // (rows.stop - rows.start), given=given)

    def integrated_gradients(self, steps: int, rows_per_pass: int) -> torch.Tensor:
        """IG of each row's target w.r.t. the lower layers, side by side (rows x their sizes): in
        closed form where there is one (`closed_form`), else by `integrated_gradients` on the forward."""
        if self.closed_form:
            return self.closed_form_integrated_gradients(steps).reshape(len(self.x), -1)
        if self.channel_wise:
            return self._per_channel(steps)
        flat = torch.cat([start.reshape(len(self.x), -1) for start in self.starts], dim=1)
        return integrated_gradients(self.forward, flat, self.targets, steps, rows_per_pass)

    @property
    def channel_wise(self) -> bool:
        """Whether each unit is a function of its own channel of the lower layers alone (a residual
        merge and the activation after it: `ingest.segments.Segment.channel_wise`), checked once
        against the segment."""
        return self.piece is not None and bool(self.piece.agrees) and bool(self.piece.channels_agree)

    def _per_channel(self, steps: int) -> torch.Tensor:
        """IG of every row's unit, side by side over the lower layers: the IG of the unit's own channel
        of each lower layer (`_channel_integrated_gradients`; every other channel's is 0)."""
        ig = [torch.zeros_like(start) for start in self.starts]
        for unit, rows in self._unit_rows():
            for whole, part in zip(ig, self._channel_integrated_gradients(rows, unit, steps)):
                whole[rows, unit : unit + 1] = part
        return torch.cat([part.reshape(len(self.x), -1) for part in ig], dim=1)

    def _channel_integrated_gradients(self, rows: slice, unit: int, steps: int) -> list[torch.Tensor]:
        """IG of `unit` on `rows` w.r.t. the unit's own channel of each lower layer."""
        channels = [start[rows, unit : unit + 1] for start in self.starts]
        shapes = [channel.shape[1:] for channel in channels]
        sizes = [shape.numel() for shape in shapes]
        flat = torch.cat([channel.reshape(len(channel), -1) for channel in channels], dim=1)

        def forward(scaled: torch.Tensor, _rows: slice) -> torch.Tensor:
            parts = [part.reshape(len(scaled), *shape) for part, shape in zip(scaled.split(sizes, 1), shapes)]
            return self.upper.layout.neurons(self.piece.channel(parts, unit))

        picked = torch.zeros(len(flat), dtype=torch.long, device=flat.device)
        ig = integrated_gradients(forward, flat, picked, steps, len(flat) * steps)
        return [part.reshape(len(flat), *shape) for part, shape in zip(ig.split(sizes, 1), shapes)]

    def _unit_rows(self) -> list[tuple[int, slice]]:
        """Each explained unit and its rows (a unit's rows are together)."""
        units, counts = torch.unique_consecutive(self.targets, return_counts=True)
        ends = np.cumsum(counts.tolist())
        return [
            (unit, slice(int(end) - count, int(end))) for unit, count, end in zip(units.tolist(), counts.tolist(), ends)
        ]

    @property
    def closed_form(self) -> bool:
        """Whether IG has the closed form of `closed_form_integrated_gradients`: one lower layer, read
        by the Linear or Conv module of the one-unit shortcut itself or through a positively homogeneous
        head (pooling, ReLU)."""
        return self.narrow is not None and self.narrow.homogeneous_head

    def closed_form_integrated_gradients(self, steps: int) -> torch.Tensor:
        """IG (as `integrated_gradients`, baseline 0, Gauss-Legendre points a_i, weights w_i) of each
        row's unit u = phi(W_u g(h) + b) (W_u: the module's output channel u, linear; g: the head,
        positively homogeneous with a Jacobian J constant along rays; phi: the channel-wise operations
        and the spatial mean) with respect to the lower layer h, in closed form: g(a h) = a g(h) and
        grad_h u(a h) = J(h)^T W_u^T phi'(a W_u g(h) + b), so
            IG(h) = h * J(h)^T W_u^T sum_i w_i phi'(a_i W_u g(h) + b),
        one forward and one backward pass of the unit's channel instead of one per point."""
        h, ig = self.starts[0], torch.empty_like(self.starts[0])
        for unit, rows in self._unit_rows():
            ig[rows] = self._closed_form(h[rows], unit, steps)
        return ig

    def _closed_form(self, h: torch.Tensor, unit: int, steps: int) -> torch.Tensor:
        narrow = self.narrow
        alphas, weights = quadrature(steps, h)
        with torch.no_grad():
            response = narrow.response(narrow.head_value(h), unit)  # W_u g(h): rows x 1 (x positions)
        bias = 0.0 if narrow.module.bias is None else narrow.module.bias[unit].detach()
        shape = (-1,) + (1,) * response.ndim
        at = (alphas.view(shape) * response + bias).requires_grad_(True)  # every point's pre-activation
        value = self.upper.layout.neurons(narrow.after(at.flatten(0, 1), unit))
        (slope,) = torch.autograd.grad(value.sum(), at)
        leaf = h.detach().requires_grad_(True)
        summed = (weights.view(shape) * slope).sum(dim=0)
        (grad,) = torch.autograd.grad(narrow.response(narrow.head_value(leaf), unit), leaf, summed)
        return h * grad

    def _parts(self, scaled: torch.Tensor) -> list[torch.Tensor]:
        """Each lower layer's part of the scaled rows, shaped as its tensor."""
        return [part.reshape(len(scaled), *shape) for part, shape in zip(scaled.split(self.sizes, dim=1), self.shapes)]

    def _eager_starts(self, x: torch.Tensor) -> list[torch.Tensor]:
        with torch.no_grad():
            return [
                x
                if lower.kind == "input"
                else _run(self.model, x, capture=lower.point).movedim(lower.layout.batch_axis, 0)
                for lower in self.lowers
            ]

    def _take_shapes(self, starts: list[torch.Tensor]) -> None:
        self.shapes, self.sizes = [start.shape[1:] for start in starts], [start[0].numel() for start in starts]

    def _check(self, check: slice) -> None:
        """Compare the segment (once), and its one-unit shortcut (once), with the whole model on the
        rows `check`, and a channel-wise segment's one-channel run with the segment (once); nothing
        runs when all were compared before."""
        piece, unit = self.piece, self.targets[check].unique()
        if piece.agrees is None or self._unchecked_narrow(unit):
            checked = self._eager_starts(self.x[check])
            self._take_shapes(checked)
            half = torch.cat([start.reshape(check.stop, -1) for start in checked], dim=1) / 2
            expected = self.whole(half, check)
            if piece.agrees is None:
                kept = piece.prefix(self.x[check])
                same = all(torch.allclose(kept[node], start) for node, start in zip(piece.starts, checked))
                ours = self.upper.layout.neurons(self._on(piece, half, check))
                piece.agrees = same and torch.allclose(ours, expected, rtol=1e-4, atol=1e-5)
            if self._unchecked_narrow(unit):
                self.narrow = piece.one_channel
                alone = self._alone(half, check, unit)[:, 0]
                self.narrow.agrees = torch.allclose(alone, expected[:, unit[0]], rtol=1e-4, atol=1e-5)
        narrow = piece.one_channel if piece.agrees else None
        self.narrow = narrow if narrow is not None and narrow.agrees else None
        if piece.agrees and piece.channel_wise and piece.channels_agree is None and len(unit) == 1:
            kept, c = piece.prefix(self.x[check]), int(unit[0])
            halves = [kept[node] / 2 for node in piece.starts]
            ours = self.upper.layout.neurons(piece.channel([half[:, c : c + 1] for half in halves], c))[:, 0]
            theirs = self.upper.layout.neurons(piece.run({}, 1, given=dict(zip(piece.starts, halves))))[:, c]
            piece.channels_agree = torch.allclose(ours, theirs, rtol=1e-4, atol=1e-5)

    def _unchecked_narrow(self, unit: torch.Tensor) -> bool:
        """Whether the segment's one-unit shortcut exists, is not compared yet, and can be on rows
        that explain the one unit `unit`."""
        narrow = self.piece.one_channel if self.piece.agrees else None
        return narrow is not None and narrow.agrees is None and len(unit) == 1


def integrated_gradients(
    forward, start: torch.Tensor, targets: torch.Tensor, steps: int, rows_per_pass: int
) -> torch.Tensor:
    """Integrated Gradients from baseline 0 of output `targets[r]` of `forward` for every row r of
    `start`, by Gauss-Legendre quadrature over the path (Captum's default rule).

    Parameters
    ----------
    forward : callable
        forward(scaled, rows) -> outputs (len(scaled) x outputs) for `scaled`, the rows `rows` (a
        slice of `start`) scaled by each quadrature point, point-major.
    start : torch.Tensor
        The inputs (rows first).
    targets : torch.Tensor
        The output column of each row.
    steps : int
        Quadrature points.
    rows_per_pass : int
        Rows (points x inputs) per forward and backward pass.

    Returns
    -------
    torch.Tensor
        start x sum_i w_i df/dx(a_i start), the shape of `start`.

    References
    ----------
    .. [1] Sundararajan, Taly, Yan, "Axiomatic Attribution for Deep Networks", arXiv:1703.01365.
    """
    alphas, weights = quadrature(steps, start)
    scale = (-1,) + (1,) * start.ndim
    total = torch.zeros_like(start)
    chunk = max(1, rows_per_pass // steps)
    for first in range(0, len(start), chunk):
        rows = slice(first, min(first + chunk, len(start)))
        scaled = (alphas.view(scale) * start[rows].detach()).reshape(-1, *start.shape[1:]).requires_grad_(True)
        picked = forward(scaled, rows).gather(1, targets[rows].repeat(steps).unsqueeze(1)).sum()
        (grad,) = torch.autograd.grad(picked, scaled)
        total[rows] = (weights.view(scale) * grad.view(steps, -1, *start.shape[1:])).sum(dim=0)
    return start.detach() * total


def quadrature(steps: int, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Gauss-Legendre points on [0, 1] and their weights (summing to 1), as `like`'s dtype and device."""
    nodes, weights = _gauss_legendre(steps)
    alphas = torch.as_tensor((nodes + 1) / 2, dtype=like.dtype, device=like.device)
    return alphas, torch.as_tensor(weights / 2, dtype=like.dtype, device=like.device)


@lru_cache(maxsize=8)
def _gauss_legendre(steps: int) -> tuple[np.ndarray, np.ndarray]:
    return np.polynomial.legendre.leggauss(steps)


class _Captured(Exception):
    """Ends a forward pass at the captured output (the rest of the model is not needed)."""

    def __init__(self, output: torch.Tensor):
        super().__init__()
        self.output = output


def _run(model: nn.Module, inputs: torch.Tensor, replace=None, capture: Point | None = None) -> torch.Tensor:
    """A forward pass. `replace` = {point: tensor} puts each tensor in place of the output at its
    point; `capture` (a point) returns the output there instead of the model's, stopping the pass."""

    def stop(output):
        raise _Captured(output)

    fns = {point: (lambda _output, tensor=tensor: tensor) for point, tensor in (replace or {}).items()}
    if capture is not None:
        fns[capture] = stop
    try:
        with watching(model, fns):
            return model(inputs)
    except _Captured as captured:
        return captured.output


def _ward(points: np.ndarray, ks) -> np.ndarray:
    """Ward clustering (one tree, cut at each k of `ks`) with the number of clusters that has the best
    silhouette; labels 0..k-1 (all 0 when no k fits)."""
    best = (-2.0, np.zeros(len(points), dtype=int))
    distinct = len(np.unique(points, axis=0))
    ks = [k for k in ks if k < len(points) and k < distinct]
    if not ks:
        return best[1]
    tree = linkage(points, method="ward")
    distances = squareform(pdist(points))
    for k in ks:
        labels = fcluster(tree, k, criterion="maxclust") - 1
        if labels.max() + 1 < 2:
            continue
        score = silhouette(distances, labels)
        if score > best[0]:
            best = (score, labels)
    return best[1]


def group_labels(vectors: np.ndarray, explained: int, size: int) -> np.ndarray:
    """The group of each concept vector of one class's circuit at one layer.

    Parameters
    ----------
    vectors : np.ndarray
        The concept vectors of the sub-concepts of the layer's explained neurons (rows).
    explained : int
        The number of explained neurons (the class's circuit at the layer).
    size : int
        The layer's core-set size, `core_size(tau, width)`.

    Returns
    -------
    np.ndarray
        Labels 0..K-1: K = 1 (the circuit whole) when the circuit is no larger than one core set,
        else Ward with K in 2..100 by silhouette.

    Notes
    -----
    A circuit of at most one core set is already at the granularity of one neuron's explanation,
    and the few concept vectors it has (5-14 on composite networks) cannot support a split: the best
    Ward cut's silhouette on them (0.35-0.91) is that of Gaussian points of the same covariance (95th
    percentile 0.43-0.72), so the silhouette would split every coherent circuit into 2-4 groups. Wider
    circuits (on layers of hundreds of channels: unions of many core sets of 16) are grouped as in
    the reference code.

    References
    ----------
    .. [1] Cao et al., NeurFlow, ICLR 2025, arXiv:2502.16105, section 3.3; reference code
       github.com/tue147/neurflow (K up to 100 by silhouette).
    """
    if explained <= size:
        return np.zeros(len(vectors), dtype=int)
    return _ward(vectors, range(2, min(MAX_GROUPS, len(vectors) - 1) + 1))


def _groups(a, circuits: list[_Circuit]) -> tuple[list[Community], dict]:
    """Each class's groups per hidden layer (`group_labels`: Ward on its concept vectors, K by silhouette,
    one group for a circuit of at most one core set), the output
    layer as one group per class, and the group-to-group weights {(lower layer, layer, lower group, upper
    group): weight}, each edge counted once."""
    last = len(a.layers) - 1
    groups = [
        Community(NAME, last, k, np.array([k]), {"class": k, "circuit_weight": np.zeros(a.n_classes)})
        for k in range(a.n_classes)
    ]
    held: dict = {}  # (class, layer, u, sub-concept): group
    explanations = [circuit.circuit() for circuit in circuits]
    for layer in range(1, last):
        index = 0
        for circuit, explained in zip(circuits, explanations):
            keys = [(u, j) for (lay, u), e in sorted(explained.items()) if lay == layer for j in range(len(e.vectors))]
            if not keys:
                continue
            vectors = np.array([explained[(layer, u)].vectors[j] for u, j in keys])
            size = core_size(circuit.options.tau, a.layers[layer].width)
            labels = group_labels(vectors, len({u for u, _ in keys}), size)
            for label in range(labels.max() + 1):
                mine = [keys[i] for i in np.flatnonzero(labels == label)]
                group = Community(
                    NAME,
                    layer,
                    index,
                    np.array(sorted({u for u, _ in mine})),
                    {"class": circuit.c, "circuit_weight": np.zeros(a.n_classes)},
                )
                groups.append(group)
                held.update({(circuit.c, layer, u, j): group for u, j in mine})
                index += 1
    for k, circuit in enumerate(circuits):
        if (last, k) in circuit.explained:
            held.update({(k, last, k, j): groups[k] for j in range(len(circuit.explained[(last, k)].vectors))})
    return groups, _weights(circuits, held)


def _weights(circuits: list[_Circuit], held: dict) -> dict:
    """Group-to-group weights from every explained edge (v -> (u, j)), each counted once: v counts in
    its primary group of the class in its layer (one feeding u's); fills each upper group's
    `circuit_weight`."""
    weights: dict = {}
    for circuit in circuits:
        primary = _primary_groups(circuit.c, held)
        locate = {layer.index: circuit.locate(layer.index) for layer in circuit.a.layers[1:]}
        for (layer, u), e in circuit.circuit().items():
            for j in range(len(e.weights)):
                upper = held.get((circuit.c, layer, u, j))
                if upper is None:
                    continue
                for v, w in zip(e.core.tolist(), e.weights[j].tolist()):
                    upper.props["circuit_weight"][circuit.c] += abs(w)
                    below = locate[layer](v)
                    lower = primary.get(below)
                    if lower is not None:
                        key = (below[0], layer, lower.index, upper.index)
                        weights[key] = weights.get(key, 0.0) + w
    return weights


def _primary_groups(c: int, held: dict) -> dict:
    """(layer, neuron): the group of class c that holds most of the neuron's sub-concepts."""
    counts: dict = {}  # (layer, neuron): {group index: (group, sub-concepts held)}
    for (k, layer, u, _), group in held.items():
        if k == c:
            mine = counts.setdefault((layer, u), {})
            mine[group.index] = (group, mine.get(group.index, (group, 0))[1] + 1)
    return {key: max(found.values(), key=lambda gc: (gc[1], -gc[0].index))[0] for key, found in counts.items()}


def fidelity(model: nn.Module, a, X: np.ndarray, circuits: list[_Circuit], options: Options) -> tuple[dict, dict]:
    """NeurFlow's fidelity check, per hidden layer from the top down.

    Parameters
    ----------
    model : nn.Module
    a : ingest.analysis.Analysis
    X : np.ndarray
    circuits : list of _Circuit
        One per class.
    options : Options

    Returns
    -------
    layer_props : dict
        {layer: {"fidelity_tau", "fidelity_core", "fidelity_random"}}: for each tau in FIDELITY_TAUS,
        the mean over classes of the class's retention (share of its correctly predicted samples
        still predicted as it) with its core neurons of that layer zeroed, and with as many random
        neurons of the layer zeroed (mean of `options.draws` seeded draws).
    metrics : dict
        The top hidden layer's per-class retentions at the circuit's own tau (`fidelity_core`,
        `fidelity_random`) and `fidelity_ratio` = mean retention lost to core neurons / mean lost
        to random ones.

    References
    ----------
    .. [1] Cao et al., NeurFlow, ICLR 2025, arXiv:2502.16105, section 4.1 (reference code
       exps/fidelity_of_neuron/Fidelity.py).
    """
    rng = np.random.default_rng(options.seed)
    hidden = a.layers[1:-1][::-1]
    correct = [np.flatnonzero((a.labels == c) & (a.predictions == c)) for c in range(a.n_classes)]

    def measure(layer, tau):
        """Mean retention over classes with each class's core set zeroed, and with random sets."""
        ours, random = [], []
        for c, circuit in enumerate(circuits):
            members = circuit.at(layer.index, tau)
            masks = np.zeros((1 + options.draws, layer.width), dtype=bool)
            masks[0, members] = True
            for draw in range(options.draws):
                masks[1 + draw, rng.choice(layer.width, len(members), replace=False)] = True
            kept = (
                (masked_predictions(model, X[correct[c]], layer, masks) == c).mean(axis=1)
                if len(correct[c])
                else np.ones(len(masks))
            )
            ours.append(float(kept[0]))
            random.append(float(kept[1:].mean()))
        return np.array(ours), np.array(random)

    layer_props, top = {}, None
    with progress_bar(len(hidden) * (len(FIDELITY_TAUS) + 1), "NeurFlow fidelity") as advance:
        for layer in hidden:
            rows = [measure(layer, tau) for tau in FIDELITY_TAUS]
            layer_props[layer.index] = {
                "fidelity_tau": list(FIDELITY_TAUS),
                "fidelity_core": [float(o.mean()) for o, _ in rows],
                "fidelity_random": [float(r.mean()) for _, r in rows],
            }
            advance(len(FIDELITY_TAUS))
            if top is None:
                top = measure(layer, options.tau)
            advance()
    if top is None:
        return layer_props, {}
    lost_core, lost_random = 1 - top[0], 1 - top[1]
    return layer_props, {
        "fidelity_core": top[0].tolist(),
        "fidelity_random": top[1].tolist(),
        "fidelity_ratio": float(lost_core.mean() / max(lost_random.mean(), 1e-9)),
    }


NAME = "neurflow"
METHOD = Method(
    NAME,
    "per class: core neurons by Integrated Gradients, neuron groups and their circuit",
    "Cao et al., NeurFlow, ICLR 2025, arXiv:2502.16105",
    find,
    Options,
)
