"""Neuronization: the model's layers of neurons as a DAG that follows its dataflow, and their
activations over a probe set.

One forward pass is traced (`ingest.taps.watching`: module hooks plus a torch function mode, so
functional activations, residual adds and concatenations are seen). The layers are, by default:

- every call of a Linear or Conv module, of any other module with its own parameters that computes
  an affine map of its one input (checked on the traced values: e.g. GPT-2's `Conv1D`), and every
  `MultiheadAttention` (its output features) and LSTM / GRU / RNN (its hidden units);
- every point where branches merge: an add (`x + y`, `torch.add`, `+=`) of operands of the output's
  shape, or a concatenation (`torch.cat`, `torch.stack`), whose operands come from different layers
  (a ResNet block's output, a transformer block's residual adds);

each read after what directly and only consumes it: normalisations and dropout, then the first
activation (a module such as `nn.ReLU` or Hugging Face's `ACT2FN` modules, or a function such as
`F.relu`, `torch.relu`, `x.relu()`, `F.gelu`). A layer is fed by the nearest layers its input
depends on (through any reshaping, pooling or indexing; the indices of a selection are no data),
which gives the DAG. Layers are numbered by depth (the longest path from the
input), then by where their module is declared, so the order of statements in `forward` does not
change the numbering. A layer's name is the shortest tail of its module path (a merge: of the module
it runs in) that no other layer shares; the full path is kept (`Tap.path`). The input (flattened; for
token ids, one neuron per token, `ingest.tokens`) is layer 0 and the class scores are the last layer;
a layer that does not lead to the class scores is left out and reported. The class scores are the
model's output, or its item `logits` (a Hugging Face `ModelOutput`), or the item `--logits` names.

A conv channel's value is its spatial mean. A feature of a tensor with token or step axes (N x T x D,
or T x N x D in a sequence-first module: the batch axis is found by tracing two batch sizes) is
reduced over them by `token_reduce`: `auto` reads recurrent layers at their last step and every other
layer as the mean over tokens.
"""

import inspect
import tempfile
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from neurocypher.config import settings
from neurocypher.errors import UserError, clip, first_line
from neurocypher.progress import progress_bar

from .taps import OPAQUE, REDUCE_RULES, Layout, Point, device_of, first_tensor, rows, watching
from .tokens import Tokens, split

_WEIGHTED = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
_NORMS = (
    nn.BatchNorm1d,
    nn.BatchNorm2d,
    nn.BatchNorm3d,
    nn.LayerNorm,
    nn.GroupNorm,
    nn.InstanceNorm1d,
    nn.InstanceNorm2d,
    nn.Dropout,
    nn.Dropout1d,
    nn.Dropout2d,
    nn.Identity,
)
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
_NORM_FUNCTIONS = {"batch_norm", "layer_norm", "group_norm", "instance_norm", "rms_norm", "dropout", "dropout_"}
_ACTIVATION_FUNCTIONS = {
    name + suffix
    for name in ("relu", "relu6", "leaky_relu", "elu", "selu", "celu", "gelu", "silu", "mish", "tanh", "sigmoid")
    + ("hardtanh", "hardswish", "hardsigmoid", "softplus", "softsign", "prelu")
    for suffix in ("", "_")
}
_MERGES = {"add": "add", "add_": "add", "__add__": "add", "__iadd__": "add", "__radd__": "add", "cat": "cat"}
_MERGES |= {"concat": "cat", "concatenate": "cat", "stack": "stack"}
_SELECTIONS = {"__getitem__", "index_select", "gather", "take", "take_along_dim", "masked_select"}
_PICKS = _SELECTIONS | {"view", "reshape", "squeeze", "flatten", "contiguous", "select", "to", "float"}
TOKEN_REDUCE = ("auto",) + REDUCE_RULES


@dataclass(frozen=True)
class Tap:
    """A hidden layer: where it is read and what it is."""

    name: str  # the shortest tail of `path` no other layer shares
    path: str  # the module's name (with #call for a later call), or CONTAINER.add / .cat for a merge
    point: Point  # where its tensor is read
    layout: Layout
    kind: str  # linear | conv | attention | recurrent | merge | module (a module named with --layers)
    module: str  # the module whose output it is ("" for a merge)
    activation: str  # the activation it is read after, "" if none
    inputs: tuple[int, ...]  # the layers feeding it (0: the input; hidden layers from 1, in this order)


