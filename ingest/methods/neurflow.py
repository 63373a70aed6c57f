"""NeurFlow (Cao et al., ICLR 2025): core neurons, neuron groups and a hierarchical circuit, built
top-down from each class logit, one class at a time as the reference's `run.py` does.

For class c, everything is computed on the concept inputs of the probe samples the model predicts
as c:
- Concept inputs: for images, the samples and their crops at 1/2 and 1/4 of the side (stride half a
  crop), resized back to the input size; for tabular data, the samples. A neuron's concept (for c)
  is its top-k (50) concept inputs of class c by activation.
- Core neurons of u: Integrated Gradients (Captum; baseline 0; 50 steps) of u with respect to the
  activations of the layer below, on u's concept inputs, averaged over space; the tau lower neurons
  with the largest mean |IG| (leaving out any with none), tau = min(16, ceil(width below / 4)) so
  that a narrow layer is not flagged whole. From the class logit down, the union of a layer's core
  sets is the set explained at the next layer down, to the first hidden layer.
- Sub-concepts: u's concept inputs clustered by Ward on their lower-layer activations, 2..5 clusters
  by silhouette; concept vector = cluster mean; edge weight from core neuron v to (u, j) = mean
  signed IG over cluster j, divided by the exact L1 norm over u's core neurons.
- Groups per layer and class: Ward clustering of that layer's concept vectors for c, K in 2..100 by
  silhouette; a group's members are the neurons whose sub-concepts it holds, and its `class` is c.
  Group-to-group weight: the sum of member edge weights, each edge counted once (a core neuron
  counts in its primary group of class c: the one holding most of its sub-concepts).
- Fidelity per layer, from the top hidden layer down, at tau in {4, 8, 16}: the retention of class
  c (share of its correctly predicted samples still predicted as c) with c's core neurons of that
  layer zeroed, against as many random neurons of the layer (seeded draws).

Differences from the reference code: exact L1 normalisation (it normalises in place and drifts),
Captum's IG on the lower layer's activations (replaced by a forward hook) rather than a split model,
tau capped by the layer width.
"""

import math
from contextlib import ExitStack
from dataclasses import dataclass

import numpy as np
import torch
from scipy.cluster.hierarchy import fcluster, linkage
from sklearn.metrics import silhouette_score
from torch import nn
from torch.nn import functional as F

