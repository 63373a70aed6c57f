"""The models researchers bring, small enough to train in seconds on the 8x8 digits (as 64 features,
8x8 images, or 8 rows of 8 features): functional activations, residual blocks, transformers, RNNs,
tuple and dict outputs. Also loadable as `--model tests/zoo.py:NAME`."""

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F


class FunctionalMLP(nn.Module):
    """Activations called as functions only: F.relu, Tensor.relu and F.gelu."""

    def __init__(self):
        super().__init__()
        self.fc1, self.fc2, self.fc3, self.out = (
            nn.Linear(64, 32),
            nn.Linear(32, 24),
            nn.Linear(24, 16),
            nn.Linear(16, 10),
        )

    def forward(self, x):
        return self.out(F.gelu(self.fc3(self.fc2(F.relu(self.fc1(x))).relu())))


class Block(nn.Module):
    """A ResNet basic block: conv-BN-ReLU-conv-BN plus the shortcut (identity, or a 1x1 conv and BN
    when the shape changes), then ReLU; `shortcut_first` computes the shortcut first."""

    def __init__(self, cin: int, cout: int, stride: int = 1, shortcut_first: bool = False):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        projection = stride != 1 or cin != cout
        self.shortcut = (
            nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)) if projection else None
        )
        self.shortcut_first = shortcut_first

    def forward(self, x):
        skip = self.shortcut(x) if self.shortcut is not None and self.shortcut_first else None
        out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        if self.shortcut is None:
            skip = x
        elif skip is None:
            skip = self.shortcut(x)
        return F.relu(out + skip)


class ResNet(nn.Module):
    """A stem conv, a block with an identity skip, a block with a projection shortcut, pooling, fc."""

    def __init__(self, shortcut_first: bool = False):
        super().__init__()
        self.image = nn.Unflatten(1, (1, 8, 8))
        self.conv = nn.Conv2d(1, 8, 3, 1, 1, bias=False)
        self.bn = nn.BatchNorm2d(8)
        self.relu = nn.ReLU()
        self.block1 = Block(8, 8, shortcut_first=shortcut_first)
        self.block2 = Block(8, 16, 2, shortcut_first=shortcut_first)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        x = self.block2(self.block1(self.relu(self.bn(self.conv(self.image(x))))))
        return self.fc(self.pool(x).flatten(1))


class Transformer(nn.Module):
    """8 tokens (the image rows) of 8 features: a Linear embedding, one encoder layer (ReLU MLP,
    sequence-first unless `batch_first`), the mean over tokens, a Linear classifier."""

    def __init__(self, batch_first: bool = True):
        super().__init__()
        self.batch_first = batch_first
        self.embed = nn.Linear(8, 16)
        self.encoder = nn.TransformerEncoderLayer(16, 2, 32, dropout=0.0, batch_first=batch_first)
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        h = self.embed(x)
        h = self.encoder(h) if self.batch_first else self.encoder(h.transpose(0, 1)).transpose(0, 1)
        return self.fc(h.mean(dim=1))


class Recurrent(nn.Module):
    """An LSTM or GRU over the 8 image rows, classified from its last step."""

    def __init__(self, cell: type = nn.LSTM):
        super().__init__()
        self.rnn = cell(8, 24, batch_first=True)
        self.fc = nn.Linear(24, 10)

    def forward(self, x):
        out, _ = self.rnn(x)
        return self.fc(out[:, -1])


class WithFeatures(nn.Module):
    """Returns the class scores with the hidden features: as a tuple (scores first) or a dict."""

    def __init__(self, as_dict: bool = False):
        super().__init__()
        self.as_dict = as_dict
        self.fc1, self.fc2 = nn.Linear(64, 32), nn.Linear(32, 10)

    def forward(self, x):
        h = torch.tanh(self.fc1(x))
        return {"features": h, "logits": self.fc2(h)} if self.as_dict else (self.fc2(h), h)


def functional_mlp():
    torch.manual_seed(0)
    return FunctionalMLP()


def resnet(shortcut_first: bool = False):
    torch.manual_seed(0)
    return ResNet(shortcut_first)


def transformer(batch_first: bool = True):
    torch.manual_seed(0)
    return Transformer(batch_first)


def lstm():
    torch.manual_seed(0)
    return Recurrent(nn.LSTM)


def gru():
    torch.manual_seed(0)
    return Recurrent(nn.GRU)


def tuple_output():
    torch.manual_seed(0)
    return WithFeatures()


def dict_output():
    torch.manual_seed(0)
    return WithFeatures(as_dict=True)


def three_classes():
    """64 features -> 16 -> 3 classes (for data that holds only some of them)."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 3))


class ResidualPair(nn.Module):
    """x + fc2(relu(fc1(x))), then ReLU: three layers (fc1, fc2 and the merge)."""

    def __init__(self, width: int):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(width, width), nn.Linear(width, width)

    def forward(self, x):
        return F.relu(x + self.fc2(F.relu(self.fc1(x))))


def deep(blocks: int = 10, width: int = 16):
    """A deep residual MLP: a stem, then `blocks` residual blocks in an nn.Sequential, so that each
    layer's module path names its block (`3.fc1`, `3.fc2`, `3.add`): 3 + 3 x blocks layers with the
    input and the output (33 for 10 blocks)."""
    torch.manual_seed(0)
    stem = nn.Sequential(nn.Linear(64, width), nn.ReLU())
    return nn.Sequential(stem, *[ResidualPair(width) for _ in range(blocks)], nn.Linear(width, 10))


def train(model: nn.Module, X: np.ndarray, y: np.ndarray, steps: int = 150, logits=lambda out: out) -> nn.Module:
    """Full-batch Adam on cross-entropy; `logits` picks the class scores from the output."""
    torch.manual_seed(0)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    inputs, labels = torch.from_numpy(X), torch.from_numpy(y)
    model.train()
    for _ in range(steps):
        optimiser.zero_grad()
        F.cross_entropy(logits(model(inputs)), labels).backward()
        optimiser.step()
    return model.eval()