@dataclass
class Recording:
    taps: list[Tap]  # the hidden layers, layer i + 1 = taps[i]
    hidden: list[np.ndarray]  # per tap, N x width float32
    inputs: np.ndarray  # N x features
    outputs: np.ndarray  # N x classes (the class scores)
    output_module: str  # the Linear/Conv that computes the class scores, "" if none does directly
    output_inputs: tuple[int, ...]  # the layers feeding the class scores
    left_out: list[str] = field(default_factory=list)  # layers that do not lead to the class scores


class ClassScores:
    """`model` called as neurocypher runs it: on a batch of samples (token data: packed ids and mask,
    `ingest.tokens`, given as the ids and `attention_mask=` where `forward` takes one), returning its
    class scores: the output itself, item `logits` of a dict output (a Hugging Face `ModelOutput`)
    that has one, or item `logits` (an index or a key) of a tuple, list or dict output. Everything
    else is the model's."""

    def __init__(self, model: nn.Module, logits: str = "", tokens: Tokens | None = None):
        self.model, self.logits, self.tokens = model, logits, tokens
        self.takes_mask = "attention_mask" in inspect.signature(model.forward).parameters

    def __getattr__(self, name):
        return getattr(self.model, name)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        args, kwargs = self.arguments(x)
        return self.scores(self.model(*args, **kwargs))

    def arguments(self, x: torch.Tensor) -> tuple[tuple, dict]:
        """The model's arguments for batch x."""
        if self.tokens is None:
            return (x,), {}
        ids, valid = split(x)
        return (ids,), ({"attention_mask": valid.long()} if valid is not None and self.takes_mask else {})

    def valid(self, x: torch.Tensor) -> torch.Tensor | None:
        """The real (unpadded) positions of batch x: token data with a mask, else None."""
        return None if self.tokens is None else split(x)[1]

    def scores(self, output) -> torch.Tensor:
        """The class scores in the model's output (`pick_scores`); a dict output's item `logits`
        when no item is named."""
        if not self.logits and isinstance(output, dict) and "logits" in output:
            self.logits = "logits"
        return pick_scores(output, self.logits)


def token_input(model) -> Tokens | None:
    """The token input a model is run on (`ClassScores.tokens`), None for any other input."""
    return model.tokens if isinstance(model, ClassScores) else None


def valid_positions(model, x: torch.Tensor) -> torch.Tensor | None:
    """The real positions of batch x where the model runs on token data with a mask, else None."""
    return model.valid(x) if isinstance(model, ClassScores) else None


def pick_scores(output, logits: str = "") -> torch.Tensor:
    """The class scores (samples x classes) in a model's output; a UserError naming `--logits`."""
    if logits:
        key = int(logits) if logits.lstrip("-").isdigit() and not isinstance(output, dict) else logits
        try:
            output = output[key]
        except (IndexError, KeyError, TypeError):
            raise UserError(f"--logits {logits}: the model's output has no item {logits!r}") from None
    elif isinstance(output, (tuple, list, dict)):
        items = list(output) if isinstance(output, dict) else f"0..{len(output) - 1}"
        raise UserError(
            f"the model returns a {type(output).__name__} ({items}); say which item holds the class "
            "scores with --logits INDEX|KEY (API: logits=...)"
        )
    if not isinstance(output, torch.Tensor) or output.ndim != 2:
        shape = f"shape {tuple(output.shape)}" if isinstance(output, torch.Tensor) else type(output).__name__
        raise UserError(f"the class scores must be one tensor of samples x classes, got {shape}")
    return output


