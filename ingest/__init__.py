"""The model side: neuronize a model on labelled data, analyse it, and write the result.

`from neurocypher.ingest import analyze, write` (or `from neurocypher import ...`) works as usual;
torch is imported on first use only, so that CLI commands which only query the store start fast.
"""

__all__ = ["Analysis", "Layer", "AnalysisOptions", "analyze", "write"]


def __getattr__(name: str):
    """An exported name, imported from its module on first use."""
    if name == "Analysis":
        from . import analysis as module
    elif name == "Layer":
        from . import layers as module
    elif name == "AnalysisOptions":
        from . import options as module
    elif name == "analyze":
        from . import pipeline as module
    elif name == "write":
        from . import writer as module
    else:
        raise AttributeError(f"module 'neurocypher.ingest' has no attribute {name!r}")
    return getattr(module, name)
