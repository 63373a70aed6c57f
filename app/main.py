"""neurocypher explorer: browse a stored model's communities and neurons, ask the named questions,
compare models. Run with `neurocypher app` (it starts the embedded server when needed and prints the
address). The sidebar icons are Material Symbols, a font that ships with Streamlit (no emoji font
needed; a material page icon would be fetched from Google, so the tab icon is an emoji)."""

import threading
from importlib import import_module

import streamlit as st

from neurocypher.app.explorer import forget
from neurocypher.errors import UserError


@st.cache_resource
def warmed() -> threading.Thread:
    """Import torch (5 s) once per server, in the background, so that the first page that reloads a
    model's data does not wait for it (torch alone, not `ingest`: the thread imports nothing that a
    page imports at the same time, so no two threads wait on each other's imports)."""
    thread = threading.Thread(target=import_module, args=("torch",), daemon=True)
    thread.start()
    return thread


st.set_page_config(page_title="neurocypher", page_icon="🧠", layout="wide")
page = st.navigation(
    [
        st.Page("views/models.py", title="Models", icon=":material/table_view:", default=True),
        st.Page("views/communities.py", title="Community graph", icon=":material/hub:"),
        st.Page("views/neuron.py", title="Neuron", icon=":material/radio_button_checked:"),
        st.Page("views/questions.py", title="Questions", icon=":material/help:"),
        st.Page("views/compare.py", title="Compare", icon=":material/compare_arrows:"),
    ]
)
warmed()
if st.sidebar.button("Refresh", help="read the store again (after an ingest or a drop elsewhere)"):
    forget()
try:  # every store read of every page: a spinner while it reads, one line (no traceback) when it fails
    with st.spinner(f"{page.title}: reading the store…", show_time=True):
        page.run()
except UserError as error:
    st.error(str(error))
