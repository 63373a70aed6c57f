"""docs/tour.ipynb runs from top to bottom against the embedded store (nbclient, a fresh kernel),
and is kept in the repository without outputs."""

from pathlib import Path

import nbformat
from nbclient import NotebookClient

TOUR = Path(__file__).parent.parent / "docs" / "tour.ipynb"


def test_the_tour_is_stored_without_outputs():
    notebook = nbformat.read(TOUR, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code and all(cell.outputs == [] and cell.execution_count is None for cell in code)


def test_the_tour_runs_end_to_end(store, tmp_path):
    notebook = nbformat.read(TOUR, as_version=4)
    NotebookClient(notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": tmp_path}}).execute()
    outputs = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]
    assert not [output for output in outputs if output.output_type == "error"]
    assert any("image/png" in output.get("data", {}) for output in outputs)  # the community graph drawn
    assert {"tour-a", "tour-b", "tour-training-step20"} <= {m["model_id"] for m in store.models()}
    assert store.ask("evolution", model="tour-training", method="relay", **{"class": 3})
