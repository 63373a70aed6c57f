"""Running only the part of a model between some of its layers and a later one, from values recorded
once per batch, for many variants of those layers' values at once (closings, the scaled inputs of
Integrated Gradients).

The model is traced by `torch.fx`, and each layer is found as the node whose output is read at its
`ingest.taps.Point` (the input is the placeholder). The segment is the nodes that depend on a start
and lead to the stop (or the class scores) other than through a start. `Segment.prefix` runs once
per batch what the segment reads besides them and keeps those values: the starts', a skip
connection's tensor, the input. `Segment.run` runs the segment on `copies` copies of the batch
(copy-major, as `ingest.taps.Layout.masked` expects): each start's value is replaced (by a function
of its copies, or by a given tensor), the other values are repeated, not recomputed. That is the
whole model's computation on the repeated batch, for the cost of the segment.

A value the segment reads that does not depend on the input (a masked weight, `weight * mask`) is
kept once, not repeated. A model `torch.fx` cannot trace (data-dependent control flow), a model run
on token data (`ingest.tokens`), a point read inside a traced-through module, or a kept value that
depends on the input and is not a batch-first tensor gives no segment (None): callers then run the
whole model. A segment is found once per model and ends; its first caller compares one batch
against the whole model (`Segment.agrees`), and a segment that disagrees, or fails, is not used.
"""

import operator
import weakref
from collections.abc import Callable
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from functools import cached_property

import torch
from torch import fx, nn
from torch.nn import functional as F

from .neuronize import pick_scores, token_input
from .taps import Point, watching

Replace = Callable[[torch.Tensor], torch.Tensor]