def record(
    model: ClassScores | nn.Module,
    X: np.ndarray,
    layers=(),
    batch_size: int = 256,
    token_reduce: str = "auto",
    memory_budget: int | None = None,
) -> Recording:
    """Trace the model's layer DAG, then run the probe set through it in batches and record every
    hidden layer's activations and the class scores. Activations beyond `memory_budget` bytes (None:
    no limit) are written to memory-mapped files (`ActivationArrays`)."""
    model = model if isinstance(model, ClassScores) else ClassScores(model)
    device = device_of(model)
    model.eval()
    dag = _trace(model, X, tuple(layers), token_reduce, device)
    taps = dag.taps
    arrays = ActivationArrays(memory_budget)
    hidden: dict[Tap, np.ndarray] = {}
    start = 0

    valid = None

    def recorder(tap):
        def keep(output):
            values = tap.layout.neurons(output, valid).float().cpu().numpy()
            if tap not in hidden:
                hidden[tap] = arrays.new(len(X), values.shape[1])
            hidden[tap][start : start + len(values)] = values

        return keep

    outputs = []
    with (
        watching(model, {tap.point: recorder(tap) for tap in taps}),
        torch.no_grad(),
        progress_bar(len(X), "recording activations") as advance,
    ):
        for start in range(0, len(X), batch_size):
            x = rows(X, start, start + batch_size, device)
            valid = model.valid(x)
            outputs.append(model(x).detach().float().cpu())
            advance(min(batch_size, len(X) - start))
    inputs = X.reshape(len(X), -1).astype(np.float32) if model.tokens is None else model.tokens.counts(X)
    return Recording(
        taps=taps,
        hidden=[hidden[tap] for tap in taps],
        inputs=inputs,
        outputs=torch.cat(outputs).numpy(),
        output_module=dag.output_module,
        output_inputs=dag.output_inputs,
        left_out=dag.left_out,
    )


class ActivationArrays:
    """Samples x neurons float32 arrays: in memory while their bytes stay within `budget` (None: no
    limit), then memory-mapped files in the data directory's `scratch` folder (NEUROCYPHER_HOME),
    unlinked at once, so the mapping holds them only until the array is freed."""

    def __init__(self, budget: int | None):
        self.left = budget

    def new(self, samples: int, width: int) -> np.ndarray:
        size = samples * width * 4
        if self.left is None or size <= self.left:
            self.left = None if self.left is None else self.left - size
            return np.empty((samples, width), dtype=np.float32)
        folder = settings().home / "scratch"
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, suffix=".npy") as file:  # removed on leaving: mapped already
            return np.lib.format.open_memmap(file.name, mode="w+", dtype=np.float32, shape=(samples, width))


def _probe(X: np.ndarray, n: int, device) -> torch.Tensor:
    """The first `n` samples (repeated when there are fewer) as a batch."""
    return torch.from_numpy(np.ascontiguousarray(X[np.arange(n) % len(X)])).to(device)


@dataclass
class _Node:
    """One operation of the traced forward pass."""

    point: Point
    op: str  # the module's class name or the function's name
    inputs: tuple[int, ...]  # the nodes whose outputs it takes (0: the model's input)
    shape: tuple[int, ...]
    container: str  # the innermost module it ran in
    args: tuple = ()  # a leaf module with parameters: its tensor inputs (to check whether it is affine)


def _run_traced(model: ClassScores, x: torch.Tensor, named: set[str]) -> tuple[list[_Node], int]:
    """The operations of one forward pass, and the node that produced the class scores. A module
    with children only passes on what its children made: it is no operation of its own unless
    `named` (or a Linear or Conv module with children: parametrized). Only the first argument is
    the input (token data: the ids; an attention mask is no data)."""
    args, kwargs = model.arguments(x)
    nodes = [_Node(Point("input", 0, False), "input", (), tuple(args[0].shape), "")]
    producer = {id(args[0]): 0}
    alive = [x]  # keeps every seen tensor alive, so that ids stay unique
    modules = dict(model.named_modules())

    def observe(point, op, inputs, output, container):
        module = modules.get(point.name) if point.module else None
        leaf = module is not None and (isinstance(module, OPAQUE) or not any(True for _ in module.children()))
        if module is not None and not leaf and point.name not in named and not isinstance(module, _WEIGHTED):
            return  # a container (a parametrized Linear or Conv, whose parametrizations are children, is a layer)
        read = inputs[:1] if op in _SELECTIONS else inputs  # the indices of a selection are no data
        sources = tuple(dict.fromkeys(producer[id(t)] for t in _tensors(read) if id(t) in producer))
        own = leaf and any(True for _ in module.parameters(recurse=False))
        outputs = list(_tensors([output]))
        nodes.append(
            _Node(point, op, sources, tuple(outputs[0].shape), container, tuple(_tensors(inputs)) if own else ())
        )
        for tensor in outputs:
            producer[id(tensor)] = len(nodes) - 1
        alive.extend(outputs)

    try:
        with torch.no_grad(), watching(model, observe=observe):
            scores = model.scores(model.model(*args, **kwargs))
    except UserError:
        raise
    except Exception as exc:
        raise UserError(
            f"the model rejects inputs of shape {tuple(x.shape[1:])}: "
            f"{type(exc).__name__}: {first_line(exc)}; reshape the data or adapt the model"
        ) from exc
    return nodes, producer.get(id(scores), -1)


