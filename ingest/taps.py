"""Reading and replacing activations inside a model: its device, where a layer is read in a forward
pass (`Point`), how its tensor becomes one value per neuron (`Layout`), and `watching` the outputs of
chosen modules and functions (torch functions included: `F.relu`, `x + y`, `torch.cat`, ...) in
every forward pass.

`watching` follows a forward pass as it runs, with forward hooks on every module of the model and a
`TorchFunctionMode` for the torch functions called outside them, so it sees functional activations
and residual adds that module hooks alone cannot, and it works for models `torch.fx` cannot trace
(data-dependent control flow). A leaf module, a `MultiheadAttention` and a recurrent module are
seen as one operation: nothing inside them is watched.
"""

from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.overrides import TorchFunctionMode

OPAQUE = (nn.MultiheadAttention, nn.RNNBase)  # modules with children that are read as a whole
REDUCE_RULES = ("mean", "max", "first", "last")


def device_of(model: nn.Module) -> torch.device:
    """The device of the model's first parameter (the CPU for a model without parameters)."""
    return next((p.device for p in model.parameters()), torch.device("cpu"))


def rows(X: np.ndarray, start: int, stop: int, device) -> torch.Tensor:
    """Rows start:stop of X as a tensor on `device`."""
    return torch.from_numpy(np.ascontiguousarray(X[start:stop])).to(device)


@dataclass(frozen=True)
class Point:
    """One output in a forward pass: the `call`-th call (counted from 0) of module `name`
    (`module=True`) or of torch function `name` (outside every opaque module)."""

    name: str
    call: int = 0
    module: bool = True

    def __str__(self) -> str:
        return self.name if self.module and not self.call else f"{self.name}#{self.call}"


@dataclass(frozen=True)
class Layout:
    """Where the neurons are in a layer's tensor: the batch axis (1 in a sequence-first module), and
    either channels on the axis after it (conv: a neuron is a channel's spatial mean) or features on
    the last axis (reduced over the token or step axes in between by `reduce`: mean, max, first or
    last; "" where there are none)."""

    batch_axis: int = 0
    channels: bool = False
    reduce: str = ""

    def neurons(self, output: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
        """Samples x neurons. `valid` (samples x tokens, token data with an attention mask) leaves
        the padded tokens out of the reduction over tokens: the mean and max of the real ones, the
        first and the last real one."""
        x = output.movedim(self.batch_axis, 0)
        if x.ndim == 2:
            return x
        if self.channels:
            return x.flatten(2).mean(dim=2)
        x = x.flatten(1, -2)
        if valid is not None and valid.shape == x.shape[:2]:
            return _masked_reduce(x, valid.to(x.device), self.reduce)
        if self.reduce == "max":
            return x.amax(dim=1)
        if self.reduce in ("first", "last"):
            return x[:, 0 if self.reduce == "first" else -1]
        return x.mean(dim=1)

    def masked(self, output: torch.Tensor, keep: torch.Tensor, fill: torch.Tensor) -> torch.Tensor:
        """`output` holding len(keep) copies of a batch (copy-major), with each copy's neurons
        multiplied by its row of `keep` and `fill` added (copies x neurons); a channel's whole map
        and a feature at every token take the value."""
        x = output.movedim(self.batch_axis, 0)
        copies = len(keep)
        grouped = x.reshape(copies, -1, *x.shape[1:])
        if self.channels and x.ndim > 2:
            shape = (copies, 1, -1) + (1,) * (x.ndim - 2)
        else:
            shape = (copies,) + (1,) * (x.ndim - 1) + (-1,)
        closed = grouped * keep.view(shape).to(x.dtype) + fill.view(shape).to(x.dtype)
        return closed.reshape(x.shape).movedim(0, self.batch_axis)


def _masked_reduce(x: torch.Tensor, valid: torch.Tensor, reduce: str) -> torch.Tensor:
    """x (samples x tokens x features) reduced over its real tokens (`valid`; a sample without one
    reads 0)."""
    weight = valid.to(x.dtype).unsqueeze(2)
    if reduce == "max":
        return torch.where(valid.unsqueeze(2), x, torch.finfo(x.dtype).min).amax(dim=1) * (weight.amax(dim=1) > 0)
    if reduce in ("first", "last"):
        order = torch.arange(x.shape[1], device=x.device).expand_as(valid)
        at = torch.where(valid, order, -1).amax(dim=1) if reduce == "last" else torch.where(valid, order, x.shape[1])
        at = at if reduce == "last" else at.amin(dim=1)
        return x[torch.arange(len(x), device=x.device), at.clamp(0, x.shape[1] - 1)]
    return (x * weight).sum(dim=1) / weight.sum(dim=1).clamp(min=1)


Fn = Callable[[torch.Tensor], torch.Tensor | None]


def first_tensor(output):
    """The first tensor in a (nested) tuple or list output, or None."""
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, (tuple, list)):
        return next((t for t in map(first_tensor, output) if t is not None), None)
    return None


