"""The Streamlit explorer, page by page (streamlit.testing.v1.AppTest), on the specialists models
stored in the session's embedded store (and, for the tests marked both_backends, in Neo4j); the
pages' answers are checked against the store's own."""

import json
import math
import re
from pathlib import Path

import pyarrow as pa
import pytest
import streamlit as st
import torch
from pages import MAIN, graph, open_page
from specialists import SPECIALISTS, WIDTH
from streamlit.testing.v1 import AppTest
from torch import nn

from neurocypher.app import graphs
from neurocypher.app.tables import chain_caption, figure
from neurocypher.ingest import analyze, write
from neurocypher.ingest.demo_models import mlp
from neurocypher.queries import connect, explore
from neurocypher.queries.server import EmbeddedServer


@pytest.fixture(scope="module")
def other(digits):
    """A 64-16-16-16-16-10 MLP (random weights) on 300 digits: ten classes, six layers, innersight
    only, stored as `app-other`: a model unlike q-spec to switch to."""
    torch.manual_seed(0)
    hidden = [m for _ in range(3) for m in (nn.Linear(16, 16), nn.ReLU())]
    model = nn.Sequential(nn.Linear(64, 16), nn.ReLU(), *hidden, nn.Linear(16, 10))
    analysis = analyze(
        model, digits.X[:300], digits.y[:300], name="app-other", methods=("innersight",), deletion=False,
        image_shape=(8, 8),
    )  # fmt: skip
    with connect() as store:
        write(store, analysis, replace=True)
        yield analysis
        store.drop("app-other")


def graph_nodes(app: AppTest, index: int = 0) -> dict[str, dict]:
    """The drawn nodes (not the headers, titles, corners or "+N more" counts), by id: data and classes."""
    return {
        node["data"]["id"]: {**node["data"], "classes": node["classes"].split(), "position": node["position"]}
        for node in graph(app, index)["elements"]["nodes"]
        if graphs.drawn(node)
    }


def highlighted(app: AppTest, index: int = 0, kind: str = "chain") -> set[str]:
    """The nodes drawn as the chain (orange), or with `kind` own, as made for the class (blue)."""
    return {uid for uid, node in graph_nodes(app, index).items() if kind in node["classes"]}


def charts(app: AppTest) -> list[dict]:
    """The Vega-Lite specs of the page's charts."""
    return [json.loads(chart.proto.spec) for chart in app.get("vega_lite_chart")]


def attribution_cells(app: AppTest) -> list[dict]:
    """The cells of the attribution heatmap (row, column, value), as handed to the chart."""
    chart = next(c for c in app.get("vega_lite_chart") if json.loads(c.proto.spec).get("title", "").startswith("Attr"))
    return pa.ipc.open_stream(chart.proto.datasets[0].data.data).read_all().to_pylist()


def linked_uids(column) -> list[str]:
    """The uids behind a table's link column (`neuron?model=m&uid=m/L1/3`)."""
    return [re.search(r"(?:uid|community)=(.+)$", link).group(1) for link in column]


def column_formats(app: AppTest, index: int) -> dict:
    """The column configuration of dataframe `index` (link columns, number formats)."""
    return json.loads(app.dataframe[index].proto.columns)


def test_models_page_lists_every_model_in_rows_each_column_explained(store, stored):
    app = open_page("models")
    what, scores = (app.dataframe[i].value.set_index("model") for i in (0, 1))  # one row per model
    for a in stored:
        assert what.loc[a.name, "neurons"] == sum(layer.width for layer in a.layers)
        assert what.loc[a.name, "edges"] == sum(len(f.source) for f in a.flows)
        assert f"relay {sum(c.method == 'relay' for c in a.communities)}" in what.loc[a.name, "communities"]
        assert scores.loc[a.name, "accuracy"] == pytest.approx(a.accuracy)
        assert scores.loc[a.name, "fidelity"] == pytest.approx(a.metrics["fidelity_ratio"])
    assert "nan" not in {str(v) for table in (what, scores) for v in table.to_numpy().ravel()}
    for index in (0, 1):
        formats = column_formats(app, index)
        assert all(config.get("help") for name, config in formats.items() if name not in ("model", "_index"))
    assert column_formats(app, 0)["edges"]["type_config"]["format"] == "localized"  # 27,330, not 2.733e+04
    assert column_formats(app, 1)["knockout_rho"]["type_config"]["format"] == "%.3g"
    app.multiselect(key="compare_pick").select("q-spec").select("q-spec2").run()
    assert app.session_state["compare_models"] == ["q-spec", "q-spec2"]


