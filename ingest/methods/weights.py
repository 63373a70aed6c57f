"""The clusterability baseline: spectral clustering of the |weight| graph, split per layer."""

import warnings

import numpy as np
from sklearn.cluster import SpectralClustering

from ..communities import Found, join_strongest, split_by_layer
from ..context import MethodContext
from ..flow import weight_coupling
from .options import WeightsOptions


def find(context: MethodContext, options: WeightsOptions) -> Found:
    """Spectral clusters of the graph whose edges are the |weights| along the edges of the layer DAG.

    Input features are left out of the graph by default and then join the first-hidden-layer
    cluster their weights feed most: on 784-pixel MNIST composites the pixels, connected to every
    module, swamped the spectrum (docs/groundtruth.md, "Method notes").

    Parameters
    ----------
    context : MethodContext
        Its layers and the model whose weights are read.
    options : WeightsOptions

    Returns
    -------
    Found
        One hard membership per layer, or `skipped` when no two layers are linked by one
        weight matrix (e.g. named layers that are not each other's inputs).

    References
    ----------
    .. [1] Filan et al., "Clusterability in Neural Networks", arXiv:2103.03386.
    """
    edges = weight_edges(context)
    if edges is None:
        return Found(skipped="no two layers are linked by one weight matrix")
    sources, targets, weights = edges
    first, k = context.offsets, options.clusters or context.n_classes
    inner = sources >= first[1]
    if options.inputs or not inner.any():
        return Found(
            memberships=split_by_layer(NAME, spectral_labels(*edges, first[-1], k, options.seed), context.widths)
        )
    labels = np.full(first[-1], -1)
    labels[first[1] :] = spectral_labels(
        sources[inner] - first[1], targets[inner] - first[1], weights[inner], first[-1] - first[1], k, options.seed
    )
    fed = ~inner  # the edges from the inputs, all into the first hidden layer
    labels[: first[1]] = join_strongest(
        sources[fed], targets[fed] - first[1], weights[fed], first[1], labels[first[1] : first[2]]
    )
    return Found(memberships=split_by_layer(NAME, labels, context.widths))


def weight_edges(context: MethodContext) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """The |weight| graph along the edges of the layer DAG that one weight matrix makes (a Linear or
    Conv layer fed by one layer).

    Parameters
    ----------
    context : MethodContext

    Returns
    -------
    tuple of np.ndarray or None
        (sources, targets, |weight|) with neurons numbered across layers (`Analysis.offsets`), summed
        over kernel positions (`ingest.flow.weight_coupling`); None when no two layers are linked
        by one weight matrix.
    """
    modules = dict(context.model.named_modules())
    edges = []
    for lower_index, upper_index in context.feeds:
        lower, upper = context.layers[lower_index], context.layers[upper_index]
        single = upper.module and len(upper.inputs) == 1
        magnitude = weight_coupling(modules[upper.module], lower.width) if single else None
        if magnitude is not None:
            u, v = np.nonzero(magnitude)
            edges.append((u + context.offsets[lower.index], v + context.offsets[upper.index], magnitude[u, v]))
    return tuple(np.concatenate(parts) for parts in zip(*edges)) if edges else None


def spectral_labels(sources, targets, weights, n: int, k: int, seed: int = 0) -> np.ndarray:
    """Spectral clustering of an undirected weighted graph.

    Parameters
    ----------
    sources, targets, weights : np.ndarray
        Edges of the graph on nodes 0..n-1.
    n, k : int
        Number of nodes and of clusters.
    seed : int

    Returns
    -------
    np.ndarray
        The cluster of each node.

    References
    ----------
    .. [1] Filan et al., "Clusterability in Neural Networks", arXiv:2103.03386.
    .. [2] von Luxburg, "A Tutorial on Spectral Clustering", arXiv:0711.0189.
    """
    adjacency = np.zeros((n, n))
    np.add.at(adjacency, (sources, targets), weights)
    adjacency = adjacency + adjacency.T + np.eye(n) * 1e-9  # keep isolated neurons valid
    with warnings.catch_warnings():  # layers without weights between them leave the graph disconnected
        warnings.filterwarnings("ignore", message="Graph is not fully connected")
        return SpectralClustering(
            n_clusters=min(k, n - 1), affinity="precomputed", random_state=seed, assign_labels="cluster_qr"
        ).fit_predict(adjacency)


NAME = "weights"
