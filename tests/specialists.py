"""A network with known structure: C one-vs-rest specialists, each a small MLP for one digit class,
concatenated block-diagonally, so that hidden neuron j of every layer belongs to specialist j // WIDTH.
Shared by the community, relay and NeurFlow tests as the `specialists` fixture."""

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ingest.data import load_data

CLASSES, WIDTH, SCORE = 4, 6, 4.0


@dataclass
class Specialists:
    model: nn.Module
    X: np.ndarray
    y: np.ndarray
    blocks: np.ndarray  # specialist of each hidden neuron (the same for both hidden layers)


def build(epochs: int = 300, seed: int = 0) -> Specialists:
    data = load_data("sklearn:digits")
    keep = data.y < CLASSES
    X, y = data.X[keep], data.y[keep]
    torch.manual_seed(seed)
    parts = [_train_specialist(X, y == c, epochs) for c in range(CLASSES)]
    model = nn.Sequential(nn.Linear(64, CLASSES * WIDTH, bias=False), nn.ReLU(),
                          nn.Linear(CLASSES * WIDTH, CLASSES * WIDTH, bias=False), nn.ReLU(),
                          nn.Linear(CLASSES * WIDTH, CLASSES, bias=False))
    with torch.no_grad():
        for layer in (0, 2, 4):
            model[layer].weight.zero_()
        for c, (first, second, out) in enumerate(parts):
            block = slice(c * WIDTH, (c + 1) * WIDTH)
            model[0].weight[block] = first.weight
            model[2].weight[block, block] = second.weight
            model[4].weight[c, block] = out.weight[0]
    return Specialists(model.eval(), X, y, np.repeat(np.arange(CLASSES), WIDTH))


def _train_specialist(X, is_class, epochs):
    """A detector of one class, trained one-vs-rest to score SCORE on its class and 0 elsewhere.
    Its ReLU units start from the class's mean-image contrast (so none is dead) and no layer has a
    bias, so a closed (zeroed) specialist scores 0, as it does for the other classes."""
    first, second, out = (nn.Linear(64, WIDTH, bias=False), nn.Linear(WIDTH, WIDTH, bias=False),
                          nn.Linear(WIDTH, 1, bias=False))
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
