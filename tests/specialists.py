"""A network with known structure: one-vs-rest specialists for the digits 0, 2 and 4 (classes 0, 1, 2; the digits
a template detector finds best), each a small MLP, concatenated block-diagonally, so that hidden neuron j of
both hidden layers belongs to specialist j // WIDTH. The other digits form one more class, "other" (3), that
no specialist claims: its logit is a constant threshold. So no digit class is known by elimination alone
(knowing that specialist k fires says little about class c when most samples are "other"). Shared by the
community, relay and NeurFlow tests as the `specialists` fixture."""

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from neurocypher.ingest.data import load_data

DIGITS, WIDTH, SCORE = (0, 2, 4), 6, 4.0
SPECIALISTS = len(DIGITS)
CLASSES = SPECIALISTS + 1  # the last class is "other"
CLASS_NAMES = [str(d) for d in DIGITS] + ["other"]


@dataclass
class Specialists:
    model: nn.Module
    X: np.ndarray
    y: np.ndarray
    blocks: np.ndarray  # specialist of each hidden neuron (the same for both hidden layers)


def build(epochs: int = 300, seed: int = 0) -> Specialists:
    data = load_data("sklearn:digits")
    X = data.X
    y = np.full(len(X), SPECIALISTS)
    for c, digit in enumerate(DIGITS):
        y[data.y == digit] = c
    torch.manual_seed(seed)
    parts = [_train_specialist(X, y == c, epochs) for c in range(SPECIALISTS)]
    n = SPECIALISTS * WIDTH
    model = nn.Sequential(
        nn.Linear(64, n, bias=False), nn.ReLU(), nn.Linear(n, n, bias=False), nn.ReLU(), nn.Linear(n, CLASSES)
    )
    with torch.no_grad():
        for layer in (0, 2, 4):
            model[layer].weight.zero_()
        model[4].bias.zero_()
        model[4].bias[SPECIALISTS] = SCORE / 2  # "other" wins unless a specialist is confident
        for c, (first, second, out) in enumerate(parts):
            block = slice(c * WIDTH, (c + 1) * WIDTH)
            model[0].weight[block] = first.weight
            model[2].weight[block, block] = second.weight
            model[4].weight[c, block] = out.weight[0]
    return Specialists(model.eval(), X, y, np.repeat(np.arange(SPECIALISTS), WIDTH))


def _train_specialist(X, is_class, epochs):
    """A detector of one digit, trained one-vs-rest to score SCORE on it and 0 elsewhere. Its ReLU
    units start from the digit's mean-image contrast (so none is dead) and have no bias, so a closed
    (zeroed) specialist scores 0, as it does on the other digits."""
    first, second, out = (
        nn.Linear(64, WIDTH, bias=False),
        nn.Linear(WIDTH, WIDTH, bias=False),
        nn.Linear(WIDTH, 1, bias=False),
    )
    with torch.no_grad():
        contrast = torch.from_numpy(X[is_class].mean(0) - X.mean(0))
        first.weight.copy_(contrast / contrast.norm() * 3 + 0.1 * torch.randn(WIDTH, 64))
        second.weight.copy_(torch.rand(WIDTH, WIDTH))
    net = nn.Sequential(first, nn.ReLU(), second, nn.ReLU(), out)
    optimiser = torch.optim.Adam(net.parameters(), lr=3e-3)
    Xt, target = torch.from_numpy(X), torch.from_numpy(SCORE * is_class.astype(np.float32))
    for _ in range(epochs):
        optimiser.zero_grad()
        nn.functional.mse_loss(net(Xt)[:, 0], target).backward()
        optimiser.step()
    return first, second, out
