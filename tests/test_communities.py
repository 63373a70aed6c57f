"""Communities on a network of known structure (the specialists), their evaluation and storage."""

import json
import re

import numpy as np
import pytest
from helpers import ingest_demo_mlp
from sklearn.metrics import adjusted_rand_score
from specialists import CLASSES, SPECIALISTS

from neurocypher.ingest import analyze, write
from neurocypher.ingest.closing import ROLE_THRESHOLD, role


@pytest.fixture(scope="module")
def analysis(specialists):
    s = specialists
    return analyze(s.model, s.X, s.y, name="specialists", image_shape=(8, 8), close_pairs=True)


def communities(a, method, layer):
    return [c for c in a.communities if c.method == method and c.layer == layer]


@pytest.mark.parametrize("method, ari", [("innersight", 0.9), ("flow", 0.9), ("weights", 0.8)])
def test_hidden_communities_recover_the_specialists(specialists, analysis, method, ari):
    for layer in (1, 2):
        labels = next(m.p.argmax(axis=1) for m in analysis.memberships if m.method == method and m.layer == layer)
        assert adjusted_rand_score(specialists.blocks, labels) >= ari


def test_soft_memberships_and_k_by_bic(analysis):
    for m in analysis.memberships:
        np.testing.assert_allclose(m.p.sum(axis=1), 1.0)
        if m.method == "innersight" and m.layer < len(analysis.layers) - 1:
            assert 2 <= m.p.shape[1] <= np.ceil(np.sqrt(len(m.p)))
    output = communities(analysis, "innersight", 3)
    assert [c.members.tolist() for c in output] == [[c] for c in range(CLASSES)]


@pytest.mark.parametrize("method", ["innersight", "flow", "weights"])
def test_closing_a_specialist_hurts_its_class_most(specialists, analysis, method):
    """The community that holds most of specialist c, closed, costs class c more than any other."""
    for layer in (1, 2):
        for c in range(SPECIALISTS):
            block = specialists.blocks == c
            found = max(communities(analysis, method, layer), key=lambda x: block[x.members].sum())
            drops = found.props["class_acc_drop"]
            assert drops[c] > ROLE_THRESHOLD and drops[c] == drops.max()
            assert found.props["role"] == "key" and found.props["acc_drop"] == pytest.approx(
                drops @ np.bincount(specialists.y, minlength=CLASSES) / len(specialists.y)
            )


def test_pairs_prune_and_closing_to_the_mean(specialists, analysis):
    group = communities(analysis, "flow", 1)
    a, b = group[0], group[1]
    assert a.props["pair_acc_drop"][b.index] == b.props["pair_acc_drop"][a.index]
    assert a.props["pair_acc_drop"][b.index] >= max(a.props["acc_drop"], b.props["acc_drop"]) - 1e-9
    assert a.props["pair_acc_drop"][a.index] == 0
    for method in ("innersight", "flow", "weights"):
        assert 0 <= analysis.metrics[f"prune_accuracy_{method}"] <= 1
    s = specialists
    zero = analyze(s.model, s.X, s.y, name="zero", methods=("flow",), close_to_mean=False, deletion=False)
    to_mean = [c.props["acc_drop"] for c in analysis.communities if c.method == "flow"]  # the default
    assert [c.props["acc_drop"] for c in zero.communities] != to_mean
    assert [role(d) for d in (0.01, -0.01, 0.001)] == ["key", "noise", "irrelevant"]