def test_models_page_drops_a_model_only_after_confirmation(store, digits):
    write(
        store,
        analyze(mlp(), digits.X[:150], digits.y[:150], name="app-doomed", methods=(), deletion=False),
        replace=True,
    )
    app = open_page("models")
    app.selectbox(key="drop_model").select("app-doomed").run()
    assert app.button(key="drop_button").disabled
    app.text_input(key="drop_confirm").input("app-doomed").run()
    app.button(key="drop_button").click().run()
    assert not store.has_model("app-doomed")
    assert [s.value for s in app.success] == ["dropped app-doomed"]
    assert "app-doomed" not in open_page("models").selectbox(key="drop_model").options


def test_sidebar_icons_need_no_emoji_font():
    source = Path(MAIN).read_text()
    icons = re.findall(r'\bicon="([^"]*)"', source)  # each page's (the tab's is an emoji: never fetched)
    assert len(icons) == 5 and all(re.fullmatch(r":material/\w+:", icon) for icon in icons)


@pytest.mark.parametrize("c", range(SPECIALISTS))
def test_community_graph_highlights_the_specialists_relay_chain(store, stored, c):
    app = open_page("communities", model="q-spec")
    app.selectbox(key="class").select(c).run()
    chain = store.ask("relay-path", model="q-spec", **{"class": c}, limit=1)[0]["chain"]
    assert re.sub(r"[`*]", "", app.markdown[0].value).startswith(f"Relay chain for class {c}")
    assert highlighted(app) == set(chain)
    communities = store.read(
        "MATCH (c:Community {method: 'innersight'}) RETURN c.uid AS uid, c.layer AS layer, "
        "c.closing_specificity AS specificity",
        model="q-spec",
    )
    nodes = graph_nodes(app)
    assert len(nodes) == len(communities)
    assert {uid: node.get("value") for uid, node in nodes.items()} == {
        row["uid"]: float(f"{row['specificity'][c]:.3g}") if 0 < row["layer"] < 3 else None for row in communities
    }  # coloured by the class's closing specificity; the input and output communities are off the scale
    assert {uid for uid, node in nodes.items() if "end" in node["classes"]} == {
        row["uid"] for row in communities if row["layer"] in (0, 3)
    }
    assert app.query_params["class"] == str(c)
    assert app.selectbox(key="community").value == chain[0]
    app.selectbox(key="community").select(chain[1]).run()  # the specialist's block in layer 1
    members = app.dataframe[0].value
    assert len(members) == int(app.metric[0].value) == WIDTH
    assert app.subheader[0].value.startswith(
        f"L1/{chain[1].split('/')[-1]}: closing costs class {stored[0].class_names[c]}"
    )
    assert app.get("image"), "the prototype image of an image model is shown"
    assert app.query_params["community"] == chain[1]


