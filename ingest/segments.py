"""Running only the part of a model between some of its layers and a later one, from values recorded
once per batch, for many variants of those layers' values at once (closings, the scaled inputs of
Integrated Gradients), planned and checked once per model.

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
depends on the input and is not a batch-first tensor gives no segment: callers then run the whole
model.

`Plans` holds one analysed model's trace and its plans, one `Plan` per starts and stop, built on
first request and never changed. Building a plan checks the segment on the holder's probe batch
against the whole model, and its faster forms (one channel at a time, channel by channel, a reading
module's response to a few channels) against those values (`Plan.verified`): a plan holds only what
agreed, and a segment that disagrees, or fails, gives the whole-model plan `WHOLE_MODEL`.
"""

import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from types import MappingProxyType

import torch
from torch import fx, nn
from torch.nn import functional as F

from .neuronize import pick_scores, token_input
from .taps import Point, tapped_forward, watching

Replace = Callable[[torch.Tensor], torch.Tensor]
PROBE_ROWS = 64  # rows of the batch an analysis checks its plans on (`Plans`), at most a batch


class Segment:
    """The nodes of a traced model after its starts, up to its stop (None: the class scores)."""

    def __init__(self, traced: fx.GraphModule, starts: list[fx.Node], stop: fx.Node | None, logits: str):
        self.traced, self.starts, self.stop, self.logits = traced, starts, stop, logits
        nodes = list(traced.graph.nodes)
        body = _between(nodes, starts, stop if stop is not None else nodes[-1])
        used = {value for node in body for value in node.all_input_nodes} | ({stop} if stop is not None else set())
        read = [node for node in nodes if node in used and node not in body and node.op != "get_attr"]
        self.kept = list(dict.fromkeys(read + starts))
        self.batched = _downstream(nodes, [node for node in nodes if node.op == "placeholder"]) | set(starts)
        needed = _upstream(self.kept)
        self._head = [node for node in nodes if node in needed]  # what the prefix runs: kept values, their inputs
        self._body, self._inside = body, set(body)
        self._tail = [node for node in nodes if node in used and node.op == "get_attr"] + body  # read again
        self._interpreter = fx.Interpreter(traced, garbage_collect_values=False)

    def channel(self, starts: list[torch.Tensor], channel: int) -> torch.Tensor:
        """The stop's channel `channel` alone from each start's channel `channel` (batch x 1 x ...),
        for a segment that maps channel c to channel c alone (`Plan.channel_wise`)."""
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
        finally:  # the segment lives as long as its plan: it must not hold on to a pass's values
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


class Plans:
    """The execution plans of one model, checked on one probe batch: each `Plan` is built on first
    request and kept as long as the holder, with the model's `torch.fx` trace. An analysis makes one
    (`ingest.stages.Run.plans`; the methods read it as `MethodContext.plans`) and every closing and IG
    of it asks this one.

    Parameters
    ----------
    model : ingest.neuronize.ClassScores or nn.Module
        The model as the analysis runs it.
    probe : torch.Tensor
        A batch of the model's inputs (on its device) that every plan is checked on.
    shortcuts : bool
        Whether segments may be used at all; False (`--no-shortcuts`) makes every plan `WHOLE_MODEL`.
    """

    def __init__(self, model, probe: torch.Tensor, shortcuts: bool = True):
        self.model, self.probe, self.shortcuts = model, probe, shortcuts
        self._plans: dict[tuple, Plan] = {}

    def plan(self, starts: list[Point | None], stop: Point | None) -> "Plan":
        """The plan from the layers read at `starts` (None: the input) to the one read at `stop`
        (None: the class scores), built and checked once (`Plan.verified`); `WHOLE_MODEL` where
        there is no segment (see the module's docstring)."""
        if not self.shortcuts or self._traced is None:
            return WHOLE_MODEL
        key = (tuple(starts), stop)
        if key not in self._plans:
            found = self._segment(starts, stop)
            self._plans[key] = (
                WHOLE_MODEL if found is None else Plan.verified(self.model, found, starts, stop, self.probe)
            )
        return self._plans[key]

    @cached_property
    def _module(self) -> nn.Module:
        return getattr(self.model, "model", self.model)

    @cached_property
    def _traced(self) -> fx.GraphModule | None:
        """`torch.fx.symbolic_trace` of the model (its submodules and parameters are the model's own,
        so later weight changes are seen); None for a model run on token data or one it cannot trace."""
        if not isinstance(self._module, nn.Module) or token_input(self.model) is not None:
            return None
        try:
            return fx.symbolic_trace(self._module)
        except Exception:  # noqa: BLE001 (any tracing failure means: run the whole model)
            return None

    def _segment(self, starts: list[Point | None], stop: Point | None) -> Segment | None:
        """The segment from `starts` to `stop`, found on the probe batch: None where a point is not a
        node of the trace or a value it reads is not batch first."""
        wanted = [point for point in [*starts, stop] if point is not None]
        traced, x = self._traced, self.probe
        try:
            found = _nodes_at(self._module, traced, wanted, x)
            placeholders = [node for node in traced.graph.nodes if node.op == "placeholder"]
            if len(placeholders) != 1 or len(found) < len(wanted):
                return None
            found[None] = placeholders[0]
            logits = getattr(self.model, "logits", "")
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


