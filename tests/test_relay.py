"""Relay information against an independent entropy computation, and relay modules on the specialists."""

import math
from collections import Counter

import numpy as np
import pytest

from ingest import analyze, write
from ingest.relay import (binarize, class_indicators, conditional_mi, greedy_relay, group_states, refined_cmi,
                          relay_bits)
from specialists import CLASS_NAMES, SPECIALISTS


def entropy(*columns) -> float:
    """Plug-in joint entropy in bits, counted sample by sample (no NumPy tricks)."""
    joint = Counter(zip(*columns))
    n = sum(joint.values())
    return -sum(c / n * math.log2(c / n) for c in joint.values())


def brute_conditional_mi(a, b, s) -> float:
    return entropy(a, s) + entropy(b, s) - entropy(a, b, s) - entropy(s)


def test_conditional_mi_and_relay_match_brute_force():
    rng = np.random.default_rng(0)
    x_in = rng.integers(0, 2, 500)
    x_out = np.where(rng.random(500) < 0.8, x_in, 1 - x_in)
    states = np.column_stack([(x_in + rng.integers(0, 2, 500)) % 3, rng.integers(0, 5, 500)])
    got = conditional_mi(x_in, x_out, states)
    for j in range(2):
        assert got[j] == pytest.approx(brute_conditional_mi(x_in.tolist(), x_out.tolist(), states[:, j].tolist()), abs=1e-12)
    mi = entropy(x_in.tolist()) + entropy(x_out.tolist()) - entropy(x_in.tolist(), x_out.tolist())
    relay = relay_bits(x_in[None], x_out[None], states[:, 0])[0]
    assert relay == pytest.approx(mi - brute_conditional_mi(x_in.tolist(), x_out.tolist(), states[:, 0].tolist()), abs=1e-12)
    bits = rng.integers(0, 2, (500, 7))
    refined = refined_cmi(x_in, x_out, states[:, 1], bits.astype(np.float32))
    np.testing.assert_allclose(refined, conditional_mi(x_in, x_out, states[:, [1]] * 2 + bits), atol=1e-6)


def test_xor_is_synergy_and_a_copy_of_the_label_relays_everything():
    rng = np.random.default_rng(1)
    x_in = rng.integers(0, 2, 4000)
    key = rng.integers(0, 2, 4000)
    x_out = x_in ^ key  # the output alone says nothing about the input; together with the key, all
    assert relay_bits(x_in[None], x_out[None], key)[0] < -0.9
    copy_in, copy_out = x_in, x_in.copy()
    full = entropy(copy_in.tolist()) + entropy(copy_out.tolist()) - entropy(copy_in.tolist(), copy_out.tolist())
    assert relay_bits(copy_in[None], copy_out[None], copy_in)[0] == pytest.approx(full, abs=1e-12)


def test_group_states_coarse_grain_large_groups():
    rng = np.random.default_rng(2)
    acts = rng.normal(size=(1000, 12))
    bits = binarize(acts)
    assert bits.mean() == pytest.approx(0.5, abs=0.1)
    assert len(np.unique(group_states(acts[:, :3], bits[:, :3]))) == 8  # 2^3 tuples, kept exactly
    assert len(np.unique(group_states(acts, bits, k=16))) == 16  # k-means instead of 4096 tuples
    assert (binarize(acts, "median").mean(axis=0) == 0.5).all()


@pytest.fixture(scope="module")
def analysis(specialists):
    s = specialists
    return analyze(s.model, s.X, s.y, name="relay-specialists", class_names=CLASS_NAMES, image_shape=(8, 8))


def test_relay_module_of_each_class_is_its_specialist(specialists, analysis):
    for layer in (1, 2):
        for c in range(SPECIALISTS):
            module = next(x for x in analysis.communities if x.method == "relay" and x.layer == layer and x.index == c)
            block = set(np.flatnonzero(specialists.blocks == c))
            members = set(module.members.tolist())
            assert len(block & members) / len(block | members) >= 0.8
            curve = module.props["relay_curve"]
            assert len(curve) == 19 and curve[0] == max(curve[:13])  # moving other specialists costs little


def test_specialist_community_relays_its_class_most(specialists, analysis):
    for method in ("innersight", "flow"):
        for layer in (1, 2):
            found = [x for x in analysis.communities if x.method == method and x.layer == layer]
            for c in range(SPECIALISTS):
                best = max(found, key=lambda x: x.props["relay_bits"][c])
                owner = np.bincount(specialists.blocks[best.members], minlength=SPECIALISTS).argmax()
                assert owner == c


def test_knockout_correlates_with_relay_and_scores_sum_the_losses(analysis):
    assert analysis.metrics["relay_knockout_rho"] > 0
    x_in, x_out = class_indicators(analysis.labels, analysis.predictions, analysis.n_classes)
    layer = analysis.layers[1]
    bits = binarize(layer.acts)
    losses = sum(greedy_relay(layer.acts, bits, x_in[c], x_out[c]).losses for c in range(analysis.n_classes))
    np.testing.assert_allclose(layer.props["relay_score"], losses)


def test_relay_results_are_stored(store, analysis):
    write(store, analysis, replace=True)
    rows = store.read("MATCH (c:Community {method: 'relay', layer: 1})-[r:RELAYS]->(k:Class) WHERE k.index = c.class "
                      "RETURN c.class AS c, c.size AS size, r.bits AS bits ORDER BY c", model="relay-specialists")
    assert [r["c"] for r in rows] == list(range(analysis.n_classes)) and rows[0]["size"] == 6
    top = store.read("MATCH (c:Community {method: 'innersight', layer: 2})-[r:RELAYS]->(:Class {index: 1}) "
                     "MATCH (n:Neuron)-[m:MEMBER_OF]->(c) WHERE m.primary = 1 "
                     "RETURN c.uid AS uid, r.bits AS bits, collect(n.index) AS members ORDER BY bits DESC LIMIT 1",
                     model="relay-specialists")
    assert sorted(top[0]["members"]) == list(range(6, 12))
    score = store.read("MATCH (n:Neuron {uid: 'relay-specialists/L1/7'}) RETURN n.relay_score AS s", model="relay-specialists")
    assert score[0]["s"] == pytest.approx(analysis.layers[1].props["relay_score"][7])
    rho = store.read("MATCH (m:Model) RETURN m.relay_knockout_rho AS rho", model="relay-specialists")
    assert rho[0]["rho"] == pytest.approx(analysis.metrics["relay_knockout_rho"])