@pytest.mark.parametrize("method", ["relay", "neurflow"])
def test_class_view_highlights_the_modules_or_circuit_made_for_the_class(store, stored, method):
    app = open_page("communities", model="q-spec", method=method, **{"class": "2"})
    own = store.read(
        "MATCH (c:Community {method: $method}) WHERE c.class = 2 AND c.layer < 3 RETURN c.uid AS uid",
        {"method": method},
        model="q-spec",
    )
    chain = store.ask("relay-path", model="q-spec", method=method, **{"class": 2}, limit=1)[0]["chain"]
    assert own and highlighted(app, kind="own") == {row["uid"] for row in own} - set(chain)  # blue
    assert highlighted(app) == set(chain)  # orange
    edges = graph(app)["elements"]["edges"]
    pairs = {(e["data"]["source"], e["data"]["target"]) for e in edges if e["classes"] == "chain"}
    assert pairs == set(zip(chain, chain[1:])), "the chain's own links, drawn over the others"
    app.selectbox(key="community").select(own[0]["uid"]).run()
    assert any(m.value.startswith("Made for **class 2 (4)**") for m in app.markdown)
    assert "made for class 4" in app.subheader[0].value  # labels name a class by its name: the digit 4
    attribution = [spec for spec in charts(app) if spec.get("title") == "Attribution to class 2"]
    assert attribution, "the class's attribution as an 8x8 heatmap"
    cells = attribution_cells(app)
    scores = {r["index"]: r["score"] for r in store.ask("attribution", model="q-spec", **{"class": 2}, limit=64)}
    assert len(cells) == 64 and max(cells, key=lambda cell: cell["value"])["row"] * 8 + max(
        cells, key=lambda cell: cell["value"]
    )["column"] == max(scores, key=scores.get)


def test_the_colour_scale_leaves_out_the_input_and_output_communities(stored):
    app = open_page("communities", model="q-spec", method="relay", colour="relay bits for the class", **{"class": "0"})
    args = graph(app)
    hidden = [n["data"]["value"] for n in args["elements"]["nodes"] if "value" in n["data"]]
    scale = next(s["style"]["background-color"] for s in args["style"] if s["selector"] == "node[value >= 0]")
    assert hidden and scale.startswith(f"mapData(value, 0, {max(hidden)},")  # the all-inputs community sets nothing
    assert "role" not in app.selectbox(key="colour").options, "every relay module is key: role colours nothing"


def test_links_are_each_communitys_strongest_with_the_chain_on_top(store, stored):
    app = open_page("communities", model="q-spec", method="flow", **{"class": "1"})
    edges = graph(app)["elements"]["edges"]
    out, into = {}, {}
    for e in sorted(edges, key=lambda e: -e["data"]["bits"]):
        source, target = e["data"]["source"], e["data"]["target"]
        assert out.get(source, 0) < graphs.PER_NODE or into.get(target, 0) < graphs.PER_NODE or e["classes"]
        out[source], into[target] = out.get(source, 0) + 1, into.get(target, 0) + 1
    every = store.read("MATCH (:Community {method: 'flow'})-[f:FLOWS_TO]->() RETURN count(f) AS n", model="q-spec")
    assert len(edges) < every[0]["n"]
    app.number_input(key="per_node").set_value(0).run()
    assert len(graph(app)["elements"]["edges"]) == every[0]["n"]
    style = {s["selector"]: s["style"] for s in graph(app)["style"]}
    assert style["edge.chain"]["z-index"] > style["edge.own"]["z-index"] > style["edge"]["z-index"]
    assert style["edge.chain"]["line-color"] != style["edge.own"]["line-color"]


def test_the_chain_score_has_three_significant_digits_its_unit_and_its_sign_explained(store, stored):
    for c in range(SPECIALISTS):
        row = store.ask("relay-path", model="q-spec", method="flow", **{"class": c}, limit=1)[0]
        app = open_page("communities", model="q-spec", method="flow", **{"class": str(c)})
        said = next(caption.value for caption in app.caption if caption.value.startswith("Score "))
        assert said.startswith(f"Score {row['score']:+.3g} (accuracy): the accuracy class {c} loses")
        assert "positive: they matter more to class" in said and "Causal check: " in said
    chain = ["m/flow/L0/c0", "m/flow/L1/c3", "m/flow/L2/c1", "m/flow/L3/c3"]
    said = chain_caption({"chain": chain, "score": -0.000887}, 3, "relay")
    assert said.startswith(
        "Score -0.000887 (bits): the relay information for class 3 of each of its 3 input and hidden"
    )
    assert "(negative: they matter more to another class than to class 3)" in said


