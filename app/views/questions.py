"""Questions: every named query with a form built from its parameters, the answer as a table (every
uid a link) and as a graph for paths, the Cypher it ran; and a read-only Cypher console whose
nodes and paths are drawn as a graph too."""

import streamlit as st

from neurocypher.app.explorer import (
    ask,
    class_names,
    layers_of,
    methods_of,
    model_ids,
    open_uid,
    paged,
    pick_class,
    pick_model,
    shared_classes,
    shared_methods,
    shown_errors,
    store,
)
from neurocypher.app.graphs import draw, layer_of, layer_title, model_of, path_elements
from neurocypher.app.tables import is_uid, show_table, spread
from neurocypher.queries import explore
from neurocypher.queries.library import QUERIES, REQUIRED, cypher_text

EMPTY = {  # why a question can have no answer, and what to try
    "relay-path": "no chain of these communities relays the class through every layer with at least min_bits; "
    "lower min_bits or try another method",
    "top-relays": "no community of this method relays the class",
    "key-communities": "closing no community of this method costs more than half a point of accuracy (for this class)",
    "noise-communities": "closing no community of this method improves accuracy: the model has no noise communities "
    "for it",
    "flow-between": "no path of stored flow edges (the strongest per neuron) joins the two neurons; "
    "try neurons with more flow, e.g. the defaults",
    "attribution": "no input feature carries path flow into this class",
}
UNKNOWN = {"neuron": "neuron", "community": "community"}  # questions about one uid: no row means no such uid


def neuron_field(model: str, name: str, default: str, help: str) -> str:
    """A neuron uid as a layer and an index (a layer may have thousands of neurons)."""
    layers = layers_of(model)
    layer_default, index_default = layer_of(default), int(default.rsplit("/", 1)[-1])
    left, right = st.columns(2)
    layer = left.selectbox(
        f"{name}: layer",
        [lay["index"] for lay in layers],
        index=layer_default,
        key=f"{question}.{name}.layer",
        format_func=lambda i: layer_title(layers[i]),
        help=help,
    )
    width = layers[layer]["width"]
    index = right.number_input(
        f"{name}: index (0..{width - 1})", 0, width - 1, min(index_default, width - 1), key=f"{question}.{name}.index"
    )
    return f"{model}/L{layer}/{index}"


def defaults(model: str) -> dict:
    """Where flow-between starts and ends by default: the ends of the strongest two flow hops from the input."""
    rows = explore.page(store(), explore.STRONGEST_TWO_HOPS, model, size=1)
    return rows[0] if rows else {"source": f"{model}/L0/0", "target": f"{model}/L2/0"}


def field(param, model, chosen):
    """One form field for `param`, filled from the store where it can be (`chosen`: the models picked
    above the form, whose shared classes and methods it offers)."""
    key = f"{question}.{param.name}"
    about = model or (chosen[0] if chosen else None)
    if param.name == "class" and chosen:
        names = class_names(chosen[0])
        return st.selectbox("class", range(shared_classes(chosen)), key=key, format_func=lambda c: f"{c}: {names[c]}")
    if param.name == "class" and about and param.default is None:  # optional: every class, or one
        names = class_names(about)
        return st.selectbox(
            "class",
            [None, *range(len(names))],
            key=key,
            format_func=lambda c: "any" if c is None else f"{c}: {names[c]}",
        )
    if param.name == "class" and about:
        return pick_class(about, key=key, label="class")
    if param.name == "method" and about:
        methods = (shared_methods(chosen) if chosen else methods_of(about)) or [param.default]
        return st.selectbox(
            "method", methods, key=key, index=methods.index(param.default) if param.default in methods else 0
        )
    if param.name == "uid" and model and question == "community":
        uids = [c["uid"] for m in methods_of(model) for c in paged(explore.COMMUNITIES, model, 5000, method=m)]
        return st.selectbox("community", uids, key=key, help=param.help)
    if param.name == "uid" and model:
        return neuron_field(model, "neuron", f"{model}/L1/0", param.help)
    if param.name in ("source", "target") and model:
        return neuron_field(model, param.name, defaults(model)[param.name], param.help)
    if param.choices:
        return st.selectbox(
            param.name, param.choices, key=key, index=param.choices.index(param.default), help=param.help
        )
    if param.kind is int:
        low = int(param.minimum) if param.minimum is not None else 0
        start = low if param.default in (REQUIRED, None) else int(param.default)
        return st.number_input(param.name, low, int(param.maximum or 10**6), start, key=key, help=param.help)
    if param.kind is float:  # an optional number (default None) stays empty unless given
        value = None if param.default is None else float(param.default)
        return st.number_input(param.name, value=value, key=key, help=param.help, placeholder="none")
    return st.text_input(param.name, "" if param.default is REQUIRED else str(param.default), key=key, help=param.help)


