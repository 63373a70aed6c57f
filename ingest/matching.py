"""Community matching across two models analysed on the same data: per layer, pair their communities
by the similarity of their class-conditional profiles (Hungarian matching).

A community's profile is the mean over its primary members of each member's class-conditional mean
activation, z-scored across classes; similarity is the Pearson correlation of two profiles (0 for a
profile without variation). Input is paired with input, output with output, and each hidden layer of
the first model with the hidden layer of the second at the closest relative depth. A community made
for one class (an output, a relay module, a NeurFlow group: property `class`) is only paired with
one made for the same class or for none (`same_class`).

`match_communities` only reads; `store_matches` writes its pairs as
`(:Community)-[:MATCHES {similarity}]->(:Community)` where both models share one graph (Neo4j).
"""

import numpy as np
from scipy.optimize import linear_sum_assignment

from neurocypher.errors import UserError, no_such_model
from neurocypher.queries.schema import on_complete_model

APART = 1e6  # the assignment's cost of a pair made for different classes: taken only where nothing else is left
MODEL_INFO = on_complete_model("RETURN m.dataset AS dataset, m.n_classes AS classes, m.n_samples AS samples")
PROFILES = on_complete_model("""
MATCH (n:Neuron {generation: m.generation})-[mo:MEMBER_OF]->(c:Community {generation: m.generation, method: $method})
WHERE mo.primary = 1
WITH c, n ORDER BY n.index
RETURN c.uid AS community, c.layer AS layer, c.class AS class, collect(n.class_means) AS profiles""")
STORE_MATCHES = """
MATCH (ma:Model {model_id: $model_a}) WHERE ma.status = 'complete'
MATCH (mb:Model {model_id: $model_b}) WHERE mb.status = 'complete'
UNWIND $rows AS row
MATCH (a:Community {generation: ma.generation, uid: row.a}) MATCH (b:Community {generation: mb.generation, uid: row.b})
MERGE (a)-[s:MATCHES]->(b) SET s.similarity = row.similarity"""


def match_communities(store, model_a: str, model_b: str, method: str = "innersight") -> list[dict]:
    """Matched community pairs per layer, best first within each layer (it writes nothing; see
    `store_matches`)."""
    matches = []
    for layer_a, layer_b, names_a, names_b, similarity, allowed in layer_similarities(store, model_a, model_b, method):
        rows, cols = linear_sum_assignment(np.where(allowed, -similarity, APART))
        for i, j in sorted(zip(rows, cols), key=lambda rc: -similarity[rc]):
            if not allowed[i, j]:  # made for different classes: left unpaired
                continue
            matches.append(
                {
                    "layer_a": layer_a,
                    "layer_b": layer_b,
                    "a": names_a[i],
                    "b": names_b[j],
                    "similarity": float(similarity[i, j]),
                }
            )
    return matches


def layer_similarities(store, model_a: str, model_b: str, method: str):
    """Per pair of layers (`_paired_layers`): (layer of A, layer of B, A's community uids, B's,
    the similarity of every pair as an array, A's communities x B's, and which pairs may be paired
    (`same_class`), an array of the same shape)."""
    info = [store.read(MODEL_INFO, {"model": m}, model=m) for m in (model_a, model_b)]
    for model, rows in zip((model_a, model_b), info):
        if not rows:
            raise no_such_model(model)
    if info[0] != info[1]:
        raise UserError(
            f"{model_a} and {model_b} were not analysed on the same data ({info[0][0]} vs "
            f"{info[1][0]}); matching compares class profiles, so they must be"
        )
    a, b = (_profiles(store, m, method) for m in (model_a, model_b))
    for layer_a, layer_b in _paired_layers(max(a, default=0), max(b, default=0)):
        if layer_a in a and layer_b in b:
            (names_a, pa, ka), (names_b, pb, kb) = a[layer_a], b[layer_b]
            with np.errstate(divide="ignore", invalid="ignore"):
                similarity = np.nan_to_num(np.corrcoef(pa, pb)[: len(pa), len(pa) :])
            yield layer_a, layer_b, names_a, names_b, similarity, same_class(ka, kb)


def same_class(a: list[int | None], b: list[int | None]) -> np.ndarray:
    """Which pairs may be one community: a community made for one class (a relay module, a NeurFlow
    group: property `class`) pairs only with one of that class or of none."""
    a, b = (np.array([-1 if c is None else c for c in classes])[:, None] for classes in (a, b))
    return (a < 0) | (b.T < 0) | (a == b.T)


def store_matches(store, matches: list[dict]) -> None:
    """Write `matches` (from `match_communities`) as MATCHES relationships, replacing the similarity
    of pairs matched before. Only Neo4j keeps both models in one graph, where a relationship can join
    them; on the embedded store each model is a graph of its own, so this does nothing there and the
    matches stay what `match_communities` returned."""
    if store.backend != "neo4j" or not matches:
        return
    model_a, model_b = (matches[0][end].split("/")[0] for end in "ab")  # a community uid begins with its model id
    store.write(STORE_MATCHES, {"rows": matches, "model_a": model_a, "model_b": model_b}, model=model_a)


def _paired_layers(last_a: int, last_b: int) -> list[tuple[int, int]]:
    """(layer of A, layer of B): the ends together, hidden layers by closest relative depth."""
    pairs = [(0, 0)]
    if last_a > 1 and last_b > 1:
        pairs += [(i, 1 + round((i - 1) * (last_b - 2) / max(last_a - 2, 1))) for i in range(1, last_a)]
    return pairs + [(last_a, last_b)]


def _profiles(store, model: str, method: str) -> dict[int, tuple[list[str], np.ndarray, list]]:
    """Per layer: the method's community uids, their profiles, and the class each was made for (or None)."""
    by_layer: dict[int, tuple[list[str], list[np.ndarray], list]] = {}
    for row in sorted(
        store.read(PROFILES, {"model": model, "method": method}, model=model), key=lambda r: r["community"]
    ):
        means = np.asarray(row["profiles"], dtype=float)
        z = (means - means.mean(axis=1, keepdims=True)) / np.maximum(means.std(axis=1, keepdims=True), 1e-12)
        names, profiles, classes = by_layer.setdefault(row["layer"], ([], [], []))
        names.append(row["community"])
        profiles.append(z.mean(axis=0))
        classes.append(row["class"])
    return {layer: (names, np.array(profiles), classes) for layer, (names, profiles, classes) in by_layer.items()}
