"""Labels, indexes and the store's own bookkeeping statements (shared Cypher unless named per backend)."""

ROLE_THRESHOLD = 0.005  # accuracy drop (0..1) beyond which closing a community makes it key (or noise)
LABELS = ("Model", "Layer", "Neuron", "Class", "Community")  # every node has `model_id` and a unique `uid`

FALKORDB_INDEXES = [f"CREATE INDEX FOR (n:{label}) ON (n.uid)" for label in LABELS]
FALKORDB_INDEX_STATUS = "CALL db.indexes() YIELD label, status RETURN label, status"

NEO4J_SCHEMA = [
    f"CREATE CONSTRAINT {label.lower()}_uid IF NOT EXISTS FOR (n:{label}) REQUIRE n.uid IS UNIQUE" for label in LABELS
] + [f"CREATE INDEX {label.lower()}_model IF NOT EXISTS FOR (n:{label}) ON (n.model_id)" for label in LABELS]

LIST_MODELS = """
MATCH (m:Model) WHERE m.status = 'complete'
RETURN m.model_id AS model_id, m.arch AS arch, m.dataset AS dataset, m.n_samples AS samples,
       m.accuracy AS accuracy, m.n_classes AS classes, m.n_layers AS layers,
       m.n_neurons AS neurons, m.methods AS methods, m.created_at AS created_at
"""

_COMPLETE_MODEL = "MATCH (m:Model {model_id: $model}) WHERE m.status = 'complete'\n"


def on_complete_model(statement: str) -> str:
    """`statement` preceded by the match of model `$model` as `m`, so that it finds nothing unless the
    model is stored and complete (a model being written or dropped is invisible to every query)."""
    return _COMPLETE_MODEL + statement.lstrip()


MODEL_EXISTS = on_complete_model("RETURN m.model_id AS model_id")

# Neo4j only: all models share one database, so a model's nodes are found by `model_id`.
MODEL_PRESENT = "MATCH (m:Model {model_id: $model}) RETURN m.status AS status"
HIDE_MODEL = "MATCH (m:Model {model_id: $model}) SET m.status = 'dropping' RETURN m.model_id AS model_id"
DELETE_MODEL_BATCH = [  # the Model node last: an interrupted drop leaves it, so the model stays droppable
    f"MATCH (n:{label} {{model_id: $model}}) WITH n LIMIT 10000 DETACH DELETE n RETURN count(*) AS deleted"
    for label in LABELS[1:] + LABELS[:1]
]


def neo4j_create_nodes(label: str) -> str:
    return f"UNWIND $rows AS row CREATE (n:{label}) SET n = row"


def neo4j_create_rels(rels) -> str:
    return (
        f"UNWIND $rows AS row MATCH (a:{rels.start_label} {{uid: row.a}}) "
        f"MATCH (b:{rels.end_label} {{uid: row.b}}) CREATE (a)-[r:{rels.type}]->(b) SET r = row.p"
    )
