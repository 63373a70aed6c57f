"""Models: every stored model, one row each, in two tables that fit the page: what it is (a row
picked shows it in full) and its scores, each column explained on hover; pick some to compare; drop
one after confirming."""

from urllib.parse import quote

import pandas as pd
import streamlit as st

from neurocypher.app.explorer import SCORES, forget, overview, shown_errors, store

WHAT = {  # the first table, what each model is: column -> (title, width, what it holds, shown on hover)
    "model": ("model", 175, "the model id (ingest --name)"),
    "kind": ("architecture", 225, "the model's class and how many layers were read (pick the row for all of them)"),
    "neurons": ("neurons", 70, "neurons: input features, units and channels read, class outputs"),
    "edges": (
        "flow edges",
        80,
        "neuron-to-neuron flow edges kept: mutual information above a permutation null, at most top_k into each "
        "neuron from each layer feeding it",
    ),
    "communities": ("communities", 360, "communities found, per method"),
}
SCORED = {  # the second table, its scores and the data they were measured on: column -> title
    "model": "model",
    "data": "data",
    "samples": "samples",
    "accuracy": "accuracy",
    "deletion_attribution": "deletion, attribution order",
    "deletion_random": "deletion, random order",
    "fidelity": "NeurFlow fidelity",
    "knockout_rho": "knockout rho",
}
ABOUT = {
    "data": "the probe data the model was analysed on (pick the row above for its whole name)",
    "samples": "probe samples the analysis ran on",
    **SCORES,
}
COUNTS = ("samples", "neurons", "edges")  # shown in full, with thousands separators


def identity(frame: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """The first table (what each model is) and its column configuration."""
    table = frame.assign(kind=frame["arch"].str.split("(").str[0] + " · " + frame["layers"].astype(str) + " layers")
    config = {
        column: st.column_config.NumberColumn(title, help=about, width=width, format="localized")
        if column in COUNTS
        else st.column_config.TextColumn(title, help=about, width=width, pinned=column == "model")
        for column, (title, width, about) in WHAT.items()
    }
    return table[list(WHAT)], config


def scores(frame: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """The second table (the data, and each model's scores to 3 significant digits; None where not
    measured) and its configuration."""
    table = frame.assign(data=frame["dataset"].str.rsplit("/", n=1).str[-1])
    config = {
        column: st.column_config.TextColumn(title, help=ABOUT.get(column), pinned=column == "model")
        if column in ("model", "data")
        else st.column_config.NumberColumn(
            title, help=ABOUT[column], format="localized" if column in COUNTS else "%.3g"
        )
        for column, title in SCORED.items()
    }
    return table[list(SCORED)], config


st.title("Stored models")
frame = overview()
if not len(frame):
    st.info("No models stored yet. Run `neurocypher demo` or `neurocypher ingest ...`, then reload.")
    st.stop()
if "dropped" in st.session_state:
    st.success(f"dropped {st.session_state.pop('dropped')}")
st.caption(
    f"{len(frame)} model(s) on {store().backend}: models newest first, then the checkpoints of each training series. "
    "Hover over a column's name for what it holds; pick a row to see the model in full."
)
table, config = identity(frame)
picked_row = st.dataframe(
    table,
    hide_index=True,
    width="stretch",
    column_config=config,
    on_select="rerun",
    selection_mode="single-row",
    key="models_table",
)
rows = picked_row.selection.rows if picked_row else []
if rows:
    model = frame.iloc[rows[0]]
    st.markdown(f"**{model['model']}**: {model['arch']}")
    st.caption(f"Data: `{model['dataset']}`. Communities: {model['communities'] or 'none'}. Stored {model['created']}.")
st.markdown("**Scores**, on the probe data")
table, config = scores(frame)
st.dataframe(table, hide_index=True, width="stretch", column_config=config, key="scores_table")
explained = [(title, SCORES[name].removeprefix(f"{title}: ")) for name, title in SCORED.items() if name in SCORES]
st.caption(
    " ".join(f"**{title}**: {text}." for title, text in explained)
    + " None: not measured (NeurFlow fidelity needs the neurflow method, the deletion check runs unless "
    "--no-deletion)."
)
st.markdown(" · ".join(f"[{m}: community graph](communities?model={quote(m)})" for m in frame["model"]))
picked = st.multiselect(
    "Compare these models",
    list(frame["model"]),
    key="compare_pick",
    default=[m for m in st.session_state.get("compare_models", []) if m in set(frame["model"])],
)
st.session_state["compare_models"] = picked  # kept for the Compare page (widget state is per page)
if len(picked) > 1:
    st.page_link("views/compare.py", label=f"Compare {', '.join(picked)}", icon=":material/compare_arrows:")

with st.expander("Drop a model"):
    victim = st.selectbox("Model to drop", list(frame["model"]), key="drop_model")
    confirm = st.text_input("Type the model id to confirm dropping it", key="drop_confirm")
    if st.button("Drop", type="primary", disabled=confirm != victim, key="drop_button"):
        if shown_errors(lambda: store().drop(victim)):
            forget()
            st.session_state["compare_models"] = [m for m in picked if m != victim]
            st.session_state["dropped"] = victim
            st.rerun()
