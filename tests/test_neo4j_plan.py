"""What of the Neo4j path can be checked without a server: the compose file the image will accept,
the batched write plan of a hidden generation, the generation filter in every read, the console's
scoping, relationship values refused before any write, the order in which a model's nodes are
deleted, the timeout on every read, and the one-line errors for the driver's and the server's
failures (built as the driver builds them). `tests/test_neo4j.py` runs it against a real server."""

import re

import numpy as np
import pytest
from helpers import package_statements, tiny_graph
from neo4j import exceptions
from neo4j import graph as neo4j_graph
from neo4j_server import compose_service, compose_settings, image_setting

from neurocypher.errors import UserError
from neurocypher.queries import library, schema
from neurocypher.queries.graph import RelSet
from neurocypher.queries.neo4j_store import Neo4jStore, neo4j_batches, neo4j_error, plain_neo4j
from neurocypher.queries.readonly import READ_PROCEDURES, scoped_to_generation
from neurocypher.queries.server import STATEMENT_SECONDS

SETTINGS = {  # the Neo4j 5 settings the compose file sets, as the image spells them in the environment
    "NEO4J_server_memory_heap_initial__size": "server.memory.heap.initial_size",
    "NEO4J_server_memory_heap_max__size": "server.memory.heap.max_size",
    "NEO4J_server_memory_pagecache_size": "server.memory.pagecache.size",
    "NEO4J_dbms_memory_transaction_total_max": "dbms.memory.transaction.total.max",
    "NEO4J_dbms_security_allow__csv__import__from__file__urls": "dbms.security.allow_csv_import_from_file_urls",
}


def server_error(code: str, message: str) -> exceptions.Neo4jError:
    """A server error with its Neo4j status code, as the driver builds it from the server's answer."""
    return exceptions.Neo4jError._hydrate_neo4j(code=code, message=message)


def test_compose_passes_credentials_only_in_neo4j_auth_and_sets_memory():
    neo4j = compose_service("neo4j")
    variables = re.findall(r"^      (NEO4J_\w+):", neo4j, re.M)
    # no NEO4J_PASSWORD variable: the image would write it as the unknown setting PASSWORD and refuse to start
    assert variables[0] == "NEO4J_AUTH" and set(variables[1:]) == set(SETTINGS)
    assert all(image_setting(v) == setting for v, setting in SETTINGS.items())
    assert "$${NEO4J_AUTH#neo4j/}" in neo4j  # the healthcheck reads the password from NEO4J_AUTH
    assert "condition: service_healthy" in compose_service("app")
    assert set(compose_settings()) == set(SETTINGS.values())  # what the test server runs with


def test_relationship_values_that_cannot_be_stored_are_refused_before_any_write():
    with pytest.raises(UserError, match="FLOWS_TO.bits holds NaN or inf"):
        RelSet("FLOWS_TO", "Neuron", "Neuron", np.arange(2), np.arange(2), {"bits": np.array([0.5, np.nan])})


def test_neo4j_results_keep_relationship_properties_as_the_embedded_store_does():
    graph = neo4j_graph.Graph()
    a = neo4j_graph.Node(graph, "e1", 1, ["Neuron"], {"uid": "a"})
    b = neo4j_graph.Node(graph, "e2", 2, ["Neuron"], {"uid": "b"})
    flow = graph.relationship_type("FLOWS_TO")(graph, "e3", 3, {"bits": 0.5})
    flow._start_node, flow._end_node = a, b
    assert plain_neo4j({"r": flow, "n": [a], "p": neo4j_graph.Path(a, flow)}) == {
        "r": {"bits": 0.5},
        "n": [{"uid": "a"}],
        "p": [{"uid": "a"}, {"uid": "b"}],
    }


def test_a_model_is_deleted_in_batches_by_its_id_relationships_first_and_its_model_nodes_last():
    statements = schema.DELETE_MODEL_BATCH
    rels = [statement for statement in statements if "WITH r LIMIT $batch DELETE r" in statement]
    nodes = [statement for statement in statements if "WITH n LIMIT $batch DETACH DELETE n" in statement]
    assert statements == rels + nodes  # a batch of relationships is bounded; a node's are not

    def labels(group):
        return [re.search(r"\(n:(\w+)", statement).group(1) for statement in group]

    assert sorted(labels(rels)) == sorted(labels(nodes)) == sorted(schema.LABELS) and labels(nodes)[-1] == "Model"
    for statement in statements:  # any generation but those kept, with or without a Model node
        assert "{model_id: $model}" in statement and "NOT coalesce(n.generation, '') IN $keep" in statement