class Segment:
    """The nodes of a traced model after its starts, up to its stop (None: the class scores)."""

    def __init__(self, traced: fx.GraphModule, starts: list[fx.Node], stop: fx.Node | None, logits: str):
        self.traced, self.starts, self.stop, self.logits = traced, starts, stop, logits
        self.agrees: bool | None = None  # whether it gave the whole model's values (set by the first caller)
        self.channels_agree: bool | None = None  # whether `channel` gave its values (set by the first caller)
        nodes = list(traced.graph.nodes)
        body = _between(nodes, starts, stop if stop is not None else nodes[-1])
        used = {value for node in body for value in node.all_input_nodes} | ({stop} if stop is not None else set())
        read = [node for node in nodes if node in used and node not in body and node.op != "get_attr"]
        self.kept = list(dict.fromkeys(read + starts))
        self.batched = _downstream(nodes, [node for node in nodes if node.op == "placeholder"]) | set(starts)
        needed = _upstream(self.kept)
        self._head = [
            node for node in nodes if node in needed
        ]  # what the prefix runs: the kept values and their inputs
        self._body, self._inside = body, set(body)
        self._tail = [node for node in nodes if node in used and node.op == "get_attr"] + body  # read again
        self._interpreter = fx.Interpreter(traced, garbage_collect_values=False)

    @cached_property
    def one_channel(self) -> "OneChannel | None":
        """The stop as one channel at a time (`OneChannel`), where it is a Linear or Conv module's
        output after channel-wise operations only; else None."""
        if self.stop is None:
            return None
        chain, node = [], self.stop
        while _is_channel_op(self.traced, node):
            chain.insert(0, node)
            node = node.args[0]
        module = self.traced.get_submodule(node.target) if node.op == "call_module" else None
        if not _is_dense(module) or not isinstance(node.args[0], fx.Node):
            return None
        return OneChannel(Segment(self.traced, self.starts, node.args[0], self.logits), module, chain, self.traced)

    @cached_property
    def dense_readers(self) -> dict[fx.Node, nn.Module]:
        """The Linear and Conv modules (one group) of the segment whose one input is the first start's
        value: a change of a few of its channels changes their output by those channels' share alone."""
        start = self.starts[0]
        readers = [node for node in start.users if node in self._inside and node.op == "call_module"]
        readers = [node for node in readers if node.args == (start,) and not node.kwargs]
        return {node: m for node in readers if _is_dense(m := self.traced.get_submodule(node.target))}

    @cached_property
    def start_read_elsewhere(self) -> bool:
        """Whether any node but the `dense_readers` reads the first start's value."""
        return any(node in self._inside and node not in self.dense_readers for node in self.starts[0].users)

    @cached_property
    def channel_wise(self) -> bool:
        """Whether every node from the starts to the stop maps channel c of its inputs to channel c
        alone (channel-wise operations, and sums, differences or products of such values, as a residual
        merge): then the stop's channel c is a function of the starts' channel c alone (`channel`)."""
        merges = all(_is_channel_op(self.traced, node) or _is_channel_merge(node) for node in self._body)
        return self.stop is not None and self.reads_only_starts and bool(self._body) and merges

    def channel(self, starts: list[torch.Tensor], channel: int) -> torch.Tensor:
        """The stop's channel `channel` alone from each start's channel `channel` (batch x 1 x ...),
        for a `channel_wise` segment."""
        keep = slice(channel, channel + 1)
        env = {node: value.clone() for node, value in zip(self.starts, starts)}  # in-place operations leave them
        for node in self._body:
            if _is_channel_merge(node):
                arguments = [env[arg] if isinstance(arg, fx.Node) else arg for arg in node.args]
                env[node] = _MERGES[node.target](*arguments)
            else:
                env[node] = _channel_op(self.traced, node, env[node.args[0]], keep)
        return env[self.stop]

    def prefix(self, x: torch.Tensor) -> dict[fx.Node, object]:
        """The values the segment reads, for batch `x`."""
        env = self._run(self._head, {}, x, keep=set(self.kept))
        return {node: env[node] for node in self.kept}

    @property
    def reads_only_starts(self) -> bool:
        """Whether the segment reads nothing but its starts' values (then a caller that gives them
        all needs no prefix)."""
        return set(self.kept) <= set(self.starts)

    def run(
        self,
        kept: dict[fx.Node, object],
        copies: int,
        replace: dict[fx.Node, Replace] | None = None,
        given: dict[fx.Node, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """The stop's value (or the class scores) on `copies` copies of the batch: each start's value
        replaced by `replace[start]` of its copies, or by `given[start]` (already copies x batch); a
        later node whose value `given` holds is not run."""
        given = given or {}
        env = {
            node: value.repeat(copies, *([1] * (value.ndim - 1))) if node in self.batched else value
            for node, value in kept.items()
            if node not in given
        }
        env |= given
        for node, fn in (replace or {}).items():
            env[node] = fn(env[node])
        value = self._run(self._tail, env, keep={self.stop})
        return value[self.stop] if self.stop is not None else pick_scores(value, self.logits)

    def _run(self, nodes, env: dict, x: torch.Tensor | None = None, keep=()):
        """Run `nodes` in order from `env` (a node whose value `env` already holds is not run): the class
        scores at the output node, else `env` with the values of `keep`; every other value is dropped
        after its last use (as `fx.Interpreter.run` does), so a pass holds no more than the model itself
        would."""
        last_use = {value: node for node in nodes for value in node.all_input_nodes}
        done = {}
        for value, node in last_use.items():
            done.setdefault(node, []).append(value)
        self._interpreter.env = env
        self._interpreter.args_iter = iter([x])
        try:
            for node in nodes:
                if node not in env:
                    value = self._interpreter.run_node(node)
                    if node.op == "output":
                        return value
                    env[node] = value
                for used in done.get(node, ()):
                    if used not in keep:
                        env.pop(used, None)
            return env
        finally:  # the segment is cached with its model: it must not hold on to a pass's values
            self._interpreter.env, self._interpreter.args_iter = {}, iter(())


def _between(nodes: list[fx.Node], starts: list[fx.Node], stop: fx.Node) -> list[fx.Node]:
    """The nodes (in graph order) that depend on a start and lead to `stop` other than through a
    start: what a change of the starts' values changes on the way to the stop (a skip connection's
    pooling after an earlier start included)."""
    leading = _upstream([stop], bound=set(starts))
    depending = _downstream(nodes, starts)
    return [node for node in nodes if node in leading and node in depending and node not in starts]


def _downstream(nodes: list[fx.Node], sources: list[fx.Node]) -> set[fx.Node]:
    """`sources` and every node computed from them."""
    found = set(sources)
    for node in nodes:  # in graph (topological) order
        if any(value in found for value in node.all_input_nodes):
            found.add(node)
    return found


def _upstream(wanted: list[fx.Node], bound: set[fx.Node] = frozenset()) -> set[fx.Node]:
    """`wanted` and every node they are computed from, not reaching past (nor including) `bound`."""
    found, todo = set(), list(wanted)
    while todo:
        node = todo.pop()
        if node not in found and node not in bound:
            found.add(node)
            todo.extend(node.all_input_nodes)
    return found


_SHORTCUTS = ContextVar("shortcuts", default=True)


@contextmanager
def shortcuts(allowed: bool):
    """While the block runs, segments (and the shortcuts built on them: closing a layer after it,
    the closed form and one-channel Integrated Gradients) are used where they agree with the whole
    model (`allowed`), or never: every closing and IG runs the whole model."""
    token = _SHORTCUTS.set(allowed)
    try:
        yield
    finally:
        _SHORTCUTS.reset(token)


def segment(model, starts: list[Point | None], stop: Point | None, x: torch.Tensor) -> Segment | None:
    """The segment of `model` (an `ingest.neuronize.ClassScores` or a module) from the layers read
    at `starts` (None: the input) to the one read at `stop` (None: the class scores), found on batch
    `x` once per model and ends: None where there is none (see the module's docstring)."""
    module = getattr(model, "model", model)
    if not _SHORTCUTS.get() or not isinstance(module, nn.Module) or token_input(model) is not None:
        return None
    logits = getattr(model, "logits", "")
    known = _SEGMENTS.setdefault(module, {})
    key = (tuple(starts), stop, logits)
    if key not in known:
        known[key] = _found(module, starts, stop, logits, x)
    return known[key]


def _found(module: nn.Module, starts: list[Point | None], stop: Point | None, logits: str, x) -> Segment | None:
    wanted = [point for point in [*starts, stop] if point is not None]
    try:
        traced = _traced(module)
        found = _nodes_at(module, traced, wanted, x)
        placeholders = [node for node in traced.graph.nodes if node.op == "placeholder"]
        if len(placeholders) != 1 or len(found) < len(wanted):
            return None
        found[None] = placeholders[0]
        piece = Segment(traced, [found[p] for p in starts], found[stop] if stop is not None else None, logits)
        with torch.no_grad():
            kept = piece.prefix(x)
    except Exception:  # noqa: BLE001 (any tracing failure means: run the whole model)
        return None
    batch_first = all(
        isinstance(v, torch.Tensor) and v.ndim and v.shape[0] == len(x)
        for node, v in kept.items()
        if node in piece.batched
    )
    return piece if batch_first else None


@dataclass
class OneChannel:
    """A segment cut before the Linear or Conv module whose output channels its stop holds, and the
    channel-wise operations (eval-mode batch norm, element-wise activations, dropout) from that module
    to the stop: the stop's value for one channel, for the cost of that channel alone."""

    head: Segment  # from the same starts to the module's input
    module: nn.Module
    chain: list[fx.Node]
    traced: fx.GraphModule
    agrees: bool | None = None  # whether it gave the segment's values (set by the first caller)

    def value(self, z: torch.Tensor, channel: int) -> torch.Tensor:
        """The stop's tensor for `channel` only (one channel, batch first) from the module's input z."""
        return self.after(self.response(z, channel, bias=True), channel)

    def response(self, z: torch.Tensor, channel: int, bias: bool = False) -> torch.Tensor:
        """The module's output channel `channel` alone on input z (without its bias by default: then
        linear in z)."""
        keep = slice(channel, channel + 1)
        module = self.module
        return dense(module, z, module.weight[keep], module.bias[keep] if bias and module.bias is not None else None)

    def after(self, out: torch.Tensor, channel: int) -> torch.Tensor:
        """The channel-wise operations from the module's output channel `channel` to the stop."""
        for node in self.chain:
            out = _channel_op(self.traced, node, out, slice(channel, channel + 1))
        return out

    @property
    def homogeneous_head(self) -> bool:
        """Whether the part before the module (`head`) reads one start h and is positively homogeneous
        and piecewise linear, g(a h) = a g(h) with the same Jacobian for every a > 0: nothing at all,
        pooling, ReLU, flattening."""
        head = self.head
        return (
            len(head.starts) == 1
            and head.reads_only_starts
            and all(_is_homogeneous(self.traced, n) for n in head._body)
        )

    def head_value(self, h: torch.Tensor) -> torch.Tensor:
        """The module's input from the head's one start h (a copy of h where there is no head)."""
        return self.head.run({}, 1, given={self.head.starts[0]: h.clone()})


def dense(module: nn.Module, z: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """A Linear or Conv module's operation on z with `weight` and `bias` in place of its own (slices
    of them: some output or input channels)."""
    return F.linear(z, weight, bias) if isinstance(module, nn.Linear) else module._conv_forward(z, weight, bias)


def _is_dense(module: nn.Module | None) -> bool:
    """Whether `module` is a Linear or a one-group Conv module (each output channel reads every input one)."""
    convolution = isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d)) and module.groups == 1
    return isinstance(module, nn.Linear) or convolution


_ELEMENT_WISE = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU, nn.Mish, nn.Tanh)
_ELEMENT_WISE += (nn.Sigmoid, nn.Hardtanh, nn.Hardswish, nn.Hardsigmoid, nn.Softplus, nn.Softsign, nn.Identity)
_ELEMENT_WISE_FUNCTIONS = {"relu", "relu_", "gelu", "silu", "tanh", "sigmoid", "leaky_relu", "elu", "hardtanh"}
_BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
_POOLS = (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d)
_POOLS += (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d, nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d)
_HOMOGENEOUS = _POOLS + (nn.ReLU, nn.Identity, nn.Flatten)
_HOMOGENEOUS_FUNCTIONS = {"relu", "relu_", "flatten", "reshape", "view"}


