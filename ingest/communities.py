"""Communities of neurons: the types every community method returns, and what is computed on any
method's communities (primary members, per-layer splits, community flow).

A method (see `ingest.methods`) is one module with an entry in the registry; its `find` returns a
`Found`. Every community lives in one layer.
"""

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from .flow import layer_offsets

MEMBERSHIP_FLOOR = 0.1  # soft memberships below this are not kept


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


def split_by_layer(method: str, labels: np.ndarray, widths: list[int]) -> list[Membership]:
    """A global partition of all neurons as hard memberships, one per layer."""
    first = layer_offsets(widths)
    memberships = []
    for layer in range(len(widths)):
        local = labels[first[layer] : first[layer + 1]]
        _, compact = np.unique(local, return_inverse=True)
        memberships.append(Membership(method, layer, np.eye(compact.max() + 1)[compact]))
    return memberships


def join_strongest(sources, targets, weights, n_lower: int, upper_labels: np.ndarray) -> np.ndarray:
    """For each of the `n_lower` neurons of a layer, the community of the layer above that its edges
    (sources in the lower layer, targets in the upper) weigh most into; -1 without any edge to a
    labelled neuron. Used to place input features, which feed every module, after the partition."""
    into = np.zeros((n_lower, max(upper_labels.max() + 1, 1)))
    labelled = upper_labels[targets] >= 0
    np.add.at(into, (sources[labelled], upper_labels[targets][labelled]), weights[labelled])
    return np.where(into.sum(axis=1) > 0, into.argmax(axis=1), -1)


def communities_of(memberships: list[Membership]) -> list[Community]:
    """Communities from soft memberships; a neuron's primary community is its most probable one."""
    found = []
    for m in memberships:
        primary = m.p.argmax(axis=1)
        found += [
            Community(m.method, m.layer, index, np.flatnonzero(primary == index)) for index in range(m.p.shape[1])
        ]
    return found


@dataclass
class CommunityFlow:
    """Summed member flow between one method's communities of layers `lower` and `upper` (an edge
    of the layer DAG)."""

    method: str
    lower: int
    upper: int
    source: np.ndarray  # `index` of the community in the lower layer
    target: np.ndarray  # `index` of the community in the upper layer
    bits: np.ndarray
    edges: np.ndarray
    props: dict[str, np.ndarray] = field(default_factory=dict)  # a method's own values per link (`Found.link_props`)

    @property
    def mean(self) -> np.ndarray:
        """Bits per member edge of each link (0 for a link without member flow)."""
        return np.divide(self.bits, self.edges, out=np.zeros(len(self.bits)), where=self.edges > 0)

    def attach(self, name: str, values: dict[tuple[int, int], float]) -> None:
        """Set property `name` of every link from `values` keyed by (source, target), 0 where absent;
        pairs not yet linked become links without member flow."""
        linked = set(zip(self.source.tolist(), self.target.tolist()))
        extra = sorted(pair for pair in values if pair not in linked)
        if extra:
            self.source = np.concatenate([self.source, [i for i, _ in extra]]).astype(np.int64)
            self.target = np.concatenate([self.target, [j for _, j in extra]]).astype(np.int64)
            self.bits = np.concatenate([self.bits, np.zeros(len(extra))])
            self.edges = np.concatenate([self.edges, np.zeros(len(extra), dtype=np.int64)])
            self.props = {k: np.concatenate([v, np.zeros(len(extra))]) for k, v in self.props.items()}
        self.props[name] = np.array(
            [values.get((i, j), 0.0) for i, j in zip(self.source.tolist(), self.target.tolist())]
        )


