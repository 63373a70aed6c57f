"""NIF: information flow between neurons of connected layers, path flow, attribution, centrality.

Edge flow m_uv = I(a(u); a(v)) for u in layer l and v in a layer that l feeds (an edge of the layer
DAG), kept when it beats the 99th percentile of a permutation null (the upper layer's samples
shuffled) and is among the `top_k` strongest from that layer into v. Share s_uv = m_uv / sum_u' m_u'v
over the kept edges into v (from all its layers); the flow between layers further apart is the sum
over the DAG's paths of the products of the share matrices, and input-to-output flow is the feature
attribution.
"""

import dataclasses
from dataclasses import dataclass

import igraph
import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from .information import mutual_information

NULL_NEURONS = 256  # neurons per side sampled for the permutation null
NULL_VALUES = 4096  # small layers repeat the permutation until the null has this many pairs (at most 64 times)
EXACT_BETWEENNESS = 5000  # above this many neurons, betweenness is estimated from sampled sources


@dataclass
class Flow:
    """The kept flow edges from layer `lower` to layer `upper` (an edge of the layer DAG)."""

    lower: int
    upper: int
    source: np.ndarray  # neuron index in layer `lower`
    target: np.ndarray  # neuron index in layer `lower + 1`
    bits: np.ndarray  # mutual information (or its weight-coupled version) of each edge
    share: np.ndarray  # bits / total kept bits into the target (from every layer feeding it)
    threshold: float  # the null's quantile that an edge had to beat
    shape: tuple[int, int]

    def matrix(self, values: str = "share") -> sp.csr_matrix:
        """Lower x upper sparse matrix of `share`, `bits`, or `edges` (1 per kept edge)."""
        data = np.ones(len(self.source)) if values == "edges" else getattr(self, values)
        return sp.csr_matrix((data, (self.source, self.target)), shape=self.shape)


def layer_flow(
    lower: int,
    upper: int,
    codes_u: np.ndarray,
    codes_v: np.ndarray,
    constant_u: np.ndarray,
    constant_v: np.ndarray,
    *,
    bins: int,
    top_k: int,
    quantile: float = 0.99,
    coupling: np.ndarray | None = None,
    seed: int = 0,
    device="cpu",
) -> Flow:
    """Significant, top-k pruned flow from one layer to a layer it feeds; `share` is within this
    pair of layers (see `shared`)."""
    mi = mutual_information(codes_u, codes_v, bins, device=device)
    mi[constant_u, :] = 0
    mi[:, constant_v] = 0
    threshold = _null_threshold(codes_u, codes_v, bins, quantile, seed, device)
    keep = (mi > max(threshold, 0.0)) & _top_k_per_column(mi, top_k)
    source, target = np.nonzero(keep)
    bits = mi[source, target]
    if coupling is not None:  # an edge without any weight carries no coupled flow (a pruned connection)
        bits = _couple(bits, coupling[source, target], target, codes_v.shape[1])
        source, target, bits = source[bits > 0], target[bits > 0], bits[bits > 0]
    into = np.bincount(target, weights=bits, minlength=codes_v.shape[1])
    return Flow(
        lower=lower,
        upper=upper,
        source=source,
        target=target,
        bits=bits,
        share=bits / into[target],
        threshold=float(threshold),
        shape=(codes_u.shape[1], codes_v.shape[1]),
    )


