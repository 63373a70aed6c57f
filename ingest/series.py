"""A training run as a series of stored checkpoints, and how its communities evolve.

Each checkpoint is stored as a model of its own (`NAME-stepSTEP`, with `series`, `step` and its training
metrics on its Model node). The series itself is stored under NAME as a small graph of its own,
written and published like a model (so it lives in one place on both backends: the embedded store
keeps each model in its own graph, where no relationship can join two models):

    (:Model {kind: 'series'})-[:HAS_CHECKPOINT]->(:Checkpoint {model, step, accuracy, metric_*})
    (:Checkpoint)-[:NEXT]->(:Checkpoint)                     one step to the next
    (:Checkpoint)-[:HAS_COMMUNITY]->(:Community {uid, model, step, method, layer, label, chain_classes})
    (:Community)-[:MATCHES {overlap, similarity, best}]->(:Community)  one checkpoint to the next

A community is followed from one checkpoint to the next as in Greene, Doyle & Cunningham (2010):
checkpoints share their neurons, so two communities of one layer and method are one community at
two checkpoints when their primary members overlap, |A & B| / |A | B| >= MIN_OVERLAP, and one is
the other's best match (the later one the earlier one's best successor, or the earlier one the
later one's best predecessor: `linked`); a community made for one class continues only as one of
that class (`same_class`). A community may so continue into two at the next
checkpoint (a split) and two may continue into one (a merge); one linked from none has appeared.
Each MATCHES also carries the community matching of `ingest.matching` (used to compare models):
`similarity`, the correlation of the two class profiles, and `best`, 1 for its Hungarian pairs. A
community's `chain_classes` are the classes whose top relay-path chain (at that checkpoint, for
its method) runs through it. The named query `evolution` reads this.

References
----------
D. Greene, D. Doyle, P. Cunningham, "Tracking the evolution of communities in dynamic social
networks", ASONAM 2010.
"""

import re
from datetime import datetime, timezone

import numpy as np
from scipy.optimize import linear_sum_assignment

from neurocypher.errors import UserError
from neurocypher.progress import progress_bar
from neurocypher.queries.graph import ModelGraph, NodeSet, RelSet
from neurocypher.queries.schema import MIN_OVERLAP, on_complete_model

from .matching import layer_similarities, same_class

COMMUNITIES = on_complete_model("""
MATCH (c:Community {generation: m.generation, method: $method})
RETURN c.uid AS uid, c.layer AS layer, c.index AS index, c.size AS size, c.label AS label, c.role AS role
ORDER BY uid""")
MEMBERS = on_complete_model("""
MATCH (n:Neuron)-[mo:MEMBER_OF]->(c:Community {generation: m.generation, method: $method}) WHERE mo.primary = 1
RETURN c.uid AS community, c.layer AS layer, c.class AS class, collect(n.index) AS members""")
CHECKPOINT = on_complete_model("""
RETURN m.model_id AS model, m.step AS step, m.accuracy AS accuracy, m.n_classes AS classes, m.methods AS methods,
       m.dataset AS dataset, m.n_samples AS samples""")


def checkpoint_id(series: str, step: int) -> str:
    """The model id of a series' checkpoint."""
    return f"{series}-step{step}"


def metric_properties(metrics: dict[str, float]) -> dict[str, float]:
    """Training metrics as properties: `metric_NAME` (other characters than letters, digits and _ as _)."""
    return {f"metric_{re.sub(r'[^A-Za-z0-9_]', '_', k)}": float(v) for k, v in metrics.items()}


