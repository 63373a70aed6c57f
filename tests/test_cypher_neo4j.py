"""Every Cypher statement the package holds or sent during this session is valid Neo4j 5 Cypher."""

import pytest
from cypher_lint import lint_cypher
from helpers import SENT_CYPHER, package_statements

from neurocypher.errors import UserError
from neurocypher.ingest import analyze, write
from neurocypher.ingest.data import load_data
from neurocypher.ingest.demo_models import mlp
from neurocypher.ingest.writer import model_graph
from neurocypher.queries import library, schema
from neurocypher.queries.neo4j_store import CONSOLE_GENERATION, neo4j_batches
from neurocypher.queries.readonly import check_read_only, scoped_to_generation


def read_only(cypher: str) -> bool:
    """Whether the console would run `cypher`."""
    try:
        check_read_only(cypher)
    except UserError:
        return False
    return True


@pytest.mark.after_all
def test_every_statement_passes_the_neo4j_linter(store):
    data = load_data("sklearn:digits")
    analysis = analyze(mlp(), data.X[:200], data.y[:200], name="lint-probe")
    write(store, analysis, replace=True)
    assert set(schema.FALKORDB_INDEXES) <= SENT_CYPHER  # what was sent is being recorded
    statements = package_statements()
    assert {schema.LIST_MODELS, *schema.NEO4J_SCHEMA, *schema.DELETE_MODEL_BATCH} <= statements
    graph = model_graph(analysis)
    neo4j_writes = {cypher for cypher, _ in neo4j_batches(graph)}
    assert len(neo4j_writes) == len(graph.nodes) + len(
        {(r.type, r.start_label, r.end_label, *r.props) for r in graph.rels}
    )
    named = set(library.texts())
    assert len(named) == len(library.QUERIES) + 3  # relay-path's three reads, and the model shape
    console = {scoped_to_generation(q, CONSOLE_GENERATION) for q in SENT_CYPHER if read_only(q)}  # as on Neo4j
    sent = SENT_CYPHER | console
    checked = sorted(statements | sent | neo4j_writes | named)
    errors = {q: e for q, e in zip(checked, lint_cypher(checked)) if e}
    assert errors == {}
