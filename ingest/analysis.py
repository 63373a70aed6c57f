"""The analysis of one model on one probe set: a plain object of arrays that the writer stores.

Layers are numbered from 0 (the flattened input) to the last (the model's output, one neuron per
class); a neuron's id is `model/L<layer>/<index>`. `flows[l]` holds the kept flow edges from layer l
to layer l+1 (see `flow.py`).
"""

import re
from dataclasses import dataclass, field
from datetime import datetime, timezone

import numpy as np
from scipy.stats import spearmanr
from torch import nn

from queries.errors import UserError, clip, shown

from .closing import evaluate_closing
from .communities import (METHODS, Community, CommunityFlow, Membership, communities_of, community_flows,
                          flow_partition, innersight, one_per_neuron, spectral_partition, split_by_layer)
from .concepts import label_communities
from .data import check_features, check_labels
from .deletion import deletion_check
from .flow import Flow, betweenness, flow_graph, layer_flow, path_flow, weight_coupling
from .information import DEFAULT_BINS, discretize, entropy_bits
from .neuronize import record
from .neurflow import fidelity, neurflow
from .progress import progress_bar
from .relay import KEEP, MAX_STATES, binarize, class_indicators, greedy_relay, group_states, relay_bits

DEFAULT_TOP_K = 32

MODEL_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")


@dataclass
class Layer:
    index: int
    name: str  # the weighted module it belongs to ("input" and "output" for the ends)
    module: str  # that module's name in the model, "" for the input
    tap: str  # the module whose output is read (its activation function, if any), "" at the ends
    tap_call: int  # which call of `tap` in one forward pass
    kind: str  # input | linear | conv | module | output
    activation: str  # activation module read after the weights, "" if none
    acts: np.ndarray  # N x width, float32
    codes: np.ndarray  # N x width, uint8 equal-frequency bins
    entropy: np.ndarray  # bits, Miller-Madow corrected
    class_means: np.ndarray  # C x width
    props: dict[str, np.ndarray] = field(default_factory=dict)  # more per-neuron values, stored as is

    @property
    def width(self) -> int:
        return self.acts.shape[1]

    @property
    def neuron_kind(self) -> str:
        return self.kind if self.kind in ("input", "output") else "hidden"

    @property
    def constant(self) -> np.ndarray:
        return self.acts.max(axis=0) == self.acts.min(axis=0)


@dataclass
class Analysis:
    name: str
    arch: str
    dataset: str
    class_names: list[str]
    labels: np.ndarray
    predictions: np.ndarray
    layers: list[Layer]
    flows: list[Flow] = field(default_factory=list)
    memberships: list[Membership] = field(default_factory=list)
    communities: list[Community] = field(default_factory=list)
    community_flows: list[CommunityFlow] = field(default_factory=list)
    attribution: np.ndarray | None = None  # C x input features: input-to-class path flow
    metrics: dict[str, float] = field(default_factory=dict)  # model-level results, stored on the Model
    params: dict = field(default_factory=dict)
    created_at: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def accuracy(self) -> float:
        return float((self.predictions == self.labels).mean())

    @property
    def class_accuracy(self) -> np.ndarray:
        """Share of each class's samples predicted as that class (0 for a class with no samples)."""
        hits = np.bincount(self.labels, weights=self.predictions == self.labels, minlength=self.n_classes)
        support = np.bincount(self.labels, minlength=self.n_classes)
        return np.divide(hits, support, out=np.zeros(self.n_classes), where=support > 0)

    def uid(self, layer: int, index: int | None = None) -> str:
        return f"{self.name}/L{layer}" + ("" if index is None else f"/{index}")

    def community_uid(self, c: Community) -> str:
        return f"{self.name}/{c.method}/L{c.layer}/c{c.index}"

    def flow_between(self, source: str, target: str) -> float:
        """Path flow from neuron `source` to neuron `target` (uids, source in a lower layer)."""
        (l1, i), (l2, j) = self.locate(source), self.locate(target)
        return float(path_flow(self.flows, l1, l2)[i, j])

    def locate(self, uid: str) -> tuple[int, int]:
        """(layer, index) of a neuron uid of this model."""
        model, _, rest = uid.rpartition("/L")
        layer, _, index = rest.partition("/")
        if model != self.name or not layer.isdigit() or not index.isdigit() or int(layer) >= len(self.layers) \
                or int(index) >= self.layers[int(layer)].width:
            raise UserError(f"{uid!r} is not a neuron of model {self.name!r} (ids look like {self.uid(1, 0)})")
        return int(layer), int(index)


