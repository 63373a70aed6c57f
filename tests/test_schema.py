"""The declared graph schema (`queries.declared`): the writer refuses what is not declared, before
writing anything; what a real ingest stores (every method, a checkpoint series) is what is
declared, each value of its declared type; the store's indexes and docs/schema.md are generated
from the declaration."""

import dataclasses
import importlib.util
import re
from pathlib import Path
from typing import get_args, get_origin

import numpy as np
import pytest
from helpers import snapshot

from neurocypher.ingest import analyze, write
from neurocypher.ingest.checkpoints import Checkpoint, ingest_series
from neurocypher.ingest.demo import trained
from neurocypher.ingest.demo_models import mlp
from neurocypher.ingest.methods import METHODS
from neurocypher.ingest.stages import STAGES
from neurocypher.queries import connect, schema
from neurocypher.queries.declared import EVERY_NODE, NODE_TYPES, RELATIONSHIP_TYPES, RELAYS_PER_CLASS
from neurocypher.queries.graph import ModelGraph, NodeSet, RelSet
from neurocypher.queries.schema_page import COMMAND, markdown

DOCS = Path(__file__).resolve().parents[1] / "docs" / "schema.md"
MODEL, SERIES = "x-declared", "x-declared-series"
SAMPLES = 150
NODES = "MATCH (n) RETURN labels(n)[0] AS label, n"
RELATIONSHIPS = "MATCH (a)-[r]->(b) RETURN labels(a)[0] AS start, type(r) AS type, labels(b)[0] AS end, r"


@pytest.fixture(scope="module")
def analysis(digits, home):
    """The trained demo MLP analysed with every method, its inputs named (so input neurons have names
    and input communities their top inputs) on image data (so communities have prototypes)."""
    model, _ = trained("digits-mlp", home / "demo")
    names = [f"px{i}" for i in range(digits.X.shape[1])]
    return analyze(model, digits.X[:SAMPLES], digits.y[:SAMPLES], name=MODEL, image_shape=(8, 8), feature_names=names)


@pytest.fixture(scope="module")
def ingested(analysis, digits, home) -> list[str]:
    """MODEL stored, and two checkpoints of the same model stored as the series SERIES (relay
    modules, every pair of them closed too); the ids of every graph written."""
    model, _ = trained("digits-mlp", home / "demo")
    state = model.state_dict()
    checkpoints = [Checkpoint(Path(f"ckpt-{step}.pt"), step, state, {"train loss": 1 / step}) for step in (1, 2)]
    with connect() as store:
        write(store, analysis, replace=True)
        X, y = digits.X[:SAMPLES], digits.y[:SAMPLES]
        ingest_series(store, mlp, checkpoints, X, y, name=SERIES, replace=True, methods=("relay",), close_pairs=True)
    return [MODEL, SERIES, *(f"{SERIES}-step{step}" for step in (1, 2))]


def stored(store, models: list[str]) -> tuple[dict, dict]:
    """Every stored value of the graphs of `models`, by (label, property) and by (start label,
    relationship type, end label) and then property."""
    nodes, rels = {}, {}
    for model in models:
        for row in store.read(NODES, model=model):
            for name, value in row["n"].items():
                nodes.setdefault((row["label"], name), []).append(value)
        for row in store.read(RELATIONSHIPS, model=model):
            values = rels.setdefault((row["type"], row["start"], row["end"]), {})
            for name, value in row["r"].items():
                values.setdefault(name, []).append(value)
    return nodes, rels


def conforms(value, kind) -> bool:
    """Whether a stored value is of a declared type: exactly int, float, str or bool, or a list of one."""
    if get_origin(kind) is list:
        (item,) = get_args(kind)
        return isinstance(value, list) and all(conforms(v, item) for v in value)
    return type(value) is kind


def declared(properties, name: str):
    return next((p for p in properties if p.matches(name)), None)


def test_every_stored_property_is_declared_with_its_type(store, ingested):
    nodes, rels = stored(store, ingested)
    for (label, name), values in nodes.items():
        prop = declared(EVERY_NODE + NODE_TYPES[label].properties, name)
        assert prop is not None, f"{label}.{name} is stored but not declared"
        assert all(conforms(v, prop.type) for v in values), f"{label}.{name} is not all {prop.type}"
    for key, props in rels.items():
        assert key in RELATIONSHIP_TYPES, f"{key} is stored but not declared"
        for name, values in props.items():
            prop = declared(RELATIONSHIP_TYPES[key].properties, name)
            assert prop is not None, f"{key} {name} is stored but not declared"
            assert all(conforms(v, prop.type) for v in values), f"{key} {name} is not all {prop.type}"