def test_the_layer_range_is_every_layer_of_each_model(stored, other):
    app = open_page("communities", model="q-spec")
    assert {node["layer"] for node in graph_nodes(app).values()} == {0, 1, 2, 3}
    app.selectbox(key="model").select("app-other").run()  # six layers: the slider must not stay at L0-L3
    assert {node["layer"] for node in graph_nodes(app).values()} == set(range(6))
    assert app.query_params["layers"] == "0-5"


def test_the_whole_view_lives_in_the_address(store, stored):
    uid = "q-spec/relay/L2/c1"
    app = open_page("communities", model="q-spec", method="relay", community=uid, layers="1-2", **{"class": "1"})
    assert app.selectbox(key="method").value == "relay" and app.selectbox(key="class").value == 1
    assert app.selectbox(key="community").value == uid and app.subheader[0].value.startswith("L2/c1")
    assert {node["layer"] for node in graph_nodes(app).values()} == {1, 2}
    assert {k: app.query_params[k] for k in ("model", "method", "class", "community", "layers")} == {
        "model": "q-spec",
        "method": "relay",
        "class": "1",
        "community": uid,
        "layers": "1-2",
    }


def test_community_graph_is_readable(store, stored):
    app = open_page("communities", model="q-spec")
    args = graph(app)
    nodes = args["elements"]["nodes"]
    headers = [n["data"]["label"] for n in nodes if n["classes"] == "header"]
    assert headers == [
        f"L{row['index']}\n{graphs.short_name(row['name'])}"
        for row in store.read(explore.LAYERS, {"model": "q-spec"}, model="q-spec")
    ]
    outputs = [n["data"]["label"] for n in nodes if graphs.drawn(n) and n["data"]["layer"] == 3]
    assert outputs and all(label.startswith("class ") for label in outputs)
    xs = [n["position"]["x"] for n in nodes]
    ys = [n["position"]["y"] for n in nodes]
    height = int(args["height"].removesuffix("px"))
    font = next(s["style"]["font-size"] for s in args["style"] if s["selector"] == "node")
    zoom = min(graphs.CANVAS / (max(xs) - min(xs)), (height - 40) / (max(ys) - min(ys) + 60))
    assert font * zoom >= 11, "labels of 11 px or more at the fitted zoom on a canvas of CANVAS px"
    drawn = [n["position"]["x"] for n in nodes if graphs.drawn(n)]
    assert min(drawn) == graphs.LEFT and max(drawn) == graphs.CANVAS - graphs.MARGIN, "the whole width is used"
    panel = {key for n in nodes if graphs.drawn(n) for key in n["data"]}
    assert not panel & {"diameter", "width", "chain"}, "the information panel shows no internal fields"
    links = store.read(
        "MATCH (:Community {method: 'innersight'})-[f:FLOWS_TO]->(:Community) RETURN max(f.bits) AS top", model="q-spec"
    )
    slider = app.slider(key="min_bits")
    assert slider.max == math.ceil(links[0]["top"]) and "sum of the flow bits" in slider.help
    titles = [spec["encoding"]["y"].get("title", "") for spec in charts(app) if "y" in spec.get("encoding", {})]
    assert any("bits" in t for t in titles) and any("fraction" in t for t in titles)
    formats = column_formats(app, 0)
    assert formats["neuron"]["type_config"]["type"] == "link" and formats["p"]["type_config"]["format"] == "%.3g"


def layered(names: list[str]) -> list[dict]:
    """Layers named `names` (module paths), as the store lists them."""
    return [{"index": i, "name": name, "module": name, "kind": "linear", "width": 8} for i, name in enumerate(names)]