def test_a_model_is_written_as_a_hidden_generation_in_bounded_batches():
    graph = tiny_graph("plan", n=23)
    batches = list(neo4j_batches(graph, batch=5))
    assert all(0 < len(rows) <= 5 for _, rows in batches)
    (first, [model]), *rest = batches
    assert first == schema.neo4j_create_nodes("Model") and model["status"] == "writing" and model["writer"]
    nodes = [row for cypher, rows in rest if cypher == schema.neo4j_create_nodes("Neuron") for row in rows]
    assert [n["uid"] for n in nodes] == [f"plan/L0/{i}" for i in range(23)]
    assert {n["generation"] for n in nodes} == {model["generation"]} == {graph.generation}
    flows = "CREATE (a)-[:FLOWS_TO {bits: row.p.bits}]->(b)"  # each property named: no Eager in the plan
    links = [(row["a"], row["b"]) for cypher, rows in rest if flows in cypher for row in rows]
    assert links == [(f"plan/L0/{i}", f"plan/L0/{i + 1}") for i in range(22)]
    for cypher, _ in batches:  # relationships join nodes of this generation only
        assert "MATCH (a" not in cypher or cypher.count("generation: $generation") == 2
    assert tiny_graph("plan").generation != graph.generation  # every write, a generation of its own


def read_statements() -> list[str]:
    """Every read the package sends: the named queries (each hop count), the explorer's and the
    package's own reads (`queries.explore`, `queries.reads`, `ingest.matching`, the store's), but
    the write path's bookkeeping, which lists every generation of an id on purpose."""
    own = {q for q in package_statements() if not re.search(r"\b(CREATE|MERGE|SET|DELETE|CALL)\b", q)}
    own.remove(schema.GENERATIONS)
    return sorted(own | set(library.texts()) | {schema.LIST_MODELS, schema.STORED_GENERATION})


def unscoped_matches(cypher: str) -> list[str]:
    """The MATCH clauses of `cypher` that start from nodes of any generation: a clause is scoped
    when one of its node patterns is a stored Model node (status 'complete'), carries SCOPE (or
    another stored Model node's generation), or is a variable bound by an earlier clause."""
    clauses = re.split(r"\b(?=MATCH\b)", re.sub(r"OPTIONAL\s+MATCH", "MATCH", cypher))
    bound, unscoped = set(), []
    for clause in clauses:
        pattern = re.split(r"\b(?:WHERE|RETURN|WITH|UNWIND|ORDER)\b", clause)[0]
        nodes = re.findall(r"\((\w*)(?::(\w+))?\s*(\{[^}]*\})?\s*\)", pattern)
        scoped = any(
            label == "Model"
            and "status = 'complete'" in clause
            or re.search(r"generation: \w+\.generation", props)
            or (var in bound and not label and not props)
            for var, label, props in nodes
        )
        if clause.lstrip().startswith("MATCH") and not scoped:
            unscoped.append(clause.strip())
        bound |= {var for var, _, _ in nodes if var} | set(re.findall(r"\bAS\s+(\w+)", clause))
    return unscoped


def test_every_read_starts_from_the_stored_generation_of_its_model():
    statements = read_statements()
    assert len(statements) > len(library.QUERIES) + 20
    assert schema.SCOPE == "generation: m.generation"
    assert {q: unscoped_matches(q) for q in statements if unscoped_matches(q)} == {}
    assert unscoped_matches("MATCH (m:Model {model_id: $model}) MATCH (n:Neuron) RETURN n")  # the check can fail


