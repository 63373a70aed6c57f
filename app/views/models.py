"""Models: every stored model side by side (one column each); pick some to compare; drop one after
confirming."""

from urllib.parse import quote

import pandas as pd
import streamlit as st

from app.explorer import SCORES, forget, overview, shown_errors, store

st.title("Stored models")
frame = overview()
if not len(frame):
    st.info("No models stored yet. Run `neurocypher demo` or `neurocypher ingest ...`, then reload.")
    st.stop()
if "dropped" in st.session_state:
    st.success(f"dropped {st.session_state.pop('dropped')}")
st.caption(f"{len(frame)} model(s) on {store().backend}, newest first.")


def side_by_side(frame: pd.DataFrame) -> pd.DataFrame:
    """One column per model, one row per property; numbers to 4 significant digits."""
    shown = frame.set_index("model").T
    return shown.map(lambda v: f"{v:.4g}" if isinstance(v, float) else ("" if v is None or v != v else str(v)))


table = side_by_side(frame)
st.dataframe(table, width="stretch", height=35 * (len(table) + 1) + 3)  # every row, no inner scrolling
st.caption(" ".join(f"**{name}**: {text}." for name, text in SCORES.items()))
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
