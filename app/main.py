"""neurocypher explorer: the stored models."""

import pandas as pd
import streamlit as st

from queries import connect

st.set_page_config(page_title="neurocypher", page_icon="🧠", layout="wide")


@st.cache_resource
def store():
    return connect()


st.title("neurocypher")
st.caption(f"Stored models ({store().backend})")
models = store().models()
if models:
    st.dataframe(pd.DataFrame(models), hide_index=True, use_container_width=True)
else:
    st.info("No models stored yet. Run `neurocypher demo` or `neurocypher ingest ...`.")
