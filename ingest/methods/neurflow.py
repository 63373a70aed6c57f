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
IG on the lower layers' activations (replaced where they are read in the forward pass, `ingest.attribution`)
rather than a split model, tau capped by the layer width.
"""

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
import torch
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import pdist, squareform
from torch.nn import functional as F

from neurocypher.progress import progress_bar

from ..attribution import Between
from ..closing import masked_predictions
from ..communities import Community, Found, silhouette
from ..context import MethodContext
from ..neuronize import token_input, valid_positions
from ..taps import device_of
from ..tokens import split
from .options import NeurFlowOptions

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


def find(context: MethodContext, options: NeurFlowOptions) -> Found:
    """NeurFlow's core neurons (neuron property `core`: one 0/1 per class), its neuron groups of each
    class as communities (property `class`), their circuit weights (link property `weight`), and
    the fidelity check per layer (layer properties, and the top hidden layer's on the Model).

    Parameters
    ----------
    context : MethodContext
        Its layers, the model and the probe inputs (crops of them for image data).
    options : NeurFlowOptions

    Returns
    -------
    Found

    References
    ----------
    .. [1] Cao et al., "NeurFlow: Interpreting Neural Networks through Neuron Groups and Functional
       Interactions", ICLR 2025, arXiv:2502.16105; reference code github.com/tue147/neurflow.
    .. [2] Sundararajan, Taly, Yan, "Axiomatic Attribution for Deep Networks", arXiv:1703.01365.
    """
    circuits = [_Circuit(context, c, options) for c in range(context.n_classes)]
    with progress_bar(context.n_classes * (len(context.layers) - 1), "NeurFlow circuits") as advance:
        for circuit in circuits:  # one class's concepts at a time: those of images are large
            circuit.build(_Concepts(context, circuit.c, options), advance)
    groups, weights = _groups(context, circuits)
    core = [np.array([circuit.core(layer.index, options.tau) for circuit in circuits]) for layer in context.layers]
    layer_props, metrics = fidelity(context, circuits, options)
    return Found(
        communities=groups,
        neuron_props={layer.index: {"core": flags.T} for layer, flags in zip(context.layers, core)},
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
    if image_shape is None or not len(X):
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
    """One class's concept inputs (those of the probe samples predicted as the class) and every layer's
    activations on them (for data without crops: the analysis's own recording), and the explanation
    of the class's neurons on them, run as the context's `plans` say (`ingest.segments.Plans`)."""

    def __init__(self, context: MethodContext, c: int, options: NeurFlowOptions):
        self.model, self.context, self.options = context.model, context, options
        samples = np.flatnonzero(context.predictions == c)
        self.inputs = concept_inputs(context.X[samples], context.image_shape)
        if context.image_shape is None or not len(samples):
            self.acts = [layer.acts[samples] for layer in context.layers]
        else:
            rec = context.record(self.inputs, batch_size=1024)
            self.acts = [rec.inputs] + rec.hidden + [rec.outputs]

    def explain(self, layer: int, units: list[int]) -> list[Explanation]:
        """Each unit of `layer` explained against the layer below on its top-k concept inputs."""
        if not units:
            return []
        k = min(self.options.top_k, len(self.inputs))
        acts = self.acts[layer]
        tops = [np.argsort(-acts[:, u], kind="stable")[:k] for u in units]
        ig = self.integrated_gradients(layer, units, tops).astype(np.float64)
        below = self._below(layer)
        size = core_size(self.options.tau, below.shape[1])
        return [_explanation(ig[i * k : (i + 1) * k], below[top], size) for i, top in enumerate(tops)]

    def _below(self, layer: int) -> np.ndarray:
        """The activations of the layers feeding `layer`, side by side (its "layer below")."""
        return np.hstack([self.acts[lower] for lower in self.context.layers[layer].inputs])

    def integrated_gradients(self, layer: int, units: list[int], tops: list[np.ndarray]) -> np.ndarray:
        """IG of each unit of `layer` w.r.t. the activations of the layers feeding it (all replaced
        together, so each gets its direct contribution) on its concept inputs `tops`, all units in one
        batched computation, averaged over space: (units x k) x width of `_below(layer)`."""
        upper = self.context.layers[layer]
        lowers = [self.context.layers[lower] for lower in upper.inputs]
        distinct, copies = np.unique(np.concatenate(tops), return_inverse=True)  # units share concept inputs
        x = torch.from_numpy(np.ascontiguousarray(self.inputs[distinct])).to(device_of(self.model))
        targets = torch.as_tensor(np.repeat(units, [len(t) for t in tops]), device=x.device)
        between = Between(
            self.context.plans, lowers, upper, x, torch.as_tensor(copies.ravel(), device=x.device), targets
        )
        starts, steps = between.starts, self.options.steps
        sizes = [start[0].numel() for start in starts]
        ig = between.integrated_gradients(steps, self.options.top_k * steps)
        valid = valid_positions(self.model, between.x)
        per_layer = [
            self._input_neurons(part.reshape(start.shape), between.x)
            if lower.kind == "input"
            else dataclasses.replace(lower.layout, batch_axis=0).neurons(part.reshape(start.shape), valid)
            for lower, part, start in zip(lowers, ig.split(sizes, dim=1), starts)
        ]
        return torch.cat(per_layer, dim=1).cpu().numpy()

    def _input_neurons(self, ig: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """IG w.r.t. the input, per input neuron: as it is for features; for token inputs (IG on their
        embedding, `ingest.tokens`), summed over each token's positions and embedding features."""
        tokens = token_input(self.model)
        if tokens is None:
            return ig.reshape(len(x), -1)
        ids, valid = split(x)
        return tokens.per_token(ig.flatten(2).sum(dim=2), ids, valid)


def _explanation(ig: np.ndarray, lower: np.ndarray, size: int) -> Explanation:
    """One neuron's explanation from its IG (concept inputs x lower neurons) and the lower layer's
    activations on its concept inputs."""
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


class _Circuit:
    """One class's circuit: its neurons explained top-down on the concept inputs of the samples
    predicted as the class."""

    def __init__(self, context: MethodContext, c: int, options: NeurFlowOptions):
        self.context, self.c, self.options = context, c, options
        self.predicted = bool((context.predictions == c).any())  # else the circuit is empty
        self.explained: dict[tuple[int, int], Explanation] = {}
        self._walks: dict[int, dict[int, list[int]]] = {}  # tau: `_walk(tau)`, once built

    def build(self, concepts: _Concepts, advance) -> None:
        """Explain on the class's `concepts` from the class logit down to the first hidden layer, deep
        enough for the circuit's tau and every fidelity tau."""

        def explain(layer: int, units: list[int]) -> None:
            for u, e in zip(units, concepts.explain(layer, units)):
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
        todo = {len(self.context.layers) - 1: {self.c}} if self.predicted else {}
        for layer in range(len(self.context.layers) - 1, 0, -1):
            units = todo[layer] = sorted(todo.get(layer, ()))
            if explain is not None:
                explain(layer, units)
            size = core_size(tau, sum(self.context.layers[lower].width for lower in self.context.layers[layer].inputs))
            core = {int(v) for u in units for v in self.explained[(layer, u)].order[:size]}
            for lower, v in map(self.locate(layer), core):
                todo.setdefault(lower, set()).add(v)
        return {layer: sorted(units) for layer, units in todo.items()}

    def locate(self, layer: int):
        """A function from a neuron of the layers feeding `layer`, side by side, to (its layer, its
        index there)."""
        lowers = self.context.layers[layer].inputs
        starts = np.cumsum([0] + [self.context.layers[lower].width for lower in lowers])

        def locate(v: int) -> tuple[int, int]:
            i = int(np.searchsorted(starts, v, side="right")) - 1
            return lowers[i], v - int(starts[i])

        return locate

    def core(self, layer: int, tau: int) -> np.ndarray:
        """0/1 per neuron of `layer`: in the circuit at `tau` (see `at`)."""
        flags = np.zeros(self.context.layers[layer].width, dtype=np.int64)
        flags[self.at(layer, tau)] = 1
        return flags

    def circuit(self) -> dict[tuple[int, int], Explanation]:
        """The explanations of the neurons in the circuit at the options' tau, by (layer, neuron)."""
        return {
            (layer, u): self.explained[(layer, u)]
            for layer in range(1, len(self.context.layers))
            for u in self.at(layer, self.options.tau)
        }


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
    and the few concept vectors it has cannot support a split: on composite networks the best Ward
    cut's silhouette on them is no better than that of Gaussian points of the same covariance, so the
    silhouette would split every coherent circuit (docs/groundtruth.md, "Method notes"). Wider
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


def _groups(context: MethodContext, circuits: list[_Circuit]) -> tuple[list[Community], dict]:
    """Each class's groups per hidden layer (`group_labels`: Ward on its concept vectors, K by silhouette,
    one group for a circuit of at most one core set), the output
    layer as one group per class, and the group-to-group weights {(lower layer, layer, lower group, upper
    group): weight}, each edge counted once."""
    last = len(context.layers) - 1
    groups = [
        Community(NAME, last, k, np.array([k]), {"class": k, "circuit_weight": np.zeros(context.n_classes)})
        for k in range(context.n_classes)
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
            size = core_size(circuit.options.tau, context.layers[layer].width)
            labels = group_labels(vectors, len({u for u, _ in keys}), size)
            for label in range(labels.max() + 1):
                mine = [keys[i] for i in np.flatnonzero(labels == label)]
                group = Community(
                    NAME,
                    layer,
                    index,
                    np.array(sorted({u for u, _ in mine})),
                    {"class": circuit.c, "circuit_weight": np.zeros(context.n_classes)},
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
        locate = {layer.index: circuit.locate(layer.index) for layer in circuit.context.layers[1:]}
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


def fidelity(context: MethodContext, circuits: list[_Circuit], options: NeurFlowOptions) -> tuple[dict, dict]:
    """NeurFlow's fidelity check, per hidden layer from the top down.

    Parameters
    ----------
    context : MethodContext
        The model's execution plans, the probe samples and its layers.
    circuits : list of _Circuit
        One per class.
    options : NeurFlowOptions

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
    hidden = context.layers[1:-1][::-1]
    labels, predictions = context.labels, context.predictions
    correct = [np.flatnonzero((labels == c) & (predictions == c)) for c in range(context.n_classes)]

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
                (masked_predictions(context.plans, context.X[correct[c]], layer, masks) == c).mean(axis=1)
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