def _tensors(items):
    for item in items:
        if isinstance(item, torch.Tensor):
            yield item
        elif isinstance(item, (tuple, list)):
            yield from _tensors(item)


@dataclass
class _TracedLayer:
    """A layer found in the trace, before the layers are numbered."""

    start: int  # its first node (the module, or the merge)
    read: int  # the node whose output is read
    kind: str
    feeds: frozenset  # found-layer ids feeding it (0: the input)
    activation: str = ""


@dataclass
class _Dag:
    """The traced layer DAG: the hidden layers and what feeds the class scores."""

    taps: list[Tap]
    output_module: str
    output_inputs: tuple[int, ...]
    left_out: list[str]


def _trace(model: ClassScores, X: np.ndarray, layers: tuple[str, ...], token_reduce: str, device) -> _Dag:
    """The layer DAG: which nodes are layers, what feeds them, in a canonical order."""
    modules = dict(model.named_modules())
    unknown = [name for name in layers if name not in modules or not name]
    if unknown:
        named = [n for n in modules if n][:12]
        raise UserError(
            f"no module named {clip(', '.join(unknown))} in the model; named modules include: " + ", ".join(named)
        )
    nodes, scores = _run_traced(model, _probe(X, 2, device), set(layers))
    if model.tokens is not None:
        model.tokens.embedding = _embedding(nodes, modules)
    found = _find_layers(nodes, modules, set(layers))
    if not found:
        raise UserError(
            "the model has no Linear, Conv, attention or recurrent layer to neuronize; name modules with --layers"
        )
    out_feeds, out_module, found = _output(nodes, scores, found)
    kept, left_out = _leading_to_output(found, out_feeds)
    order = _canonical_order(kept, nodes, modules)
    number = {0: 0} | {fid: i + 1 for i, fid in enumerate(order)}
    axes = _batch_axes(model, X, nodes, device, set(layers))
    paths = _paths(order, kept, nodes)
    names = short_names(paths)
    taps = []
    for fid in order:
        f = kept[fid]
        node = nodes[f.read]
        channels = len(node.shape) > 2 and _has_channels(kept, fid, nodes)
        reduce = ("last" if f.kind == "recurrent" else "mean") if token_reduce == "auto" else token_reduce
        reduce = reduce if len(node.shape) > 2 and not channels else ""
        taps.append(
            Tap(
                name=names[fid],
                path=paths[fid],
                point=node.point,
                layout=Layout(axes.get(f.read, 0), channels, reduce),
                kind=f.kind,
                module="" if f.kind == "merge" else nodes[f.start].point.name,
                activation=f.activation,
                inputs=tuple(sorted(number[g] for g in f.feeds)),
            )
        )
    return _Dag(
        taps=taps,
        output_module=out_module,
        output_inputs=tuple(sorted(number[g] for g in out_feeds)),
        left_out=[str(nodes[f.read].point) for f in left_out.values()],
    )


def _embedding(nodes: list[_Node], modules) -> Point | None:
    """Where the token ids are embedded: the first `nn.Embedding` call whose input is computed from
    the model's input."""
    from_input = [False] * len(nodes)
    from_input[0] = True
    for i, node in enumerate(nodes[1:], 1):
        from_input[i] = any(from_input[s] for s in node.inputs)
        if from_input[i] and node.point.module and isinstance(modules.get(node.point.name), nn.Embedding):
            return node.point
    return None


def _kind_of(node: _Node, modules) -> str | None:
    module = modules.get(node.point.name) if node.point.module else None
    if isinstance(module, nn.Linear):
        return "linear"
    if isinstance(module, _WEIGHTED):
        return "conv"
    if isinstance(module, nn.MultiheadAttention):
        return "attention"
    if isinstance(module, OPAQUE):
        return "recurrent"
    if node.args and not isinstance(module, _NORMS + (nn.Embedding,)) and _is_affine(module, node.args):
        return "linear"
    return None