def community_flows(communities: list[Community], flows, widths: list[int]) -> list[CommunityFlow]:
    """For every method and edge of the layer DAG, the flow between every two communities: the sum
    of member-to-member flow (communities may overlap, as relay modules do)."""
    result = []
    for method in dict.fromkeys(c.method for c in communities):
        for flow in flows:
            lower = [c for c in communities if c.method == method and c.layer == flow.lower]
            upper = [c for c in communities if c.method == method and c.layer == flow.upper]
            if not lower or not upper:
                continue
            into_lower, into_upper = _indicator(lower, widths[flow.lower]), _indicator(upper, widths[flow.upper])
            bits = (into_lower.T @ flow.matrix("bits") @ into_upper).toarray()
            edges = (into_lower.T @ flow.matrix("edges") @ into_upper).toarray()
            source, target = np.nonzero(edges)
            result.append(
                CommunityFlow(
                    method,
                    flow.lower,
                    flow.upper,
                    np.array([lower[i].index for i in source], dtype=np.int64),
                    np.array([upper[j].index for j in target], dtype=np.int64),
                    bits[source, target],
                    edges[source, target].astype(np.int64),
                )
            )
    return result


def _indicator(found: list[Community], width: int) -> sp.csr_matrix:
    """Neurons x communities 0/1 matrix, one column per community of `found`, in its order."""
    rows = np.concatenate([c.members for c in found])
    cols = np.concatenate([np.full(c.size, i) for i, c in enumerate(found)])
    return sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(width, len(found)))


def specificity(values: np.ndarray) -> np.ndarray:
    """Per class k: values[k] minus the most any other class has (the value itself for one class)."""
    if len(values) < 2:
        return values.copy()
    top2 = np.sort(values)[-2:]
    others = np.where(values == top2[1], top2[0], top2[1])
    return values - others


def silhouette(distances: np.ndarray, labels: np.ndarray) -> float:
    """The mean silhouette of a labelling, from the points' distance matrix (computed once for many
    labellings): scikit-learn's `silhouette_score` without recomputing the distances.

    s(i) = (b(i) - a(i)) / max(a(i), b(i)), a(i) the mean distance to the other points of i's cluster,
    b(i) the least mean distance to another cluster's points; 0 for a point alone in its cluster.

    References
    ----------
    .. [1] Rousseeuw, "Silhouettes", J. Comput. Appl. Math. 20 (1987), doi:10.1016/0377-0427(87)90125-7.
    """
    labels = np.unique(labels, return_inverse=True)[1].ravel()
    onehot = np.eye(labels.max() + 1)[labels]
    sums, sizes = distances @ onehot, onehot.sum(axis=0)
    rows = np.arange(len(labels))
    own = sizes[labels]
    a = sums[rows, labels] / np.maximum(own - 1, 1)
    means = sums / sizes
    means[rows, labels] = np.inf
    b = means.min(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        s = np.nan_to_num((b - a) / np.maximum(a, b))
    return float(np.where(own > 1, s, 0.0).mean())


def drop_empty(p: np.ndarray) -> np.ndarray:
    """Keep the components that are someone's most probable one, renumbered in order."""
    used = np.unique(p.argmax(axis=1))
    p = p[:, used]
    return p / p.sum(axis=1, keepdims=True)


@dataclass
class Found:
    """What one community method finds in one analysis.

    `memberships` are soft (or hard) memberships, one per layer, from which communities are made
    (a neuron's primary community is its most probable one); `communities` are made directly by
    methods whose communities may overlap. `neuron_props[layer][name]` holds one value (or one per
    class: width x C) per neuron of the layer; `link_props[name][(lower, upper, i, j)]` a value on
    the community link from community i of layer `lower` to community j of layer `upper`; a link
    that carries such a value but no member flow is added. `layer_props[layer][name]` is stored on
    the Layer. `skipped` says why the method found
    nothing (it is then left out of the model's methods).
    """

    memberships: list[Membership] = field(default_factory=list)
    communities: list[Community] = field(default_factory=list)
    neuron_props: dict[int, dict[str, np.ndarray]] = field(default_factory=dict)
    link_props: dict[str, dict[tuple[int, int, int, int], float]] = field(default_factory=dict)
    layer_props: dict[int, dict[str, object]] = field(default_factory=dict)  # values stored on the Layer
    metrics: dict[str, object] = field(default_factory=dict)
    skipped: str = ""

    def all_communities(self) -> list[Community]:
        return communities_of(self.memberships) + self.communities
