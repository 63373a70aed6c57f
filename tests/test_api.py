"""The Python API: analyse a model and write it, then read the graph back."""

import io

import numpy as np
import pytest
from rich.console import Console

from neurocypher import progress
from neurocypher.ingest import analyze, write
from neurocypher.ingest.data import load_data
from neurocypher.ingest.demo_models import mlp


@pytest.fixture(scope="module")
def analysis():
    data = load_data("sklearn:wine")
    import torch

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(13, 6), torch.nn.Tanh(), torch.nn.Linear(6, 3))
    return analyze(model, data.X, data.y, name="api-wine", dataset=data.source, class_names=data.class_names)


def test_written_graph_mirrors_the_analysis(store, analysis):
    counts = write(store, analysis, replace=True)
    expected = {
        "Model": 1,
        "Layer": 3,
        "Class": 3,
        "Neuron": 22,
        "HAS_LAYER": 3,
        "HAS_CLASS": 3,
        "HAS_NEURON": 22,
        "Community": len(analysis.communities),
        "RELAYS": 3 * len(analysis.communities),
        "FLOWS_TO": sum(len(f.source) for f in analysis.flows + analysis.community_flows),
        "ATTRIBUTES": int((analysis.attribution > 0).sum()),
    }
    assert {k: counts[k] for k in expected} == expected
    stored = store.read("MATCH (n)-[r]->() RETURN type(r) AS t, count(r) AS c", model="api-wine")
    assert {r["t"]: r["c"] for r in stored} == {k: v for k, v in counts.items() if k.isupper()}
    model = store.read("MATCH (m:Model) RETURN m", model="api-wine")[0]["m"]
    assert model["status"] == "complete" and model["layer_widths"] == [13, 6, 3]
    assert model["accuracy"] == pytest.approx(analysis.accuracy)
    chain = store.read(
        "MATCH (m:Model)-[:HAS_LAYER]->(l:Layer)-[:HAS_NEURON]->(n:Neuron) "
        "RETURN l.index AS layer, l.kind AS kind, n.index AS i, n.mean AS mean, n.entropy AS h, n.class_means AS cm "
        "ORDER BY layer, i",
        model="api-wine",
    )
    assert len(chain) == 22 and [r["kind"] for r in chain[:1] + chain[-1:]] == ["input", "output"]
    hidden = analysis.layers[1]
    row = chain[13 + 4]
    assert (row["layer"], row["i"]) == (1, 4)
    assert row["mean"] == pytest.approx(float(hidden.acts[:, 4].mean()), rel=1e-6)
    assert row["h"] == pytest.approx(float(hidden.entropy[4]))
    np.testing.assert_allclose(row["cm"], hidden.class_means[:, 4], rtol=1e-6)
    classes = store.read(
        "MATCH (:Model)-[:HAS_CLASS]->(c:Class) RETURN c.name AS name, c.support AS n ORDER BY name", model="api-wine"
    )
    assert classes == [{"name": "class_0", "n": 59}, {"name": "class_1", "n": 71}, {"name": "class_2", "n": 48}]


def test_analysis_is_usable_without_a_store():
    data = load_data("sklearn:digits")
    a = analyze(mlp(), data.X[:300], data.y[:300], name="offline")
    assert a.n_classes == 10 and len(a.labels) == 300 and a.layers[-1].width == 10
    assert a.class_accuracy.shape == (10,) and 0 <= a.accuracy <= 1


def test_progress_bars_opened_inside_one_another_share_one_display(monkeypatch):
    out = io.StringIO()
    monkeypatch.setattr(progress, "_console", Console(file=out, force_terminal=True, width=100))
    with progress.progress_bar(3, "analysing m") as stage:
        stage(0, "flow")
        with progress.progress_bar(2, "information flow") as step:  # a second live display would raise
            step()
        stage()
    shown = out.getvalue()
    assert "analysing m: flow" in shown and "information flow" in shown and not progress._shown