@dataclass(frozen=True, eq=False)
class Plan:
    """How to compute the stop's value (or the class scores) from the starts' values: on `segment`
    and the faster forms below where each gave the whole model's values when the plan was built
    (`verified`), else through the whole model (`segment` None: `WHOLE_MODEL`)."""

    segment: Segment | None = None
    one_channel: "OneChannel | None" = None  # the stop one channel at a time
    channel_wise: bool = False  # the stop's channel c from the starts' channel c alone (`Segment.channel`)
    dense_readers: Mapping[fx.Node, nn.Module] = field(default_factory=dict)  # see `_dense_readers`

    @classmethod
    def verified(cls, model, segment: Segment, starts: list[Point | None], stop: Point | None, x) -> "Plan":
        """The plan of `segment` (from the layers read at `starts` to the one read at `stop`) as far
        as it agrees with the whole model `model` on batch x (`_probe`): `WHOLE_MODEL` where the
        segment disagrees or fails; else the segment, with each faster form that gives the stop's
        values on a few of its channels (`_probe_channels`), and each dense reader whose output with
        every other channel closed is its response to those channels (`closed_output`).

        The check runs once, when the plan is built: a caller reads the verdict, never sets it."""
        with torch.no_grad():
            probe = _probe(model, segment, starts, stop, x)
            if probe is None:
                return WHOLE_MODEL
            one_channel = _one_channel_form(segment)
            if one_channel is not None and not _agrees(_one_channel_values, one_channel, probe):
                one_channel = None
            channel_wise = _channel_local(segment) and _agrees(_channel_values, segment, probe)
            readers = _dense_readers(segment).items()
            agreeing = {node: m for node, m in readers if _agrees(_reader_values, m, probe.values[0])}
        return cls(segment, one_channel, channel_wise, MappingProxyType(agreeing))

    @property
    def start_read_elsewhere(self) -> bool:
        """Whether any node of the segment but the `dense_readers` reads the first start's value."""
        inside = self.segment._inside
        return any(node in inside and node not in self.dense_readers for node in self.segment.starts[0].users)


WHOLE_MODEL = Plan()  # run the whole model


@dataclass(frozen=True, eq=False)
class _Probe:
    """A batch through a segment and through the whole model, each start's value changed the same way."""

    x: torch.Tensor  # the batch
    values: list[torch.Tensor]  # each start's value on it
    changed: list[torch.Tensor]  # each start's value changed (`_changed`)
    expected: torch.Tensor  # the whole model's stop value (or class scores) with the starts' values `changed`


def _probe(model, segment: Segment, starts: list[Point | None], stop: Point | None, x) -> _Probe | None:
    """Batch x through `segment` and the whole model `model`, where the segment gives the whole
    model's values of the starts, and of the stop with each start's value changed (`_changed`);
    None where it does not (to rtol 1e-4, atol 1e-5: `_close`), or fails."""
    try:
        kept = segment.prefix(x)
        values = [kept[node] for node in segment.starts]
        if not all(_close(value, _whole_value(model, x, point)) for value, point in zip(values, starts)):
            return None
        changed = [_changed(value) for value in values]
        expected = tapped_forward(model, *_replacing(x, starts, changed), capture=stop)
        ours = segment.run(kept, 1, given={node: value.clone() for node, value in zip(segment.starts, changed)})
    except Exception:  # noqa: BLE001 (a shortcut that fails is not taken: the whole model runs)
        return None
    return _Probe(x, values, changed, expected) if _close(ours, expected) else None


def _close(ours: torch.Tensor, theirs: torch.Tensor) -> bool:
    return ours.shape == theirs.shape and torch.allclose(ours, theirs, rtol=1e-4, atol=1e-5)


def _agrees(pairs, *args) -> bool:
    """Whether every pair of tensors `pairs(*args)` gives is equal (`_close`); False where it fails."""
    try:
        return all(_close(ours, theirs) for ours, theirs in pairs(*args))
    except Exception:  # noqa: BLE001 (a shortcut that fails is not taken)
        return False


def _whole_value(model, x: torch.Tensor, point: Point | None) -> torch.Tensor:
    """The tensor read at `point` in the whole model's pass on batch x (x itself for the input)."""
    return x if point is None else tapped_forward(model, x, capture=point)


def _replacing(x: torch.Tensor, starts: list[Point | None], values: list[torch.Tensor]) -> tuple:
    """The whole model's input and replacements (`ingest.taps.tapped_forward`) that put `values` at
    `starts`."""
    inputs = next((value for point, value in zip(starts, values) if point is None), x)
    return inputs, {point: value for point, value in zip(starts, values) if point is not None}


