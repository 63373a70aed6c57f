"""The settings of one analysis, with their defaults defined once: `analyze()`, `neurocypher
ingest` and the `params` stored on the Model all read them from here."""

import dataclasses
import json
import os
from dataclasses import dataclass, field, fields

import torch

from queries.errors import UserError, clip, shown

from .information import DEFAULT_BINS
from .methods import METHODS, default_methods
from .neuronize import TOKEN_REDUCE


def _help(text: str, **kwargs):
    return field(metadata={"help": text}, **kwargs)


DEVICES = ("auto", "cpu", "cuda")


def _method_defaults() -> dict:
    return {name: method.options() for name, method in METHODS.items()}


@dataclass(frozen=True)
class Options:
    """Settings of `ingest.analyze`; every field's help is the CLI's."""

    layers: tuple[str, ...] = _help(
        "module names to neuronize (empty: every Linear, Conv, attention and recurrent module and every merge)",
        default=(),
    )
    token_reduce: str = _help(
        "how a feature is reduced over token or step axes: auto (recurrent layers: last step, others: mean), "
        "mean, max, first or last",
        default="auto",
    )
    logits: str = _help("which item of a tuple, list or dict output holds the class scores (index or key)", default="")
    batch_size: int = _help("samples per forward pass", default=256)
    device: str = _help(
        "where the model runs (recording, MI, IG, closing): auto (a CUDA GPU when torch sees one, else the CPU), "
        "cpu or cuda",
        default="auto",
    )
    memory_budget: float = _help(
        "GiB of activations kept in memory; a recording beyond it is written to memory-mapped files in the data "
        "directory (NEUROCYPHER_HOME/scratch, removed after use); 0: a quarter of this machine's memory",
        default=0.0,
    )
    bins: int = _help("equal-frequency bins per neuron for MI", default=DEFAULT_BINS)
    top_k: int = _help("strongest significant flow edges kept into each neuron", default=32)
    weight_coupled: bool = _help("flow = MI x |weight|, renormalised per target", default=False)
    deletion: bool = _help("run the attribution deletion check", default=True)
    deletion_samples: int = _help(
        "samples the deletion check runs on: a stratified subset of this size of a larger probe set (0: all)",
        default=2000,
    )
    methods: tuple[str, ...] = _help("community methods", default_factory=default_methods)
    close_to_mean: bool = _help(
        "close communities (and relay-path chains) by setting their members to their mean over the probe set "
        "(mean ablation); --no-close-to-mean sets them to 0",
        default=True,
    )
    close_pairs: bool = _help("also close every pair of communities within a layer", default=False)
    shortcuts: bool = _help(
        "run only the part of the model after a closed layer, and Integrated Gradients on the part between two "
        "layers, where that part gives the whole model's values (checked); --no-shortcuts runs the whole model "
        "every time (slower)",
        default=True,
    )
    chain_draws: int = _help(
        "random chains of the same sizes that each method's top relay-path chain for each class is compared with "
        "when it is closed (its fidelity); 0: no chain fidelity check",
        default=20,
    )
    relay_states: int = _help(
        "coarse-grain joint states for relay information to at most this many (0: exact binary states, as the "
        "paper; the relay method's samples_per_state option caps them relative to the samples)",
        default=0,
    )
    binarization: str = _help("neurons binarised for relay information: kmeans (2-means) or median", default="kmeans")
    method_options: dict = _help("each method's own options, by method name", default_factory=_method_defaults)

    def __post_init__(self):
        object.__setattr__(self, "layers", tuple(self.layers))
        object.__setattr__(self, "methods", tuple(self.methods))
        unknown = [m for m in self.methods if m not in METHODS]
        if unknown:
            raise UserError(f"unknown community method {clip(', '.join(unknown))}; choose from {', '.join(METHODS)}")
        if self.bins < 2 or self.top_k < 1 or self.batch_size < 1 or min(self.deletion_samples, self.chain_draws) < 0:
            raise UserError(
                f"bins must be at least 2, top_k and batch_size at least 1, deletion_samples and chain_draws at least "
                f"0, got {self.bins}, {self.top_k}, {self.batch_size}, {self.deletion_samples} and {self.chain_draws}"
            )
        if self.memory_budget < 0:
            raise UserError(f"memory_budget must be at least 0 GiB (0: a quarter of memory), got {self.memory_budget}")
        if self.device not in DEVICES:
            raise UserError(f"device must be one of {', '.join(DEVICES)}, got {shown(self.device)}")
        if self.token_reduce not in TOKEN_REDUCE:
            raise UserError(f"token_reduce must be one of {', '.join(TOKEN_REDUCE)}, got {shown(self.token_reduce)}")
        if self.relay_states < 0 or self.relay_states == 1 or self.binarization not in ("kmeans", "median"):
            raise UserError("relay options: states 0 (exact) or at least 2, binarization kmeans or median")
        object.__setattr__(self, "method_options", _method_defaults() | dict(self.method_options))

    def torch_device(self) -> torch.device:
        """The device the analysis runs on; a UserError for cuda where torch sees no GPU."""
        if self.device == "cuda" and not torch.cuda.is_available():
            raise UserError("--device cuda: torch sees no CUDA GPU here; use --device cpu (or auto)")
        return torch.device("cuda" if self.device != "cpu" and torch.cuda.is_available() else "cpu")

    def memory_bytes(self) -> int:
        """The memory budget for activations, in bytes."""
        if self.memory_budget:
            return int(self.memory_budget * 2**30)
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 4

    def of(self, method: str):
        """The options of one community method."""
        return self.method_options[method]

    def with_method_option(self, setting: str) -> "Options":
        """A copy with one method option set from text `method.name=value` (as `--option` gives it)."""
        key, sep, text = setting.partition("=")
        method, _, name = key.partition(".")
        if not sep or method not in METHODS:
            raise UserError(
                f"--option {shown(setting)} is not METHOD.NAME=VALUE with a method of: {', '.join(METHODS)}"
            )
        current = self.of(method)
        kinds = {f.name: f.type for f in fields(current)}
        if name not in kinds:
            raise UserError(f"method {method} has no option {shown(name)}; its options: {', '.join(kinds) or 'none'}")
        value = _parse(text, kinds[name], key)
        return dataclasses.replace(
            self, method_options={**self.method_options, method: dataclasses.replace(current, **{name: value})}
        )

    @classmethod
    def reading(cls, params: dict) -> "Options":
        """The options that say how a stored model's layers were chosen and read (`layers`,
        `token_reduce`, `logits`), from its stored `params`: to read it again as it was analysed."""
        return cls(**{key: params[key] for key in ("layers", "token_reduce", "logits") if key in params})

    def as_params(self) -> dict:
        """The settings as plain JSON-ready values, as stored in the Model's `params`."""
        values = dataclasses.asdict(self)
        values["layers"], values["methods"] = list(self.layers), list(self.methods)
        return json.loads(json.dumps(values))


def _parse(text: str, kind, key: str):
    """`text` as a value of type `kind` (int, float, bool or str)."""
    kind = {"int": int, "float": float, "bool": bool, "str": str}.get(kind, kind)
    try:
        if kind is bool:
            if text.lower() not in ("true", "false", "1", "0"):
                raise ValueError
            return text.lower() in ("true", "1")
        return kind(text)
    except (TypeError, ValueError):
        raise UserError(f"option {key} must be {getattr(kind, '__name__', kind)}, got {shown(text)}") from None
