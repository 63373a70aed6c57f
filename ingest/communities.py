"""Communities of neurons, three ways; every community lives in one layer.

- `innersight` (InnerSightNet aggregation): per layer, a Gaussian mixture fitted by EM on each
  neuron's representation attributes, k-means++ starts, K in 2..ceil(sqrt(n)) chosen by BIC; the
  soft memberships are kept. The output layer is one community per class.
- `flow` (network science on NIF): Leiden modularity communities of the whole MI flow graph; a
  community that spans layers is split into one community per layer.
- `weights` (baseline, Filan et al.): spectral clustering of the |weight| graph, split per layer.
- `relay`: each class's relay module in each hidden layer (`relay.py`); modules may overlap.
- `neurflow`: NeurFlow's neuron groups of each layer's concept vectors (`neurflow.py`).
"""

import math
import warnings
from dataclasses import dataclass, field

import igraph
import leidenalg
import numpy as np
import scipy.sparse as sp
from sklearn.cluster import SpectralClustering
from sklearn.mixture import GaussianMixture

METHODS = ("innersight", "flow", "weights", "relay", "neurflow")  # relay.py, neurflow.py
MEMBERSHIP_FLOOR = 0.1  # soft memberships below this are not kept
GMM_STARTS = 4


@dataclass
class Community:
    method: str
    layer: int
    index: int  # position among the method's communities of this layer
    members: np.ndarray  # neuron indices in the layer (primary membership)
    props: dict = field(default_factory=dict)  # evaluation and concept results, stored as is

    @property
    def size(self) -> int:
        return len(self.members)


@dataclass
class Membership:
    """Soft membership of neurons in one method's communities of one layer: p[neuron, community]."""
    method: str
    layer: int
    p: np.ndarray


def attributes(class_means: np.ndarray, acts: np.ndarray) -> np.ndarray:
    """Per neuron (rows): its class-conditional mean profile, z-scored and signed so that its
    strongest deviation is positive, then the share of samples where it is positive and the
    (z-scored) mean sizes of its positive and negative parts."""
    profile = class_means.T
    profile = (profile - profile.mean(axis=1, keepdims=True)) / np.maximum(profile.std(axis=1, keepdims=True), 1e-12)
    strongest = np.take_along_axis(profile, np.abs(profile).argmax(axis=1)[:, None], axis=1)
    profile = profile * np.where(strongest < 0, -1.0, 1.0)
    positive = np.maximum(acts, 0).mean(axis=0)
    negative = np.minimum(acts, 0).mean(axis=0)
    parts = np.column_stack([(acts > 0).mean(axis=0), _z(positive), _z(negative)])
    return np.column_stack([profile, parts])


def _z(values: np.ndarray) -> np.ndarray:
    return (values - values.mean()) / max(values.std(), 1e-12)


def innersight(layer_index: int, class_means: np.ndarray, acts: np.ndarray, seed: int = 0) -> Membership:
    """GMM communities of one layer, K by BIC."""
    features = attributes(class_means, acts)
    n = len(features)
    best = None
    for k in range(2, max(2, math.ceil(math.sqrt(n))) + 1):
        if k >= n:
            break
        gmm = GaussianMixture(k, covariance_type="diag", init_params="k-means++", n_init=GMM_STARTS,
                              reg_covar=1e-3, random_state=seed).fit(features)
        bic = gmm.bic(features)
        if best is None or bic < best[0]:
            best = (bic, gmm)
    p = np.ones((n, 1)) if best is None else best[1].predict_proba(features)
    return Membership("innersight", layer_index, _drop_empty(p))


def one_per_neuron(method: str, layer_index: int, width: int) -> Membership:
    return Membership(method, layer_index, np.eye(width))


def flow_partition(sources, targets, bits, n: int, seed: int = 0) -> np.ndarray:
    """Leiden (modularity) community of each of the n neurons on the undirected MI flow graph;
    neurons without any flow edge share the label -1 (one "unconnected" community per layer)."""
    graph = igraph.Graph(n=n, edges=np.column_stack([sources, targets]).tolist(), directed=False)
    partition = leidenalg.find_partition(graph, leidenalg.ModularityVertexPartition,
                                         weights=np.asarray(bits, dtype=float).tolist(), seed=seed)
    labels = np.asarray(partition.membership)
    labels[np.asarray(graph.degree()) == 0] = -1
    return labels


