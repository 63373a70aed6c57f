"""Each option declared once, as a dataclass field: its type (the field's), default, bounds and
one-line help (the field's metadata, from `option`). The Python API checks a value against it
(`check`), the command line shows it (`help_of`) and `--option METHOD.NAME=VALUE` reads text as
its type (`parse`): the three ask the same of a value."""

import dataclasses
import math
from dataclasses import dataclass

from neurocypher.errors import UserError, shown

# the scalar types of options, as errors name them
KINDS = {int: "int", float: "finite float", bool: "bool", str: "str"}


@dataclass(frozen=True)
class Bounds:
    """The values an option allows: numbers in [low, high] (either end open when None), plus the one
    value `off` outside them (e.g. 0 for "exact"); or text among `choices`."""

    low: float | None = None
    high: float | None = None
    off: float | None = None
    choices: tuple[str, ...] = ()

    def allows(self, value) -> bool:
        if self.choices:
            return value in self.choices
        if value == self.off:
            return True
        return (self.low is None or value >= self.low) and (self.high is None or value <= self.high)

    def __str__(self) -> str:
        if self.choices:
            return "one of " + ", ".join(self.choices)
        if self.low is not None and self.high is not None:
            span = f"between {self.low} and {self.high}"
        elif self.low is not None:
            span = f"at least {self.low}"
        elif self.high is not None:
            span = f"at most {self.high}"
        else:
            span = "any value"
        return span if self.off is None else f"{self.off} or {span}"

    @property
    def limits(self) -> bool:
        return self != Bounds()


def option(help: str, default=dataclasses.MISSING, *, default_factory=dataclasses.MISSING, **bounds):
    """A dataclass field declaring one option: its default (or `default_factory`), its one-line `help`
    and its bounds (`Bounds`' fields: low, high, off, choices)."""
    return dataclasses.field(
        default=default, default_factory=default_factory, metadata={"help": help, "bounds": Bounds(**bounds)}
    )


def check(options, prefix: str = "") -> None:
    """Refuse, in one line that names the option (`prefix` + its name), its bound and the value, the
    first field of the dataclass instance `options` whose value is not of its type or not within its
    bounds."""
    for field in dataclasses.fields(options):
        value, bounds, kind = getattr(options, field.name), field.metadata.get("bounds", Bounds()), _kind(field)
        if kind in KINDS and not _is_kind(value, kind):
            raise UserError(f"option {prefix}{field.name} must be {KINDS[kind]}, got {shown(value)}")
        if not bounds.allows(value):
            raise UserError(f"option {prefix}{field.name} must be {bounds}, got {shown(value)}")


def _kind(field: dataclasses.Field):
    """The field's type, also where it is written as a string (`from __future__ import annotations`)."""
    return {kind.__name__: kind for kind in KINDS}.get(field.type, field.type)


def _is_kind(value, kind: type) -> bool:
    """Whether `value` is of option type `kind`: a bool is no number, and a number is finite."""
    if kind is bool or isinstance(value, bool):
        return kind is bool and isinstance(value, bool)
    if kind is float:
        return isinstance(value, (int, float)) and math.isfinite(value)
    return isinstance(value, kind)


def help_of(options: type, name: str) -> str:
    """The help of option `name` of the dataclass `options`, with its numeric bounds."""
    metadata = options.__dataclass_fields__[name].metadata
    bounds = metadata["bounds"]
    return metadata["help"] if bounds.choices or not bounds.limits else f"{metadata['help']} ({bounds})"


def parse(text: str, field: dataclasses.Field, key: str):
    """`text` (as `--option` gives it) as a value of the option `field`'s type, named `key` in the error."""
    kind = _kind(field)
    try:
        if kind is bool:
            if text.lower() not in ("true", "false", "1", "0"):
                raise ValueError
            return text.lower() in ("true", "1")
        return kind(text)
    except (TypeError, ValueError):
        raise UserError(f"option {key} must be {KINDS.get(kind, kind)}, got {shown(text)}") from None
