"""The Streamlit explorer's first page, on the session's store."""

from pathlib import Path

from streamlit.testing.v1 import AppTest

from ingest import analyze, write
from ingest.data import load_data
from ingest.demo_models import mlp

MAIN = str(Path(__file__).parents[1] / "app" / "main.py")


def test_models_page_lists_the_stored_models(store):
    data = load_data("sklearn:digits")
    write(store, analyze(mlp(), data.X[:200], data.y[:200], name="app-listed"), replace=True)
    page = AppTest.from_file(MAIN, default_timeout=30).run()
    assert not page.exception
    table = page.dataframe[0].value
    assert "app-listed" in set(table["model_id"])
    assert table.set_index("model_id").loc["app-listed", "neurons"] == 138