def spectral_partition(sources, targets, weights, n: int, k: int, seed: int = 0) -> np.ndarray:
    """Spectral clustering of the undirected |weight| graph into k clusters."""
    adjacency = np.zeros((n, n))
    np.add.at(adjacency, (sources, targets), weights)
    adjacency = adjacency + adjacency.T + np.eye(n) * 1e-9  # keep isolated neurons valid
    with warnings.catch_warnings():  # layers without weights between them leave the graph disconnected
        warnings.filterwarnings("ignore", message="Graph is not fully connected")
        return SpectralClustering(n_clusters=min(k, n - 1), affinity="precomputed", random_state=seed,
                                  assign_labels="cluster_qr").fit_predict(adjacency)


def split_by_layer(method: str, labels: np.ndarray, widths: list[int]) -> list[Membership]:
    """A global partition of all neurons as hard memberships, one per layer."""
    first = np.cumsum([0] + widths)
    memberships = []
    for layer, width in enumerate(widths):
        local = labels[first[layer]:first[layer + 1]]
        _, compact = np.unique(local, return_inverse=True)
        memberships.append(Membership(method, layer, np.eye(compact.max() + 1)[compact]))
    return memberships


def communities_of(memberships: list[Membership]) -> list[Community]:
    """Communities from soft memberships; a neuron's primary community is its most probable one."""
    found = []
    for m in memberships:
        primary = m.p.argmax(axis=1)
        found += [Community(m.method, m.layer, index, np.flatnonzero(primary == index))
                  for index in range(m.p.shape[1])]
    return found


@dataclass
class CommunityFlow:
    """Summed member flow between one method's communities of layers `lower` and `lower + 1`."""
    method: str
    lower: int
    source: np.ndarray  # `index` of the community in the lower layer
    target: np.ndarray  # `index` of the community in the upper layer
    bits: np.ndarray
    edges: np.ndarray
    weight: np.ndarray | None = None  # NeurFlow's group-to-group circuit weight (method neurflow)


def community_flows(communities: list[Community], flows, widths: list[int]) -> list[CommunityFlow]:
    """For every method and adjacent pair of layers, the flow between every two communities: the sum
    of member-to-member flow (communities may overlap, as relay modules do)."""
    result = []
    for method in dict.fromkeys(c.method for c in communities):
        for flow in flows:
            lower = [c for c in communities if c.method == method and c.layer == flow.lower]
            upper = [c for c in communities if c.method == method and c.layer == flow.lower + 1]
            if not lower or not upper:
                continue
            into_lower, into_upper = _indicator(lower, widths[flow.lower]), _indicator(upper, widths[flow.lower + 1])
            bits = (into_lower.T @ flow.matrix("bits") @ into_upper).toarray()
            edges = (into_lower.T @ flow.matrix("edges") @ into_upper).toarray()
            source, target = np.nonzero(edges)
            result.append(CommunityFlow(method, flow.lower, np.array([lower[i].index for i in source], dtype=np.int64),
                                        np.array([upper[j].index for j in target], dtype=np.int64),
                                        bits[source, target], edges[source, target].astype(np.int64)))
    return result


def _indicator(found: list[Community], width: int) -> sp.csr_matrix:
    """Neurons x communities 0/1 matrix, one column per community of `found`, in its order."""
    rows = np.concatenate([c.members for c in found])
    cols = np.concatenate([np.full(c.size, i) for i, c in enumerate(found)])
    return sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(width, len(found)))


def _drop_empty(p: np.ndarray) -> np.ndarray:
    """Keep the components that are someone's most probable one, renumbered in order."""
    used = np.unique(p.argmax(axis=1))
    p = p[:, used]
    return p / p.sum(axis=1, keepdims=True)
