"""The explorer on a model with 2,048 neurons in a layer: the graphs draw at most MOST_PER_LAYER
nodes per layer and count the rest, and a neuron is picked by layer and index, never from a list
of thousands."""

import pytest
import torch
from pages import graph, open_page
from torch import nn

from neurocypher.app.graphs import MOST_PER_LAYER, drawn
from neurocypher.ingest import analyze, write
from neurocypher.ingest.data import load_data
from neurocypher.queries import connect

WIDE = 2048


@pytest.fixture(scope="module")
def wide():
    """A 64-2048-10 MLP (random weights) on 300 digits, flow communities only, stored as `app-wide`."""
    data = load_data("sklearn:digits")
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, WIDE), nn.ReLU(), nn.Linear(WIDE, 10))
    analysis = analyze(
        model, data.X[:300], data.y[:300], name="app-wide", methods=("flow",), deletion=False, image_shape=(8, 8)
    )
    with connect() as store:
        write(store, analysis, replace=True)
        yield analysis
        store.drop("app-wide")


def per_layer(nodes: list[dict]) -> dict[int, int]:
    counts: dict[int, int] = {}
    for node in nodes:
        counts[node["data"]["layer"]] = counts.get(node["data"]["layer"], 0) + 1
    return counts


def test_a_wide_model_is_drawn_aggregated(store, wide):
    app = open_page("communities", model="app-wide", method="flow")
    nodes = [n for n in graph(app)["elements"]["nodes"] if drawn(n) or n["classes"] == "more"]
    assert max(per_layer(nodes).values()) <= MOST_PER_LAYER + 1
    app.toggle(key="drill").set_value(True).run()
    neurons = [n for n in graph(app, 1)["elements"]["nodes"] if drawn(n) or n["classes"] == "more"]
    assert max(per_layer(neurons).values()) <= MOST_PER_LAYER + 1
    stored = store.read("MATCH (c:Community {method: 'flow'}) RETURN c.layer AS layer, count(c) AS n", model="app-wide")
    crowded = [row["layer"] for row in stored if row["n"] > MOST_PER_LAYER]
    more = {n["data"]["layer"]: n["data"]["label"] for n in nodes if n["classes"] == "more"}
    assert sorted(more) == sorted(crowded)


def test_a_wide_layers_neuron_is_picked_by_index(store, wide):
    app = open_page("neuron", model="app-wide", uid=f"app-wide/L1/{WIDE - 1}")
    assert app.number_input[0].max == WIDE - 1 and app.number_input[0].value == WIDE - 1
    assert not app.error
    assert max(len(box.options) for box in app.selectbox) < 100
