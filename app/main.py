"""neurocypher explorer: browse a stored model's communities, ask the named questions, compare models.
Run with `neurocypher app` (it starts the embedded server when needed and prints the address)."""

import streamlit as st

from app.explorer import forget

st.set_page_config(page_title="neurocypher", page_icon="🧠", layout="wide")
page = st.navigation(
    [
        st.Page("views/models.py", title="Models", icon="🗂️", default=True),
        st.Page("views/communities.py", title="Community graph", icon="🕸️"),
        st.Page("views/questions.py", title="Questions", icon="❓"),
        st.Page("views/compare.py", title="Compare", icon="⚖️"),
    ]
)
if st.sidebar.button("Refresh", help="read the store again (after an ingest or a drop elsewhere)"):
    forget()
page.run()
