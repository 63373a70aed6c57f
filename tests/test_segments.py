"""Closings and NeurFlow's Integrated Gradients run only the part of the model they need
(`ingest.segments`) and give the answers of the whole model: on MLPs with functional activations,
ResNets (both shortcut orders), a transformer and models with tuple or dict outputs; a layer read
inside a module torch.fx does not enter, a model it cannot trace, and a model whose trace computes
another function run the whole model. Each plan is checked once, when it is built."""

import dataclasses

import numpy as np
import pytest
import torch
import zoo
from torch import nn

from neurocypher.ingest import analyze
from neurocypher.ingest.attribution import Between, integrated_gradients
from neurocypher.ingest.closing import ReadPoint, closable_layers, masked_predictions
from neurocypher.ingest.neuronize import ClassScores, record
from neurocypher.ingest.segments import WHOLE_MODEL, Plans
from neurocypher.ingest.taps import Layout, Point

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


class TracedOtherwise(nn.Module):
    """Doubles its hidden layer when it runs, but not when torch.fx traces it (it asks for the type
    of the value): its trace computes another function from the hidden layer on."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.fc1, self.fc2 = nn.Linear(64, 16), nn.Linear(16, 10)

    def forward(self, x):
        hidden = torch.relu(self.fc1(x))
        return self.fc2(hidden * (2.0 if isinstance(hidden, torch.Tensor) else 1.0))


def tanh(x):
    """Named as an activation, but moves each channel to the next one: not channel-wise."""
    return x.roll(1, dims=1)


torch.fx.wrap("tanh")  # traced as one call, which the shortcuts take for an element-wise activation


class Rolled(nn.Module):
    """An MLP with the `tanh` above after its second Linear."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.fc1, self.fc2, self.out = nn.Linear(64, 16), nn.Linear(16, 16), nn.Linear(16, 10)

    def forward(self, x):
        return self.out(tanh(self.fc2(torch.relu(self.fc1(x)))))


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


def plans_of(model, X, shortcuts: bool = True) -> Plans:
    """The model's plans, checked on the first 128 rows of X (all the whole model's without `shortcuts`)."""
    return Plans(model, torch.from_numpy(X[:128]), shortcuts)


@pytest.mark.parametrize("name", MODELS)
def test_closings_on_the_segment_after_a_layer_equal_the_whole_model(zoo_models, name):
    model, X, layers = zoo_models[name]
    plans, whole = plans_of(model, X), plans_of(model, X, shortcuts=False)
    rng = np.random.default_rng(0)
    read_by_dense = 0
    for layer in layers:  # the input, every hidden layer, the class outputs
        masks = rng.random((40, layer.width)) < 0.3  # more than one pass of MASKS_PER_PASS
        ours = masked_predictions(plans, X, layer, masks, batch_size=128)
        np.testing.assert_array_equal(ours, masked_predictions(whole, X, layer, masks, batch_size=128))
        assert ours.shape == (40, SAMPLES)
        read_by_dense += layer.kind != "output" and bool(plans.plan([layer.point], None).dense_readers)
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
        plans = plans_of(model, X)
        return [plans.plan([layer.point], None).segment is not None for layer in layers[1:-1]]

    for name in ("functional_mlp", "resnet", "resnet_shortcut_first", "tuple_output", "dict_output"):
        assert all(has_segment(name)), name
    assert has_segment("transformer") == [True, False, False, False, False, True]
    assert has_segment("lstm") == [True]
    branching = ClassScores(Branching())
    point = closable_layers(record(branching, np.ones((4, 64), np.float32)))[1].point
    assert Plans(branching, torch.ones(4, 64)).plan([point], None) is WHOLE_MODEL


# per model: merges, layers with a one-unit shortcut, IG in closed form, IG channel by channel
SHORTCUTS = {"resnet": (2, 6, 5, 2), "functional_mlp": (0, 3, 3, 0), "pooled_cnn": (0, 2, 1, 0)}


