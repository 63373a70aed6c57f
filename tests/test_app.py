"""The Streamlit explorer, page by page (streamlit.testing.v1.AppTest), on the specialists models
stored in the session's embedded store; the pages' answers are checked against the store's own."""

import json
import re
from pathlib import Path

import pytest
import streamlit as st
from specialists import SPECIALISTS, WIDTH
from streamlit.testing.v1 import AppTest

from ingest import analyze, write
from ingest.demo_models import mlp
from queries import explore

MAIN = str(Path(__file__).parents[1] / "app" / "main.py")


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


def graph_nodes(app: AppTest, index: int = 0) -> dict[str, dict]:
    """The nodes handed to the graph component, by id."""
    args = json.loads(app.get("component_instance")[index].proto.json_args)
    return {node["data"]["id"]: node["data"] for node in args["elements"]["nodes"]}


def test_models_page_shows_every_model_side_by_side(store, stored):
    app = open_page("models")
    table = app.dataframe[0].value  # one column per model
    for a in stored:
        column = table[a.name]
        assert column["neurons"] == str(sum(layer.width for layer in a.layers))
        assert column["edges"] == str(sum(len(f.source) for f in a.flows))
        assert column["communities: relay"] == str(sum(c.method == "relay" for c in a.communities))
        assert float(column["accuracy"]) == pytest.approx(a.accuracy, abs=1e-4)
        assert float(column["fidelity"]) == pytest.approx(a.metrics["fidelity_ratio"], rel=1e-3)
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


@pytest.mark.parametrize("c", range(SPECIALISTS))
def test_community_graph_highlights_the_specialists_relay_chain(store, stored, c):
    app = open_page("communities", model="q-spec")
    app.selectbox(key="class").select(c).run()
    chain = store.ask("relay-path", model="q-spec", **{"class": c}, limit=1)[0]["chain"]
    assert re.sub(r"[`*]", "", app.markdown[0].value).startswith(f"Relay chain for class {c}")
    nodes = graph_nodes(app)
    assert sorted(uid for uid, node in nodes.items() if node["chain"]) == sorted(chain)
    communities = store.read("MATCH (c:Community {method: 'innersight'}) RETURN count(c) AS n", model="q-spec")
    assert len(nodes) == communities[0]["n"]
    assert app.selectbox(key="community").value == chain[0]
    app.selectbox(key="community").select(chain[1]).run()  # the specialist's block in layer 1
    members = app.dataframe[0].value
    assert len(members) == int(app.metric[0].value) == WIDTH
    assert app.subheader[0].value.startswith(f"L1/{chain[1].split('/')[-1]}: class {stored[0].class_names[c]}")
    assert app.get("image"), "the prototype image of an image model is shown"


def test_community_graph_drills_down_to_the_neuron_graph(stored):
    app = open_page("communities", model="q-spec")
    app.toggle(key="drill").set_value(True).run()
    members = set(app.dataframe[0].value["neuron"])
    neurons = graph_nodes(app, 1)
    assert {uid for uid, node in neurons.items() if node["chain"]} == members
    assert len(neurons) > len(members)  # and the neurons they exchange flow with


def test_questions_page_runs_relay_path_and_shows_its_cypher(store, stored):
    app = open_page("questions", model="q-spec", question="relay-path")
    app.selectbox(key="relay-path.class").select(2)
    app.button[0].click().run()  # the form's Ask
    expected = store.ask("relay-path", model="q-spec", **{"class": 2}, limit=5)
    answer = app.dataframe[0].value
    assert [list(chain) for chain in answer["chain"]] == [row["chain"] for row in expected]
    assert {uid for uid, node in graph_nodes(app).items() if node["chain"]} == set(expected[0]["chain"])
    assert "MATCH (c0:Community" in app.code[0].value and "$class" in app.code[0].value


def test_questions_page_community_dropdown_lists_the_stored_communities(store, stored):
    app = open_page("questions", model="q-spec", question="community")
    options = app.selectbox(key="community.uid").options
    assert len(options) == store.read("MATCH (c:Community) RETURN count(c) AS n", model="q-spec")[0]["n"]
    app.selectbox(key="community.uid").select(options[1])
    app.button[0].click().run()
    assert app.dataframe[0].value["community"][0] == options[1]


def test_console_answers_reads_and_refuses_writes_inline(store, stored):
    app = open_page("questions", model="q-spec")
    app.selectbox(key="console_model").select("q-spec").run()
    app.text_area(key="console_cypher").input("MATCH (n:Neuron) RETURN count(n) AS n").run()
    app.button(key="console_run").click().run()
    assert app.dataframe[-1].value["n"][0] == sum(layer.width for layer in stored[0].layers)
    app.text_area(key="console_cypher").input("MATCH (n:Neuron) DETACH DELETE n").run()
    app.button(key="console_run").click().run()
    assert app.error[0].value.startswith("refused: DETACH would change the store")
    assert store.read("MATCH (n:Neuron) RETURN count(n) AS n", model="q-spec")[0]["n"] > 0


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
    assert matches["similarity"].iloc[0] > 0.9


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