def _is_affine(module: nn.Module, args: tuple) -> bool:
    """Whether `module` maps its one floating-point input affinely, checked on the traced input x and
    a seeded random r: f(x / 2 - 2 r) = f(x) / 2 - 2 f(r) + 5/2 f(0)."""
    if len(args) != 1 or not args[0].is_floating_point():
        return False
    x = args[0]
    r = torch.randn(x.shape, generator=torch.Generator().manual_seed(0)).to(x)
    try:
        with torch.no_grad():
            f0, fx, fr, mixed = (first_tensor(module(v)) for v in (torch.zeros_like(x), x, r, x / 2 - 2 * r))
            expected = fx / 2 - 2 * fr + 2.5 * f0
            scale = float(expected.abs().max()) + 1.0
            return mixed.shape == expected.shape and bool(torch.allclose(mixed, expected, rtol=1e-4, atol=1e-5 * scale))
    except Exception:  # noqa: BLE001 (a module that cannot run on these values is no affine layer)
        return False


def _find_layers(nodes: list[_Node], modules, named: set[str]) -> dict[int, _TracedLayer]:
    """Layers by id (from 1, in trace order) with the layers feeding each; `named` modules instead
    of the default rule when given."""
    users: list[list[int]] = [[] for _ in nodes]
    for i, node in enumerate(nodes):
        for s in node.inputs:
            users[s].append(i)
    nearest = [frozenset()] * len(nodes)  # the nearest layers each node's output depends on
    nearest[0] = frozenset({0})
    found: dict[int, _TracedLayer] = {}
    owner: dict[int, int] = {}  # node -> layer, for the nodes between a layer's start and its read
    for i, node in enumerate(nodes[1:], 1):
        if i in owner:
            nearest[i] = frozenset({owner[i]})
            continue
        below = frozenset().union(*(nearest[s] for s in node.inputs))
        if named:
            kind = (_kind_of(node, modules) or "module") if node.point.module and node.point.name in named else None
        else:
            kind = _kind_of(node, modules)
            operands = {nearest[s] for s in node.inputs if nearest[s]}
            if kind is None and node.op in _MERGES and len(operands) > 1 and _merges_alike(node, nodes):
                kind = "merge"
        if kind is None or not below:
            nearest[i] = below
            continue
        chain, activation = ([i], "") if named else _read_chain(i, nodes, users, modules)
        fid = len(found) + 1
        found[fid] = _TracedLayer(start=i, read=chain[-1], kind=kind, feeds=below, activation=activation)
        owner.update({j: fid for j in chain})
        nearest[i] = frozenset({fid})
    return found


def _merges_alike(node: _Node, nodes: list[_Node]) -> bool:
    """Whether a merge operation joins branches: a concatenation, or an add of operands of the
    output's shape (not a broadcast bias or attention mask)."""
    return _MERGES[node.op] != "add" or all(nodes[s].shape == node.shape for s in node.inputs)


def _is_activation(module: nn.Module | None) -> bool:
    """An activation module: torch's, or one of Hugging Face's `ACT2FN` modules (`transformers.activations`)."""
    return isinstance(module, _ACTIVATIONS) or type(module).__module__ == "transformers.activations"


def _read_chain(start: int, nodes: list[_Node], users, modules) -> tuple[list[int], str]:
    """The nodes from `start` to where its layer is read: through normalisations (and dropout) that
    are the only consumer, up to and including the first activation."""
    chain = [start]
    while len(users[chain[-1]]) == 1:
        nxt = nodes[users[chain[-1]][0]]
        if len(nxt.inputs) != 1:
            break
        module = modules.get(nxt.point.name) if nxt.point.module else None
        if _is_activation(module) or (not nxt.point.module and nxt.op in _ACTIVATION_FUNCTIONS):
            return chain + [users[chain[-1]][0]], nxt.op if module is None else type(module).__name__
        if not (isinstance(module, _NORMS) or (not nxt.point.module and nxt.op in _NORM_FUNCTIONS)):
            break
        chain.append(users[chain[-1]][0])
    return chain, ""


def _output(nodes, scores: int, found: dict[int, _TracedLayer]):
    """What feeds the class scores and the module that computes them; a layer read at the class
    scores becomes the output layer (it is no longer a hidden layer)."""
    if scores < 0:
        raise UserError("the class scores do not depend on the model's input; check --logits")
    read_by = {f.read: fid for fid, f in found.items()}
    scores = _picked_from(nodes, scores, read_by)
    if scores in read_by:
        f = found.pop(read_by[scores])
        module = nodes[f.start].point.name if f.kind in ("linear", "conv") else ""
        return f.feeds, module, found
    feeds = set()
    stack, seen = [scores], set()
    while stack:  # the nearest layers below the scores
        i = stack.pop()
        if i in seen:
            continue
        seen.add(i)
        if i in read_by or i == 0:
            feeds.add(read_by.get(i, 0))
        else:
            stack.extend(nodes[i].inputs)
    return frozenset(feeds), "", found


