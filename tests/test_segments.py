"""Closings and NeurFlow's Integrated Gradients run only the part of the model they need
(`ingest.segments`) and give the answers of the whole model: on MLPs with functional activations,
ResNets (both shortcut orders), a transformer and models with tuple or dict outputs; a layer read
inside a module torch.fx does not enter, and a model it cannot trace, run the whole model."""

import numpy as np
import pytest
import torch
import zoo
from torch import nn

from ingest import analyze, closing
from ingest.closing import closable_layers, masked_predictions
from ingest.methods import neurflow
from ingest.methods.neurflow import _Between, integrated_gradients
from ingest.neuronize import ClassScores, record
from ingest.segments import segment

SAMPLES = 300
MODELS = {  # factory, logits, input shape
    "functional_mlp": (zoo.functional_mlp, "", (64,)),
    "resnet": (zoo.resnet, "", (64,)),
    "resnet_shortcut_first": (lambda: zoo.resnet(shortcut_first=True), "", (64,)),
    "transformer": (zoo.transformer, "", (8, 8)),
    "lstm": (zoo.lstm, "", (8, 8)),
    "tuple_output": (zoo.tuple_output, "0", (64,)),
    "dict_output": (zoo.dict_output, "logits", (64,)),
}


class Branching(nn.Module):
    """Data-dependent control flow: torch.fx cannot trace it."""

    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(64, 16), nn.Linear(16, 10)

    def forward(self, x):
        hidden = torch.relu(self.fc1(x))
        return self.fc2(hidden if hidden.sum() > 0 else -hidden)


@pytest.fixture(scope="module")
def zoo_models(digits):
    """Each model trained briefly, wrapped to return its class scores, with its probe set and layers."""
    found = {}
    for name, (factory, logits, shape) in MODELS.items():
        X = digits.X[:SAMPLES].reshape(SAMPLES, *shape)
        torch.manual_seed(0)
        pick = (lambda out, key=logits: out[int(key)] if key.isdigit() else out[key]) if logits else (lambda out: out)
        model = ClassScores(zoo.train(factory(), X, digits.y[:SAMPLES], steps=40, logits=pick), logits)
        found[name] = model, X, closable_layers(record(model, X))
    return found


def whole_model_predictions(monkeypatch, model, X, layer, masks):
    """What masked_predictions gives with no segment: the whole model on every copy."""
    with monkeypatch.context() as patch:
        patch.setattr(closing, "segment", lambda *args: None)
        return masked_predictions(model, X, layer, masks, batch_size=128)


@pytest.mark.parametrize("name", MODELS)
def test_closings_on_the_segment_after_a_layer_equal_the_whole_model(zoo_models, monkeypatch, name):
    model, X, layers = zoo_models[name]
    rng = np.random.default_rng(0)
    for layer in layers[1:-1]:
        masks = rng.random((40, layer.width)) < 0.3  # more than one pass of MASKS_PER_PASS
        ours = masked_predictions(model, X, layer, masks, batch_size=128)
        np.testing.assert_array_equal(ours, whole_model_predictions(monkeypatch, model, X, layer, masks))
        assert ours.shape == (40, SAMPLES)


def test_which_layers_get_a_segment(zoo_models):
    """Every hidden layer of a traced CNN or MLP does; a layer inside a transformer layer (torch.fx
    does not enter nn modules), a recurrent layer (a tuple output) and an untraceable model do not."""

    def has_segment(name):
        model, X, layers = zoo_models[name]
        x = torch.from_numpy(X[:8])
        return [segment(model, [layer.point], None, x) is not None for layer in layers[1:-1]]

    for name in ("functional_mlp", "resnet", "resnet_shortcut_first", "tuple_output", "dict_output"):
        assert all(has_segment(name)), name
    assert has_segment("transformer") == [True, False, False, False, False, True]
    assert has_segment("lstm") == [False]
    branching = ClassScores(Branching())
    point = closable_layers(record(branching, np.ones((4, 64), np.float32)))[1].point
    assert segment(branching, [point], None, torch.ones(4, 64)) is None


@pytest.mark.parametrize("name", ["resnet", "functional_mlp"])
def test_integrated_gradients_between_two_layers_equal_the_whole_model(zoo_models, digits, monkeypatch, name):
    """NeurFlow's IG of each layer's units w.r.t. the layers feeding it (a merge has two) on the
    segment between them, computing one unit alone where a pass explains one unit of a Linear or
    Conv layer (`OneChannel`), equals IG through the whole model."""
    model, X, _ = zoo_models[name]
    layers = analyze(model.model, X, digits.y[:SAMPLES], name=f"segments-{name}", methods=(), deletion=False).layers
    x = torch.from_numpy(X[:20])
    merges = one_channel = 0
    for upper in layers[1:]:
        lowers = [layers[i] for i in upper.inputs]
        targets = torch.arange(len(x)) // 10 % upper.width  # two units, 10 rows each
        found = {}
        for way in ("segment", "whole"):
            with monkeypatch.context() as patch:
                if way == "whole":
                    patch.setattr(neurflow, "segment", lambda *args: None)
                between = _Between(model, lowers, upper, x, targets, 10)
                forward, starts = between.forward, between.starts
                flat = torch.cat([start.reshape(len(x), -1) for start in starts], dim=1)
                found[way] = [flat] + [integrated_gradients(forward, flat, targets, 8, 8 * rows) for rows in (10, 15)]
            assert forward.__name__ == ("segmented" if way == "segment" else "whole"), upper.name
        for ours, theirs in zip(found["segment"], found["whole"]):  # the starts; a unit per pass, two per pass
            torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-6)
        merges += len(lowers) > 1
        one_channel += segment(model, [lowers[0].point], upper.point, x[:10]).one_channel is not None
    assert merges == (2 if name == "resnet" else 0)  # the two merges of the ResNet's blocks
    assert one_channel == (6 if name == "resnet" else 3)  # every Linear and Conv layer but the output
