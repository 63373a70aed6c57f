"""The k best paths of a directed acyclic graph whose score is a sum along the path.

`relay-path` (a chain of communities from an input community to a class's output community) and
`flow-between` (a chain of neurons ranked by the product of flow shares, a sum of log shares) are
both k-best path questions on a layered DAG, so both are answered by `best_paths` after bounded
reads of the links they need: the work grows as k (V + E) log k, whatever the depth, where spelling
out every chain in Cypher grows as (width)^depth.
"""

import heapq
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from typing import NamedTuple


class Link(NamedTuple):  # a tuple: made by the hundred thousand per question
    """One edge of the DAG: `gain` is added to a path's score and `tie` to its tie-break when the
    path takes it."""

    source: Hashable
    target: Hashable
    gain: float
    tie: float = 0.0


@dataclass(frozen=True)
class Path:
    nodes: tuple
    score: float
    tie: float


def best_paths(sources: Mapping[Hashable, float], target: Hashable, links: Iterable[Link], order, k: int) -> list[Path]:
    """The `k` paths from any of `sources` to `target` with the highest score (ties: the highest
    tie-break, then the order of the links' sources), best first, whatever order the links come in.

    Parameters
    ----------
    sources : mapping of node key to float
        Where a path may start, each with the score a path starting there starts from.
    target : node key
    links : iterable of Link
        The DAG's edges; a node's score, if it has one, is put on the links into it.
    order : callable
        A key that sorts the nodes topologically (every link goes from a lower to a higher key),
        such as the layer index.
    k : int

    Returns
    -------
    list of Path

    Notes
    -----
    Dynamic programming in topological order, keeping the k best partial paths into each node:
    a prefix of one of the k best paths into a node need not be among the k best into its own
    end, but a path that is among the k best into the target is made of a prefix among the k best
    into each of its nodes (else swapping in a better prefix would give k better paths), so the
    recursion is exact for lexicographic (score, tie) sums [1]_. O(k (V + E) log k).

    References
    ----------
    .. [1] D. Eppstein, "Finding the k shortest paths", SIAM J. Computing 28(2), 652-673 (1998),
       doi:10.1137/S0097539795290477 (section 1: the k best paths of a DAG by dynamic programming).
    """
    into: dict[Hashable, list[Link]] = {}
    for link in sorted(links, key=lambda link: link.source):  # equal paths: the same pick from any store's rows
        into.setdefault(link.target, []).append(link)
    # a partial path is (score, tie, its last node, the partial path before it): no copy per step
    best: dict[Hashable, list[tuple]] = {s: [(float(start), 0.0, s, None)] for s, start in sources.items()}
    for node in sorted(set(into) - set(best), key=order):
        candidates = (
            (path[0] + link.gain, path[1] + link.tie, node, path)
            for link in into[node]
            for path in best.get(link.source, ())
        )
        kept = heapq.nlargest(k, candidates, key=lambda path: (path[0], path[1]))
        if kept:
            best[node] = kept
    return [Path(_nodes(path), path[0], path[1]) for path in best.get(target, [])]


def _nodes(path: tuple) -> tuple:
    """The nodes of a partial path, first to last."""
    nodes = []
    while path is not None:
        nodes.append(path[2])
        path = path[3]
    return tuple(reversed(nodes))
