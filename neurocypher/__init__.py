"""neurocypher: open up trained neural networks as a graph you can query with Cypher.

    from neurocypher import analyze, write, connect, UserError

This package is the ground floor: the error a user sees (`errors`), progress bars (`progress`),
configuration from the environment (`config`), tables and JSON on stdout (`output`) and the command
line's root (`cli`). Its subpackages are the model side, `neurocypher.ingest` (folder `ingest/`),
the store side, `neurocypher.queries` (`queries/`), and the explorer, `neurocypher.app` (`app/`);
docs/architecture.md says what lives where.

The store side's names (`connect`, `scratch_store`, `Store`, `EmbeddedServer`) and the model side's
(`analyze`, `write`, `Analysis`, `Layer`, `AnalysisOptions`) are imported when first asked for: the
model side imports torch, which questions to the store never need.
"""

from .config import settings
from .errors import UserError

_STORE_SIDE = ("connect", "scratch_store", "Store", "EmbeddedServer")
_MODEL_SIDE = ("analyze", "write", "Analysis", "Layer", "AnalysisOptions")
__all__ = ["UserError", "settings", *_STORE_SIDE, *_MODEL_SIDE]


def __getattr__(name: str):
    """A public name of the store or the model side, imported from it on first use."""
    if name in _STORE_SIDE:
        from . import queries as side
    elif name in _MODEL_SIDE:
        from . import ingest as side
    else:
        raise AttributeError(f"module 'neurocypher' has no attribute {name!r}")
    return getattr(side, name)
