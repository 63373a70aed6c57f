"""Closings and NeurFlow's Integrated Gradients run only the part of the model they need
(`ingest.segments`) and give the answers of the whole model: on MLPs with functional activations,
ResNets (both shortcut orders), a transformer and models with tuple or dict outputs; a layer read
inside a module torch.fx does not enter, and a model it cannot trace, run the whole model."""

import numpy as np
import pytest
import torch
import zoo
from torch import nn

from ingest import analyze, attribution, closing
from ingest.attribution import Between, integrated_gradients
from ingest.closing import closable_layers, masked_predictions
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
    "pooled_cnn": (lambda: PooledCNN(), "", (64,)),
}


class PooledCNN(nn.Module):
    """Two convs with max pooling between them and average pooling after them."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.image = nn.Unflatten(1, (1, 8, 8))
        self.conv1, self.conv2 = nn.Conv2d(1, 8, 3, padding=1), nn.Conv2d(8, 8, 3, padding=1)
        self.pool, self.mean, self.fc = nn.MaxPool2d(2), nn.AdaptiveAvgPool2d(1), nn.Linear(8, 10)

    def forward(self, x):
        x = self.pool(torch.relu(self.conv1(self.image(x))))
        return self.fc(self.mean(torch.relu(self.conv2(x))).flatten(1))


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
    read_by_dense = 0
    for layer in layers:  # the input, every hidden layer, the class outputs
        masks = rng.random((40, layer.width)) < 0.3  # more than one pass of MASKS_PER_PASS
        ours = masked_predictions(model, X, layer, masks, batch_size=128)
        np.testing.assert_array_equal(ours, whole_model_predictions(monkeypatch, model, X, layer, masks))
        assert ours.shape == (40, SAMPLES)
        suffix = segment(model, [layer.point], None, torch.from_numpy(X[:8])) if layer.kind != "output" else None
        read_by_dense += suffix is not None and bool(suffix.dense_readers)
    # layers read by a Linear or Conv module, whose closings add the closed channels' response to its output:
    # the MLP's input and three hidden layers; the ResNet's stem, first block output and first convs (not the
    # convs before a merge, the last block output, read by pooling, nor the input, read through Unflatten)
    if name in ("functional_mlp", "resnet"):
        assert read_by_dense == 4


def test_which_layers_get_a_segment(zoo_models):
    """Every hidden layer of a traced CNN or MLP does, and an LSTM's output sequence (unpacked from
    its tuple, the unused state left out); a layer inside a transformer layer (torch.fx does not enter
    nn modules) and an untraceable model do not."""

    def has_segment(name):
        model, X, layers = zoo_models[name]
        x = torch.from_numpy(X[:8])
        return [segment(model, [layer.point], None, x) is not None for layer in layers[1:-1]]

    for name in ("functional_mlp", "resnet", "resnet_shortcut_first", "tuple_output", "dict_output"):
        assert all(has_segment(name)), name
    assert has_segment("transformer") == [True, False, False, False, False, True]
    assert has_segment("lstm") == [True]
    branching = ClassScores(Branching())
    point = closable_layers(record(branching, np.ones((4, 64), np.float32)))[1].point
    assert segment(branching, [point], None, torch.ones(4, 64)) is None


# per model: merges, layers with a one-unit shortcut, IG in closed form, IG channel by channel
SHORTCUTS = {"resnet": (2, 6, 5, 2), "functional_mlp": (0, 3, 3, 0), "pooled_cnn": (0, 2, 1, 0)}


@pytest.mark.parametrize("name", SHORTCUTS)
def test_integrated_gradients_between_two_layers_equal_the_whole_model(zoo_models, digits, monkeypatch, name):
    """NeurFlow's IG of each layer's units w.r.t. the layers feeding it (a merge has two) on the
    segment between them, computing one unit alone where a pass explains one unit of a Linear or
    Conv layer (`OneChannel`), equals IG through the whole model; so does its closed form where that
    module reads the lower layer itself, and a merge's IG computed channel by channel."""
    model, X, _ = zoo_models[name]
    layers = analyze(model.model, X, digits.y[:SAMPLES], name=f"segments-{name}", methods=(), deletion=False).layers
    x = torch.from_numpy(X[:20])
    merges = one_channel = closed_forms = channel_wise = 0
    for upper in layers[1:]:
        lowers = [layers[i] for i in upper.inputs]
        targets = torch.arange(len(x)) // 10 % upper.width  # two units, 10 rows each
        found = {}
        for way in ("segment", "whole"):
            with monkeypatch.context() as patch:
                if way == "whole":
                    patch.setattr(attribution, "segment", lambda *args: None)
                between = Between(model, lowers, upper, x, torch.arange(len(x)), targets)
                forward, starts = between.forward, between.starts
                flat = torch.cat([start.reshape(len(x), -1) for start in starts], dim=1)
                found[way] = [flat] + [integrated_gradients(forward, flat, targets, 8, 8 * rows) for rows in (10, 15)]
                if way == "segment":  # in closed form, or channel by channel, where the layers allow it
                    dispatched = between.integrated_gradients(8, 8 * 10)
                    closed_forms += between.closed_form
                    channel_wise += between.channel_wise
            assert forward.__name__ == ("segmented" if way == "segment" else "whole"), upper.name
        for ours, theirs in zip(found["segment"], found["whole"]):  # the starts; a unit per pass, two per pass
            torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-6)
        torch.testing.assert_close(dispatched, found["whole"][1], rtol=1e-4, atol=1e-6)
        merges += len(lowers) > 1
        one_channel += segment(model, [lowers[0].point], upper.point, x[:10]).one_channel is not None
    # every Linear and Conv layer but the output has the shortcut, all but the first (it reads the input
    # through Unflatten) the closed form, the second conv of the pooled CNN through its max pooling; each
    # unit of a ResNet merge reads its own channels alone
    assert (merges, one_channel, closed_forms, channel_wise) == SHORTCUTS[name]
