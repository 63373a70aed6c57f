"""Questions: every named query with a form built from its parameters, the answer as a table (and as a
graph for paths), the Cypher it ran; and a read-only Cypher console."""

import pandas as pd
import streamlit as st

from app.explorer import ask, model_ids, paged, pick_class, pick_model, read, shown_errors, store
from app.graphs import draw, path_elements
from queries import explore
from queries.library import QUERIES, REQUIRED, cypher_text

st.title("Questions")
names = list(QUERIES)
wanted = st.query_params.get("question")
name = st.selectbox(
    "Question",
    names,
    key="question",
    index=names.index(wanted) if wanted in names else 0,
    format_func=lambda n: f"{n}: {QUERIES[n].description}",
)
st.query_params["question"] = name
query = QUERIES[name]
ids = model_ids()


def field(param, model):
    """One form field for `param`, filled from the store where it can be."""
    key = f"{name}.{param.name}"
    if param.name == "models":
        return st.multiselect("models", ids, default=ids[:2], key=key)
    if param.name == "class" and model:
        return pick_class(model, key=key)
    if param.name == "method" and model:
        methods = [row["method"] for row in read(explore.METHODS, model)] or [param.default]
        return st.selectbox(
            "method", methods, key=key, index=methods.index(param.default) if param.default in methods else 0
        )
    if param.name == "uid" and model:
        uids = [
            c["uid"]
            for m in read(explore.METHODS, model)
            for c in paged(explore.COMMUNITIES, model, 5000, method=m["method"])
        ]
        return st.selectbox("community", uids, key=key, help=param.help)
    if param.name in ("source", "target") and model:
        return st.text_input(param.name, f"{model}/L{0 if param.name == 'source' else 2}/0", key=key, help=param.help)
    if param.kind is int:
        low = int(param.minimum) if param.minimum is not None else 0
        return st.number_input(
            param.name, low, int(param.maximum or 10**6), int(param.default or low), key=key, help=param.help
        )
    if param.kind is float:
        return st.number_input(param.name, value=float(param.default or 0.0), key=key, help=param.help)
    return st.text_input(param.name, "" if param.default is REQUIRED else str(param.default), key=key, help=param.help)


model = pick_model() if any(p.name == "model" for p in query.params) else None
with st.form(f"form-{name}"):
    params = {p.name: field(p, model) for p in query.params if p.name != "model"}
    params.update({"model": model} if model else {})
    submitted = st.form_submit_button("Ask")
if submitted:
    st.session_state["asked"] = (name, params)
if st.session_state.get("asked", (None,))[0] == name:
    params = st.session_state["asked"][1]
    rows = shown_errors(lambda: ask(name, **params))
    if rows is not None:
        st.caption(f"{len(rows)} row(s)")
        st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
        paths = [row.get("chain") or row.get("path") for row in rows if row.get("chain") or row.get("path")]
        if paths:
            st.caption("As a graph (the first answer highlighted):")
            draw(path_elements(paths), key=f"answer-{name}", height=380)
    st.code(shown_errors(lambda: cypher_text(store(), name, **params)) or "", language="cypher")

st.divider()
st.subheader("Cypher console (read-only)")
console_model = st.selectbox("On model", ids, key="console_model")
cypher = st.text_area(
    "Cypher", "MATCH (c:Community {method: 'innersight'}) RETURN c.uid, c.label LIMIT 10", key="console_cypher"
)
if st.button("Run", key="console_run"):
    rows = shown_errors(lambda: store().console(cypher, model=console_model))
    if rows is not None:
        st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
