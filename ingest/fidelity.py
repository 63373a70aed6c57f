"""Chain fidelity: the causal check of a relay-path answer.

For an answer "chain c_1 .. c_m relays class k", every hidden community of the chain is closed at
once (members set to their mean over the probe set, or to 0 without `close_to_mean`) and each
class's accuracy on the probe set is measured. The answer is *specific* when class k loses at least FAITHFUL_RATIO times
what the most-hurt other class loses, and *beats chance* when class k loses at least FAITHFUL_RATIO
times the median of what it loses over random chains of the same sizes in the same layers: the
analogue of NeurFlow's fidelity (core against random neurons, Cao et al. 2025) for whole chains.
"""

import numpy as np

from neurocypher.progress import progress_bar
from neurocypher.queries.chains import DEFAULT_SCORE, FAITHFUL_RATIO, SCORES, Node, top_chains
from neurocypher.queries.schema import ROLE_THRESHOLD

from .closing import class_accuracies, closing_of, predict_chains
from .communities import Community

DROP_FLOOR = ROLE_THRESHOLD  # drops below this (half a percentage point) count as this in a ratio's denominator


def chain_nodes(a, method: str, k: int, score: str = DEFAULT_SCORE) -> tuple[list[Node], list[tuple]]:
    """One method's communities and links of an analysis as `queries.chains.top_chains` reads them from
    the store, for class k."""
    prop = SCORES[score]
    nodes = [
        Node(a.community_uid(c), c.layer, c.props.get("class"), c.props["relay_bits"][k], c.props[prop][k])
        for c in a.communities
        if c.method == method
    ]
    uid = {(c.layer, c.index): a.community_uid(c) for c in a.communities if c.method == method}
    links = [
        (uid[(f.lower, i)], uid[(f.upper, j)], mean)
        for f in a.community_flows
        if f.method == method
        for i, j, mean in zip(f.source.tolist(), f.target.tolist(), f.mean.tolist())
    ]
    return nodes, links


def top_chain(a, method: str, k: int, score: str = DEFAULT_SCORE) -> list[Community]:
    """The communities of the top relay-path chain for class k (empty when no chain reaches k)."""
    rows = top_chains(*chain_nodes(a, method, k, score), k, len(a.layers), limit=1)
    by_uid = {a.community_uid(c): c for c in a.communities if c.method == method}
    return [by_uid[uid] for uid in rows[0]["chain"]] if rows else []


def measure_chains(
    model,
    X: np.ndarray,
    a,
    *,
    score: str = DEFAULT_SCORE,
    draws: int = 20,
    to_mean: bool = True,
    batch_size: int = 256,
) -> dict:
    """Close each method's top chain for each class and store its fidelity on the class's output
    community (`chain`, `chain_score`, `chain_drop`, `chain_other_drop`, `chain_random_drop`,
    `chain_specificity`, `chain_vs_random`); return per method the share of classes whose chain is
    specific (`chain_specificity_<method>`) and beats chance (`chain_vs_random_<method>`).

    Parameters
    ----------
    model : torch.nn.Module
        Returns the class scores (`ingest.neuronize.ClassScores`).
    X : numpy array
        The probe set.
    a : ingest.analysis.Analysis
        With communities, their closing and relay bits, and community flows.
    score : str
        What ranks the chains (`queries.chains.SCORES`).
    draws : int
        Random chains per answer, each of the top chain's hidden community sizes in the same layers
        (seeded by method, class and draw).
    to_mean, batch_size
        As in `ingest.closing.evaluate_closing`.
    """
    last = len(a.layers) - 1

    def predicted(rows: np.ndarray, chains: list[list[tuple[int, np.ndarray]]]) -> np.ndarray:
        closings = [[closing_of(a.layers[layer], members, to_mean) for layer, members in sets] for sets in chains]
        return predict_chains(model, X[rows], closings, batch_size)

    metrics = {}
    with progress_bar(len(a.methods) * a.n_classes, "chain fidelity") as advance:
        for m, method in enumerate(a.methods):
            found = []
            for k in range(a.n_classes):
                chain = top_chain(a, method, k, score)
                if chain:
                    hidden = [(c.layer, c.members) for c in chain if 0 < c.layer < last]
                    (closed,) = predicted(np.arange(len(X)), [hidden])
                    drops = a.class_accuracy - class_accuracies(closed, a.labels, a.n_classes)[1]
                    own = np.flatnonzero(a.labels == k)  # a random chain's drop for k needs class k's samples only
                    random = _random_chains(a, hidden, draws, np.random.default_rng([m, k])) if len(own) else []
                    random_drops = [a.class_accuracy[k] - (p == k).mean() for p in predicted(own, random)]
                    found.append(_fidelity(a, chain, k, drops, random_drops) | {"chain_score": score})
                    chain[-1].props.update(found[-1])
                advance()
            for summary in ("chain_specificity", "chain_vs_random") if found else ():
                metrics[f"{summary}_{method}"] = float(np.mean([f[summary] >= FAITHFUL_RATIO for f in found]))
    return metrics


def _random_chains(a, hidden: list[tuple[int, np.ndarray]], draws: int, rng) -> list[list[tuple[int, np.ndarray]]]:
    """`draws` random chains: in each layer of `hidden`, as many random neurons as the community has."""
    if not hidden:
        return []
    return [
        [(layer, rng.choice(a.layers[layer].width, len(members), replace=False)) for layer, members in hidden]
        for _ in range(draws)
    ]


def _fidelity(a, chain: list[Community], k: int, closed: np.ndarray, random: list[float]) -> dict:
    """The stored fidelity of `chain` for class k from the per-class drops when it is closed and
    class k's drops when random chains are."""
    other = float(np.max(np.delete(closed, k))) if a.n_classes > 1 else 0.0
    random_drop = float(np.median(random)) if random else 0.0
    return {
        "chain": [a.community_uid(c) for c in chain],
        "chain_drop": float(closed[k]),
        "chain_other_drop": other,
        "chain_random_drop": random_drop,
        "chain_specificity": float(closed[k]) / max(other, DROP_FLOOR),
        "chain_vs_random": float(closed[k]) / max(random_drop, DROP_FLOOR),
    }
