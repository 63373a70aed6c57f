"""NeurFlow: concept inputs, IG core neurons, sub-concepts, groups, fidelity and debugging."""

import numpy as np
import pytest
import torch
from helpers import cli, ingest_demo_mlp
from specialists import CLASS_NAMES, SPECIALISTS

from neurocypher.ingest import analyze, write
from neurocypher.ingest.context import MethodContext
from neurocypher.ingest.debug import debug_sample
from neurocypher.ingest.demo import trained
from neurocypher.ingest.methods.neurflow import _Concepts, concept_inputs, core_size, group_labels
from neurocypher.ingest.methods.options import NeurFlowOptions
from neurocypher.ingest.neuronize import ClassScores, record
from neurocypher.ingest.segments import Plans
from neurocypher.queries import connect


@pytest.fixture(scope="module")
def cnn(digits, home):
    model, _ = trained("digits-cnn", home / "demo")
    return model, analyze(
        model, digits.X, digits.y, name="nf-cnn", image_shape=(8, 8), deletion=False, methods=("neurflow",)
    )


@pytest.fixture(scope="module")
def stored_cnn(cnn):
    """The CNN's analysis, stored as nf-cnn."""
    with connect() as store:
        write(store, cnn[1], replace=True)
    return cnn


def test_concept_inputs_are_crops_resized_back(digits):
    X = digits.X[:3]
    crops = concept_inputs(X, (8, 8))
    assert crops.shape == (3 * (1 + 9 + 49), 64)  # scale 1, 3x3 crops of 4, 7x7 crops of 2
    np.testing.assert_array_equal(crops[:3], X)
    first_half = torch.nn.functional.interpolate(
        torch.from_numpy(X).reshape(3, 1, 8, 8)[:, :, :4, :4], size=(8, 8), mode="bilinear", align_corners=False
    )
    np.testing.assert_allclose(crops[3:6], first_half.reshape(3, 64).numpy(), rtol=1e-6)
    assert concept_inputs(X, None) is X


def test_a_class_s_concepts_are_its_rows_of_the_whole_probe_set_s(digits, home):
    """One class's concept inputs and activations, made for it alone, are the rows of the whole probe
    set's concept inputs that come from the samples predicted as the class, in the same order."""
    model, _ = trained("digits-cnn", home / "demo")
    X = digits.X[:120]
    a = analyze(model, X, digits.y[:120], name="nf-rows", image_shape=(8, 8), methods=(), deletion=False)
    every = concept_inputs(X, (8, 8))
    whole = record(ClassScores(model), every)
    rows = np.flatnonzero(a.predictions[np.arange(len(every)) % len(X)] == 2)
    concepts = _Concepts(
        MethodContext.of(a, Plans(ClassScores(model), torch.from_numpy(X[:256])), X), 2, NeurFlowOptions()
    )
    np.testing.assert_array_equal(concepts.inputs, every[rows])
    for ours, theirs in zip(concepts.acts, [whole.inputs, *whole.hidden, whole.outputs]):
        np.testing.assert_allclose(ours, theirs[rows], rtol=1e-5, atol=1e-6)


def test_integrated_gradients_of_a_logit_over_a_linear_layer(digits, home):
    """For logit = W a + b, IG from baseline 0 is exactly W[c] * a; units are batched in one call."""
    model, _ = trained("digits-mlp", home / "demo")
    X = digits.X[:200]
    a = analyze(model, X, digits.y[:200], name="nf-mlp", methods=(), deletion=False)
    concepts = _Concepts(MethodContext.of(a, Plans(model, torch.from_numpy(X[:256])), X), 4, NeurFlowOptions())
    np.testing.assert_array_equal(concepts.inputs, X[a.predictions == 4])  # the class's own samples only
    tops = [np.arange(5), np.arange(3)]
    ig = concepts.integrated_gradients(3, [4, 7], tops)
    x = concepts.inputs
    with torch.no_grad():
        hidden = model.relu2(model.fc2(model.relu1(model.fc1(torch.from_numpy(x)))))
    w = model.fc3.weight.detach()
    expected = np.concatenate([(w[4] * hidden[:5]).numpy(), (w[7] * hidden[:3]).numpy()])
    np.testing.assert_allclose(ig, expected, rtol=1e-4, atol=1e-5)
    assert NeurFlowOptions().steps == 50


def test_tau_follows_the_layer_width():
    assert [core_size(16, w) for w in (8, 16, 32, 64, 512)] == [2, 4, 8, 16, 16]


def test_a_circuit_of_one_core_set_is_one_group():
    rng = np.random.default_rng(0)
    vectors = np.vstack([rng.normal(0, 0.1, (6, 4)), rng.normal(5, 0.1, (6, 4))])  # two clear clusters
    assert group_labels(vectors, explained=8, size=8).tolist() == [0] * 12
    assert sorted(set(group_labels(vectors, explained=9, size=8).tolist())) == [0, 1]  # wider: by silhouette


def test_core_neurons_of_each_class_lie_in_its_specialist(specialists):
    s = specialists
    a = analyze(s.model, s.X, s.y, name="nf-spec", class_names=CLASS_NAMES, methods=("neurflow",), deletion=False)
    for layer in (1, 2):
        core = a.layers[layer].props["core"]
        for c in range(SPECIALISTS):
            found = np.flatnonzero(core[:, c])
            assert len(found) and set(found) <= set(np.flatnonzero(s.blocks == c))


