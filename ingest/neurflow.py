"""NeurFlow (Cao et al., ICLR 2025): core neurons, neuron groups and a hierarchical circuit per class,
built top-down from each class logit.

- Concept inputs: for images, crops of the probe images at 1, 1/2 and 1/4 of the side (stride half a
  crop), resized back to the input size; for tabular data, the samples. A neuron's concept is its
  top-k (50) concept inputs by activation.
- Core neurons of u: Integrated Gradients (Captum; baseline 0; 50 steps) of u with respect to the
  activations of the layer below, on u's concept inputs, averaged over space; the tau (16) lower
  neurons with the largest mean |IG| (leaving out any with none). From the class logit down, the union of a layer's core sets is
  the set explained at the next layer down, to the first hidden layer (explained against the input).
- Sub-concepts: u's concept inputs clustered by Ward on their lower-layer activations, 2..5 clusters
  by silhouette; concept vector = cluster mean; edge weight from core neuron v to (u, j) = mean
  signed IG over cluster j, divided by the exact L1 norm over u's core neurons.
- Groups per layer: Ward clustering of the layer's concept vectors, K by silhouette; a group's
  members are the neurons whose sub-concepts it holds. Group-to-group weight: the sum of member edge
  weights. A group's circuit weight for class c: the summed |weight| of class c's edges into it.

Differences from the reference code: exact L1 normalisation (it normalises in place and drifts),
Captum's IG on the lower layer's activations (replaced by a forward hook) rather than a split model.
"""

from dataclasses import dataclass

import numpy as np
import torch
from captum.attr import IntegratedGradients
from sklearn.cluster import AgglomerativeClustering
from sklearn.metrics import silhouette_score
from torch import nn
from torch.nn import functional as F

from .communities import Community
from .neuronize import record
from .progress import progress_bar

TOP_K, TAU, STEPS = 50, 16, 50


@dataclass
class Explanation:
    """One neuron explained against the layer below."""
    core: np.ndarray  # lower neurons, by decreasing mean |IG|
    labels: np.ndarray  # sub-concept of each concept input
    weights: np.ndarray  # sub-concepts x core: L1-normalised mean signed IG
    vectors: np.ndarray  # sub-concepts x lower width: concept vectors (cluster means)