def check_model_name(name: str) -> str:
    if not MODEL_NAME.fullmatch(name):
        raise UserError(f"model name {shown(name)} is not allowed: use 1 to 64 characters from A-Z a-z 0-9 . _ -")
    return name


def analyze(model: nn.Module, X: np.ndarray, y: np.ndarray, *, name: str, dataset: str = "",
            class_names: list[str] | None = None, layers: list[str] | None = None,
            bins: int = DEFAULT_BINS, top_k: int = DEFAULT_TOP_K, weight_coupled: bool = False,
            deletion: bool = True, methods: tuple[str, ...] = METHODS, close_to_mean: bool = False,
            close_pairs: bool = False, relay_states: int = MAX_STATES, relay_keep: float = KEEP,
            binarization: str = "kmeans", image_shape: tuple[int, int] | None = None,
            feature_names: list[str] | None = None, batch_size: int = 256) -> Analysis:
    """Neuronize `model` on the probe set (X, y), measure its information flow (NIF), find
    communities with each of `methods` (relay modules with "relay"), measure every community's
    relay information per class, close each community, and label it."""
    check_model_name(name)
    if bins < 2 or top_k < 1:
        raise UserError(f"bins must be at least 2 and top_k at least 1, got {bins} and {top_k}")
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise UserError(f"unknown community method {clip(', '.join(unknown))}; choose from {', '.join(METHODS)}")
    if not 2 <= relay_states or not 0 < relay_keep <= 1 or binarization not in ("kmeans", "median"):
        raise UserError("relay options: states at least 2, keep in (0, 1], binarization kmeans or median")
    if not isinstance(model, nn.Module):
        raise UserError(f"model must be a torch.nn.Module, got a {type(model).__name__}")
    X = check_features(X)
    y = check_labels(y, len(X))
    rec = record(model, X, layers=layers, batch_size=batch_size)
    n_classes = rec.outputs.shape[1]
    class_names = _class_names(class_names, n_classes)
    if y.min() < 0 or y.max() >= n_classes:
        raise UserError(f"labels must be integers in 0..{n_classes - 1} (the model outputs {n_classes} "
                        f"classes), found {int(y.min())}..{int(y.max())}")
    stacks = ([("input", "", "", 0, "input", "", rec.inputs)]
              + [(tap.name, tap.name, tap.module, tap.call, tap.kind, tap.activation, acts)
                 for tap, acts in zip(rec.taps, rec.hidden)]
              + [("output", rec.output_module, "", 0, "output", "", rec.outputs)])
    analysis = Analysis(
        name=name, arch=_describe(model, stacks), dataset=dataset, class_names=class_names, labels=y,
        predictions=rec.outputs.argmax(axis=1),
        layers=[_layer(i, *stack, y, n_classes, bins) for i, stack in enumerate(stacks)],
        params={"bins": bins, "top_k": top_k, "weight_coupled": weight_coupled,
                "layers": [tap.module for tap in rec.taps], "methods": list(methods),
                "named_layers": layers or None, "close_to_mean": close_to_mean, "relay_states": relay_states,
                "relay_keep": relay_keep, "binarization": binarization,
                "image_shape": list(image_shape) if image_shape else None},
    )
    _add_flow(analysis, model, top_k, weight_coupled)
    if deletion:
        analysis.metrics.update(deletion_check(model, X, y, analysis.predictions, analysis.attribution,
                                               batch_size=batch_size))
    if methods:
        _add_communities(analysis, model, methods)
        circuit = _add_neurflow(analysis, model, X, image_shape) if "neurflow" in methods else {}
        _add_relay(analysis, "relay" in methods)
        analysis.community_flows = community_flows(analysis.communities, analysis.flows,
                                                   [layer.width for layer in analysis.layers])
        _add_circuit_weights(analysis, circuit)
        analysis.metrics.update(evaluate_closing(model, X, y, analysis.layers, analysis.communities,
                                                 to_mean=close_to_mean, pairs=close_pairs, batch_size=batch_size))
        analysis.metrics.update(knockout_check(analysis.communities))
        label_communities(analysis, rec.inputs, image_shape, feature_names)
    return analysis


