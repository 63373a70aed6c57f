"""Network science on NIF's flow graph: Leiden modularity communities of the whole MI flow graph,
split into one community per layer."""

import igraph
import leidenalg
import numpy as np

from ..communities import Found, join_strongest, split_by_layer
from ..context import MethodContext
from ..flow import flow_graph
from .options import FlowOptions


def find(context: MethodContext, options: FlowOptions) -> Found:
    """Leiden communities of the undirected flow graph (edge weight: bits), split per layer.

    Input features are left out of the graph by default and then join the community of the first
    hidden layer they send most flow to: every input feeds every module of a network, so pixel-level
    edges merge modules (measured on composite networks: docs/groundtruth.md, "Method notes").

    Parameters
    ----------
    context : MethodContext
        Its kept flow edges are used.
    options : FlowOptions

    Returns
    -------
    Found
        One hard membership per layer; neurons without any flow edge form one community per layer.

    References
    ----------
    .. [1] Davis et al., "NIF: A Framework for Quantifying Neural Information Flow in Deep
       Networks", arXiv:1901.08557.
    .. [2] Traag, Waltman, van Eck, "From Louvain to Leiden: guaranteeing well-connected
       communities", Scientific Reports 9, 5233 (2019), doi:10.1038/s41598-019-41695-z.
    """
    widths, first = context.widths, context.offsets
    sources, targets, bits, _ = flow_graph(context.flows, widths)
    among = np.ones(len(sources), dtype=bool) if options.inputs else sources >= first[1]
    labels = leiden_labels(sources[among], targets[among], bits[among], int(first[-1]), options.seed)
    if not options.inputs:
        f = context.flows[0]
        labels[: first[1]] = join_strongest(f.source, f.target, f.bits, first[1], labels[first[1] : first[2]])
    return Found(memberships=split_by_layer(NAME, labels, widths))


def leiden_labels(sources, targets, bits, n: int, seed: int = 0) -> np.ndarray:
    """Leiden modularity communities of an undirected weighted graph.

    Parameters
    ----------
    sources, targets : np.ndarray
        Edge ends, nodes numbered 0..n-1.
    bits : np.ndarray
        Edge weights.
    n : int
        Number of nodes.
    seed : int

    Returns
    -------
    np.ndarray
        The community of each node; nodes without any edge share the label -1.

    References
    ----------
    .. [1] Traag, Waltman, van Eck (2019), doi:10.1038/s41598-019-41695-z.
    """
    graph = igraph.Graph(n=n, edges=np.column_stack([sources, targets]).tolist(), directed=False)
    partition = leidenalg.find_partition(
        graph, leidenalg.ModularityVertexPartition, weights=np.asarray(bits, dtype=float).tolist(), seed=seed
    )
    labels = np.asarray(partition.membership)
    labels[np.asarray(graph.degree()) == 0] = -1
    return labels


NAME = "flow"