def _is_homogeneous(traced: fx.GraphModule, node: fx.Node) -> bool:
    """Whether `node` is positively homogeneous and piecewise linear in its one tensor input."""
    if len(node.all_input_nodes) != 1:
        return False
    if node.op == "call_module":
        module = traced.get_submodule(node.target)
        return isinstance(module, _HOMOGENEOUS) or (isinstance(module, nn.Dropout) and not module.training)
    return _calls(node, _HOMOGENEOUS_FUNCTIONS)


def _calls(node: fx.Node, names: set[str]) -> bool:
    """Whether `node` calls a method or function named in `names`."""
    name = node.target if node.op == "call_method" else getattr(node.target, "__name__", "")
    return node.op in ("call_method", "call_function") and name in names


_MERGES = {operator.add: operator.add, operator.iadd: operator.add, torch.add: torch.add}
_MERGES |= {operator.mul: operator.mul, operator.imul: operator.mul, torch.mul: torch.mul, operator.sub: operator.sub}


def _is_channel_merge(node: fx.Node) -> bool:
    """Whether `node` adds, subtracts or multiplies values (a residual merge), out of place."""
    plain = all(not isinstance(arg, fx.Node) or arg.op != "get_attr" for arg in node.args)
    return node.op == "call_function" and node.target in _MERGES and not node.kwargs and plain


