"""The Cypher lint harness accepts valid Neo4j 5 Cypher and rejects invalid Cypher."""

import pytest
from cypher_lint import lint_cypher

VALID = [
    "MATCH (n:Neuron {model_id: $model}) RETURN n.uid AS uid LIMIT 10",
    "UNWIND $rows AS r MATCH (a:Neuron {uid: r.a}) CREATE (a)-[:FLOWS_TO {bits: r.bits}]->(b)",
    # FalkorDB-flavoured statements that are also valid Neo4j 5 Cypher
    "CREATE INDEX FOR (n:Neuron) ON (n.uid)",
    "CREATE CONSTRAINT neuron_uid IF NOT EXISTS FOR (n:Neuron) REQUIRE n.uid IS UNIQUE",
    "CALL db.labels()",
    "MATCH (m:Model) RETURN m {.*} AS m",
    "MATCH p=(a)-[:FLOWS_TO*1..3]->(b) RETURN p",
]
INVALID = [
    "MATCH (n RETURN n",
    "RETURN x",
    "CREATE INDEX ON :Neuron(uid)",  # Neo4j 4 syntax, removed in 5
    "MATCH (n) WHERE EXISTS(n.uid) RETURN n",  # property existence function, removed in 5
]


@pytest.fixture(scope="module")
def results() -> dict[str, list[str]]:
    queries = VALID + INVALID
    return dict(zip(queries, lint_cypher(queries), strict=True))


@pytest.mark.parametrize("query", VALID)
def test_valid_query_has_no_errors(results, query):
    assert results[query] == []


@pytest.mark.parametrize("query", INVALID)
def test_invalid_query_has_errors(results, query):
    assert results[query] and all(d.startswith("ERROR ") for d in results[query])


def test_error_has_position(results):
    assert results["MATCH (n RETURN n"][0].startswith("ERROR 1:10 Invalid input 'RETURN'")


def test_warnings_are_opt_in():
    query = "MATCH (n) RETURN id(n)"  # id() is deprecated in Neo4j 5
    assert lint_cypher([query]) == [[]]
    [warnings] = lint_cypher([query], warnings=True)
    assert len(warnings) == 1 and warnings[0].startswith("WARNING 1:18 ")


def test_missing_node_raises(monkeypatch):
    monkeypatch.setenv("PATH", "")
    with pytest.raises(RuntimeError, match="install Node.js"):
        lint_cypher(["RETURN 1"])
