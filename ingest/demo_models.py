"""The demo's model factories. Self-contained (torch only), so that
`neurocypher ingest --model ingest/demo_models.py:mlp ...` loads them like any user's model file."""

from collections import OrderedDict

from torch import nn


def mlp() -> nn.Module:
    """64-32-32-10 multilayer perceptron over the 8x8 digits as 64 features."""
    return nn.Sequential(
        OrderedDict(
            fc1=nn.Linear(64, 32),
            relu1=nn.ReLU(),
            fc2=nn.Linear(32, 32),
            relu2=nn.ReLU(),
            fc3=nn.Linear(32, 10),
        )
    )


def cnn() -> nn.Module:
    """Two 3x3 conv layers (8 and 16 channels), max-pooling and a 64-unit dense layer."""
    return nn.Sequential(
        OrderedDict(
            image=nn.Unflatten(1, (1, 8, 8)),
            conv1=nn.Conv2d(1, 8, 3, padding=1),
            relu1=nn.ReLU(),
            conv2=nn.Conv2d(8, 16, 3, padding=1),
            relu2=nn.ReLU(),
            pool=nn.MaxPool2d(2),
            flat=nn.Flatten(),
            fc1=nn.Linear(16 * 4 * 4, 64),
            relu3=nn.ReLU(),
            fc2=nn.Linear(64, 10),
        )
    )