def _is_channel_op(traced: fx.GraphModule, node: fx.Node) -> bool:
    """Whether `node` maps each channel of its one tensor input to the same channel alone (element-wise
    operations, eval batch norm, pooling)."""
    if not node.args or not isinstance(node.args[0], fx.Node) or len(node.all_input_nodes) != 1:
        return False
    if node.op == "call_module":
        module = traced.get_submodule(node.target)
        if isinstance(module, _BATCH_NORMS):
            return not module.training and module.running_mean is not None
        channel_local = isinstance(module, _ELEMENT_WISE + _POOLS)
        return channel_local or (isinstance(module, nn.Dropout) and not module.training)
    return _calls(node, _ELEMENT_WISE_FUNCTIONS)


def _channel_op(traced: fx.GraphModule, node: fx.Node, out: torch.Tensor, keep: slice) -> torch.Tensor:
    """`node`'s operation on the kept channels `out`."""
    if node.op == "call_module":
        module = traced.get_submodule(node.target)
        if isinstance(module, _BATCH_NORMS):
            parameters = [p if p is None else p[keep] for p in (module.weight, module.bias)]
            mean, var = module.running_mean[keep], module.running_var[keep]
            return F.batch_norm(out, mean, var, *parameters, training=False, eps=module.eps)
        return module(out)
    if node.op == "call_method":
        return getattr(out, node.target)(*node.args[1:], **node.kwargs)
    return node.target(out, *node.args[1:], **node.kwargs)


_TRACES: "weakref.WeakKeyDictionary[nn.Module, fx.GraphModule]" = weakref.WeakKeyDictionary()
_SEGMENTS: "weakref.WeakKeyDictionary[nn.Module, dict]" = weakref.WeakKeyDictionary()


def _traced(module: nn.Module) -> fx.GraphModule:
    """`torch.fx.symbolic_trace(module)`, once per module (its submodules and parameters are the
    module's own, so later weight changes are seen)."""
    if module not in _TRACES:
        _TRACES[module] = fx.symbolic_trace(module)
    return _TRACES[module]


def _nodes_at(module: nn.Module, traced: fx.GraphModule, points: list[Point], x: torch.Tensor):
    """The node whose output is the tensor read at each of `points` (those found), run on batch `x`."""
    seen: dict[Point, torch.Tensor] = {}
    found: dict[Point, fx.Node] = {}
    interpreter = fx.Interpreter(traced, garbage_collect_values=False)
    interpreter.args_iter = iter([x])

    def seer(point):
        def see(tensor):
            seen.setdefault(point, tensor)

        return see

    fns = {point: seer(point) for point in points}
    with watching(module, fns), torch.no_grad():
        for node in traced.graph.nodes:
            if node.op == "output" or len(found) == len(points):
                break
            interpreter.env[node] = interpreter.run_node(node)
            found |= {p: node for p, tensor in seen.items() if p not in found and tensor is interpreter.env[node]}
    return found