def test_a_deep_model_wraps_into_bands_of_whole_blocks_with_short_headers():
    """A 4-layer BERT's 34 layers (module paths as transformers names them): every layer drawn at a
    readable size, its header short with the whole path kept, a block's layers in one band."""
    block = ["attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense",
             "attention.output.add", "intermediate.dense", "output.dense", "output.add"]  # fmt: skip
    names = ["input", "bert.embeddings.add", *[f"bert.encoder.layer.{i}.{n}" for i in range(4) for n in block]]
    layers = layered([*names, "bert.pooler.dense", "classifier", "output"])
    communities = [
        {"uid": f"m/flow/L{lay['index']}/c{i}", "layer": lay["index"], "index": i, "size": 4, "value": 0.1 * i}
        for lay in layers
        for i in range(3)
    ]
    chain = [f"m/flow/L{lay['index']}/c0" for lay in layers]
    flows = [{"source": a, "target": b, "bits": 1.0} for a, b in zip(chain, chain[1:])]
    elements = graphs.community_elements(communities, flows, layers, chain)
    nodes = elements["nodes"]
    headers = {n["data"]["id"]: n for n in nodes if n["classes"] == "header"}
    assert len(headers) == len(layers) == 37
    assert headers["header/L4"]["data"]["label"] == "L4\nself.value"
    assert headers["header/L4"]["data"]["module"] == "bert.encoder.layer.0.attention.self.value"
    assert all(len(line) <= graphs.HEADER_LINE for h in headers.values() for line in h["data"]["label"].split("\n"))
    row = {int(h["data"]["id"].split("/L")[1]): h["position"]["y"] for h in headers.values()}  # a band per y
    assert len(set(row.values())) > 1
    for i in range(4):  # a transformer layer's 8 layers in one band
        assert len({row[lay["index"]] for lay in layers if lay["name"].startswith(f"bert.encoder.layer.{i}.")}) == 1
    drawn = [n for n in nodes if graphs.drawn(n)]
    xs = [n["position"]["x"] for n in nodes]
    ys = [n["position"]["y"] for n in nodes]
    zoom = min(graphs.CANVAS / (max(xs) - min(xs)), (graphs.height_of(elements) - 40) / (max(ys) - min(ys) + 60))
    assert graphs.FONT * zoom >= 11, "labels of 11 px or more at the fitted zoom, 37 layers deep"
    at = sorted((n["position"]["x"], n["position"]["y"]) for n in drawn)
    assert all(abs(x - u) >= graphs.COLUMN or abs(y - v) >= graphs.ROW for (x, y), (u, v) in zip(at, at[1:]))
    blocks = [n["data"]["label"] for n in nodes if n["classes"] == "block"]
    assert blocks == ["layer.0", "layer.1", "layer.2", "layer.3"]
    assert all(e["classes"] == "chain" for e in elements["edges"]), "the chain's links across bands too"


def test_layer_names_are_shortened_for_display():
    hf = "resnet.encoder.stages.0.layers.0.layer.0.convolution"
    assert graphs.short_name(hf) == "layer.0.convolution" and graphs.block_of(hf) == "resnet.encoder.stages.0"
    assert (
        graphs.short_name("layer2.0.downsample.0") == "downsample.0" and graphs.block_of("layer2.0.conv1") == "layer2.0"
    )
    assert graphs.short_name("fc") == "fc" and graphs.block_of("fc") == ""
    assert graphs.path_of({"name": "stages.0.layers.0.add", "module": ""}) == "stages.0.layers.0.add"


def test_community_graph_drills_down_to_the_neuron_graph(stored):
    app = open_page("communities", model="q-spec")
    app.toggle(key="drill").set_value(True).run()
    members = set(linked_uids(app.dataframe[0].value["neuron"]))
    assert highlighted(app, 1) == members
    neurons = graph_nodes(app, 1)
    assert len(neurons) > len(members)  # and the neurons they exchange flow with
    per_layer = {}
    for node in neurons.values():
        per_layer[node["layer"]] = per_layer.get(node["layer"], 0) + 1
    assert max(per_layer.values()) <= graphs.MOST_PER_LAYER


@pytest.mark.both_backends
def test_neuron_page_shows_one_neuron(store, stored):
    uid = "q-spec/L1/7"
    app = open_page("neuron", model="q-spec", uid=uid)
    expected = store.ask("neuron", model="q-spec", uid=uid, limit=10)[0]
    assert app.metric[0].value == figure(expected["mean"])
    assert app.number_input[0].value == 7 and app.selectbox(key="neuron_layer").value == 1
    per_class = app.dataframe[0].value
    assert list(per_class["mean activation"]) == pytest.approx(expected["class_means"])
    assert list(per_class["relay score"]) == pytest.approx(expected["relay_score"])
    memberships = app.dataframe[1].value
    assert sorted(linked_uids(memberships["community"])) == sorted(m["community"] for m in expected["memberships"])
    assert linked_uids(app.dataframe[2].value["neuron"]) == [f["neuron"] for f in expected["flows_in"]]
    assert any("mean activation" in spec["encoding"]["y"].get("title", "") for spec in charts(app))
    assert highlighted(app) == {uid}