def _picked_from(nodes: list[_Node], scores: int, read_by: dict) -> int:
    """The layer read the class scores are picked from (by selections and reshapes that keep the
    class axis, e.g. GPT-2's scores at the last real token), else `scores` itself."""
    i = scores
    while i not in read_by and not nodes[i].point.module and nodes[i].op in _PICKS and len(nodes[i].inputs) == 1:
        i = nodes[i].inputs[0]
        if not i or nodes[i].shape[-1:] != nodes[scores].shape[-1:]:
            return scores
    return i if i in read_by else scores


def _leading_to_output(found: dict[int, _TracedLayer], out_feeds) -> tuple[dict, dict]:
    """The layers with a path to the class scores, and the others."""
    useful, stack = set(), list(out_feeds)
    while stack:
        fid = stack.pop()
        if fid and fid not in useful:
            useful.add(fid)
            stack.extend(found[fid].feeds)
    kept = {fid: f for fid, f in found.items() if fid in useful}
    return kept, {fid: f for fid, f in found.items() if fid not in useful}


def _canonical_order(found: dict[int, _TracedLayer], nodes, modules) -> list[int]:
    """Layer ids by depth (longest path from the input), then by where their module (a merge: the
    module it runs in) is declared, then by name: independent of the order of statements."""
    declared = {name: i for i, name in enumerate(modules)}
    depth = {0: 0}
    for fid in sorted(found):  # trace order is topological
        depth[fid] = 1 + max(depth[g] for g in found[fid].feeds)

    def key(fid):
        node = nodes[found[fid].start]
        name = node.point.name if node.point.module else node.container
        return depth[fid], declared.get(name, -1), found[fid].kind == "merge", str(node.point)

    return sorted(found, key=key)


def _paths(order: list[int], found: dict[int, _TracedLayer], nodes) -> dict[int, str]:
    """Each layer's full name: its module's (with #call), or CONTAINER.add (.cat, .stack, numbered
    from #1 after the first) for a merge."""
    names, used = {}, {}
    for fid in order:
        node = nodes[found[fid].start]
        if found[fid].kind == "merge":
            base = ".".join(filter(None, [node.container, _MERGES[node.op]]))
            used[base] = used.get(base, -1) + 1
            names[fid] = base + (f"#{used[base]}" if used[base] else "")
        else:
            names[fid] = str(node.point)
    return names


def short_names(paths: dict) -> dict:
    """Each full name's shortest tail of at least two parts (one for a one-part name) that no other
    name ends with; a number counts with the part before it (`layer.0.output`, never `0.output`)."""
    units = {key: _units(path) for key, path in paths.items()}
    short = {}
    for key, mine in units.items():
        size = min(2, len(mine))
        while size < len(mine) and any(other[-size:] == mine[-size:] for k, other in units.items() if k != key):
            size += 1
        short[key] = ".".join(mine[-size:])
    return short


def _units(path: str) -> list[str]:
    """A dotted path's parts, each number joined to the part before it."""
    units: list[str] = []
    for part in path.split("."):
        if units and part.split("#")[0].isdigit():
            units[-1] += "." + part
        else:
            units.append(part)
    return units


def _has_channels(found: dict[int, _TracedLayer], fid: int, nodes) -> bool:
    """Whether a layer's neurons are channels: a conv's, or a merge's or named module's whose
    every feeding layer has channels (the input: when it is an image)."""
    if fid == 0:
        return len(nodes[0].shape) > 3  # images: N x C x H x W (and more)
    f = found[fid]
    return f.kind == "conv" or (f.kind in ("merge", "module") and all(_has_channels(found, g, nodes) for g in f.feeds))


def _batch_axes(model: ClassScores, X: np.ndarray, nodes: list[_Node], device, named: set[str]) -> dict[int, int]:
    """The batch axis of every node's output: the axis whose size follows the batch size (a second
    trace with one more sample); 0 where it cannot be told."""
    other, _ = _run_traced(model, _probe(X, 3, device), named)
    if [(n.point, len(n.shape)) for n in other] != [(n.point, len(n.shape)) for n in nodes]:
        return {}
    axes = {}
    for i, (a, b) in enumerate(zip(nodes, other)):
        differ = [axis for axis, (p, q) in enumerate(zip(a.shape, b.shape)) if p != q]
        if differ:
            axes[i] = differ[0]
    return axes
