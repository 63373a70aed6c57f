"""The shortcuts (the part of a model after a layer, closed-form and one-channel Integrated Gradients,
a reading module's response) on modules that do not compute what their class usually computes: each
zoo model analysed with all five methods gives what the whole model gives (`shortcuts=False`)."""

import fastpath_zoo
import numpy as np
import pytest
import torch

from neurocypher.ingest import analyze
from neurocypher.ingest.flow import weight_coupling

EVERY_METHOD = ("innersight", "neurflow", "flow", "weights", "relay")


@pytest.mark.parametrize("name", sorted(fastpath_zoo.ZOO))
def test_shortcuts_give_the_whole_models_answers(digits, name):
    model = fastpath_zoo.trained(fastpath_zoo.ZOO[name](), digits.X, digits.y)
    X, y = digits.X[:300], digits.y[:300]
    runs = [
        analyze(model, X, y, name=f"z-{name}", methods=EVERY_METHOD, chain_draws=2, shortcuts=allowed)
        for allowed in (True, False)
    ]
    fast, whole = ([(c.method, c.layer, c.members.tolist()) for c in a.communities] for a in runs)
    assert fast == whole
    assert sorted(runs[0].methods) == sorted(EVERY_METHOD)
    for ours, theirs in zip(runs[0].communities, runs[1].communities):
        for prop in ("class_acc_drop", "relay_bits"):
            assert np.allclose(ours.props[prop], theirs.props[prop], atol=1e-6), (ours.method, ours.layer, prop)
    for key, value in runs[1].metrics.items():
        assert np.allclose(runs[0].metrics[key], value, atol=1e-6), key


@pytest.mark.parametrize("name", ["masked", "pruned", "weight_normed"])
def test_weight_coupling_is_the_weight_the_module_computes_with(name):
    """A masked, pruned or weight-normed Linear couples its layers by the weight it computes with."""
    module = fastpath_zoo.ZOO[name]().second
    with torch.no_grad():
        computed = (module(torch.eye(50)) - module(torch.zeros(1, 50))).abs()  # row i: |W[:, i]|
    assert np.allclose(weight_coupling(module, 50), computed.numpy(), atol=1e-6)
