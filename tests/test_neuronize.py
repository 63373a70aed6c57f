"""Neuronization: layers, shapes and per-neuron statistics, without the database."""

import math
import os

import models
import numpy as np
import pytest
import torch
from sklearn.metrics import mutual_info_score

from neurocypher.errors import UserError
from neurocypher.ingest import analyze
from neurocypher.ingest.demo import trained
from neurocypher.ingest.demo_models import cnn, mlp
from neurocypher.ingest.information import discretize, entropy_bits
from neurocypher.ingest.neuronize import ClassScores, record
from neurocypher.ingest.options import AnalysisOptions


def test_mlp_layers_are_read_after_their_relu(digits):
    a = analyze(mlp(), digits.X, digits.y, name="t-mlp")
    assert [(lay.name, lay.kind, lay.activation, lay.width) for lay in a.layers] == [
        ("input", "input", "", 64),
        ("fc1", "linear", "ReLU", 32),
        ("fc2", "linear", "ReLU", 32),
        ("output", "output", "", 10),
    ]
    assert all(lay.acts.shape == (1797, lay.width) for lay in a.layers)
    assert a.layers[1].acts.min() >= 0 and a.layers[2].acts.min() >= 0
    np.testing.assert_allclose(a.layers[0].acts, digits.X)
    assert a.uid(2, 17) == "t-mlp/L2/17"


def test_cnn_channels_are_spatial_means(digits):
    model = cnn()
    a = analyze(model, digits.X, digits.y, name="t-cnn")
    assert [(lay.name, lay.kind, lay.width) for lay in a.layers] == [
        ("input", "input", 64),
        ("conv1", "conv", 8),
        ("conv2", "conv", 16),
        ("fc1", "linear", 64),
        ("output", "output", 10),
    ]
    with torch.no_grad():
        x = torch.from_numpy(digits.X[:5])
        conv1 = model.relu1(model.conv1(model.image(x)))
        logits = model(x)
    np.testing.assert_allclose(a.layers[1].acts[:5], conv1.mean(dim=(2, 3)).numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(a.layers[-1].acts[:5], logits.numpy(), rtol=1e-5, atol=1e-6)


def test_shared_activation_module_is_matched_by_tensor_not_by_order():
    X = np.random.default_rng(0).normal(size=(50, 4)).astype(np.float32)
    a = analyze(models.shared_activation(), X, np.arange(50) % 2, name="shared")
    assert [(lay.name, lay.activation, lay.width) for lay in a.layers] == [
        ("input", "", 4),
        ("fc1", "ReLU", 6),
        ("fc2", "ReLU", 5),
        ("fc3", "tanh", 3),  # a functional activation (torch.tanh) is found too
        ("output", "", 2),
    ]
    assert a.layers[1].acts.min() >= 0 and a.layers[3].acts.min() < 0 and np.abs(a.layers[3].acts).max() < 1


def test_batchnorm_between_conv_and_relu(digits):
    a = analyze(models.batchnorm_cnn(), digits.X[:100], digits.y[:100], name="bn")
    assert [(lay.name, lay.kind, lay.activation) for lay in a.layers] == [
        ("input", "input", ""),
        ("1", "conv", "ReLU"),
        ("output", "output", ""),
    ]
    assert a.layers[1].acts.min() >= 0


def test_named_layers_override_the_default(digits):
    a = analyze(mlp(), digits.X, digits.y, name="named", layers=["fc2"])
    assert [lay.name for lay in a.layers] == ["input", "fc2", "output"]
    assert a.methods == ["innersight", "flow", "relay", "neurflow"] and "weights" in a.skipped
    assert a.params["methods"] == a.methods and a.params["skipped"] == a.skipped
    assert a.layers[1].acts.min() < 0  # the Linear's own output, before its ReLU


def test_class_statistics_and_accuracy(digits):
    a = analyze(mlp(), digits.X, digits.y, name="stats")
    layer = a.layers[1]
    for c in (0, 7):
        np.testing.assert_allclose(layer.class_means[c], layer.acts[digits.y == c].mean(axis=0), rtol=1e-5)
    assert a.accuracy == pytest.approx((a.predictions == digits.y).mean())
    assert a.class_accuracy[3] == pytest.approx((a.predictions[digits.y == 3] == 3).mean())


def test_discretisation_equal_frequency_with_ties():
    rng = np.random.default_rng(1)
    a = np.stack([rng.normal(size=4000), np.maximum(rng.normal(size=4000), 0), np.full(4000, 2.5)], axis=1)
    codes = discretize(a, bins=8)
    counts = [np.bincount(codes[:, j], minlength=8) for j in range(3)]
    assert all(abs(c - 500) <= 1 for c in counts[0])  # equal frequency
    assert counts[1][0] == (a[:, 1] == 0).sum() and (counts[1] > 0).sum() == 5  # zeros share one bin
    assert (counts[2] > 0).sum() == 1  # a constant neuron has one code
    entropy = entropy_bits(codes, bins=8)
    assert entropy[0] == pytest.approx(3 + 7 / (2 * 4000 * math.log(2)), abs=1e-3)
    assert entropy[2] == 0


def test_entropy_matches_a_per_neuron_reference(digits):
    codes = discretize(digits.X[:, 20:30])
    for j in range(codes.shape[1]):
        plugin = mutual_info_score(codes[:, j], codes[:, j]) / math.log(2)  # I(U;U) = H(U)
        occupied = len(np.unique(codes[:, j]))
        expected = plugin + (occupied - 1) / (2 * len(codes) * math.log(2))
        assert entropy_bits(codes[:, j : j + 1])[0] == pytest.approx(expected, abs=1e-9)


def test_activations_beyond_the_memory_budget_are_memory_mapped_and_the_same(digits, home):
    """With a budget that holds the first hidden layer only, the second is a memory-mapped file in
    NEUROCYPHER_HOME/scratch, already unlinked; the recording and the analysis are unchanged, and the
    CLI takes the budget in GiB."""
    model, _ = trained("digits-mlp", home / "demo")
    X, y = digits.X[:400], digits.y[:400]
    in_memory = record(ClassScores(model), X)
    mapped = record(ClassScores(model), X, memory_budget=in_memory.hidden[0].nbytes)
    assert [isinstance(h, np.memmap) for h in mapped.hidden] == [False, True]
    for ours, theirs in zip(mapped.hidden, in_memory.hidden):
        np.testing.assert_array_equal(ours, theirs)
    assert not list((home / "scratch").iterdir())
    full = analyze(model, X, y, name="budget-full", methods=("flow",), deletion=False)
    small = analyze(model, X, y, name="budget-mapped", methods=("flow",), deletion=False, memory_budget=1e-6)
    assert [c.members.tolist() for c in small.communities] == [c.members.tolist() for c in full.communities]
    for ours, theirs in zip(small.flows, full.flows):
        np.testing.assert_array_equal(ours.bits, theirs.bits)
    assert AnalysisOptions(memory_budget=1.5).memory_bytes() == 3 * 2**29
    assert AnalysisOptions().memory_bytes() == os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 4
    with pytest.raises(UserError, match="option memory_budget must be at least 0, got -1"):
        AnalysisOptions(memory_budget=-1)
