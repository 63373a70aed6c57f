"""The relay question, "which communities relay class k from input to output", as a best-path search.

A chain is one community per layer along a path of the layer DAG (skips included), linked by
community FLOWS_TO, from an input community to class k's own output community. Communities made
for one class (relay modules, NeurFlow groups: property `class`) are only in that class's chains.
A chain's score is the sum of its hidden communities' scores for k (`SCORES`), ties broken by the
sum of its links' mean flow (bits per member edge). The top chains are the k best paths of the
community DAG (`queries.paths.best_paths`), so the analysis (which measures the top chain's
fidelity) and the stored model's `relay-path` answer it with the same function.
"""

from collections.abc import Iterable
from dataclasses import dataclass

from .paths import Link, best_paths

SCORES = {
    "closing": "closing_specificity",
    "relay": "relay_specificity",
}
"""Community scores a chain can be ranked by, each a per-class list stored on the community:

- `closing` (default): the accuracy class k loses when the community is closed minus the most any
  other class loses (`closing_specificity`, accuracy units 0..1; negative: closing it hurts another
  class more). Measured on trained networks, chains ranked by it are the ones whose closing hurts
  class k most specifically (`bench/chains.py`; the table is in the README's "The relay-path score").
- `relay`: the paper's conditional relay information I_R(S) = I(X_in; X_out | L \\ S) - I(X_in;
  X_out | L) for k minus the most it relays for another class (`relay_specificity`, bits; negative:
  it relays another class more). Near 0 on redundant layers, where it cannot rank chains.
"""
DEFAULT_SCORE = "closing"
SCORE_MEANING = {
    "closing": "accuracy lost by the class minus the most lost by another class, summed over the chain's communities "
    "(0..1 each; negative: closing them hurts another class more)",
    "relay": "bits: relay information for the class minus the most relayed for another class, summed over the "
    "chain's communities (negative: they relay another class more)",
}
FAITHFUL_RATIO = 3.0  # a closed chain is specific / beats chance when class k loses at least this many times more


@dataclass(frozen=True)
class Node:
    """A community as the chain search reads it: its uid, layer, the class it is made for (None if
    any), its relay bits and score for the class asked, and its label."""

    uid: str
    layer: int
    made_for: int | None
    bits: float
    score: float
    label: str = ""


def top_chains(
    nodes: Iterable[Node],
    links: Iterable[tuple[str, str, float]],
    k: int,
    n_layers: int,
    *,
    min_bits: float | None = None,
    limit: int = 5,
) -> list[dict]:
    """The `limit` best chains for class `k`, best first, as rows: `chain` (uids), `layers`, `bits`,
    `labels`, `score` (the sum of the hidden communities' scores) and `flow` (the sum of the links'
    mean flow, the tie-break).

    Parameters
    ----------
    nodes : iterable of Node
        One method's communities.
    links : iterable of (source uid, target uid, mean flow)
        Their FLOWS_TO links.
    k : int
        The class.
    n_layers : int
        The model's layers (the last holds the class outputs).
    min_bits : float, optional
        Least relay bits for k of every hidden community of a chain.
    limit : int
    """
    last = n_layers - 1
    by_uid = {n.uid: n for n in nodes if _allowed(n, k, last, min_bits)}
    target = next((n.uid for n in by_uid.values() if n.layer == last), None)
    if target is None:
        return []
    paths = best_paths(
        [n.uid for n in by_uid.values() if n.layer == 0],
        target,
        [
            Link(a, b, 0.0 if by_uid[b].layer == last else by_uid[b].score, mean or 0.0)
            for a, b, mean in links
            if a in by_uid and b in by_uid
        ],
        lambda uid: by_uid[uid].layer,
        limit,
    )
    return [_row([by_uid[uid] for uid in p.nodes], p.score, p.tie) for p in paths]


def _allowed(n: Node, k: int, last: int, min_bits: float | None) -> bool:
    if n.layer == 0:
        return True
    if n.layer == last:
        return n.made_for == k
    return (n.made_for is None or n.made_for == k) and (min_bits is None or n.bits >= min_bits)


def _row(chain: list[Node], score: float, flow: float) -> dict:
    return {
        "chain": [n.uid for n in chain],
        "layers": [n.layer for n in chain],
        "bits": [n.bits for n in chain],
        "labels": [n.label for n in chain],
        "score": score,
        "flow": flow,
    }


def fidelity_text(row: dict, k: int) -> str:
    """What a relay-path row's measured fidelity says, in one line (or that it was not measured)."""
    if row.get("drop_class") is None:
        return "fidelity not measured: the analysis closes each method's top chain by the default score"
    faithful = min(row["specificity"], row["vs_random"]) >= FAITHFUL_RATIO
    return (
        f"closed, class {k} loses {row['drop_class']:.3f} of its accuracy, the most-hurt other class "
        f"{row['drop_other']:.3f}, class {k} with random chains of the same sizes {row['drop_random']:.3f}: "
        + ("faithful" if faithful else f"not faithful (both must be {FAITHFUL_RATIO:g}x)")
    )
