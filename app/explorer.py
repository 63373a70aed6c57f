"""What every page shares: the store (one per server process), cached reads keyed by model, and the
model and method pickers. The app talks to the store only through `queries`."""

import json

import pandas as pd
import streamlit as st

from queries import connect, explore
from queries.errors import UserError

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
def paged(cypher: str, model: str, most: int, **params) -> list[dict]:
    """Up to `most` rows of a paged explorer statement, a page at a time."""
    return explore.pages(store(), cypher, model, most, **params)


@st.cache_data(show_spinner=False, ttl=FRESH_SECONDS)
def overview() -> pd.DataFrame:
    """Every stored model, one row each, newest first."""
    rows = store().read(explore.MODEL_OVERVIEW)
    for row in rows:
        row.update({f"communities: {m}": int(n) for m, n in row.pop("communities")})
    frame = pd.DataFrame(rows)
    return frame.sort_values("created", ascending=False, ignore_index=True) if len(frame) else frame


def forget() -> None:
    """Drop every cached read (after the store changed)."""
    st.cache_data.clear()


def model_ids() -> list[str]:
    frame = overview()
    return list(frame["model"]) if len(frame) else []


def pick_model(label: str = "Model", key: str = "model") -> str | None:
    """A model picker, preset from the address (`?model=...`); None (and a hint) when the store is empty."""
    ids = model_ids()
    if not ids:
        st.info("No models stored yet. Run `neurocypher demo` or `neurocypher ingest ...`, then reload.")
        return None
    wanted = st.query_params.get(key)
    model = st.selectbox(label, ids, index=ids.index(wanted) if wanted in ids else 0, key=key)
    st.query_params[key] = model  # the address links to this view of this model
    return model


def methods_of(model: str) -> list[str]:
    """The community methods stored for a model, as the store says."""
    return [row["method"] for row in read(explore.METHODS, model)]


def pick_method(model: str, key: str = "method") -> str | None:
    methods = methods_of(model)
    if not methods:
        st.info(f"{model} has no communities (it was ingested with `--methods ''`).")
        return None
    return st.selectbox(
        "Community method", methods, key=key, index=methods.index("innersight") if "innersight" in methods else 0
    )


def class_names(model: str) -> list[str]:
    return [row["name"] for row in read(explore.CLASSES, model)]


def pick_class(model: str, key: str = "class") -> int:
    names = class_names(model)
    return st.selectbox("Class", range(len(names)), key=key, format_func=lambda c: f"{c}: {names[c]}")


def image_shape(model: str) -> tuple[int, int] | None:
    """(height, width) of the model's input images, or None for tabular data."""
    rows = read(explore.MODEL_PARAMS, model)
    shape = json.loads(rows[0]["params"]).get("image_shape") if rows else None
    return tuple(shape) if shape else None


def shown_errors(run):
    """Call `run()`; show a UserError or a database error inline as one line instead of failing the page."""
    try:
        return run()
    except UserError as error:
        st.error(str(error))
    return None
