"""The model side: neuronize a model on labelled data, analyse it, and write the result.

`from ingest import analyze, write` works as usual; torch is imported on first use only, so that
CLI commands which only query the store start fast.
"""

_EXPORTS = {"Analysis": "analysis", "Layer": "analysis", "Options": "options", "analyze": "analysis", "write": "writer"}
__all__ = list(_EXPORTS)


def __getattr__(name):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'ingest' has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
