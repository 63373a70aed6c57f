"""The Neo4j backend, when a Neo4j 5 server is given in NEO4J_URI (skipped otherwise)."""

import os

import pytest
from helpers import NEO4J_URI

from ingest import analyze, write
from ingest.data import load_data
from ingest.demo_models import mlp
from queries import UserError
from queries.matching import match_communities, store_matches
from queries.neo4j_store import Neo4jStore

pytestmark = pytest.mark.neo4j


@pytest.fixture()
def neo4j_store():
    store = Neo4jStore(
        NEO4J_URI,
        os.environ.get("NEO4J_USER", "neo4j"),
        os.environ.get("NEO4J_PASSWORD"),
        os.environ.get("NEO4J_DATABASE"),
    )
    yield store
    store.drop("neo4j-probe")
    store.close()


def test_write_replace_read_and_refuse_writes(neo4j_store):
    data = load_data("sklearn:digits")
    analysis = analyze(mlp(), data.X[:300], data.y[:300], name="neo4j-probe")
    for _ in range(2):  # the second write replaces the first in one transaction
        write(neo4j_store, analysis, replace=True)
    assert neo4j_store.read("MATCH (n:Neuron {model_id: $m}) RETURN count(n) AS c", {"m": "neo4j-probe"}) == [
        {"c": 138}
    ]
    with pytest.raises(UserError, match="already stored"):
        write(neo4j_store, analysis)
    with pytest.raises(UserError, match="^refused"):
        neo4j_store.read("MATCH (n:Neuron {model_id: 'neo4j-probe'}) SET n.mean = 0")
    assert neo4j_store.drop("neo4j-probe") and not neo4j_store.has_model("neo4j-probe")


def test_matches_are_stored_where_both_models_share_one_graph(neo4j_store):
    data = load_data("sklearn:digits")
    for name in ("neo4j-probe", "neo4j-probe2"):
        write(neo4j_store, analyze(mlp(), data.X[:300], data.y[:300], name=name), replace=True)
    try:
        matches = match_communities(neo4j_store, "neo4j-probe", "neo4j-probe2")
        store_matches(neo4j_store, matches)
        stored = neo4j_store.read(
            "MATCH (:Community {model_id: $a})-[s:MATCHES]->(:Community {model_id: $b}) RETURN count(s) AS c",
            {"a": "neo4j-probe", "b": "neo4j-probe2"},
        )
        assert matches and stored == [{"c": len(matches)}]
    finally:
        neo4j_store.drop("neo4j-probe2")


def test_nodes_left_by_an_interrupted_drop_are_removed(neo4j_store):
    data = load_data("sklearn:digits")
    analysis = analyze(mlp(), data.X[:300], data.y[:300], name="neo4j-probe", methods=("flow",))
    write(neo4j_store, analysis, replace=True)
    neo4j_store.write("MATCH (m:Model {model_id: 'neo4j-probe'}) DETACH DELETE m", model="neo4j-probe")
    write(neo4j_store, analysis)  # no Model node: the orphans are removed, no uid constraint error
    neo4j_store.write("MATCH (m:Model {model_id: 'neo4j-probe'}) DETACH DELETE m", model="neo4j-probe")
    assert neo4j_store.drop("neo4j-probe")
    count = "MATCH (n {model_id: 'neo4j-probe'}) RETURN count(n) AS c"
    assert neo4j_store.read(count) == [{"c": 0}]