@pytest.mark.parametrize(
    ("cypher", "scoped"),
    [
        ("MATCH (n:Neuron) RETURN n", "MATCH (n:Neuron {generation: $g}) RETURN n"),
        ("MATCH (:Community {uid: $u}) RETURN 1", "MATCH (:Community {generation: $g, uid: $u}) RETURN 1"),
        ("MATCH (c:Class {}) RETURN c", "MATCH (c:Class {generation: $g}) RETURN c"),
        ("MATCH (n:Neuron WHERE n.v > 1) RETURN n", "MATCH (n:Neuron {generation: $g} WHERE n.v > 1) RETURN n"),
        (
            "MATCH p = (m:Model)-[:HAS_LAYER]->(l) RETURN p",
            "MATCH p = (m:Model {generation: $g})-[:HAS_LAYER]->(l) RETURN p",
        ),
        (
            "MATCH (a:Neuron)-->(b:Neuron) RETURN a",
            "MATCH (a:Neuron {generation: $g})-->(b:Neuron {generation: $g}) RETURN a",
        ),
        ("RETURN '(n:Neuron)' AS text // (n:Layer)", "RETURN '(n:Neuron)' AS text // (n:Layer)"),
        ("MATCH (n:Neurons) RETURN n", "MATCH (n:Neurons) RETURN n"),  # not one of the store's labels
    ],
)
def test_the_console_on_neo4j_scopes_every_labelled_node_to_one_generation(cypher, scoped):
    assert scoped_to_generation(cypher, "g") == scoped


def test_no_deprecated_procedure_is_offered_to_the_console():
    assert not {"db.indexes", "db.constraints"} & set(READ_PROCEDURES)  # Neo4j 5: SHOW INDEXES, SHOW CONSTRAINTS


@pytest.mark.parametrize(
    ("error", "said"),
    [
        (exceptions.ServiceUnavailable("connection refused"), "cannot reach Neo4j at bolt://h:7687"),
        (exceptions.SessionExpired("gone"), "cannot reach Neo4j at bolt://h:7687"),
        (
            server_error("Neo.ClientError.Database.DatabaseNotFound", "m"),
            "has no database 'nc': set NEO4J_DATABASE",
        ),
        (
            server_error(
                "Neo.TransientError.General.MemoryPoolOutOfMemoryError",
                "The allocation of an extra 2.0 MiB would use more than the limit 1.5 GiB. "
                "Currently using 1.5 GiB. dbms.memory.transaction.total.max threshold reached",
            ),
            "raise db.memory.transaction.max (one transaction), dbms.memory.transaction.total.max (all)",
        ),
        (
            server_error(
                "Neo.ClientError.General.TransactionOutOfMemoryError",
                "The allocation of an extra 2.0 MiB would use more than the limit 1.0 GiB. "
                "Currently using 1.0 GiB. db.memory.transaction.max threshold reached",
            ),
            "Neo4j ran out of memory for the statement and stopped it: narrow it",
        ),
        (
            server_error("Neo.ClientError.Schema.ConstraintValidationFailed", "m"),
            "drop the model (neurocypher drop NAME)",
        ),
        (
            server_error("Neo.ClientError.Schema.EquivalentSchemaRuleAlreadyExists", "m"),
            "conflicts with neurocypher's",
        ),
        (
            server_error("Neo.ClientError.Statement.SyntaxError", "Invalid input"),
            "query failed: Invalid input",
        ),
        (
            server_error("Neo.ClientError.Statement.AccessMode", "Writing"),
            "refused: the statement writes",
        ),
        (
            server_error("Neo.ClientError.Transaction.TransactionTimedOutClientConfiguration", "m"),
            "ran longer than 30 s and was stopped",
        ),
    ],
)
def test_driver_and_server_errors_become_one_line_by_class_and_code(error, said):
    message = str(neo4j_error(error, "bolt://h:7687", "nc", timeout=30.0))
    assert said in message and "\n" not in message


class RecordingDriver:
    """Stands in for the driver: records each query a session runs, and answers one stored model's row."""

    execute_query_bookmark_manager = None

    def __init__(self):
        self.queries = []

    def session(self, **config):
        self.config = config
        return self

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass

    def run(self, query, params):
        self.queries.append(query)
        return [{"model_id": "m", "generation": "g"}]


def test_every_read_on_neo4j_has_a_timeout_and_runs_once_in_read_access_mode():
    import neo4j

    store = Neo4jStore.__new__(Neo4jStore)  # no server: the driver is the recording one
    store._neo4j, store._driver, store._database, store._uri = neo4j, RecordingDriver(), None, "bolt://h:7687"
    store.read(schema.LIST_MODELS)
    store.console("MATCH (n:Neuron) RETURN n", timeout=2.5)  # reads the stored generations, then the query
    assert [q.timeout for q in store._driver.queries] == [STATEMENT_SECONDS, STATEMENT_SECONDS, 2.5]
    assert store._driver.config["default_access_mode"] == neo4j.READ_ACCESS  # session.run: no retries