def test_a_neuron_opened_from_a_link_or_a_click_is_that_neuron(stored):
    app = open_page("neuron", model="q-spec", uid="q-spec/L1/7")
    app.query_params["uid"] = "q-spec/L2/10"  # what clicking L2/10 in its graph asks for (`open_uid`)
    app.switch_page("views/neuron.py").run()
    assert app.subheader[0].value.startswith("L2/10 in L2 ")
    assert app.selectbox(key="neuron_layer").value == 2 and app.number_input(key="neuron_index").value == 10
    assert app.query_params["uid"] == "q-spec/L2/10"


@pytest.mark.both_backends
def test_questions_page_runs_relay_path_and_shows_its_cypher(store, stored):
    app = open_page("questions", model="q-spec", question="relay-path")
    app.selectbox(key="relay-path.class").select(2)
    app.button[0].click().run()  # the form's Ask
    expected = store.ask("relay-path", model="q-spec", **{"class": 2}, limit=5)
    answer = app.dataframe[0].value
    assert list(answer["chain"]) == [" → ".join(graphs.short(u) for u in row["chain"]) for row in expected]
    assert highlighted(app) == set(expected[0]["chain"])
    assert "MATCH (a:Community {generation: m.generation, method: $method})-[f:FLOWS_TO]" in app.code[0].value


def test_questions_page_community_dropdown_lists_the_stored_communities(store, stored):
    app = open_page("questions", model="q-spec", question="community")
    options = app.selectbox(key="community.uid").options
    assert len(options) == store.read("MATCH (c:Community) RETURN count(c) AS n", model="q-spec")[0]["n"]
    app.selectbox(key="community.uid").select(options[1])
    app.button[0].click().run()
    assert linked_uids(app.dataframe[0].value["community"]) == [options[1]]
    assert column_formats(app, 0)["community"]["type_config"]["type"] == "link"


def test_questions_neuron_asks_for_a_neuron_and_says_when_there_is_none(store, stored):
    app = open_page("questions", model="q-spec", question="neuron")
    assert not [s for s in app.selectbox if s.key == "neuron.uid"], "no community uids offered"
    app.selectbox(key="neuron.neuron.layer").select(2)
    app.number_input(key="neuron.neuron.index").set_value(5)
    app.button[0].click().run()
    assert linked_uids(app.dataframe[0].value["neuron"]) == ["q-spec/L2/5"]
    app = open_page("neuron", model="q-spec", uid="q-spec/L9/0")
    assert app.error[0].value.startswith("no neuron q-spec/L9/0 in q-spec: pick")
    assert app.selectbox(key="neuron_layer").value == 1  # the picker starts at layer 1


def test_questions_compare_answers_without_a_traceback(store, stored):
    app = open_page("questions", question="compare")
    app.button[0].click().run()
    assert not app.exception, app.exception
    table = app.dataframe[0].value
    assert list(table["model"]) == app.multiselect(key="compare.models").value and len(table) == 2
    assert not app.error


def test_questions_flow_between_defaults_to_a_path_that_exists(store, stored):
    app = open_page("questions", model="q-spec", question="flow-between")
    source = f"q-spec/L{app.selectbox(key='flow-between.source.layer').value}/"
    source += str(app.number_input(key="flow-between.source.index").value)
    constant = store.read(explore.NEURON, {"model": "q-spec", "uid": source}, model="q-spec")[0]["constant"]
    assert not constant
    app.button[0].click().run()
    assert len(app.dataframe[0].value) > 0 and app.dataframe[0].value["path"][0].startswith("L0/")


