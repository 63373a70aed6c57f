"""Rows as DataFrames, a model as a networkx DiGraph read in pages, and `neurocypher export` to
GraphML, GEXF and CSV, read back with networkx and pandas and checked against the store, on both
backends."""

import json

import networkx as nx
import pandas as pd
import pytest
from helpers import cli, snapshot, store_missing

from neurocypher.ingest import analyze
from neurocypher.ingest.demo_models import mlp
from neurocypher.queries.export import model_digraph

MODEL = "x-export"
COUNTS = """
MATCH (n:Neuron) WITH count(n) AS neurons
MATCH (:Neuron)-[f:FLOWS_TO]->(:Neuron) WITH neurons, count(f) AS flows
MATCH (c:Community {method: 'innersight'}) WITH neurons, flows, count(c) AS communities
MATCH (:Community {method: 'innersight'})-[g:FLOWS_TO]->(:Community)
RETURN neurons, flows, communities, count(g) AS community_flows"""


pytestmark = pytest.mark.both_backends


@pytest.fixture(scope="module")
def analysis(digits):
    return analyze(mlp(), digits.X[:300], digits.y[:300], name=MODEL, methods=("innersight", "relay"))


@pytest.fixture()
def exported(store, analysis):
    """The model stored (by the first test of each backend that asks), and what it holds."""
    store_missing(store, [analysis])
    return store.console(COUNTS, model=MODEL)[0]


def test_named_queries_and_console_reads_come_as_dataframes(store, exported):
    rows = store.ask("top-relays", model=MODEL, method="innersight", limit=5, **{"class": 2})
    frame = store.ask("top-relays", model=MODEL, method="innersight", limit=5, frame=True, **{"class": 2})
    assert isinstance(frame, pd.DataFrame) and frame.to_dict("records") == rows and len(rows) == 5
    assert list(frame.columns) == ["community", "layer", "size", "bits", "acc_drop", "role", "label"]
    counted = store.console("MATCH (n:Neuron) RETURN n.layer AS layer, count(n) AS n", model=MODEL, frame=True)
    assert counted.sort_values("layer")["n"].tolist() == [64, 32, 32, 10]


@pytest.mark.parametrize("page", [7, 2000])
def test_the_neuron_graph_is_read_in_pages_with_every_stored_property(store, exported, page):
    graph = model_digraph(store, MODEL, page=page)
    assert (graph.number_of_nodes(), graph.number_of_edges()) == (exported["neurons"], exported["flows"])
    one = "MATCH (n:Neuron {uid: $uid}) RETURN n"
    uid = f"{MODEL}/L1/5"
    assert graph.nodes[uid] == store.console(one, {"uid": uid}, model=MODEL)[0]["n"]
    edge = "MATCH (:Neuron {uid: $a})-[f:FLOWS_TO]->(b:Neuron) RETURN b.uid AS b, f ORDER BY b LIMIT 1"
    [first] = store.console(edge, {"a": uid}, model=MODEL)
    assert graph.edges[uid, first["b"]] == first["f"] and set(first["f"]) == {"bits", "share"}


def test_the_community_graph_of_one_method(store, exported):
    graph = store.digraph(MODEL, "communities", "innersight")
    assert (graph.number_of_nodes(), graph.number_of_edges()) == (
        exported["communities"],
        exported["community_flows"],
    )
    assert {props["method"] for _, props in graph.nodes(data=True)} == {"innersight"}
    assert graph.graph == {"model": MODEL, "level": "communities", "method": "innersight"}


def test_export_to_graphml_gexf_and_csv_reads_back_as_stored(store, exported, tmp_path):
    stored = model_digraph(store, MODEL)
    done = cli("export", MODEL, str(tmp_path), "--to", "graphml")
    assert done.returncode == 0 and done.stdout == f"wrote {tmp_path / (MODEL + '.neurons.graphml')}\n"
    graphml = nx.read_graphml(tmp_path / f"{MODEL}.neurons.graphml")
    assert (graphml.number_of_nodes(), graphml.number_of_edges()) == (exported["neurons"], exported["flows"])
    uid = f"{MODEL}/L2/3"
    read, kept = graphml.nodes[uid], stored.nodes[uid]
    assert read["mean"] == pytest.approx(kept["mean"]) and json.loads(read["class_means"]) == kept["class_means"]
    assert read["label"] == "L2/3" and read["kind"] == "hidden"

    assert cli("export", MODEL, str(tmp_path), "--to", "gexf", "--level", "communities").returncode == 0
    gexf = nx.read_gexf(tmp_path / f"{MODEL}.innersight.gexf")
    communities = store.digraph(MODEL, "communities", "innersight")
    assert (gexf.number_of_nodes(), gexf.number_of_edges()) == (exported["communities"], exported["community_flows"])
    some = next(iter(communities))
    assert gexf.nodes[some]["label"] == communities.nodes[some]["label"]  # the concept label names the node
    assert gexf.nodes[some]["size"] == communities.nodes[some]["size"]

    assert cli("export", MODEL, str(tmp_path), "--to", "csv").returncode == 0
    nodes = pd.read_csv(tmp_path / f"{MODEL}.neurons.nodes.csv")
    edges = pd.read_csv(tmp_path / f"{MODEL}.neurons.edges.csv")
    assert len(nodes) == exported["neurons"] and len(edges) == exported["flows"]
    assert list(nodes.columns[:2]) == ["Id", "Label"] and list(edges.columns[:2]) == ["Source", "Target"]
    assert set(edges["Source"]) <= set(nodes["Id"]) and edges["bits"].sum() == pytest.approx(
        sum(bits for *_, bits in stored.edges(data="bits"))
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["x-nothing", "--to", "csv"], "no model named 'x-nothing' is stored"),
        ([MODEL, "--to", "csv", "--level", "communities", "--method", "neurflow"], "pass --method with one of:"),
        ([MODEL, "--to", "dot"], "'dot' is not one of"),
    ],
)
def test_export_bad_input_is_one_line_exit_2_and_writes_nothing(store, exported, tmp_path, args, message):
    before = snapshot(store)
    done = cli("export", args[0], str(tmp_path / "out"), *args[1:])
    assert done.returncode == 2 and message in done.stderr and done.stderr.count("\n") == 1
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    assert snapshot(store) == before


def test_export_into_a_file_path_says_what_to_do(exported, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    done = cli("export", MODEL, str(blocker), "--to", "graphml")
    assert done.returncode == 2 and "pass a writable DIR" in done.stderr