@pytest.mark.parametrize("name", SHORTCUTS)
def test_integrated_gradients_between_two_layers_equal_the_whole_model(zoo_models, digits, name):
    """NeurFlow's IG of each layer's units w.r.t. the layers feeding it (a merge has two) on the
    segment between them, computing one unit alone where a pass explains one unit of a Linear or
    Conv layer (`OneChannel`), equals IG through the whole model; so does its closed form where that
    module reads the lower layer itself, and a merge's IG computed channel by channel."""
    model, X, _ = zoo_models[name]
    layers = analyze(model.model, X, digits.y[:SAMPLES], name=f"segments-{name}", methods=(), deletion=False).layers
    x = torch.from_numpy(X[:20])
    plans = {"segment": plans_of(model, X[:20]), "whole": plans_of(model, X[:20], shortcuts=False)}
    merges = one_channel = closed_forms = channel_wise = 0
    for upper in layers[1:]:
        lowers = [layers[i] for i in upper.inputs]
        targets = torch.arange(len(x)) // 10 % upper.width  # two units, 10 rows each
        found = {}
        for way in ("segment", "whole"):
            between = Between(plans[way], lowers, upper, x, torch.arange(len(x)), targets)
            forward, starts = between.forward, between.starts
            flat = torch.cat([start.reshape(len(x), -1) for start in starts], dim=1)
            found[way] = [flat] + [integrated_gradients(forward, flat, targets, 8, 8 * rows) for rows in (10, 15)]
            if way == "segment":  # in closed form, or channel by channel, where the layers allow it
                dispatched = between.integrated_gradients(8, 8 * 10)
                closed_forms += between.closed_form
                channel_wise += between.channel_wise
                one_channel += between.plan.one_channel is not None
            assert forward.__name__ == ("segmented" if way == "segment" else "whole"), upper.name
        for ours, theirs in zip(found["segment"], found["whole"]):  # the starts; a unit per pass, two per pass
            torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-6)
        torch.testing.assert_close(dispatched, found["whole"][1], rtol=1e-4, atol=1e-6)
        merges += len(lowers) > 1
    # every Linear and Conv layer but the output has the shortcut, all but the first (it reads the input
    # through Unflatten) the closed form, the second conv of the pooled CNN through its max pooling; each
    # unit of a ResNet merge reads its own channels alone
    assert (merges, one_channel, closed_forms, channel_wise) == SHORTCUTS[name]


def test_a_plan_is_checked_against_the_whole_model_when_it_is_built(digits):
    """A plan whose segment gives other values than the whole model is the whole model's, and IG and
    closings through it run the whole model; one that agrees has its segment; each is built once,
    and a plan cannot be changed after. Without shortcuts every plan is the whole model's."""
    X = digits.X[:SAMPLES]
    model = ClassScores(zoo.train(TracedOtherwise(), X, digits.y[:SAMPLES], steps=40))
    plans = plans_of(model, X)
    _, hidden, output = layers = closable_layers(record(model, X))
    assert plans.plan([hidden.point], None) is WHOLE_MODEL
    agreeing = plans.plan([None], hidden.point)
    assert agreeing.segment is not None and plans.plan([None], hidden.point) is agreeing
    with pytest.raises(dataclasses.FrozenInstanceError):
        agreeing.segment = None
    assert plans_of(model, X, shortcuts=False).plan([None], hidden.point) is WHOLE_MODEL

    x = torch.from_numpy(X[:20])
    for lower, upper, forward in ((layers[0], hidden, "segmented"), (hidden, output, "whole")):
        between = Between(plans, [lower], upper, x, torch.arange(len(x)), torch.zeros(len(x), dtype=torch.long))
        assert between.forward.__name__ == forward
    masks = np.random.default_rng(0).random((8, hidden.width)) < 0.5
    whole = plans_of(model, X, shortcuts=False)
    closed = masked_predictions(plans, X, hidden, masks, batch_size=128)
    np.testing.assert_array_equal(closed, masked_predictions(whole, X, hidden, masks, batch_size=128))


def test_a_faster_form_that_disagrees_is_left_out_of_the_plan():
    """`tanh` above passes for channel-wise: the one-channel form ending with it, and its channel-by-
    channel run, give other values than the whole model, so the plans leave them out (the segments
    agree), and IG through them equals IG through the whole model."""
    model = ClassScores(Rolled().eval())
    x = torch.randn(20, 64, generator=torch.Generator().manual_seed(0))
    plans, whole = Plans(model, x), Plans(model, x, shortcuts=False)
    relu, fc2 = (
        ReadPoint("linear", Point("torch.relu", 0, False), Layout(), 16),
        ReadPoint("linear", Point("fc2"), Layout(), 16),
    )
    rolled = ReadPoint("linear", Point("Tensor.roll", 0, False), Layout(), 16)
    assert plans.plan([relu.point], fc2.point).one_channel is not None  # fc2's output itself
    through_relu, through_fc2 = plans.plan([relu.point], rolled.point), plans.plan([fc2.point], rolled.point)
    assert through_relu.segment is not None and through_relu.one_channel is None
    assert through_fc2.segment is not None and not through_fc2.channel_wise
    targets = torch.arange(len(x)) // 10  # two units, 10 rows each
    for lower in (relu, fc2):
        ours, theirs = (Between(p, [lower], rolled, x, torch.arange(len(x)), targets) for p in (plans, whole))
        assert ours.forward.__name__ == "segmented"
        torch.testing.assert_close(ours.integrated_gradients(8, 80), theirs.integrated_gradients(8, 80))
