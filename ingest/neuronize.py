"""Neuronization: which modules become layers of neurons, and their activations over a probe set.

By default every Linear and Conv module becomes a layer, recorded after the activation function that
directly consumes its output (through any normalisation in between), found by tracing one forward
pass. A Conv channel's activation is its spatial mean, taken inside the hook, so memory stays
O(samples x channels). The model's own output is the output layer; the flattened input is the input
layer.
"""

from contextlib import ExitStack
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from queries.errors import UserError, clip, first_line

from .progress import progress_bar
from .taps import at_call, device_of, per_neuron

_WEIGHTED = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.LayerNorm, nn.GroupNorm, nn.Dropout)
_ACTIVATIONS = (
    nn.ReLU,
    nn.ReLU6,
    nn.LeakyReLU,
    nn.PReLU,
    nn.ELU,
    nn.SELU,
    nn.CELU,
    nn.GELU,
    nn.SiLU,
    nn.Mish,
    nn.Tanh,
    nn.Sigmoid,
    nn.Hardtanh,
    nn.Hardswish,
    nn.Hardsigmoid,
    nn.Softplus,
    nn.Softsign,
)


@dataclass(frozen=True)
class Tap:
    """Where a layer is read: the `call`-th output of module `module`, for the layer named `name`."""

    name: str
    module: str
    call: int
    kind: str  # linear | conv | module
    activation: str  # the activation module's class name, or "" when read before any


@dataclass
class Recording:
    taps: list[Tap]
    hidden: list[np.ndarray]  # per tap, N x width float32
    inputs: np.ndarray  # N x features
    outputs: np.ndarray  # N x classes (the model's output)
    output_module: str  # the Linear/Conv that computes the output, "" if none does directly


def record(model: nn.Module, X: np.ndarray, layers: list[str] | None = None, batch_size: int = 256) -> Recording:
    """Run the probe set through the model in batches and record every tap's activations."""
    device = device_of(model)
    model.eval()
    taps, output_module = _trace(model, _batch(X, 0, min(len(X), 2), device), layers)
    modules = dict(model.named_modules())
    store: dict[Tap, list[torch.Tensor]] = {tap: [] for tap in taps}
    outputs = []
    with ExitStack() as hooks, torch.no_grad(), progress_bar(len(X), "recording activations") as advance:
        for tap in taps:
            hooks.enter_context(at_call(model, modules[tap.module], tap.call, _recorder(store[tap], tap.kind)))
        for start in range(0, len(X), batch_size):
            out = model(_batch(X, start, start + batch_size, device))
            outputs.append(out.detach().float().cpu())
            advance(min(batch_size, len(X) - start))
    return Recording(
        taps=taps,
        hidden=[torch.cat(store[tap]).numpy() for tap in taps],
        inputs=X.reshape(len(X), -1).astype(np.float32),
        outputs=torch.cat(outputs).numpy(),
        output_module=output_module,
    )


def _batch(X: np.ndarray, start: int, stop: int, device) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(X[start:stop])).to(device)


def _recorder(chunks: list, kind: str):
    def keep(output):
        chunks.append(per_neuron(output, kind).float().cpu())

    return keep


def _trace(model: nn.Module, sample: torch.Tensor, layers: list[str] | None) -> tuple[list[Tap], str]:
    """One forward pass with hooks on every leaf module, in execution order, to choose the taps;
    also the name of the weighted module that computes the output."""
    modules = dict(model.named_modules())
    if layers:
        unknown = [name for name in layers if name not in modules or not name]
        if unknown:
            named = [n for n in modules if n][:12]
            raise UserError(
                f"no module named {clip(', '.join(unknown))} in the model; named modules include: " + ", ".join(named)
            )
        watch = {name: modules[name] for name in layers}
    else:
        watch = {name: m for name, m in modules.items() if name and not list(m.children())}
    events: list[tuple[str, int, torch.Tensor, torch.Tensor]] = []
    counts: dict[str, int] = {}

    def hook_for(name):
        def hook(module, inputs, output):
            if isinstance(output, torch.Tensor) and inputs and isinstance(inputs[0], torch.Tensor):
                events.append((name, counts.get(name, 0), inputs[0], output))
            counts[name] = counts.get(name, 0) + 1

        return hook

    handles = [m.register_forward_hook(hook_for(name)) for name, m in watch.items()]
    try:
        with torch.no_grad():
            out = model(sample)
    except Exception as exc:
        raise UserError(
            f"the model rejects inputs of shape {tuple(sample.shape[1:])}: "
            f"{type(exc).__name__}: {first_line(exc)}; reshape the data or adapt the model"
        ) from exc
    finally:
        for handle in handles:
            handle.remove()
    if not isinstance(out, torch.Tensor) or out.ndim != 2:
        raise UserError(
            "the model must return one tensor of class scores (samples x classes), got "
            + (f"shape {tuple(out.shape)}" if isinstance(out, torch.Tensor) else type(out).__name__)
        )
    taps = (
        [_named_tap(name, call, modules[name]) for name, call, _, _ in events]
        if layers
        else _default_taps(events, modules)
    )
    is_output = {(name, call) for name, call, _, output in events if output is out}
    output_module = next((name for name, _ in is_output if isinstance(modules[name], _WEIGHTED)), "")
    return [tap for tap in taps if (tap.module, tap.call) not in is_output], output_module


def _named_tap(name: str, call: int, module: nn.Module) -> Tap:
    kind = "linear" if isinstance(module, nn.Linear) else "conv" if isinstance(module, _WEIGHTED) else "module"
    return Tap(name=name, module=name, call=call, kind=kind, activation="")


def _default_taps(events, modules) -> list[Tap]:
    """Each Linear/Conv call, moved forward to the activation that consumes its output."""
    taps = []
    for i, (name, call, _, output) in enumerate(events):
        module = modules[name]
        if not isinstance(module, _WEIGHTED):
            continue
        kind = "linear" if isinstance(module, nn.Linear) else "conv"
        tap = Tap(name=name, module=name, call=call, kind=kind, activation="")
        current = output
        for later, later_call, later_input, later_output in events[i + 1 :]:
            if later_input is not current:
                continue
            follower = modules[later]
            if isinstance(follower, _ACTIVATIONS):
                tap = Tap(name=name, module=later, call=later_call, kind=kind, activation=type(follower).__name__)
                break
            if not isinstance(follower, _NORMS):
                break
            current = later_output
        taps.append(tap)
    if not taps:
        raise UserError("the model has no Linear or Conv layer to neuronize; name modules with --layers")
    return taps