def _null_threshold(codes_u, codes_v, bins, quantile, seed, device) -> float:
    """The `quantile` of MI between the layers with the upper layer's samples permuted (a sample of
    at most NULL_NEURONS neurons per side; several permutations when that gives few pairs)."""
    rng = np.random.default_rng(seed)
    u = rng.choice(codes_u.shape[1], min(NULL_NEURONS, codes_u.shape[1]), replace=False)
    v = rng.choice(codes_v.shape[1], min(NULL_NEURONS, codes_v.shape[1]), replace=False)
    repeats = min(64, -(-NULL_VALUES // (len(u) * len(v))))
    null = [
        mutual_information(codes_u[:, u], codes_v[rng.permutation(len(codes_v))][:, v], bins, device=device)
        for _ in range(repeats)
    ]
    return float(np.quantile(np.concatenate([n.ravel() for n in null]), quantile))


def _top_k_per_column(mi: np.ndarray, k: int) -> np.ndarray:
    if k >= mi.shape[0]:
        return np.ones(mi.shape, dtype=bool)
    best = np.argpartition(-mi, k - 1, axis=0)[:k]
    mask = np.zeros(mi.shape, dtype=bool)
    np.put_along_axis(mask, best, True, axis=0)
    return mask


def _couple(bits, weight, target, n_targets) -> np.ndarray:
    """f_uv = m_uv |W_vu|, rescaled so that each target keeps its total incoming bits."""
    coupled = bits * weight
    scale = np.bincount(target, weights=bits, minlength=n_targets) / np.maximum(
        np.bincount(target, weights=coupled, minlength=n_targets), 1e-300
    )
    return coupled * scale[target]


def weight_coupling(module: nn.Module, n_lower: int) -> np.ndarray | None:
    """|W| from each lower neuron to each output of `module` (n_lower x out), summed over kernel
    positions and over the positions a flattened channel feeds; None when the shapes do not fit.

    W is the matrix the module computes with: a plain `nn.Linear`'s or Conv's weight; for any other
    module that is a layer (a Linear subclass that masks its weight, a parametrized or LoRA-wrapped
    Linear, GPT-2's `Conv1D`), its response to each unit input, (f(e_i) - f(0)); None for a Conv
    subclass (no such probe)."""
    if type(module) in (nn.Conv1d, nn.Conv2d, nn.Conv3d) and not module._forward_pre_hooks:
        magnitude = module.weight.detach().abs().flatten(2).sum(dim=2)
    elif type(module) is nn.Linear and not module._forward_pre_hooks:
        magnitude = module.weight.detach().abs()
    elif isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
        return None
    else:
        magnitude = _probed_matrix(module, getattr(module, "in_features", n_lower))
        if magnitude is None:
            return None
    n_out, n_in = magnitude.shape
    if n_in % n_lower:
        return None
    return magnitude.view(n_out, n_lower, n_in // n_lower).sum(dim=2).T.cpu().double().numpy()


def _probed_matrix(module: nn.Module, n_in: int) -> torch.Tensor | None:
    """|W| (out x n_in) of a module that maps n_in features affinely: its output on each unit vector
    less its output on 0; None where it does not take n_in features."""
    parameter = next(module.parameters(), None)
    if parameter is None:
        return None
    probe = torch.cat([torch.zeros(1, n_in), torch.eye(n_in)]).to(parameter)
    try:
        with torch.no_grad():
            out = module(probe)
    except Exception:  # noqa: BLE001 (a module that does not take n_in features has no such matrix)
        return None
    if not isinstance(out, torch.Tensor) or out.ndim != 2:
        return None
    return (out[1:] - out[:1]).abs().T


def shared(flows: list[Flow]) -> list[Flow]:
    """The flows with each edge's share taken over every kept edge into its target, from all the
    layers that feed the target's layer (a merge is fed by several)."""
    into: dict[int, np.ndarray] = {}
    for f in flows:
        into[f.upper] = into.get(f.upper, 0) + np.bincount(f.target, weights=f.bits, minlength=f.shape[1])
    return [dataclasses.replace(f, share=f.bits / into[f.upper][f.target]) for f in flows]


def path_flow(flows: list[Flow], widths: list[int], lower: int, upper: int) -> np.ndarray:
    """Flow from every neuron of layer `lower` to every neuron of layer `upper` (dense): the sum over
    the layer DAG's paths of the products of the share matrices along them."""
    if not 0 <= lower < upper < len(widths):
        raise ValueError(f"need 0 <= lower < upper < {len(widths)}, got {lower} and {upper}")
    reach = {lower: sp.identity(widths[lower], format="csr")}
    for f in sorted(flows, key=lambda f: (f.upper, f.lower)):  # layers are numbered in dataflow order
        if f.lower in reach and f.upper <= upper:
            reach[f.upper] = reach.get(f.upper, 0) + reach[f.lower] @ f.matrix()
    found = reach.get(upper)
    return np.zeros((widths[lower], widths[upper])) if found is None else found.toarray()


def layer_offsets(widths: list[int]) -> np.ndarray:
    """Where each layer's neurons start when the neurons of all layers are numbered in one sequence
    (one more entry than layers: the last is the number of neurons)."""
    return np.cumsum([0] + list(widths))


def flow_graph(flows: list[Flow], widths: list[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """All kept edges with neurons numbered across layers: sources, targets, bits, shares."""
    first = layer_offsets(widths)
    return (
        np.concatenate([f.source + first[f.lower] for f in flows]).astype(np.int64),
        np.concatenate([f.target + first[f.upper] for f in flows]).astype(np.int64),
        np.concatenate([f.bits for f in flows]),
        np.concatenate([f.share for f in flows]),
    )


def betweenness(flows: list[Flow], widths: list[int], seed: int = 0) -> list[np.ndarray]:
    """Normalised betweenness of every neuron on the flow graph with distance -log(share);
    estimated from sampled sources when the graph is large. One array per layer."""
    first = layer_offsets(widths)
    n = int(first[-1])
    sources, targets, _, share = flow_graph(flows, widths)
    distance = np.maximum(-np.log(share), 1e-9)  # igraph needs positive weights
    graph = igraph.Graph(n=n, edges=np.column_stack([sources, targets]).tolist(), directed=True)
    sample = None
    if n > EXACT_BETWEENNESS:
        sample = np.random.default_rng(seed).choice(n, EXACT_BETWEENNESS // 10, replace=False).tolist()
    raw = np.asarray(graph.betweenness(directed=True, weights=distance.tolist(), sources=sample))
    if sample is not None:
        raw *= n / len(sample)
    scaled = raw / max((n - 1) * (n - 2), 1)
    return [scaled[first[i] : first[i + 1]] for i in range(len(widths))]
