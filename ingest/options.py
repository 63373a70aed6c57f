"""The settings of one analysis, with their defaults defined once: `analyze()`, `neurocypher
ingest` and the `params` stored on the Model all read them from here."""

import dataclasses
import json
from dataclasses import dataclass, field, fields

from queries.errors import UserError, clip, shown

from .information import DEFAULT_BINS
from .methods import METHODS, default_methods
from .neuronize import TOKEN_REDUCE


def _help(text: str, **kwargs):
    return field(metadata={"help": text}, **kwargs)


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
    bins: int = _help("equal-frequency bins per neuron for MI", default=DEFAULT_BINS)
    top_k: int = _help("strongest significant flow edges kept into each neuron", default=32)
    weight_coupled: bool = _help("flow = MI x |weight|, renormalised per target", default=False)
    deletion: bool = _help("run the attribution deletion check", default=True)
    methods: tuple[str, ...] = _help("community methods", default_factory=default_methods)
    close_to_mean: bool = _help("close communities to their mean instead of 0", default=False)
    close_pairs: bool = _help("also close every pair of communities within a layer", default=False)
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
        if self.bins < 2 or self.top_k < 1 or self.batch_size < 1:
            raise UserError(
                f"bins must be at least 2, top_k and batch_size at least 1, got {self.bins}, "
                f"{self.top_k} and {self.batch_size}"
            )
        if self.token_reduce not in TOKEN_REDUCE:
            raise UserError(f"token_reduce must be one of {', '.join(TOKEN_REDUCE)}, got {shown(self.token_reduce)}")
        if self.relay_states < 0 or self.relay_states == 1 or self.binarization not in ("kmeans", "median"):
            raise UserError("relay options: states 0 (exact) or at least 2, binarization kmeans or median")
        object.__setattr__(self, "method_options", _method_defaults() | dict(self.method_options))

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
