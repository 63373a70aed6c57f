"""The relay question, "which communities relay class k from input to output", as a best-path search.

A chain is one community per layer along a path of the layer DAG (skips included), linked by
community FLOWS_TO, from an input community to class k's own output community. Communities made
for one class (relay modules, NeurFlow groups: property `class`) are only in that class's chains.
A chain's score is the sum of its input and hidden communities' scores for k (`SCORES`), ties broken
by the sum of its links' mean flow (bits per member edge). The top chains are the k best paths of the
community DAG (`queries.paths.best_paths`), so the analysis (which measures the top chain's
fidelity, `ingest.fidelity`) and the stored model's `relay-path` (`relay_path`: one read of the
method's communities and one of their links) answer it with the same function.
"""

from collections.abc import Iterable
from typing import NamedTuple

import numpy as np

from neurocypher.errors import UserError

from .paths import Link, best_paths
from .schema import on_complete_model

SCORES = {
    "closing": "closing_specificity",
    "relay": "relay_specificity",
}
"""Community scores a chain can be ranked by, each a per-class list stored on the community:

- `closing` (default): the accuracy class k loses when the community is closed minus the most any
  other class loses (`closing_specificity`, accuracy units 0..1; negative: closing it hurts another
  class more). Measured on trained networks, chains ranked by it are the ones whose closing hurts
  class k most specifically (`bench/chains.py`; the table is in docs/methods/evaluation.md).
- `relay`: the paper's conditional relay information I_R(S) = I(X_in; X_out | L \\ S) - I(X_in;
  X_out | L) for k minus the most it relays for another class (`relay_specificity`, bits; negative:
  it relays another class more). Near 0 on redundant layers, where it cannot rank chains.
"""
DEFAULT_SCORE = "closing"
SCORE_UNITS = {"closing": "accuracy", "relay": "bits"}


def score_meaning(score: str, k="k", communities: str = "input and hidden communities") -> str:
    """What a chain's `score` sums for class `k`, in words: the one text the CLI, the demo and the
    explorer show (its unit is `SCORE_UNITS[score]`; negative: they matter more to another class)."""
    return {
        "closing": f"the accuracy class {k} loses when each of its {communities} is closed minus the most "
        "another class loses (0..1 each), summed",
        "relay": f"the relay information for class {k} of each of its {communities} minus the most it relays "
        "for another class, summed",
    }[score]


FAITHFUL_RATIO = 3.0  # a closed chain is specific / beats chance when class k loses at least this many times more
ANSWER_ROWS = 500_000  # most communities, and most links, that relay-path (or flow-between) reads
DIGITS = 12  # significant digits of the scores and flows ranked: FalkorDB replies with 15, Neo4j and Python 17


class Node(NamedTuple):  # a tuple, as `queries.paths.Link`: made by the ten thousand per question
    """A community as the chain search reads it: its uid, layer, the class it is made for (None if
    any), its relay bits and score for the class asked, and its label."""

    uid: str
    layer: int
    made_for: int | None
    bits: float
    score: float
    label: str = ""
    inputs: tuple = ()  # an input community's members named (features, tokens), strongest first


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
    `labels`, `inputs` (the input community's named members, strongest first), `score` (the sum of
    the input and hidden communities' scores) and `flow` (the sum of the links' mean flow, the tie-break).

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
    score = dict(zip(by_uid, _digits([n.score for n in by_uid.values()]).tolist()))
    kept = [(a, b, mean or 0.0) for a, b, mean in links if a in by_uid and b in by_uid]
    flows = _digits([mean for _, _, mean in kept]).tolist()
    paths = best_paths(
        {uid: score[uid] for uid, n in by_uid.items() if n.layer == 0},
        target,
        [Link(a, b, 0.0 if by_uid[b].layer == last else score[b], flow) for (a, b, _), flow in zip(kept, flows)],
        lambda uid: by_uid[uid].layer,
        limit,
    )
    return [_row([by_uid[uid] for uid in p.nodes], p.score, p.tie) for p in paths]