def test_cnn_core_neurons_matter_far_more_than_random_ones(cnn):
    _, a = cnn
    m = a.metrics
    lost_core, lost_random = 1 - np.array(m["fidelity_core"]), 1 - np.array(m["fidelity_random"])
    assert lost_core.mean() >= 3 * lost_random.mean()
    assert m["fidelity_ratio"] == pytest.approx(lost_core.mean() / lost_random.mean())
    top = a.layer_props[len(a.layers) - 2]  # per layer and tau, class retention: core below random
    assert top["fidelity_tau"] == [4, 8, 16]
    assert all(core < random for core, random in zip(top["fidelity_core"], top["fidelity_random"]))
    assert {layer for layer, props in a.layer_props.items() if "fidelity_tau" in props} == {1, 2, 3}


def test_groups_are_per_class(cnn):
    _, a = cnn
    groups = [c for c in a.communities if c.method == "neurflow" and 0 < c.layer < len(a.layers) - 1]
    for g in groups:
        assert set(np.flatnonzero(g.props["circuit_weight"])) <= {g.props["class"]}  # its class's edges only
        assert set(g.members) <= set(np.flatnonzero(a.layers[g.layer].props["core"][:, g.props["class"]]))


def test_groups_weights_and_storage(store, stored_cnn):
    model, a = stored_cnn
    groups = [c for c in a.communities if c.method == "neurflow"]
    assert groups and all(g.size for g in groups)
    assert {g.layer for g in groups} == set(range(5))  # all inputs, the groups, one per class
    circuit = [f for f in a.community_flows if f.method == "neurflow"]
    assert any(np.abs(f.props["weight"]).sum() > 0 for f in circuit)
    stored = store.read(
        "MATCH (:Community {method: 'neurflow'})-[f:FLOWS_TO]->(:Community) RETURN sum(abs(f.weight)) AS w",
        model="nf-cnn",
    )[0]["w"]
    assert stored == pytest.approx(sum(np.abs(f.props["weight"]).sum() for f in circuit))
    relays = store.read(
        "MATCH (c:Community {method: 'neurflow'})-[r:RELAYS]->(k:Class) WHERE r.weight > 0 RETURN count(r) AS n",
        model="nf-cnn",
    )[0]["n"]
    assert relays == sum(int((g.props.get("circuit_weight", np.zeros(1)) > 0).sum()) for g in groups)
    core = store.read("MATCH (n:Neuron {layer: 3}) RETURN n.index AS i, n.core AS core ORDER BY i", model="nf-cnn")
    assert np.array([r["core"] for r in core]).tolist() == a.layers[3].props["core"].tolist()
    model_row = store.read("MATCH (m:Model) RETURN m.fidelity_ratio AS r", model="nf-cnn")[0]
    assert model_row["r"] == pytest.approx(a.metrics["fidelity_ratio"])


def test_sub_concept_weights_are_exactly_l1_normalised(cnn, digits):
    model, a = cnn
    (e,) = _Concepts(
        MethodContext.of(a, Plans(model, torch.from_numpy(digits.X[:256])), digits.X), 3, NeurFlowOptions()
    ).explain(4, [3])
    assert 2 <= len(e.weights) <= 5 and len(e.core) <= 16
    np.testing.assert_allclose(np.abs(e.weights).sum(axis=1), 1.0, rtol=1e-12)


def test_debugging_a_misclassified_sample(store, digits, stored_cnn):
    model, a = stored_cnn
    wrong = int(np.flatnonzero(a.predictions != a.labels)[0])
    groups = store.read(
        "MATCH (n:Neuron)-[mo:MEMBER_OF]->(c:Community {method: 'neurflow'}) WHERE mo.primary = 1 "
        "WITH c, n ORDER BY n.index RETURN c.uid AS group, c.layer AS layer, c.label AS label, "
        "collect(n.index) AS members, collect(n.mean) AS means, collect(n.std) AS stds",
        model="nf-cnn",
    )
    rows = debug_sample(model, digits.X[wrong : wrong + 1], int(digits.y[wrong]), groups)
    assert len(rows) == len(groups) and [r["firing"] for r in rows] == sorted((r["firing"] for r in rows), reverse=True)
    predicted = int(a.predictions[wrong])
    output_group = next(
        r
        for r in rows
        if r["group"].startswith("nf-cnn/neurflow/L4/")
        and predicted in next(g["members"] for g in groups if g["group"] == r["group"])
    )
    assert output_group["predicted_logit_change"] < 0 and output_group["prediction_when_masked"] != predicted


def test_debug_cli(store):
    done = ingest_demo_mlp("nf-cli", "--methods", "neurflow", "--no-deletion", "--replace")
    assert done.returncode == 0, done.stderr
    assert "NeurFlow fidelity" in done.stdout
    shown = cli("debug", "nf-cli", "3", "--format", "json")
    assert shown.returncode == 0, shown.stderr
    assert shown.stderr.startswith("sample 3: true class 3, predicted ")
    assert shown.stdout.count('"group": "nf-cli/neurflow/') >= 2
    assert cli("debug", "nf-cli", "99999").stderr == "error: sample index 99999 is outside 0..1796\n"


def test_integrated_gradients_match_captum(digits, home):
    """Our batched IG against Captum's IntegratedGradients (Gauss-Legendre, baseline 0), through a
    ReLU network, one target per row."""
    from captum.attr import IntegratedGradients

    from neurocypher.ingest.attribution import integrated_gradients

    model, _ = trained("digits-mlp", home / "demo")
    x = torch.from_numpy(digits.X[:12])
    targets = torch.arange(12) % 10
    ours = integrated_gradients(lambda scaled, rows: model(scaled), x, targets, 50, 64)
    theirs = IntegratedGradients(model).attribute(x, baselines=0.0, target=targets, n_steps=50)
    np.testing.assert_allclose(ours.numpy(), theirs.detach().numpy(), rtol=1e-5, atol=1e-6)