from ..closing import masked_predictions
from ..communities import Community, Found, Method
from ..neuronize import record
from ..progress import progress_bar
from ..taps import at_call, device_of, per_neuron


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
    concepts = _Concepts(run.model, a, run.X, run.options.layers)
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
    crops = [images]
    for scale in (2, 4):
        size_h, size_w = max(1, height // scale), max(1, width // scale)
        for top in range(0, height - size_h + 1, max(1, size_h // 2)):
            for left in range(0, width - size_w + 1, max(1, size_w // 2)):
                crop = images[:, :, top : top + size_h, left : left + size_w]
                crops.append(F.interpolate(crop, size=image_shape, mode="bilinear", align_corners=False))
    return torch.cat(crops).reshape(-1, *X.shape[1:]).numpy()


class _Concepts:
    """The concept inputs of the whole probe set and every layer's activations on them, recorded once;
    row r comes from probe sample r % N."""

    def __init__(self, model: nn.Module, a, X: np.ndarray, layers: tuple[str, ...]):
        self.inputs = concept_inputs(X, a.image_shape)
        rec = record(model, self.inputs, layers=list(layers), batch_size=1024)
        self.acts = [rec.inputs] + rec.hidden + [rec.outputs]
        self.sample = np.arange(len(self.inputs)) % len(X)


class _Circuit:
    """One class's circuit: its neurons explained top-down on the concept inputs of the samples
    predicted as the class."""

    def __init__(self, model: nn.Module, a, concepts: _Concepts, c: int, options: Options):
        self.model, self.a, self.c, self.options = model, a, c, options
        self.rows = np.flatnonzero(a.predictions[concepts.sample] == c)
        self.inputs = concepts.inputs[self.rows]
        self.acts = [acts[self.rows] for acts in concepts.acts]
        self.explained: dict[tuple[int, int], Explanation] = {}

    def build(self, advance) -> None:
        """Explain from the class logit down to the first hidden layer, deep enough for the circuit's
        tau and every fidelity tau."""
        tau = max(self.options.tau, *FIDELITY_TAUS)
        explain = self._logit()
        for layer in range(len(self.a.layers) - 1, 0, -1):
            for u, e in zip(explain, self._explain(layer, explain)):
                self.explained[(layer, u)] = e
            explain = self._below(layer, explain, tau)
            advance()

    def at(self, layer: int, tau: int) -> list[int]:
        """The neurons of `layer` in the circuit with core sets of `core_size(tau, width)`: the class
        logit at the output, else the union of the core sets of the circuit's neurons one layer up."""
        explain = self._logit()
        for upper in range(len(self.a.layers) - 1, layer, -1):
            explain = self._below(upper, explain, tau)
        return explain

    def _logit(self) -> list[int]:
        """Where the circuit starts: the class logit (none for a class nobody is predicted as)."""
        return [self.c] if len(self.rows) else []

    def _below(self, layer: int, units: list[int], tau: int) -> list[int]:
        """The union of the core sets, of `core_size(tau, width below)`, of explained `units` of `layer`."""
        size = core_size(tau, self.a.layers[layer - 1].width)
        return sorted({int(v) for u in units for v in self.explained[(layer, u)].order[:size]})

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
        tops = [np.argsort(-self.acts[layer][:, u], kind="stable")[:k] for u in units]
        ig = self._integrated_gradients(layer, units, tops).astype(np.float64)
        size = core_size(self.options.tau, self.a.layers[layer - 1].width)
        return [
            self._explanation(ig[i * k : (i + 1) * k], self.acts[layer - 1][top], size) for i, top in enumerate(tops)
        ]

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
        """IG of each unit of `layer` w.r.t. the activations of layer - 1 on its concept inputs (all
        units in one batched computation), averaged over space: (units x k) x width of layer - 1."""
        lower, upper = self.a.layers[layer - 1], self.a.layers[layer]
        modules = dict(self.model.named_modules())
        device = device_of(self.model)
        x = torch.from_numpy(np.ascontiguousarray(self.inputs[np.concatenate(tops)])).to(device)
        targets = torch.as_tensor(np.repeat(units, [len(t) for t in tops]), device=device)
        capture = None if upper.kind == "output" else (modules[upper.tap], upper.tap_call)
        if lower.kind == "input":

            def forward(scaled, _rows):
                return per_neuron(_run(self.model, scaled, capture=capture), upper.kind)

            start = x
        else:
            target = (modules[lower.tap], lower.tap_call)
            with torch.no_grad():
                start = _run(self.model, x, capture=target)

            def forward(scaled, rows):
                inputs = x[rows].repeat(len(scaled) // (rows.stop - rows.start), *([1] * (x.ndim - 1)))
                return per_neuron(_run(self.model, inputs, replace=(*target, scaled), capture=capture), upper.kind)

        ig = integrated_gradients(forward, start, targets, self.options.steps, self.options.top_k * self.options.steps)
        return (ig.reshape(len(x), -1) if lower.kind == "input" else per_neuron(ig, lower.kind)).cpu().numpy()


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
    nodes, weights = np.polynomial.legendre.leggauss(steps)
    alphas = torch.as_tensor((nodes + 1) / 2, dtype=start.dtype, device=start.device)
    weights = torch.as_tensor(weights / 2, dtype=start.dtype, device=start.device)
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


class _Captured(Exception):
    """Ends a forward pass at the captured output (the rest of the model is not needed)."""

    def __init__(self, output: torch.Tensor):
        super().__init__()
        self.output = output


def _run(model: nn.Module, inputs: torch.Tensor, replace=None, capture=None) -> torch.Tensor:
    """A forward pass. `replace` = (module, call, tensor) puts `tensor` in place of the output of that
    call of the module; `capture` = (module, call) returns that call's output instead of the model's,
    stopping the pass there."""

    def stop(output):
        raise _Captured(output)

    with ExitStack() as hooks:
        if replace is not None:
            module, call, tensor = replace
            hooks.enter_context(at_call(model, module, call, lambda _output: tensor))
        if capture is not None:
            hooks.enter_context(at_call(model, *capture, stop))
        try:
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
    for k in ks:
        labels = fcluster(tree, k, criterion="maxclust") - 1
        if labels.max() + 1 < 2:
            continue
        score = silhouette_score(points, labels)
        if score > best[0]:
            best = (score, labels)
    return best[1]


def _groups(a, circuits: list[_Circuit]) -> tuple[list[Community], dict]:
    """Each class's groups per hidden layer (Ward on its concept vectors, K by silhouette), the output
    layer as one group per class, and the group-to-group weights {(lower layer, lower group, upper
    group): weight}, each edge counted once."""
    last = len(a.layers) - 1
    groups = [
        Community(NAME, last, k, np.array([k]), {"class": k, "circuit_weight": np.zeros(a.n_classes)})
        for k in range(a.n_classes)
    ]
    held: dict = {}  # (class, layer, u, sub-concept): group
    for layer in range(1, last):
        index = 0
        for circuit in circuits:
            explained = circuit.circuit()
            keys = [(u, j) for (lay, u), e in sorted(explained.items()) if lay == layer for j in range(len(e.vectors))]
            if not keys:
                continue
            vectors = np.array([explained[(layer, u)].vectors[j] for u, j in keys])
            labels = _ward(vectors, range(2, min(MAX_GROUPS, len(vectors) - 1) + 1))
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
    its primary group of the class one layer down; fills each upper group's `circuit_weight`."""
    weights: dict = {}
    for circuit in circuits:
        primary = _primary_groups(circuit.c, held)
        for (layer, u), e in circuit.circuit().items():
            for j in range(len(e.weights)):
                upper = held.get((circuit.c, layer, u, j))
                if upper is None:
                    continue
                for v, w in zip(e.core.tolist(), e.weights[j].tolist()):
                    upper.props["circuit_weight"][circuit.c] += abs(w)
                    lower = primary.get((layer - 1, v))
                    if lower is not None:
                        key = (layer - 1, lower.index, upper.index)
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