@pytest.mark.parametrize("question", ["noise-communities", "key-communities"])
def test_empty_answers_say_why(store, stored, question):
    app = open_page("questions", model="q-spec", question=question)
    app.button[0].click().run()
    rows = store.ask(question, model="q-spec")
    if rows:
        assert len(app.dataframe[0].value) == len(rows)
    else:
        assert app.info[0].value.startswith("No answer: closing no community")


@pytest.mark.both_backends
def test_console_answers_reads_and_refuses_writes_inline(store, stored):
    app = open_page("questions", model="q-spec")
    app.selectbox(key="console_model").select("q-spec").run()
    app.text_area(key="console_cypher").input("MATCH (n:Neuron) RETURN count(n) AS n").run()
    app.button(key="console_run").click().run()
    assert app.dataframe[-1].value["n"][0] == sum(layer.width for layer in stored[0].layers)
    assert app.caption[-1].value == "1 row(s)"
    app.text_area(key="console_cypher").input("RETURN 1 AS drop").run()
    app.button(key="console_run").click().run()
    assert not app.error and app.dataframe[-1].value["drop"][0] == 1
    app.text_area(key="console_cypher").input("LOAD CSV FROM 'file:///etc/passwd' AS line RETURN line").run()
    app.button(key="console_run").click().run()
    assert "reads files and URLs" in app.error[0].value
    app.text_area(key="console_cypher").input("MATCH (n:Neuron) DETACH DELETE n").run()
    app.button(key="console_run").click().run()
    assert app.error[0].value.startswith("refused: DETACH would change the store")
    assert store.read("MATCH (n:Neuron) RETURN count(n) AS n", model="q-spec")[0]["n"] > 0


@pytest.mark.both_backends
def test_console_draws_nodes_and_links_them(store, stored):
    app = open_page("questions", model="q-spec")
    app.selectbox(key="console_model").select("q-spec").run()
    cypher = "MATCH (c:Community {method: 'relay'}) RETURN c ORDER BY c.uid LIMIT 4"
    app.text_area(key="console_cypher").input(cypher).run()
    app.button(key="console_run").click().run()
    expected = [row["c"]["uid"] for row in store.console(cypher, model="q-spec")]
    table = app.dataframe[-1].value
    assert linked_uids(table["c.uid"]) == expected and "c.label" in table.columns
    assert set(graph_nodes(app)) == set(expected)


def test_the_compare_question_offers_the_classes_and_methods_of_the_models_picked(stored, other):
    app = open_page("questions", question="compare")
    models = app.multiselect(key="compare.models")
    assert not models.proto.form_id, "picked outside the form, so that its fields follow at once"
    models.set_value(["q-spec", "app-other"]).run()  # 4 and 10 classes; app-other has innersight only
    assert app.selectbox(key="compare.class").options == ["0: 0", "1: 2", "2: 4", "3: other"]
    assert app.selectbox(key="compare.method").options == ["innersight"]
    app.multiselect(key="compare.models").set_value(["app-other", "q-spec"]).run()
    assert len(app.selectbox(key="compare.class").options) == 4
    app.button[0].click().run()  # the form's Ask
    assert list(app.dataframe[0].value["model"]) == ["app-other", "q-spec"]


def test_the_console_runs_on_the_model_picked_above(stored, other):
    app = open_page("questions", model="app-other", question="relay-path")
    assert app.selectbox(key="console_model.app-other").value == "app-other"
    app.selectbox(key="model").select("q-spec").run()
    assert app.selectbox(key="console_model.q-spec").value == "q-spec"
    app.text_area(key="console_cypher").input("MATCH (n:Neuron) RETURN count(n) AS n").run()
    app.button(key="console_run").click().run()
    assert app.dataframe[-1].value["n"][0] == sum(layer.width for layer in stored[0].layers)


def test_a_picker_left_out_of_one_run_comes_back_on_the_model_in_the_address(stored, other):
    app = open_page("questions", model="q-spec", question="relay-path")
    assert app.selectbox(key="model").options[0] == "app-other", "the newest model first, not the one linked"
    app.selectbox(key="question").select("models").run()  # no model picker: Streamlit drops its state
    app.selectbox(key="question").select("relay-path").run()
    assert app.selectbox(key="model").value == "q-spec"
    assert app.selectbox(key="console_model.q-spec").value == "q-spec"