def series_graph(store, series: str, checkpoints: list[dict]) -> ModelGraph:
    """The series graph of stored checkpoint models.

    Parameters
    ----------
    store : queries.store.Store
    series : str
        The series id.
    checkpoints : list of dict
        In training order, each with `model` (a stored checkpoint's id), `step`, and `metrics`
        (a dict of numbers, e.g. the training loss).
    """
    heads = [_checkpoint(store, c["model"]) for c in checkpoints]
    methods = heads[0]["methods"].split(",") if heads[0]["methods"] else []
    rows = [
        {"uid": f"{series}/checkpoint/{c['step']}", "index": i, "model": c["model"], "step": c["step"],
         "accuracy": head["accuracy"], **metric_properties(c.get("metrics", {}))}
        for i, (c, head) in enumerate(zip(checkpoints, heads))
    ]  # fmt: skip
    communities, owner = [], []
    with progress_bar(len(heads) * max(len(methods), 1), f"tracing {series}") as advance:
        for i, head in enumerate(heads):
            for method in methods:
                found = _communities(store, head, method)
                communities += found
                owner += [i] * len(found)
                advance()
    matches = _matches(store, heads, methods, {row["uid"]: k for k, row in enumerate(communities)})
    n = len(rows)
    return ModelGraph(
        series,
        [
            NodeSet("Model", [_series_props(series, heads, methods)]),
            NodeSet("Checkpoint", rows),
            NodeSet("Community", communities),
        ],
        [
            RelSet("HAS_CHECKPOINT", "Model", "Checkpoint", np.zeros(n, np.int64), np.arange(n)),
            RelSet("NEXT", "Checkpoint", "Checkpoint", np.arange(n - 1), np.arange(1, n)),
            RelSet("HAS_COMMUNITY", "Checkpoint", "Community", np.array(owner, np.int64), np.arange(len(owner))),
            RelSet(
                "MATCHES",
                "Community",
                "Community",
                np.array([m[0] for m in matches], np.int64),
                np.array([m[1] for m in matches], np.int64),
                {
                    "overlap": np.array([m[2] for m in matches], float),
                    "similarity": np.array([m[3] for m in matches], float),
                    "best": np.array([m[4] for m in matches], np.int64),
                },
            ),
        ],
    )


def chain_changes(rows: list[dict]) -> list[int]:
    """The steps at which a chain changed: some community of it did not `continue` (one source, not
    split) from a community of the chain at the checkpoint before, or it has another length. `rows`
    are `evolution`'s."""
    steps = sorted({row["step"] for row in rows})
    chains = {step: [row for row in rows if row["step"] == step] for step in steps}
    changed = []
    for before, step in zip(steps, steps[1:]):
        previous = {row["community"] for row in chains[before]}
        same = len(chains[step]) == len(chains[before]) and all(
            row["event"] == "continued" and set(row["sources"]) <= previous for row in chains[step]
        )
        if not same:
            changed.append(step)
    return changed


def settled_step(rows: list[dict]) -> int | None:
    """The step from which a chain stayed the same: the first checkpoint after its last change
    (`chain_changes`), or the first checkpoint when it never changed. `rows` are `evolution`'s;
    None when the chain still changed at the last checkpoint (or there is no later checkpoint to
    show that it stayed)."""
    steps = sorted({row["step"] for row in rows})
    changed = chain_changes(rows)
    settled = changed[-1] if changed else (steps[0] if steps else None)
    return settled if len(steps) > 1 and settled != steps[-1] else None


def _checkpoint(store, model: str) -> dict:
    rows = store.read(CHECKPOINT, {"model": model}, model=model)
    if not rows:
        raise UserError(f"checkpoint model {model!r} is not stored; ingest it before building its series")
    return rows[0]


def _communities(store, head: dict, method: str) -> list[dict]:
    """One checkpoint's communities of `method`, each with the classes whose top chain it is on."""
    chains: dict[str, list[int]] = {}
    for c in range(head["classes"]):
        for row in store.ask("relay-path", model=head["model"], method=method, limit=1, **{"class": c}):
            for uid in row["chain"]:
                chains.setdefault(uid, []).append(c)
    where = {"model": head["model"], "step": head["step"], "method": method}
    return [
        {**row, **where, "chain_classes": chains.get(row["uid"], [])}
        for row in store.read(COMMUNITIES, {"model": head["model"], "method": method}, model=head["model"])
    ]


