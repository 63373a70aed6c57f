"""The live intervention: close one community of a stored model on the model and data it was
ingested from (reloaded from there, each cached per source; torch is imported only in a function, and
in the background when the app starts, `app.main.warmed`) and measure each class's accuracy, as the
closing stage did."""

import numpy as np
import streamlit as st

from neurocypher.queries.reads import model_params, model_source


@st.cache_resource(show_spinner="reloading the data ...")
def reloaded_data(data: str):
    """The data a model was ingested from (its source's `data`; cached per source)."""
    from neurocypher.ingest.data import load_data

    return load_data(data)


@st.cache_resource(show_spinner="reloading the model ...")
def reloaded_model(model: str, weights: str | None):
    """The model a model was ingested from (its source's `model` and `weights`; cached per source)."""
    from neurocypher.ingest.modelfile import load_model

    return load_model(model, weights)


def close_live(store, model: str, layer: int, members: list[int], means: list[float], n_classes: int) -> dict:
    """Per-class accuracy of `model` with the neurons `members` of `layer` closed (set to 0, or to
    their stored means when the model was analysed with `--close-to-mean`), next to none closed:
    `before` and `after`, fractions of each class's samples."""
    from neurocypher.ingest.closing import Closing, class_accuracies, closable_layers, predict_closed
    from neurocypher.ingest.neuronize import record
    from neurocypher.ingest.options import AnalysisOptions
    from neurocypher.ingest.pipeline import runnable

    params = model_params(store, model)
    source = model_source(params, model, "close it live")
    module, data = reloaded_model(source["model"], source.get("weights")), reloaded_data(source["data"])
    options = AnalysisOptions.reading(params)
    net, X = runnable(module, data.X, data.mask, data.vocab, options.logits)
    rec = record(net, X[:2], layers=options.layers, batch_size=2, token_reduce=options.token_reduce)
    values = np.asarray(means) if params.get("close_to_mean") else np.zeros(len(members))
    closed = Closing(closable_layers(rec)[layer], np.asarray(members), values)
    before, after = (class_accuracies(predict_closed(net, X, shut), data.y, n_classes)[1] for shut in ([], [closed]))
    return {"before": before, "after": after}