def test_a_cypher_syntax_error_is_one_plain_line(stored):
    app = open_page("questions", model="q-spec")
    app.text_area(key="console_cypher").input("MATCH (n RETURN n").run()
    app.button(key="console_run").click().run()
    assert [e.value for e in app.error] == [
        "query failed: syntax error at line 1, column 10: Invalid input 'R': expected a label, '{', a parameter or ')'"
    ]


def test_compare_page_sets_models_side_by_side(store, stored):
    app = AppTest.from_file(MAIN, default_timeout=120)
    app.session_state["compare_models"] = ["q-spec", "q-spec2"]
    app.run()
    app.switch_page("views/compare.py").run()
    assert not app.exception, app.exception
    table = app.dataframe[0].value
    assert sorted(table["model"]) == ["q-spec", "q-spec2"]
    chains = [m.value for m in app.markdown if "→" in m.value]
    assert len(chains) == 2  # the relay chain for class 0 of each model, next to each other
    matches = app.dataframe[1].value
    assert matches["similarity"].iloc[0] > 0.9 and (matches["similarity"] > 0).all()
    depth = [spec for spec in charts(app) if spec["encoding"]["x"].get("field") == "depth"]
    assert depth and depth[0]["encoding"]["x"]["title"].startswith("relative depth")
    heat = [spec for spec in charts(app) if spec["encoding"]["x"].get("field") == "community"][0]
    order = [
        graphs.short(c["uid"])
        for c in explore.pages(store, explore.COMMUNITIES, "q-spec", 100, method="innersight")
        if 0 < c["layer"] < 3
    ]  # the hidden communities only: the input and output ones hold every class's information
    assert heat["encoding"]["x"]["sort"] == order and order == sorted(order, key=lambda u: (int(u[1]), u))


def test_compare_address_naming_a_model_twice_compares_it_once(stored):
    app = open_page("compare", models="q-spec,q-spec,q-spec2")
    assert sorted(app.dataframe[0].value["model"]) == ["q-spec", "q-spec2"]
    assert len([c.value for c in app.caption if "Causal check: " in c.value]) == 2, "each chain's fidelity"


@pytest.mark.both_backends
def test_edges_are_read_a_page_at_a_time(store, stored):
    """The explorer's edge statements are paged, and walking the pages gives the whole answer."""
    paged = [
        text
        for name, text in vars(explore).items()
        if name.isupper() and isinstance(text, str) and "FLOWS_TO" in text and "$" in text
    ]
    assert paged and all(text.rstrip().endswith("SKIP $skip LIMIT $limit") for text in paged)
    uid = "q-spec/innersight/L1/c0"
    whole = store.read(
        explore.MEMBER_FLOWS_OUT, {"model": "q-spec", "uid": uid, "skip": 0, "limit": 1000}, model="q-spec"
    )
    assert len(whole) > 7
    assert explore.pages(store, explore.MEMBER_FLOWS_OUT, "q-spec", 7, size=3, uid=uid) == whole[:7]
    assert explore.pages(store, explore.MEMBER_FLOWS_OUT, "q-spec", 10_000, size=4, uid=uid) == whole


def test_every_page_shows_a_lost_store_as_one_line(home, stored):
    """With the server stopped under the app, every page says so in one line (no traceback) and
    names what to do; the next visit after a restart reads again."""
    app = open_page("communities", model="q-spec", method="relay")
    assert EmbeddedServer(home).stop()
    try:
        for page in ("models", "communities", "neuron", "questions", "compare"):
            st.cache_data.clear()
            app.switch_page(f"views/{page}.py").run()
            assert not app.exception, (page, app.exception)
            assert [e.value for e in app.error if "neurocypher db start" in e.value], page
    finally:
        with connect():  # starts the server again
            pass
    assert not open_page("communities", model="q-spec", method="relay").error
