"""Opening the explorer's pages in tests (streamlit.testing.v1.AppTest), for the test modules of the app."""

import json
from pathlib import Path

import streamlit as st
from streamlit.testing.v1 import AppTest

from neurocypher import app as explorer

MAIN = str(Path(explorer.__file__).with_name("main.py"))  # the script `neurocypher app` runs


def open_page(page: str, **query_params) -> AppTest:
    """The app with `page` shown (query parameters preset, as in a shared address)."""
    st.cache_data.clear()  # a new visit: the store has changed since the last test
    app = AppTest.from_file(MAIN, default_timeout=120)
    app.query_params.update(query_params)
    app.run()
    if page != "models":
        app.switch_page(f"views/{page}.py").run()
    assert not app.exception, app.exception
    return app


def graph(app: AppTest, index: int = 0) -> dict:
    """The arguments handed to graph component `index`."""
    return json.loads(app.get("component_instance")[index].proto.json_args)