def test_concept_labels_say_what_a_community_does(specialists, analysis):
    names = analysis.class_names
    for c in communities(analysis, "innersight", 2):
        owner = np.bincount(specialists.blocks[c.members], minlength=SPECIALISTS).argmax()
        drop = c.props["class_acc_drop"][owner]
        assert c.props["label"].startswith(f"closing costs class {names[owner]} {drop:.3g}, others at most")
        assert f"top samples 100% class {names[owner]}" in c.props["label"] or c.props["class_distribution"][owner] < 1
        assert c.props["class_distribution"][owner] >= 0.8
        assert len(c.props["prototype"]) == 64 and len(c.props["top_samples"]) == 20
        assert c.props["top_features"] and all(0 <= f < 64 for f in c.props["top_features"])
    for c in communities(analysis, "relay", 1):  # a relay module: the class it was made for comes first
        assert c.props["label"].startswith(f"made for class {names[c.props['class']]}; closing costs")
    assert [c.props["label"] for c in communities(analysis, "innersight", 3)] == [f"class {n} output" for n in names]
    assert [c.props["label"] for c in communities(analysis, "relay", 0)] == ["all 64 inputs"]
    for c in communities(analysis, "innersight", 0):
        assert re.fullmatch(rf"{c.size} inputs, ((upper|middle|lower)-(left|center|right)|center)", c.props["label"])


def test_stored_communities_chain_from_input_to_output(store, specialists, analysis):
    counts = write(store, analysis, replace=True)
    assert counts["Community"] == len(analysis.communities)
    for c in range(SPECIALISTS):
        chains = store.read(
            "MATCH (k:Class {index: $c})<-[r3:RELAYS]-(c3:Community {method: 'flow', layer: 3}) "
            "MATCH (c0:Community {layer: 0})-[:FLOWS_TO]->(c1:Community {layer: 1})-[:FLOWS_TO]->"
            "(c2:Community {layer: 2})-[:FLOWS_TO]->(c3) "
            "MATCH (c1)-[r1:RELAYS]->(k) MATCH (c2)-[r2:RELAYS]->(k) "
            "WHERE r1.acc_drop > 0.1 AND r2.acc_drop > 0.1 AND r3.acc_drop > 0.1 "
            "RETURN DISTINCT c1.uid AS c1, c2.uid AS c2",
            {"c": c},
            model="specialists",
        )
        assert len(chains) == 1
        members = store.read(
            "MATCH (n:Neuron)-[m:MEMBER_OF]->(c:Community {uid: $uid}) WHERE m.primary = 1 "
            "RETURN n.index AS i ORDER BY i",
            {"uid": chains[0]["c1"]},
            model="specialists",
        )
        assert [r["i"] for r in members] == np.flatnonzero(specialists.blocks == c).tolist()
    flow = store.read(
        "MATCH (:Community {uid: 'specialists/innersight/L1/c0'})-[f:FLOWS_TO]->(:Community) "
        "RETURN sum(f.bits) AS bits, sum(f.edges) AS edges",
        model="specialists",
    )[0]
    source = analysis.memberships[1].p.argmax(axis=1) == 0
    kept = analysis.flows[1]
    assert flow["edges"] == int(source[kept.source].sum())
    assert flow["bits"] == pytest.approx(kept.bits[source[kept.source]].sum())


def test_cli_selects_methods(store):
    done = ingest_demo_mlp(
        "cli-methods", "--methods", "flow", "--no-deletion", "--replace", "--memory-budget", "1e-6", "--device", "cpu"
    )
    assert done.returncode == 0, done.stderr
    params = json.loads(store.read("MATCH (m:Model) RETURN m.params AS p", model="cli-methods")[0]["p"])
    assert (params["memory_budget"], params["device"], params["ran_on"]) == (1e-6, "cpu", "cpu")
    assert "flow: communities per layer" in done.stdout and "innersight" not in done.stdout
    methods = store.read("MATCH (c:Community) RETURN DISTINCT c.method AS m", model="cli-methods")
    assert "relay: communities" not in done.stdout
    assert methods == [{"m": "flow"}]


def test_silhouette_from_distances_is_scikit_learns():
    from scipy.spatial.distance import pdist, squareform
    from sklearn.metrics import silhouette_score

    from neurocypher.ingest.communities import silhouette

    rng = np.random.default_rng(0)
    for n, k in ((6, 5), (40, 3), (150, 12)):  # (6, 5): clusters of one point, whose silhouette is 0
        X = rng.normal(size=(n, 4))
        labels = np.concatenate([np.arange(k), rng.integers(0, k, n - k)])
        assert silhouette(squareform(pdist(X)), labels) == pytest.approx(silhouette_score(X, labels), abs=1e-12)
