"""The settings of one analysis, with their defaults, bounds and help declared once (`ingest.bounds`):
`analyze()`, `neurocypher ingest` and the `params` stored on the Model all read them from here.
Each community method's own options are in `ingest.methods.options`."""

import dataclasses
import json
import os
from dataclasses import dataclass, fields

import torch

from neurocypher.errors import UserError, clip, shown

from .bounds import check, option, parse
from .information import DEFAULT_BINS, MAX_BINS
from .methods import METHODS, default_methods
from .neuronize import TOKEN_REDUCE

DEVICES = ("auto", "cpu", "cuda")


def _method_defaults() -> dict:
    return {name: method.options() for name, method in METHODS.items()}


@dataclass(frozen=True)
class AnalysisOptions:
    """Settings of `ingest.analyze`; every field's help and bounds are the CLI's."""

    layers: tuple[str, ...] = option(
        "module names to neuronize (empty: every Linear, Conv, attention and recurrent module and every merge)",
        default=(),
    )
    token_reduce: str = option(
        "how a feature is reduced over token or step axes: auto (recurrent layers: last step, others: mean), "
        "mean, max, first or last",
        default="auto",
        choices=TOKEN_REDUCE,
    )
    logits: str = option("which item of a tuple, list or dict output holds the class scores (index or key)", default="")
    batch_size: int = option("samples per forward pass", default=256, low=1)
    device: str = option(
        "where the model runs (recording, MI, IG, closing): auto (a CUDA GPU when torch sees one, else the CPU), "
        "cpu or cuda",
        default="auto",
        choices=DEVICES,
    )
    memory_budget: float = option(
        "GiB of activations kept in memory; a recording beyond it is written to memory-mapped files in the data "
        "directory (NEUROCYPHER_HOME/scratch, removed after use); 0: a quarter of this machine's memory",
        default=0.0,
        low=0,
    )
    bins: int = option("equal-frequency bins per neuron for MI", default=DEFAULT_BINS, low=2, high=MAX_BINS)
    top_k: int = option("strongest significant flow edges kept into each neuron", default=32, low=1)
    weight_coupled: bool = option("flow = MI x |weight|, renormalised per target", default=False)
    deletion: bool = option("run the attribution deletion check", default=True)
    deletion_samples: int = option(
        "samples the deletion check runs on: a stratified subset of this size of a larger probe set (0: all)",
        default=2000,
        low=0,
    )
    methods: tuple[str, ...] = option("community methods", default_factory=default_methods)
    close_to_mean: bool = option(
        "close communities (and relay-path chains) by setting their members to their mean over the probe set "
        "(mean ablation); --no-close-to-mean sets them to 0",
        default=True,
    )
    close_pairs: bool = option("also close every pair of communities within a layer", default=False)
    shortcuts: bool = option(
        "run only the part of the model after a closed layer, and Integrated Gradients on the part between two "
        "layers, where that part gives the whole model's values (checked); --no-shortcuts runs the whole model "
        "every time (slower)",
        default=True,
    )
    chain_draws: int = option(
        "random chains of the same sizes that each method's top relay-path chain for each class is compared with "
        "when it is closed (its fidelity); 0: no chain fidelity check",
        default=20,
        low=0,
    )
    relay_states: int = option(
        "coarse-grain joint states for relay information to at most this many (0: exact binary states, as the "
        "paper; the relay method's samples_per_state option caps them relative to the samples)",
        default=0,
        low=2,
        off=0,
    )
    binarization: str = option(
        "neurons binarised for relay information: kmeans (2-means) or median",
        default="kmeans",
        choices=("kmeans", "median"),
    )
    method_options: dict = option("each method's own options, by method name", default_factory=_method_defaults)

    def __post_init__(self):
        object.__setattr__(self, "layers", tuple(self.layers))
        object.__setattr__(self, "methods", tuple(self.methods))
        check(self)
        unknown = [m for m in self.methods if m not in METHODS]
        if unknown:
            raise UserError(f"unknown community method {clip(', '.join(unknown))}; choose from {', '.join(METHODS)}")
        object.__setattr__(self, "method_options", _method_defaults() | dict(self.method_options))
        for name, given in self.method_options.items():
            if name in METHODS and not isinstance(given, METHODS[name].options):
                raise UserError(
                    f"method_options[{name!r}] must be a {METHODS[name].options.__name__}, got a {type(given).__name__}"
                )

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

    def with_method_option(self, setting: str) -> "AnalysisOptions":
        """A copy with one method option set from text `method.name=value` (as `--option` gives it)."""
        key, sep, text = setting.partition("=")
        method, _, name = key.partition(".")
        if not sep or method not in METHODS:
            raise UserError(
                f"--option {shown(setting)} is not METHOD.NAME=VALUE with a method of: {', '.join(METHODS)}"
            )
        current = self.of(method)
        declared = {f.name: f for f in fields(current)}
        if name not in declared:
            raise UserError(
                f"method {method} has no option {shown(name)}; its options: {', '.join(declared) or 'none'}"
            )
        value = parse(text, declared[name], key)
        return dataclasses.replace(
            self, method_options={**self.method_options, method: dataclasses.replace(current, **{name: value})}
        )

    @classmethod
    def reading(cls, params: dict) -> "AnalysisOptions":
        """The options that say how a stored model's layers were chosen and read (`layers`,
        `token_reduce`, `logits`), from its stored `params`: to read it again as it was analysed."""
        return cls(**{key: params[key] for key in ("layers", "token_reduce", "logits") if key in params})

    def as_params(self) -> dict:
        """The settings as plain JSON-ready values, as stored in the Model's `params`."""
        values = dataclasses.asdict(self)
        values["layers"], values["methods"] = list(self.layers), list(self.methods)
        return json.loads(json.dumps(values))