def answer(rows: list[dict], model: str | None, key: str) -> None:
    """Rows as a table with links, and their paths or nodes (those of `model`) as a graph; a click
    opens the uid's page."""
    st.caption(f"{len(rows)} row(s)")
    show_table(rows)
    paths = [
        [v for v in value if is_uid(v)]
        for row in rows
        for value in row.values()
        if isinstance(value, list) and len(value) > 1 and all(is_uid(v) for v in value)
    ]
    nodes = [[v] for row in rows for v in row.values() if is_uid(v)]
    if model and (paths or nodes) and all(model_of(uid) == model for path in paths + nodes for uid in path):
        st.caption("As a graph (the first answer highlighted; click a node to open its page):")
        opened = draw(path_elements(paths + nodes, layers_of(model)), key=key)
        if opened:
            open_uid(opened)


st.title("Questions")
names = list(QUERIES)
wanted = st.query_params.get("question")
question = st.selectbox(
    "Question",
    names,
    key="question",
    index=names.index(wanted) if wanted in names else 0,
    format_func=lambda n: f"{n}: {QUERIES[n].description}",
)
st.query_params["question"] = question
query = QUERIES[question]
ids = model_ids()

model = pick_model() if any(p.name == "model" for p in query.params) else None
chosen = None  # models picked outside the form, so that its classes and methods follow them at once
if any(p.name == "models" for p in query.params):
    chosen = st.multiselect("models", ids, default=ids[:2], key=f"{question}.models")
with st.form(f"form-{question}"):
    params = {p.name: field(p, model, chosen) for p in query.params if p.name not in ("model", "models")}
    params.update({"model": model} if model else {})
    params.update({"models": chosen} if chosen is not None else {})
    submitted = st.form_submit_button("Ask")
if submitted:
    st.session_state["asked"] = (question, params)
if st.session_state.get("asked", (None,))[0] == question:
    params = st.session_state["asked"][1]
    rows = shown_errors(lambda: ask(question, **params))
    if rows == [] and question in UNKNOWN:
        st.error(f"no {UNKNOWN[question]} {params['uid']} in {model}: pick one from the form")
    elif rows == []:
        st.info(f"No answer: {EMPTY.get(question, 'nothing matches these parameters')}.")
    elif rows is not None:
        answer(spread(rows), model, key=f"answer-{question}")
    st.code(shown_errors(lambda: cypher_text(store(), question, **params)) or "", language="cypher")

st.divider()
st.subheader("Cypher console (read-only)")
above = model or (chosen[0] if chosen else None)
console_model = st.selectbox(  # one picker per model picked above: the console starts on it and follows it
    "On model", ids, index=ids.index(above) if above in ids else 0, key="console_model" + (f".{above}" if above else "")
)
cypher = st.text_area(
    "Cypher", "MATCH (c:Community {method: 'innersight'}) RETURN c.uid, c.label LIMIT 10", key="console_cypher"
)
if st.button("Run", key="console_run"):
    st.session_state["console_asked"] = (console_model, cypher)
if st.session_state.get("console_asked"):
    on, text = st.session_state["console_asked"]
    rows = shown_errors(lambda: store().console(text, model=on))
    if rows is not None:
        answer(spread(rows), on, key="console-graph")