def _changed(value: torch.Tensor) -> torch.Tensor:
    """`value` with every other element of each row (batch first, flattened) set to 0 and 1 added to
    the others: a change that no scaling or normalisation after it hides."""
    flat = value.reshape(len(value), -1)
    even = torch.arange(flat.shape[1], device=value.device) % 2 == 0
    return torch.where(even, flat + 1, torch.zeros_like(flat)).reshape(value.shape)


def _probe_channels(value: torch.Tensor) -> list[int]:
    """The channels (axis 1) a faster form is checked on: the first, the middle and the last one."""
    width = value.shape[1]
    return sorted({0, width // 2, width - 1})


def _one_channel_values(form: "OneChannel", probe: _Probe):
    """The stop's probe channels from the one-channel form and from the whole model."""
    head, expected = form.head, probe.expected
    kept = {} if head.reads_only_starts else head.prefix(probe.x)
    z = head.run(kept, 1, given={node: value.clone() for node, value in zip(head.starts, probe.changed)})
    return [(form.value(z, c), expected[:, c : c + 1]) for c in _probe_channels(expected)]


def _channel_values(segment: Segment, probe: _Probe):
    """The stop's probe channels from `Segment.channel` and from the whole model."""
    expected = probe.expected
    return [
        (segment.channel([value[:, c : c + 1] for value in probe.changed], c), expected[:, c : c + 1])
        for c in _probe_channels(expected)
    ]


def _reader_values(module: nn.Module, h: torch.Tensor):
    """A dense reader's output on h with every other channel closed (set to 0), from its response to
    those channels alone (`closed_output`) and from the module itself."""
    keep = (torch.arange(h.shape[1], device=h.device) % 2).to(h.dtype).unsqueeze(0)
    closed = h * keep.view(1, -1, *([1] * (h.ndim - 2)))
    return [(closed_output(module, h, keep, torch.zeros_like(keep)), module(closed))]


def _one_channel_form(segment: Segment) -> "OneChannel | None":
    """The stop as one channel at a time (`OneChannel`), where it is a Linear or Conv module's output
    after channel-wise operations only; else None."""
    if segment.stop is None:
        return None
    traced, chain, node = segment.traced, [], segment.stop
    while _is_channel_op(traced, node):
        chain.insert(0, node)
        node = node.args[0]
    module = traced.get_submodule(node.target) if node.op == "call_module" else None
    if not _is_dense(module) or not isinstance(node.args[0], fx.Node):
        return None
    return OneChannel(Segment(traced, segment.starts, node.args[0], segment.logits), module, chain, traced)


def _dense_readers(segment: Segment) -> dict[fx.Node, nn.Module]:
    """The Linear and Conv modules (one group) of the segment whose one input is the first start's
    value: a change of a few of its channels changes their output by those channels' share alone
    (`closed_output`)."""
    start = segment.starts[0]
    readers = [node for node in start.users if node in segment._inside and node.op == "call_module"]
    readers = [node for node in readers if node.args == (start,) and not node.kwargs]
    return {node: m for node in readers if _is_dense(m := segment.traced.get_submodule(node.target))}


def _channel_local(segment: Segment) -> bool:
    """Whether every node from the starts to the stop maps channel c of its inputs to channel c alone
    (channel-wise operations, and sums, differences or products of such values, as a residual merge):
    then the stop's channel c is a function of the starts' channel c alone (`Segment.channel`)."""
    body = segment._body
    merges = all(_is_channel_op(segment.traced, node) or _is_channel_merge(node) for node in body)
    return segment.stop is not None and segment.reads_only_starts and bool(body) and merges


@dataclass(frozen=True)
class OneChannel:
    """A segment cut before the Linear or Conv module whose output channels its stop holds, and the
    channel-wise operations (eval-mode batch norm, element-wise activations, dropout) from that module
    to the stop: the stop's value for one channel, for the cost of that channel alone."""

    head: Segment  # from the same starts to the module's input
    module: nn.Module
    chain: list[fx.Node]
    traced: fx.GraphModule

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


def closed_output(module: nn.Module, h: torch.Tensor, keep: torch.Tensor, fill: torch.Tensor) -> torch.Tensor:
    """What a Linear or Conv module reading batch h outputs for each closing of h (rows of `keep`, 0
    at its members, and `fill`), copy-major: its output on h plus its bias-free response to the
    change of the closed channels alone (the module is linear in its input), for the cost of those
    channels."""
    opened = module(h)
    outputs = []
    for row_keep, row_fill in zip(keep, fill):
        closed = torch.nonzero(row_keep == 0).squeeze(1)
        if not len(closed):
            outputs.append(opened)
            continue
        change = row_fill[closed].view(1, -1, *([1] * (h.ndim - 2))) - h[:, closed]
        outputs.append(opened + dense(module, change, module.weight[:, closed]))
    return torch.cat(outputs)


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
