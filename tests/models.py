"""Model factories for the tests, loaded through `--model tests/models.py:NAME`."""

import torch
from torch import nn
from torch.nn import functional as F


class SharedActivation(nn.Module):
    """One ReLU module used after two Linear layers, and a functional tanh after a third."""

    def __init__(self):
        super().__init__()
        self.fc1, self.fc2, self.fc3, self.out = nn.Linear(4, 6), nn.Linear(6, 5), nn.Linear(5, 3), nn.Linear(3, 2)
        self.act = nn.ReLU()

    def forward(self, x):
        return self.out(torch.tanh(self.fc3(self.act(self.fc2(self.act(self.fc1(x)))))))


def shared_activation():
    torch.manual_seed(0)
    return SharedActivation()


def small():
    """4 features -> 5 hidden -> 2 classes, for small synthetic data files."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 5), nn.ReLU(), nn.Linear(5, 2))


def not_a_module():
    return {"weights": [1, 2, 3]}


def broken():
    raise RuntimeError("cannot build the model")


def tuple_output():
    class Pair(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 2)

        def forward(self, x):
            return self.fc(x), x

    return Pair()


def batchnorm_cnn():
    """Conv -> BatchNorm -> ReLU, read after the ReLU."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Unflatten(1, (1, 8, 8)),
        nn.Conv2d(1, 3, 3),
        nn.BatchNorm2d(3),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(3 * 36, 10),
    )


def functional_only():
    """No activation module: the Linear output itself is read."""

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(4, 3), nn.Linear(3, 2)

        def forward(self, x):
            return self.b(F.relu(self.a(x)))

    torch.manual_seed(0)
    return Net()