def _add_flow(a: Analysis, model: nn.Module, top_k: int, weight_coupled: bool) -> None:
    """Flow edges between adjacent layers, betweenness per neuron, and the attribution."""
    modules = dict(model.named_modules())
    device = next((p.device for p in model.parameters()), "cpu")
    coupled = []
    with progress_bar(len(a.layers) - 1, "information flow") as advance:
        for lower, upper in zip(a.layers, a.layers[1:]):
            coupling = None
            if weight_coupled and upper.module:
                coupling = weight_coupling(modules[upper.module], lower.width)
                if coupling is not None:
                    coupled.append(upper.index)
            a.flows.append(layer_flow(lower.index, lower.codes, upper.codes, lower.constant, upper.constant,
                                      bins=a.params["bins"], top_k=top_k, coupling=coupling, device=device))
            advance()
    a.params["weight_coupled_layers"] = coupled
    for layer, values in zip(a.layers, betweenness(a.flows, [layer.width for layer in a.layers])):
        layer.props["betweenness"] = values
    a.attribution = path_flow(a.flows, 0, len(a.layers) - 1).T


def _add_communities(a: Analysis, model: nn.Module, methods) -> None:
    widths = [layer.width for layer in a.layers]
    first = np.cumsum([0] + widths)
    if "innersight" in methods:
        a.memberships += [innersight(layer.index, layer.class_means, layer.acts) for layer in a.layers[:-1]]
        a.memberships.append(one_per_neuron("innersight", len(a.layers) - 1, a.n_classes))
    if "flow" in methods:
        sources, targets, bits, _ = flow_graph(a.flows, widths)
        a.memberships += split_by_layer("flow", flow_partition(sources, targets, bits, int(first[-1])), widths)
    if "weights" in methods:
        modules = dict(model.named_modules())
        edges = []
        for lower, upper in zip(a.layers, a.layers[1:]):
            magnitude = weight_coupling(modules[upper.module], lower.width) if upper.module else None
            if magnitude is not None:
                u, v = np.nonzero(magnitude)
                edges.append((u + first[lower.index], v + first[upper.index], magnitude[u, v]))
        if edges:
            sources, targets, weights = (np.concatenate(parts) for parts in zip(*edges))
            labels = spectral_partition(sources, targets, weights, int(first[-1]), k=a.n_classes)
            a.memberships += split_by_layer("weights", labels, widths)
        else:  # e.g. named layers that are not each other's inputs
            a.params["methods"].remove("weights")
            a.params["skipped"] = {"weights": "no adjacent layers are linked by one weight matrix"}
    a.communities = communities_of(a.memberships)


def _add_neurflow(a: Analysis, model: nn.Module, X: np.ndarray, image_shape) -> dict:
    """NeurFlow's core neurons (neuron property `core`: one 0/1 per class), its groups as communities,
    and its fidelity check; returns the group-to-group circuit weights."""
    core, groups, weights = neurflow(model, a, X, image_shape)
    for layer, flags in zip(a.layers, core):
        layer.props["core"] = flags.T
    a.communities += groups
    a.metrics.update(fidelity(model, a, X, core))
    return weights


