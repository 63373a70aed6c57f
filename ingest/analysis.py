"""The analysis of one model on one probe set: a plain object of arrays that the writer stores.

Layers are numbered from 0 (the flattened input) to the last (the model's output, one neuron per
class); a neuron's id is `model/L<layer>/<index>`.
"""

import re
from dataclasses import dataclass, field
from datetime import datetime, timezone

import numpy as np
from torch import nn

from queries.errors import UserError

from .information import DEFAULT_BINS, discretize, entropy_bits
from .neuronize import record

MODEL_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")


@dataclass
class Layer:
    index: int
    name: str  # the module it is read from ("input" and "output" for the ends)
    kind: str  # input | linear | conv | module | output
    activation: str  # activation module read after the weights, "" if none
    acts: np.ndarray  # N x width, float32
    codes: np.ndarray  # N x width, uint8 equal-frequency bins
    entropy: np.ndarray  # bits, Miller-Madow corrected
    class_means: np.ndarray  # C x width

    @property
    def width(self) -> int:
        return self.acts.shape[1]

    @property
    def neuron_kind(self) -> str:
        return self.kind if self.kind in ("input", "output") else "hidden"

    @property
    def constant(self) -> np.ndarray:
        return self.acts.max(axis=0) == self.acts.min(axis=0)


@dataclass
class Analysis:
    name: str
    arch: str
    dataset: str
    class_names: list[str]
    labels: np.ndarray
    predictions: np.ndarray
    layers: list[Layer]
    params: dict = field(default_factory=dict)
    created_at: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def accuracy(self) -> float:
        return float((self.predictions == self.labels).mean())

    @property
    def class_accuracy(self) -> np.ndarray:
        """Share of each class's samples predicted as that class (0 for a class with no samples)."""
        hits = np.bincount(self.labels, weights=self.predictions == self.labels, minlength=self.n_classes)
        support = np.bincount(self.labels, minlength=self.n_classes)
        return np.divide(hits, support, out=np.zeros(self.n_classes), where=support > 0)

    def uid(self, layer: int, index: int | None = None) -> str:
        return f"{self.name}/L{layer}" + ("" if index is None else f"/{index}")


def check_model_name(name: str) -> str:
    if not MODEL_NAME.fullmatch(name):
        raise UserError(f"model name {name!r} is not allowed: use 1 to 64 characters from A-Z a-z 0-9 . _ -")
    return name


def analyze(model: nn.Module, X: np.ndarray, y: np.ndarray, *, name: str, dataset: str = "",
            class_names: list[str] | None = None, layers: list[str] | None = None,
            bins: int = DEFAULT_BINS, batch_size: int = 256) -> Analysis:
    """Neuronize `model` on the probe set (X, y) and compute each neuron's statistics."""
    check_model_name(name)
    X = np.asarray(X, dtype=np.float32)
    y = np.asarray(y)
    if len(X) == 0 or len(X) != len(y):
        raise UserError(f"X has {len(X)} samples and y {len(y)} labels; both must be equal and non-zero")
    rec = record(model, X, layers=layers, batch_size=batch_size)
    n_classes = rec.outputs.shape[1]
    class_names = _class_names(class_names, n_classes)
    if y.min() < 0 or y.max() >= n_classes:
        raise UserError(f"labels must be integers in 0..{n_classes - 1} (the model outputs {n_classes} "
                        f"classes), found {int(y.min())}..{int(y.max())}")
    ends = [("input", "input", "", rec.inputs)]
    hidden = [(tap.name, tap.kind, tap.activation, acts) for tap, acts in zip(rec.taps, rec.hidden)]
    stacks = ends + hidden + [("output", "output", "", rec.outputs)]
    return Analysis(
        name=name, arch=_describe(model, stacks), dataset=dataset,
        class_names=class_names, labels=y, predictions=rec.outputs.argmax(axis=1),
        layers=[_layer(i, *stack, y, n_classes, bins) for i, stack in enumerate(stacks)],
        params={"bins": bins, "layers": [tap.module for tap in rec.taps]},
    )


def _layer(index, name, kind, activation, acts, y, n_classes, bins) -> Layer:
    codes = discretize(acts, bins)
    onehot = np.eye(n_classes, dtype=np.float64)[y]
    support = np.maximum(onehot.sum(axis=0), 1)[:, None]
    return Layer(index=index, name=name, kind=kind, activation=activation, acts=acts, codes=codes,
                 entropy=entropy_bits(codes, bins), class_means=(onehot.T @ acts) / support)


def _class_names(names: list[str] | None, n_classes: int) -> list[str]:
    if names is None:
        return [str(c) for c in range(n_classes)]
    if len(names) != n_classes:
        raise UserError(f"the data names {len(names)} classes but the model outputs {n_classes}")
    return list(names)


def _describe(model: nn.Module, stacks) -> str:
    """E.g. `Sequential(input 64, conv 8, linear 32, output 10)`."""
    return f"{type(model).__name__}(" + ", ".join(f"{kind} {acts.shape[1]}" for _, kind, _, acts in stacks) + ")"

