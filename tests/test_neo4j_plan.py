"""What of the Neo4j path can be checked without a server: the compose file the image will accept,
relationship values refused before any write, the order in which a model's nodes are deleted, and
the one-line errors for the driver's and the
server's failures (built as the driver builds them). `tests/test_neo4j.py` runs against a server."""

import re
from pathlib import Path

import numpy as np
import pytest
from neo4j import exceptions
from neo4j import graph as neo4j_graph

from queries import UserError, schema
from queries.graph import RelSet
from queries.neo4j_store import neo4j_error, plain_neo4j

ROOT = Path(__file__).parent.parent
SETTINGS = {  # the Neo4j 5 settings the compose file sets, as the image spells them in the environment
    "NEO4J_server_memory_heap_initial__size": "server.memory.heap.initial_size",
    "NEO4J_server_memory_heap_max__size": "server.memory.heap.max_size",
    "NEO4J_server_memory_pagecache_size": "server.memory.pagecache.size",
    "NEO4J_dbms_memory_transaction_total_max": "dbms.memory.transaction.total.max",
}


def service(name: str) -> str:
    """The text of one service of docker-compose.yml."""
    text = (ROOT / "docker-compose.yml").read_text()
    return re.search(rf"^  {name}:\n(.*?)(?=^  \S|^\S|\Z)", text, re.S | re.M).group(1)


def image_setting(variable: str) -> str:
    """The setting the neo4j image writes for an environment variable (its docker-entrypoint rule:
    drop NEO4J_, `__` -> `_`, `_` -> `.`)."""
    return variable.removeprefix("NEO4J_").replace("__", "\0").replace("_", ".").replace("\0", "_")


def test_compose_passes_credentials_only_in_neo4j_auth_and_sets_memory():
    neo4j = service("neo4j")
    variables = re.findall(r"^      (NEO4J_\w+):", neo4j, re.M)
    # no NEO4J_PASSWORD variable: the image would write it as the unknown setting PASSWORD and refuse to start
    assert variables[0] == "NEO4J_AUTH" and set(variables[1:]) == set(SETTINGS)
    assert all(image_setting(v) == setting for v, setting in SETTINGS.items())
    assert "$${NEO4J_AUTH#neo4j/}" in neo4j  # the healthcheck reads the password from NEO4J_AUTH
    assert "condition: service_healthy" in service("app")


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


def test_a_model_is_deleted_with_its_model_node_last():
    labels = [re.search(r"\(n:(\w+)", statement).group(1) for statement in schema.DELETE_MODEL_BATCH]
    assert sorted(labels) == sorted(schema.LABELS) and labels[-1] == "Model"


@pytest.mark.parametrize(
    ("error", "said"),
    [
        (exceptions.ServiceUnavailable("connection refused"), "cannot reach Neo4j at bolt://h:7687"),
        (exceptions.SessionExpired("gone"), "cannot reach Neo4j at bolt://h:7687"),
        (
            exceptions.Neo4jError._hydrate_neo4j(code="Neo.ClientError.Database.DatabaseNotFound", message="m"),
            "has no database 'nc': set NEO4J_DATABASE",
        ),
        (
            exceptions.Neo4jError._hydrate_neo4j(
                code="Neo.TransientError.General.MemoryPoolOutOfMemoryError", message="m"
            ),
            "raise dbms.memory.transaction.total.max",
        ),
        (
            exceptions.Neo4jError._hydrate_neo4j(code="Neo.ClientError.Schema.ConstraintValidationFailed", message="m"),
            "drop the model (neurocypher drop NAME)",
        ),
        (
            exceptions.Neo4jError._hydrate_neo4j(
                code="Neo.ClientError.Schema.EquivalentSchemaRuleAlreadyExists", message="m"
            ),
            "conflicts with neurocypher's",
        ),
        (
            exceptions.Neo4jError._hydrate_neo4j(code="Neo.ClientError.Statement.SyntaxError", message="Invalid input"),
            "query failed: Invalid input",
        ),
        (
            exceptions.Neo4jError._hydrate_neo4j(code="Neo.ClientError.Statement.AccessMode", message="Writing"),
            "refused: the statement writes",
        ),
        (
            exceptions.Neo4jError._hydrate_neo4j(
                code="Neo.ClientError.Transaction.TransactionTimedOutClientConfiguration", message="m"
            ),
            "ran longer than 30 s and was stopped",
        ),
    ],
)
def test_driver_and_server_errors_become_one_line_by_class_and_code(error, said):
    message = str(neo4j_error(error, "bolt://h:7687", "nc", timeout=30.0))
    assert said in message and "\n" not in message