def concept_inputs(X: np.ndarray, image_shape: tuple[int, int] | None) -> np.ndarray:
    """The probe samples, and for images their crops at 1/2 and 1/4 of the side, resized back."""
    if image_shape is None:
        return X
    images = torch.from_numpy(X).reshape(len(X), -1, *image_shape)
    height, width = image_shape
    crops = [images]
    for scale in (2, 4):
        size_h, size_w = max(1, height // scale), max(1, width // scale)
        for top in range(0, height - size_h + 1, max(1, size_h // 2)):
            for left in range(0, width - size_w + 1, max(1, size_w // 2)):
                crop = images[:, :, top:top + size_h, left:left + size_w]
                crops.append(F.interpolate(crop, size=image_shape, mode="bilinear", align_corners=False))
    return torch.cat(crops).reshape(-1, *X.shape[1:]).numpy()


class _Circuit:
    """Explains neurons top-down, each once, on shared concept inputs."""

    def __init__(self, model: nn.Module, a, X: np.ndarray, image_shape):
        self.model, self.a = model, a
        self.device = next((p.device for p in model.parameters()), torch.device("cpu"))
        self.concepts = concept_inputs(X, image_shape)
        rec = record(model, self.concepts, layers=a.params["named_layers"], batch_size=1024)
        self.acts = [rec.inputs] + rec.hidden + [rec.outputs]
        self.cache: dict[tuple[int, int], Explanation] = {}

    def explain(self, layer: int, u: int) -> Explanation:
        if (layer, u) not in self.cache:
            top = np.argsort(-self.acts[layer][:, u], kind="stable")[:TOP_K]
            ig = self._integrated_gradients(layer, u, self.concepts[top]).astype(np.float64)
            lower = self.acts[layer - 1][top]
            importance = np.abs(ig).mean(axis=0)
            core = np.argsort(-importance, kind="stable")[:TAU]
            core = core[importance[core] > 0]  # a neuron that contributes nothing is not core
            labels = _ward(lower, range(2, 6))
            weights = np.array([ig[labels == j].mean(axis=0)[core] for j in range(labels.max() + 1)])
            norm = np.abs(weights).sum(axis=1, keepdims=True)
            weights = np.divide(weights, norm, out=np.zeros_like(weights), where=norm > 0)  # a dead neuron: 0
            vectors = np.array([lower[labels == j].mean(axis=0) for j in range(labels.max() + 1)])
            self.cache[(layer, u)] = Explanation(core, labels, weights, vectors)
        return self.cache[(layer, u)]

    def _integrated_gradients(self, layer: int, u: int, x: np.ndarray) -> np.ndarray:
        """IG of neuron u (of `layer`) w.r.t. the activations of layer - 1 on inputs x, averaged over
        space: len(x) x width of layer - 1."""
        lower, upper = self.a.layers[layer - 1], self.a.layers[layer]
        modules = dict(self.model.named_modules())
        x = torch.from_numpy(np.ascontiguousarray(x)).to(self.device)
        capture = None if upper.kind == "output" else (modules[upper.tap], upper.tap_call)

        def value(output: torch.Tensor) -> torch.Tensor:
            return _per_neuron(output, upper.kind)[:, u]

        if lower.kind == "input":
            ig = IntegratedGradients(lambda inputs: value(_run(self.model, inputs, capture=capture)))
            return ig.attribute(x, baselines=0.0, n_steps=STEPS).detach().reshape(len(x), -1).cpu().numpy()
        target = (modules[lower.tap], lower.tap_call)
        with torch.no_grad():
            activation = _run(self.model, x, capture=target)
        ig = IntegratedGradients(lambda act, inputs: value(_run(self.model, inputs, replace=(*target, act), capture=capture)))
        attributions = ig.attribute(activation, baselines=0.0, n_steps=STEPS, additional_forward_args=(x,),
                                    internal_batch_size=TOP_K * STEPS)
        return _per_neuron(attributions.detach(), lower.kind).cpu().numpy()


def _run(model: nn.Module, inputs: torch.Tensor, replace=None, capture=None) -> torch.Tensor:
    """A forward pass. `replace` = (module, call, tensor) puts `tensor` in place of the output of that
    call of the module; `capture` = (module, call) returns that call's output instead of the model's."""
    found, hooks = {}, []
    for key, spec in (("replace", replace), ("capture", capture)):
        if spec is None:
            continue
        module, call, *tensor = spec
        counter = {"n": 0}

        def hook(mod, inp, out, key=key, call=call, tensor=tensor, counter=counter):
            counter["n"] += 1
            if counter["n"] - 1 != call:
                return None
            out = tensor[0] if tensor else out
            found[key] = out
            return out
        hooks.append(module.register_forward_hook(hook))
    try:
        output = model(inputs)
    finally:
        for h in hooks:
            h.remove()
    return found["capture"] if capture is not None else output


def _per_neuron(t: torch.Tensor, kind: str) -> torch.Tensor:
    if t.ndim == 2:
        return t
    return t.flatten(1, -2).mean(dim=1) if kind == "linear" else t.flatten(2).mean(dim=2)


def _ward(points: np.ndarray, ks) -> np.ndarray:
    """Ward clustering with the number of clusters (from `ks`) that has the best silhouette."""
    best = (-2.0, np.zeros(len(points), dtype=int))
    for k in ks:
        if k >= len(points) or len(np.unique(points, axis=0)) <= k:
            break
        labels = AgglomerativeClustering(n_clusters=k, linkage="ward").fit_predict(points)
        score = silhouette_score(points, labels)
        if score > best[0]:
            best = (score, labels)
    return best[1]


def neurflow(model: nn.Module, a, X: np.ndarray, image_shape) -> tuple[list[np.ndarray], list[Community], dict]:
    """Core neurons per class (one C x width 0/1 array per layer), the neuron groups, and the
    group-to-group weights {(upper layer, lower group, upper group): weight}."""
    circuit = _Circuit(model, a, X, image_shape)
    last = len(a.layers) - 1
    core = [np.zeros((a.n_classes, layer.width), dtype=np.int64) for layer in a.layers]
    edges = []  # (class, layer of u, v, u, sub-concept, weight)
    with progress_bar(a.n_classes * last, "NeurFlow circuits") as advance:
        for c in range(a.n_classes):
            explain = {c}
            for layer in range(last, 0, -1):
                below = set()
                for u in sorted(explain):
                    e = circuit.explain(layer, u)
                    below.update(e.core.tolist())
                    edges += [(c, layer, int(v), u, j, float(e.weights[j, k]))
                              for j in range(len(e.weights)) for k, v in enumerate(e.core)]
                core[layer - 1][c, sorted(below)] = 1
                explain = below
                advance()
    groups, group_of = _groups(a, circuit)
    weights: dict = {}
    for g in groups:
        g.props["circuit_weight"] = np.zeros(a.n_classes)
    for c, layer, v, u, j, w in edges:
        upper = group_of.get((layer, u, j))
        if upper is None:
            continue
        upper.props["circuit_weight"][c] += abs(w)
        for lower in (g for g in groups if g.layer == layer - 1 and v in g.members):
            key = (layer, lower.index, upper.index)
            weights[key] = weights.get(key, 0.0) + w
    return core, groups, weights


def _groups(a, circuit: _Circuit) -> tuple[list[Community], dict]:
    """Per layer, Ward groups of the explained neurons' concept vectors."""
    groups, group_of = [], {}
    for layer in range(1, len(a.layers)):
        keys = [(u, j) for (l, u), e in sorted(circuit.cache.items()) if l == layer for j in range(len(e.vectors))]
        if not keys:
            continue
        vectors = np.array([circuit.cache[(layer, u)].vectors[j] for u, j in keys])
        labels = _ward(vectors, range(2, min(9, len(vectors))))
        for index in range(labels.max() + 1):
            held = [keys[i] for i in np.flatnonzero(labels == index)]
            group = Community("neurflow", layer, index, np.array(sorted({u for u, _ in held})))
            groups.append(group)
            group_of.update({(layer, u, j): group for u, j in held})
    return groups, group_of


def fidelity(model: nn.Module, a, X: np.ndarray, core: list[np.ndarray], draws: int = 10, seed: int = 0) -> dict:
    """Per class, its retention (share of its samples still predicted as it) with its core neurons
    of the top hidden layer zeroed, and with as many random neurons of that layer zeroed (mean of
    `draws`); `fidelity_ratio` = mean retention lost to core neurons / mean lost to random ones."""
    from .closing import Closing, predict_closed

    layer = a.layers[-2]
    rng = np.random.default_rng(seed)
    base = a.class_accuracy

    def retention(c, members):
        predicted = predict_closed(model, X, [Closing(layer, members, np.zeros(len(members)))])
        return float((predicted[a.labels == c] == c).mean()) if (a.labels == c).any() else 0.0

    with progress_bar(a.n_classes * (1 + draws), "NeurFlow fidelity") as advance:
        ours, random = [], []
        for c in range(a.n_classes):
            members = np.flatnonzero(core[layer.index][c])
            ours.append(retention(c, members))
            advance()
            random.append(np.mean([retention(c, rng.choice(layer.width, len(members), replace=False))
                                   for _ in range(draws)]))
            advance(draws)
    lost_core, lost_random = base - np.array(ours), base - np.array(random)
    return {"fidelity_core": ours, "fidelity_random": [float(r) for r in random],
            "fidelity_ratio": float(lost_core.mean() / max(lost_random.mean(), 1e-9))}
