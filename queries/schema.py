"""The store's indexes, generated from the declared schema (`queries.declared`), and its own
bookkeeping statements (shared Cypher unless named per backend)."""

from .declared import EVERY_NODE, NODE_TYPES

ROLE_THRESHOLD = 0.005  # accuracy drop (0..1) beyond which closing a community makes it key (or noise)
MIN_OVERLAP = 0.3  # least member overlap (Jaccard) for a MATCHES between consecutive checkpoints (Greene et al.)
LABELS = tuple(NODE_TYPES)  # each node: model_id, generation, and its key uid
SCOPE = "generation: m.generation"  # where a read starts from a node: the stored generation of model `m`

# FalkorDB keeps each model in a graph of its own: one index, on each label's key
FALKORDB_INDEXES = [f"CREATE INDEX FOR (n:{node.label}) ON (n.{node.key})" for node in NODE_TYPES.values()]
FALKORDB_INDEX_STATUS = "CALL db.indexes() YIELD label, status RETURN label, status"

# Neo4j keeps every model in one database: each key unique within a generation, and every label
# indexed on each indexed property of every node (model_id, generation)
NEO4J_SCHEMA = [
    f"CREATE CONSTRAINT {node.label.lower()}_generation_{node.key} IF NOT EXISTS "
    f"FOR (n:{node.label}) REQUIRE (n.generation, n.{node.key}) IS UNIQUE"
    for node in NODE_TYPES.values()
] + [
    f"CREATE INDEX {label.lower()}_{prop.index} IF NOT EXISTS FOR (n:{label}) ON (n.{prop.name})"
    for prop in EVERY_NODE
    if prop.index
    for label in NODE_TYPES
]
NEO4J_AWAIT_INDEXES = "CALL db.awaitIndexes($seconds)"  # CREATE INDEX returns before the index is online

LIST_MODELS = """
MATCH (m:Model) WHERE m.status = 'complete' AND m.kind = 'model'
RETURN m.model_id AS model_id, m.arch AS arch, m.dataset AS dataset, m.n_samples AS samples,
       m.accuracy AS accuracy, m.n_classes AS classes, m.n_layers AS layers,
       m.n_neurons AS neurons, m.methods AS methods, m.created_at AS created_at
"""

_COMPLETE_MODEL = "MATCH (m:Model {model_id: $model}) WHERE m.status = 'complete'\n"


def on_complete_model(statement: str) -> str:
    """`statement` preceded by the match of model `$model`'s stored generation as `m`, so that it
    finds nothing unless the model is stored; the statement scopes the nodes it starts from with
    SCOPE, so a generation being written or removed is invisible to it."""
    return _COMPLETE_MODEL + statement.lstrip()


STORED_GENERATION = on_complete_model("RETURN m.generation AS generation")
STORED_GENERATIONS = """
MATCH (m:Model) WHERE m.status = 'complete'
RETURN m.model_id AS model_id, m.generation AS generation ORDER BY model_id"""  # every model and series

# Neo4j only: all models share one database. A write adds a hidden generation (its Model node
# 'writing') batch by batch, publishes it in one small transaction, then removes the old one.
GENERATIONS = (
    "MATCH (m:Model {model_id: $model}) RETURN m.generation AS generation, m.status AS status, m.writer AS writer"
)
LOCK_GENERATIONS = """
MATCH (m:Model {model_id: $model}) SET m.locked_by = $generation
RETURN m.generation AS generation, m.status AS status"""  # write locks: two publishes run one after the other
PUBLISH = """
MATCH (m:Model {model_id: $model})
SET m.status = CASE WHEN m.generation = $generation THEN 'complete'
                    WHEN m.status = 'complete' THEN 'replaced' ELSE m.status END
REMOVE m.locked_by"""
HIDE_MODEL = "MATCH (m:Model {model_id: $model}) SET m.status = 'dropping' RETURN m.model_id AS model_id"
_OUTSIDE_KEPT = "WHERE NOT coalesce(n.generation, '') IN $keep"
DELETE_MODEL_BATCH = [  # every node of the id but the generations in $keep: relationships first, a batch
    # of them per transaction however many a node has (a dense layer's neuron has thousands), then the
    # nodes, the Model nodes last
    *[
        f"MATCH (n:{label} {{model_id: $model}})-[r]->() {_OUTSIDE_KEPT} WITH r LIMIT $batch DELETE r "
        "RETURN count(*) AS deleted"
        for label in LABELS
    ],
    *[
        f"MATCH (n:{label} {{model_id: $model}}) {_OUTSIDE_KEPT} WITH n LIMIT $batch DETACH DELETE n "
        "RETURN count(*) AS deleted"
        for label in LABELS[1:] + LABELS[:1]
    ],
]


def neo4j_create_nodes(label: str) -> str:
    return f"UNWIND $rows AS row CREATE (n:{label}) SET n = row"


def neo4j_create_rels(rels) -> str:
    """Each property named, not `SET r = row.p`: a map of unknown keys may set what the MATCHes read,
    so Neo4j planned an Eager (every row of the batch held before the first CREATE)."""
    props = ", ".join(f"{name}: row.p.{name}" for name in rels.props)
    return (
        f"UNWIND $rows AS row MATCH (a:{rels.start_label} {{generation: $generation, uid: row.a}}) "
        f"MATCH (b:{rels.end_label} {{generation: $generation, uid: row.b}}) "
        f"CREATE (a)-[:{rels.type}{f' {{{props}}}' if props else ''}]->(b)"
    )
