"""The model side: neuronize a model on labelled data, analyse it, and write the result.

`from ingest import analyze, write` works as usual; torch is imported on first use only, so that
CLI commands which only query the store start fast.
"""

_EXPORTS = {
    "Analysis": "analysis",
    "Layer": "analysis",
    "AnalysisOptions": "options",
    "analyze": "pipeline",
    "write": "writer",
}
_RENAMED = {"Options": "AnalysisOptions"}  # earlier names, still answered for code written with them
__all__ = list(_EXPORTS)


def __getattr__(name):
    name = _RENAMED.get(name, name)
    if name not in _EXPORTS:
        raise AttributeError(f"module 'ingest' has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