def _matches(store, heads: list[dict], methods: list[str], position: dict[str, int]) -> list[tuple]:
    """(community, community, overlap, similarity, best) for consecutive checkpoints, as the module
    docstring says: the linked pairs of each layer (`linked`), their profile similarity and whether
    the community matching (`ingest.matching`) paired them."""
    found = []
    members = {(head["model"], method): _members(store, head["model"], method) for head in heads for method in methods}
    for before, after in zip(heads, heads[1:]):
        for method in methods:
            similarity, best = {}, set()
            for _, _, names_a, names_b, sim, _ in layer_similarities(store, before["model"], after["model"], method):
                best |= {(names_a[i], names_b[j]) for i, j in zip(*linear_sum_assignment(-sim))}
                similarity |= {(a, b): float(sim[i, j]) for i, a in enumerate(names_a) for j, b in enumerate(names_b)}
            layers_a, layers_b = (members[head["model"], method] for head in (before, after))
            for layer in layers_a.keys() & layers_b.keys():
                (names_a, members_a, classes_a), (names_b, members_b, classes_b) = layers_a[layer], layers_b[layer]
                overlap = np.where(same_class(classes_a, classes_b), jaccard(members_a, members_b), 0.0)
                for i, j in zip(*np.nonzero(linked(overlap))):
                    a, b = names_a[i], names_b[j]
                    found.append(
                        (
                            position[a],
                            position[b],
                            float(overlap[i, j]),
                            similarity.get((a, b), 0.0),
                            int((a, b) in best),
                        )
                    )
    return found


def jaccard(a: list[list[int]], b: list[list[int]]) -> np.ndarray:
    """|A & B| / |A | B| of every pair of member lists (neuron indices), A from `a`, B from `b`."""
    width = 1 + max((i for members in a + b for i in members), default=0)
    a, b = (_incidence(members, width) for members in (a, b))
    shared = a @ b.T
    union = a.sum(axis=1)[:, None] + b.sum(axis=1)[None, :] - shared
    return shared / np.maximum(union, 1)


def linked(overlap: np.ndarray, least: float = MIN_OVERLAP) -> np.ndarray:
    """Which pairs are one community at two checkpoints: overlap >= `least`, and the later one is
    the earlier one's best successor or the earlier one is the later one's best predecessor. So a
    split (an earlier community is the best predecessor of two) and a merge (two have the same best
    successor) are kept, while communities that overlap by design (relay modules of two classes
    sharing neurons) do not link to each other's continuation."""
    if not overlap.size:
        return np.zeros(overlap.shape, bool)
    best = (overlap == overlap.max(axis=1, keepdims=True)) | (overlap == overlap.max(axis=0, keepdims=True))
    return (overlap >= least) & best


def _incidence(members: list[list[int]], width: int) -> np.ndarray:
    matrix = np.zeros((len(members), width))
    for k, indices in enumerate(members):
        matrix[k, indices] = 1.0
    return matrix


def _members(store, model: str, method: str) -> dict[int, tuple[list[str], list[list[int]], list]]:
    """Per layer: its communities' uids, their primary members (neuron indices), their classes."""
    rows = sorted(store.read(MEMBERS, {"model": model, "method": method}, model=model), key=lambda r: r["community"])
    layers: dict[int, tuple[list[str], list[list[int]], list]] = {}
    for row in rows:
        names, members, classes = layers.setdefault(row["layer"], ([], [], []))
        names.append(row["community"])
        members.append(row["members"])
        classes.append(row["class"])
    return layers


def _series_props(series: str, heads: list[dict], methods: list[str]) -> dict:
    return {
        "uid": series,
        "kind": "series",
        "status": "complete",
        "dataset": heads[0]["dataset"],
        "n_samples": heads[0]["samples"],
        "n_classes": heads[0]["classes"],
        "methods": ",".join(methods),
        "checkpoints": [head["model"] for head in heads],
        "steps": [head["step"] for head in heads],
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
