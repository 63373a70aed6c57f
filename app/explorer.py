"""What every page shares: the store (one per server process), cached reads keyed by model, and the
model and method pickers. The app talks to the store only through `queries`."""

import json
from urllib.parse import quote

import pandas as pd
import streamlit as st

from neurocypher.app.graphs import is_community, model_of
from neurocypher.errors import UserError
from neurocypher.queries import connect, explore

SCORES = {  # the models' headline numbers, in words
    "accuracy": "fraction of the probe samples classified correctly",
    "deletion_attribution": "area under the accuracy curve as input features are deleted in decreasing "
    "attribution (fraction of accuracy; lower: the attribution finds the features that matter)",
    "deletion_random": "the same area when features are deleted in random order (the baseline)",
    "knockout_rho": "Spearman rho between communities' relay bits and the accuracy lost when each is "
    "knocked out (closer to 1: relay bits predict importance)",
    "fidelity": "NeurFlow fidelity: retention lost zeroing a class's core neurons over that lost zeroing as "
    "many random neurons (above 1: the core neurons matter more)",
    "top_chain_score": "the top relay chain's score for the class: accuracy it loses minus the most another class "
    "loses, summed over the chain's communities closed one at a time (negative: they hurt another class more)",
    "top_chain_specificity": "accuracy the class loses with the whole chain closed over the most another class "
    "loses (faithful from 3)",
    "top_chain_vs_random": "accuracy the class loses with the chain closed over its median loss with random "
    "chains of the same sizes (faithful from 3)",
}
FRESH_SECONDS = 60  # cached reads are at most this old; the sidebar's Refresh forgets them at once


@st.cache_resource
def store():
    return connect()


@st.cache_data(show_spinner=False, ttl=FRESH_SECONDS)
def ask(name: str, **params) -> list[dict]:
    """A named query of the library (cached per query and parameters, so per model)."""
    return store().ask(name, **params)


@st.cache_data(show_spinner=False, ttl=FRESH_SECONDS)
def read(cypher: str, model: str, **params) -> list[dict]:
    """One read of an explorer statement on one model."""
    return store().read(cypher, {"model": model, **params}, model=model)


@st.cache_data(show_spinner=False, ttl=FRESH_SECONDS)
def read_all(cypher: str, **params) -> list[dict]:
    """One read of an explorer statement over every stored model and series."""
    return store().read(cypher, params)


@st.cache_data(show_spinner=False, ttl=FRESH_SECONDS)
def paged(cypher: str, model: str, most: int, **params) -> list[dict]:
    """Up to `most` rows of a paged explorer statement, a page at a time."""
    return explore.pages(store(), cypher, model, most, **params)


@st.cache_data(show_spinner=False, ttl=FRESH_SECONDS)
def overview() -> pd.DataFrame:
    """Every stored model, one row each: models newest first, then the checkpoints of each series
    (`ingest --checkpoints`) by step; `communities` per method as one line of text."""
    rows = store().read(explore.MODEL_OVERVIEW)
    for row in rows:
        row["communities"] = ", ".join(f"{m} {n}" for m, n in row["communities"])
    frame = pd.DataFrame(rows)
    if not len(frame):
        return frame
    frame["checkpoint"] = frame["series"].notna()
    frame["newest"] = frame["created"].rank(ascending=False)
    frame = frame.sort_values(["checkpoint", "series", "step", "newest"], na_position="first", ignore_index=True)
    return frame.drop(columns=["checkpoint", "newest"])


def forget() -> None:
    """Drop every cached read (after the store changed)."""
    st.cache_data.clear()


def model_ids() -> list[str]:
    frame = overview()
    return list(frame["model"]) if len(frame) else []


def choose(label: str, options: list, key: str, default=None, **kwargs):
    """A selectbox preset from the address (`?key=...`, else `default`) that writes its choice back
    to the address, so that the address holds the whole view. The address presets it again when
    Streamlit has dropped its state (it does after a run that leaves the selectbox out)."""
    wanted = st.query_params.get(key)
    linked = [o for o in options if str(o) == wanted]
    kept = st.session_state.get(key) in options
    if linked and (not kept or wanted != st.session_state.get(f"address.{key}")):  # or a link, or a switch here
        st.session_state[key] = linked[0]
    elif not kept:  # a first visit, or a choice the new options lack
        st.session_state[key] = default if default in options else options[0]
    value = st.selectbox(label, options, key=key, **kwargs)
    st.query_params[key] = st.session_state[f"address.{key}"] = str(value)
    return value


def pick_model(label: str = "Model", key: str = "model") -> str | None:
    """A model picker, preset from the address (`?model=...`); None (and a hint) when the store is empty."""
    ids = model_ids()
    if not ids:
        st.info("No models stored yet. Run `neurocypher demo` or `neurocypher ingest ...`, then reload.")
        return None
    return choose(label, ids, key)


def methods_of(model: str) -> list[str]:
    """The community methods stored for a model, as the store says."""
    return [row["method"] for row in read(explore.METHODS, model)]


def pick_method(model: str, key: str = "method") -> str | None:
    methods = methods_of(model)
    if not methods:
        st.info(f"{model} has no communities (it was ingested with `--methods ''`).")
        return None
    return choose("Community method", methods, key, default="innersight")


def class_names(model: str) -> list[str]:
    return [row["name"] for row in read(explore.CLASSES, model)]


def shared_methods(models: list[str]) -> list[str]:
    """The community methods every one of `models` was analysed with (in the first one's order)."""
    return [m for m in methods_of(models[0]) if all(m in methods_of(other) for other in models[1:])]


def shared_classes(models: list[str]) -> int:
    """How many classes `models` have in common (classes 0 .. that - 1)."""
    return min(len(class_names(m)) for m in models)


def pick_class(model: str, key: str = "class", label: str = "Class") -> int:
    names = class_names(model)
    return choose(label, list(range(len(names))), key, format_func=lambda c: f"{c}: {names[c]}")


def layers_of(model: str) -> list[dict]:
    """The model's layers in dataflow order: index, name, kind, width."""
    return read(explore.LAYERS, model)


def params_of(model: str) -> dict:
    """What the model was ingested with (`params`: options, image shape, source)."""
    rows = read(explore.MODEL_PARAMS, model)
    return json.loads(rows[0]["params"]) if rows else {}


def image_shape(model: str) -> tuple[int, int] | None:
    """(height, width) of the model's input images, or None for tabular data."""
    shape = params_of(model).get("image_shape")
    return tuple(shape) if shape else None


def address(uid: str) -> str:
    """The (relative) address of a uid's page: a community on the community graph, a neuron on the
    neuron page; the uid goes last, so that a table can show it as the link's text."""
    model = model_of(uid)
    if is_community(uid):
        method = uid.split("/")[-3]
        return f"communities?model={quote(model)}&method={quote(method)}&community={quote(uid, safe='/')}"
    return f"neuron?model={quote(model)}&uid={quote(uid, safe='/')}"


def open_uid(uid: str) -> None:
    """Go to the page of a clicked uid (a community's or a neuron's)."""
    model = model_of(uid)
    if is_community(uid):
        query = {"model": model, "method": uid.split("/")[-3], "community": uid}
        st.switch_page("views/communities.py", query_params=query)
    st.switch_page("views/neuron.py", query_params={"model": model, "uid": uid})


def shown_errors(run):
    """Call `run()`; show a UserError or a database error inline as one line instead of failing the page."""
    try:
        return run()
    except UserError as error:
        st.error(str(error))
    return None