def _with_first(output, tensor):
    """`output` with its first tensor replaced by `tensor`."""
    if isinstance(output, torch.Tensor):
        return tensor
    items, done = [], False
    for item in output:
        if not done and first_tensor(item) is not None:
            item, done = _with_first(item, tensor), True
        items.append(item)
    return type(output)(items)


def function_name(func) -> str:
    """A torch function's name as points and layer names use it, e.g. `torch.nn.functional.relu`,
    `Tensor.add`, `torch.cat`."""
    qualname = getattr(func, "__qualname__", None) or getattr(func, "__name__", None) or repr(func)
    owner, _, name = qualname.rpartition(".")
    if owner == "TensorBase":
        return "Tensor." + name
    if owner == "_VariableFunctionsClass":
        return "torch." + name
    module = getattr(func, "__module__", None)
    return f"{module}.{qualname}" if module else qualname


class _Watch(TorchFunctionMode):
    """The state of one `watching` block: what runs where, counted per forward pass."""

    def __init__(self, model: nn.Module, fns: dict[Point, Fn], observe):
        super().__init__()
        self.names = {id(m): name for name, m in model.named_modules()}
        self.root = next(id(m) for name, m in model.named_modules() if not name)
        self.fns, self.observe = fns, observe
        self.calls: dict[tuple[str, bool], int] = {}
        self.stack: list[nn.Module] = []
        self.opaque = 0  # opaque modules entered and not left
        self.paused = False

    def _count(self, name: str, module: bool) -> Point:
        key = (name, module)
        call = self.calls.get(key, 0)
        self.calls[key] = call + 1
        return Point(name, call, module)

    def _see(self, point: Point, op: str, inputs, output):
        """Tell the observer, then apply the point's fn; what replaces the output, if anything."""
        tensor = first_tensor(output)
        if tensor is None:
            return None
        self.paused = True
        try:
            if self.observe is not None:
                self.observe(point, op, inputs, output, self._container())
            fn = self.fns.get(point)
            replaced = fn(tensor) if fn is not None else None
        finally:
            self.paused = False
        return None if replaced is None else _with_first(output, replaced)

    def _container(self) -> str:
        return self.names.get(id(self.stack[-1]), "") if self.stack else ""

    def enter(self, module, inputs):
        if id(module) not in self.names:
            return
        if id(module) == self.root:  # a new forward pass (an earlier one may have ended by an exception)
            self.calls.clear()
            self.stack.clear()
            self.opaque = 0
        self.stack.append(module)
        self.opaque += _is_opaque(module)

    def leave(self, module, inputs, output):
        if id(module) not in self.names or not self.stack:
            return None
        self.stack.pop()
        self.opaque -= _is_opaque(module)
        if self.opaque or self.paused or id(module) == self.root:
            return None
        point = self._count(self.names[id(module)], True)
        seen = inputs if _is_opaque(module) else (first_tensor(output),)  # a container's output passes through
        return self._see(point, type(module).__name__, seen, output)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        output = func(*args, **(kwargs or {}))
        if self.paused or self.opaque or first_tensor(output) is None:
            return output
        point = self._count(function_name(func), False)
        replaced = self._see(point, getattr(func, "__name__", ""), list(args) + list((kwargs or {}).values()), output)
        return output if replaced is None else replaced


def _is_opaque(module: nn.Module) -> bool:
    return isinstance(module, OPAQUE) or not any(True for _ in module.children())


@contextmanager
def watching(model: nn.Module, fns: dict[Point, Fn] | None = None, observe=None):
    """While the block runs, in every forward pass of `model`, `fns[point](output)` sees the output
    at each point (the first tensor of a tuple output); a tensor it returns replaces it.
    `observe(point, op, inputs, output, container)`, if given, sees every operation outside the
    opaque modules (for tracing the dataflow; `output` as the operation returned it: a tensor, or a
    tuple of them as from `split`)."""
    watch = _Watch(model, fns or {}, observe)
    handles = [
        nn.modules.module.register_module_forward_pre_hook(watch.enter),
        nn.modules.module.register_module_forward_hook(watch.leave),
    ]
    try:
        with watch:
            yield
    finally:
        for handle in handles:
            handle.remove()


class _Captured(Exception):
    """Ends a forward pass at the captured output (the rest of the model is not needed)."""

    def __init__(self, output: torch.Tensor):
        super().__init__()
        self.output = output


def tapped_forward(model: nn.Module, inputs: torch.Tensor, replace=None, capture: Point | None = None) -> torch.Tensor:
    """A forward pass. `replace` = {point: tensor} puts each tensor in place of the output at its
    point; `capture` (a point) returns the output there instead of the model's, stopping the pass."""

    def stop(output):
        raise _Captured(output)

    # a copy each time: a model that adds to a layer's output in place (HF ResNet's `hidden_state +=
    # residual`) must not write into the tensor the gradients are taken for, nor into a view of it
    fns = {point: (lambda _output, tensor=tensor: tensor.clone()) for point, tensor in (replace or {}).items()}
    if capture is not None:
        fns[capture] = stop
    try:
        with watching(model, fns):
            return model(inputs)
    except _Captured as captured:
        return captured.output
