"""Reading and replacing activations inside a model: its device, per-neuron values of a module's
output, and hooks on the n-th call of a module within each forward pass."""

from collections.abc import Callable
from contextlib import contextmanager

import torch
from torch import nn


def device_of(model: nn.Module) -> torch.device:
    """The device of the model's first parameter (the CPU for a model without parameters)."""
    return next((p.device for p in model.parameters()), torch.device("cpu"))


def per_neuron(output: torch.Tensor, kind: str) -> torch.Tensor:
    """Samples x neurons: the features of the last axis for Linear layers (means over any axes in
    between), the spatial mean of each channel otherwise."""
    if output.ndim == 2:
        return output
    if kind == "linear":
        return output.flatten(1, -2).mean(dim=1)
    return output.flatten(2).mean(dim=2)


@contextmanager
def at_call(model: nn.Module, module: nn.Module, call: int, fn: Callable[[torch.Tensor], torch.Tensor | None]):
    """While the block runs, `fn(output)` sees the output of the `call`-th call of `module` in every
    forward pass of `model` (counted from 0); a tensor it returns replaces that output."""
    calls = [0]

    def reset(*_):
        calls[0] = 0

    def hook(_module, _inputs, output):
        calls[0] += 1
        return fn(output) if calls[0] - 1 == call else None

    handles = [model.register_forward_pre_hook(reset), module.register_forward_hook(hook)]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()