def _add_circuit_weights(a: Analysis, weights: dict) -> None:
    """Attach NeurFlow's group-to-group weights to the neurflow community flows (adding the links
    that carry circuit weight but no kept MI flow)."""
    for f in [f for f in a.community_flows if f.method == "neurflow"]:
        pairs = {(int(i), int(j)) for i, j in zip(f.source, f.target)}
        extra = sorted((i, j) for (upper, i, j) in weights if upper == f.lower + 1 and (i, j) not in pairs)
        if extra:
            f.source = np.concatenate([f.source, [i for i, _ in extra]]).astype(np.int64)
            f.target = np.concatenate([f.target, [j for _, j in extra]]).astype(np.int64)
            f.bits = np.concatenate([f.bits, np.zeros(len(extra))])
            f.edges = np.concatenate([f.edges, np.zeros(len(extra), dtype=np.int64)])
        f.weight = np.array([weights.get((f.lower + 1, int(i), int(j)), 0.0) for i, j in zip(f.source, f.target)])


def _add_relay(a: Analysis, modules: bool) -> None:
    """Relay modules of each class in each hidden layer (with `modules`), each neuron's relay score,
    and the relay information of every community for every class (`relay_bits`)."""
    k, keep = a.params["relay_states"], a.params["relay_keep"]
    x_in, x_out = class_indicators(a.labels, a.predictions, a.n_classes)
    bits = [binarize(layer.acts, a.params["binarization"]) for layer in a.layers]
    if modules:
        hidden = a.layers[1:-1]
        with progress_bar(len(hidden) * a.n_classes, "relay modules") as advance:
            for layer in hidden:
                losses = []
                for c in range(a.n_classes):
                    search = greedy_relay(layer.acts, bits[layer.index], x_in[c], x_out[c], k=k, keep=keep)
                    a.communities.append(Community("relay", layer.index, c, search.module, {
                        "class": c, "relay_order": search.order, "relay_curve": search.curve}))
                    losses.append(search.losses)
                    advance()
                layer.props["relay_score"] = np.sum(losses, axis=0)
    for c in a.communities:
        states = group_states(a.layers[c.layer].acts[:, c.members], bits[c.layer][:, c.members], k)
        c.props["relay_bits"] = relay_bits(x_in, x_out, states)


def knockout_check(communities: list[Community]) -> dict[str, float]:
    """Spearman rho between relay bits and the accuracy lost when closing, over community x class."""
    bits = np.concatenate([c.props["relay_bits"] for c in communities])
    drops = np.concatenate([c.props["class_acc_drop"] for c in communities])
    if np.ptp(bits) == 0 or np.ptp(drops) == 0:
        return {}  # no variation (e.g. no closing changes any prediction): rho is undefined
    return {"relay_knockout_rho": float(spearmanr(bits, drops).statistic)}


def _layer(index, name, module, tap, tap_call, kind, activation, acts, y, n_classes, bins) -> Layer:
    codes = discretize(acts, bins)
    onehot = np.eye(n_classes, dtype=np.float64)[y]
    support = np.maximum(onehot.sum(axis=0), 1)[:, None]
    return Layer(index=index, name=name, module=module, tap=tap, tap_call=tap_call, kind=kind,
                 activation=activation, acts=acts, codes=codes, entropy=entropy_bits(codes, bins),
                 class_means=(onehot.T @ acts) / support)


def _class_names(names: list[str] | None, n_classes: int) -> list[str]:
    if names is None:
        return [str(c) for c in range(n_classes)]
    if len(names) != n_classes:
        raise UserError(f"the data names {len(names)} classes but the model outputs {n_classes}")
    return list(names)


def _describe(model: nn.Module, stacks) -> str:
    """E.g. `Sequential(input 64, conv 8, linear 32, output 10)`."""
    return f"{type(model).__name__}(" + ", ".join(f"{kind} {acts.shape[1]}" for *_, kind, _, acts in stacks) + ")"