def test_every_declared_property_is_stored(store, ingested):
    """The declaration holds nothing that is never stored (but what only the Neo4j store writes)."""
    nodes, rels = stored(store, ingested)
    for node in NODE_TYPES.values():
        names = [name for label, name in nodes if label == node.label]
        for prop in EVERY_NODE + node.properties:
            assert prop.written_by == "queries.neo4j_store" or any(prop.matches(name) for name in names), (
                node.label,
                prop.name,
            )
    assert rels.keys() == RELATIONSHIP_TYPES.keys()
    for key, rel in RELATIONSHIP_TYPES.items():
        assert {p.name for p in rel.properties} == set(rels[key]), key


UNDECLARED = {  # what the writer is given that is not declared, and how to give it
    "Model property 'colour'": lambda a: dataclasses.replace(a, metrics={**a.metrics, "colour": 1.0}),
    "Layer property 'colour'": lambda a: dataclasses.replace(a, layer_props={1: {"colour": 1.0}}),
    "Neuron property 'colour'": lambda a: dataclasses.replace(
        a, layers=[dataclasses.replace(layer, props={"colour": np.ones(layer.width)}) for layer in a.layers]
    ),
    "Community property 'colour'": lambda a: dataclasses.replace(
        a, communities=[dataclasses.replace(c, props={**c.props, "colour": 1.0}) for c in a.communities]
    ),
    "(:Community)-[:FLOWS_TO]->(:Community) property 'colour'": lambda a: dataclasses.replace(
        a, community_flows=[dataclasses.replace(f, props={"colour": np.ones(len(f.source))}) for f in a.community_flows]
    ),
}


@pytest.mark.parametrize("named", UNDECLARED)
def test_the_writer_refuses_what_is_not_declared_before_writing_anything(store, analysis, named):
    before = snapshot(store)
    undeclared = UNDECLARED[named](dataclasses.replace(analysis, name="x-undeclared"))
    with pytest.raises(ValueError, match=re.escape(f"{named} is not declared in queries/declared.py: declare it")):
        write(store, undeclared)
    assert snapshot(store) == before


def test_a_graph_of_an_undeclared_label_or_relationship_type_is_refused():
    with pytest.raises(ValueError, match="node label 'Synapse' is not declared"):
        ModelGraph("x", [NodeSet("Synapse", [{"uid": "x/s"}])], [])
    neuron = NodeSet("Neuron", [{"uid": "x/L0/0"}])
    feeds = RelSet("FEEDS", "Neuron", "Neuron", np.zeros(1, np.int64), np.zeros(1, np.int64))
    with pytest.raises(ValueError, match=re.escape("relationship (:Neuron)-[:FEEDS]->(:Neuron) is not declared")):
        ModelGraph("x", [neuron], [feeds])


def test_every_writer_named_is_a_stage_a_method_or_a_module():
    known = {f"stage {name}" for name, _ in STAGES} | {f"method {name}" for name in METHODS}
    props = [p for node in NODE_TYPES.values() for p in node.properties]
    props += [p for rel in RELATIONSHIP_TYPES.values() for p in rel.properties]
    for written_by in {p.written_by for p in EVERY_NODE + tuple(props)} | {
        r.written_by for r in RELATIONSHIP_TYPES.values()
    }:
        for writer in written_by.split(", "):
            assert writer in known or importlib.util.find_spec(f"neurocypher.{writer}") is not None, writer


def test_relays_copy_declared_per_class_community_properties():
    relays = RELATIONSHIP_TYPES["RELAYS", "Community", "Class"]
    assert list(RELAYS_PER_CLASS) == [p.name for p in relays.properties]
    community = NODE_TYPES["Community"].properties
    assert all(declared(community, key).type == list[float] for key in RELAYS_PER_CLASS.values())


def test_the_store_indexes_are_generated_from_the_declaration():
    """The same statements (and so the same index names on an existing Neo4j database) as written by hand before."""
    assert schema.LABELS == tuple(NODE_TYPES) == ("Model", "Layer", "Neuron", "Class", "Community", "Checkpoint")
    assert schema.FALKORDB_INDEXES == [f"CREATE INDEX FOR (n:{label}) ON (n.uid)" for label in schema.LABELS]
    assert schema.NEO4J_SCHEMA[0] == (
        "CREATE CONSTRAINT model_generation_uid IF NOT EXISTS FOR (n:Model) REQUIRE (n.generation, n.uid) IS UNIQUE"
    )
    assert schema.NEO4J_SCHEMA[6:] == [
        *(
            f"CREATE INDEX {label.lower()}_model IF NOT EXISTS FOR (n:{label}) ON (n.model_id)"
            for label in schema.LABELS
        ),
        *(
            f"CREATE INDEX {label.lower()}_generation IF NOT EXISTS FOR (n:{label}) ON (n.generation)"
            for label in schema.LABELS
        ),
    ]


def test_the_docs_page_is_the_generated_one():
    page = DOCS.read_text()
    assert page == markdown(), f"docs/schema.md is not the declared schema: run `{COMMAND}`"
    assert COMMAND in page.splitlines()[0]