def _digits(values: list[float]) -> np.ndarray:
    """`values` to DIGITS significant digits, so that chains that tie tie on every backend and in the
    analysis (one pass over the scores and one over the links, not a conversion per link)."""
    values = np.asarray(values, dtype=float)
    magnitude = np.floor(np.log10(np.abs(np.where(values == 0, 1.0, values))))
    scale = 10.0 ** (DIGITS - 1 - magnitude)
    return np.round(values * scale) / scale


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
        "inputs": list(chain[0].inputs),
        "score": score,
        "flow": flow,
    }


RELAY_PATH_COMMUNITIES = on_complete_model("""
MATCH (c:Community {generation: m.generation, method: $method})
WHERE c.class IS NULL OR c.class = $class
RETURN c.uid AS uid, c.layer AS layer, c.class AS made_for, c.relay_bits[$class] AS bits, c.label AS label,
       c.top_inputs AS inputs,
       c.relay_specificity[$class] AS relay, c.closing_specificity[$class] AS closing, m.n_layers AS n_layers
LIMIT $most""")
RELAY_PATH_LINKS = on_complete_model("""
MATCH (a:Community {generation: m.generation, method: $method})-[f:FLOWS_TO]->(b:Community)
WHERE (a.class IS NULL OR a.class = $class) AND (b.class IS NULL OR b.class = $class)
  AND ($min_bits IS NULL OR ((a.layer = 0 OR a.relay_bits[$class] >= $min_bits)
                             AND (b.layer = m.n_layers - 1 OR b.relay_bits[$class] >= $min_bits)))
RETURN a.uid AS source, b.uid AS target, f.mean AS mean
LIMIT $most""")
CHAIN_FIDELITY = on_complete_model("""
MATCH (c:Community {generation: m.generation, method: $method, class: $class})
WHERE c.layer = m.n_layers - 1
RETURN c.chain AS chain, c.chain_score AS score_kind, c.chain_drop AS drop_class, c.chain_other_drop AS drop_other,
       c.chain_random_drop AS drop_random, c.chain_specificity AS specificity, c.chain_vs_random AS vs_random""")
FIDELITY_COLUMNS = ("drop_class", "drop_other", "drop_random", "specificity", "vs_random")
RELAY_PATH_READS = (RELAY_PATH_COMMUNITIES, RELAY_PATH_LINKS, CHAIN_FIDELITY)


def relay_path(store, params: dict) -> list[dict]:
    """The relay-path answer (`top_chains`) from one read of the method's communities
    and one of their links (each at most ANSWER_ROWS rows, unsorted: paging by ORDER BY and SKIP
    would sort them once per page): O(communities + links) read, O(limit (V + E) log limit) search,
    whatever the depth. The chain whose fidelity the analysis measured (stored on the class's output
    community) gets its numbers; other chains get None there."""
    model, score = params["model"], params["score"]
    read = {"model": model, **{key: params[key] for key in ("method", "class", "min_bits")}, "most": ANSWER_ROWS + 1}
    rows = store.read(RELAY_PATH_COMMUNITIES, read, model=model)
    if not rows:
        return []
    links = store.read(RELAY_PATH_LINKS, read, model=model)
    if max(len(rows), len(links)) > ANSWER_ROWS:
        raise UserError(f"relay-path reads at most {ANSWER_ROWS} communities and links of one method; {model} has more")
    nodes = [
        Node(
            r["uid"],
            r["layer"],
            r["made_for"],
            r["bits"] or 0.0,
            r[score] or 0.0,
            r["label"] or "",
            tuple(r["inputs"] or ()),
        )
        for r in rows
    ]
    found = top_chains(
        nodes,
        [(r["source"], r["target"], r["mean"]) for r in links],
        params["class"],
        rows[0]["n_layers"],
        min_bits=params["min_bits"],
        limit=params["limit"],
    )
    measured = store.read(CHAIN_FIDELITY, read, model=model)
    measured = measured[0] if measured else {}
    for row in found:
        same = measured.get("chain") == row["chain"] and measured.get("score_kind") == score
        row.update({column: measured.get(column) if same else None for column in FIDELITY_COLUMNS})
    return found


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
