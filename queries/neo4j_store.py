"""The Neo4j 5 backend: all models share one database (Community edition has exactly one), and a
model is written in one transaction of batched `UNWIND $rows` statements, which is how this backend
keeps the write contract of `queries.store.Store`."""

from collections.abc import Iterator
from urllib.parse import urlsplit

from . import schema
from .errors import UserError
from .graph import ModelGraph
from .store import Store, already_stored, plain_params, query_error

BATCH_ROWS = 5000


def neo4j_address(uri: str) -> str:
    """`uri` as it may be shown; one holding a user name or password is refused without echoing it."""
    if "@" in urlsplit(uri).netloc:
        raise UserError(
            "NEO4J_URI holds a user name or password: keep it as scheme://host:port "
            "and set NEO4J_USER and NEO4J_PASSWORD instead"
        )
    return uri


class Neo4jStore(Store):
    backend = "neo4j"

    def __init__(self, uri, user, password, database=None):
        import neo4j

        self._neo4j = neo4j
        self._database = database
        neo4j_address(uri)
        try:
            self._driver = neo4j.GraphDatabase.driver(uri, auth=(user, password or ""))
            self._driver.verify_connectivity()
            for statement in schema.NEO4J_SCHEMA:
                self._driver.execute_query(statement, database_=database)
        except neo4j.exceptions.AuthError as exc:
            raise UserError(
                f"Neo4j at {uri} refused the credentials of user {user!r}: check NEO4J_USER and NEO4J_PASSWORD"
            ) from exc
        except (neo4j.exceptions.DriverError, neo4j.exceptions.Neo4jError, ValueError, OSError) as exc:
            raise UserError(
                f"cannot reach Neo4j at {uri} ({type(exc).__name__}): start it "
                "(docker compose up -d neo4j) or unset NEO4J_URI to use the embedded store"
            ) from exc

    def read(self, cypher, params=None, *, model=None):
        return self._execute(cypher, params, self._neo4j.RoutingControl.READ)

    def write(self, cypher, params=None, *, model):
        return self._execute(cypher, params, self._neo4j.RoutingControl.WRITE)

    def write_model(self, graph, *, replace=False, progress=None):
        with self._driver.session(database=self._database) as session, session.begin_transaction() as tx:
            present = tx.run(schema.MODEL_PRESENT, {"model": graph.model_id}).single() is not None
            if present and not replace:
                raise already_stored(graph.model_id)
            if present:
                for statement in schema.DELETE_MODEL_BATCH:
                    while tx.run(statement, {"model": graph.model_id}).single()["deleted"]:
                        pass
            for cypher, rows in neo4j_batches(graph):
                tx.run(cypher, {"rows": rows}).consume()
                if progress is not None:
                    progress(len(rows))
            tx.commit()

    def drop(self, model_id):
        hidden = self.write(schema.HIDE_MODEL, {"model": model_id}, model=model_id)
        if not hidden:
            return False
        for statement in schema.DELETE_MODEL_BATCH:
            while self.write(statement, {"model": model_id}, model=model_id)[0]["deleted"]:
                pass
        return True

    def close(self):
        self._driver.close()

    def _execute(self, cypher, params, routing):
        try:
            records, _, _ = self._driver.execute_query(
                cypher, plain_params(params), routing_=routing, database_=self._database
            )
        except self._neo4j.exceptions.Neo4jError as exc:
            raise query_error(exc.message or str(exc)) from exc
        return [record.data() for record in records]


def neo4j_batches(graph: ModelGraph, batch: int = BATCH_ROWS) -> Iterator[tuple[str, list[dict]]]:
    """The Neo4j statements that write `graph`, each with its batch of rows."""
    for nodes in graph.nodes:
        rows = [plain_params(row) for row in nodes.rows]
        for start in range(0, len(rows), batch):
            yield schema.neo4j_create_nodes(nodes.label), rows[start : start + batch]
    uids = {nodes.label: [row["uid"] for row in nodes.rows] for nodes in graph.nodes}
    for rels in graph.rels:
        starts, ends = uids[rels.start_label], uids[rels.end_label]
        columns = {name: values.tolist() for name, values in rels.props.items()}
        for start in range(0, len(rels), batch):
            yield (
                schema.neo4j_create_rels(rels),
                [
                    {"a": starts[i], "b": ends[j], "p": {name: col[k] for name, col in columns.items()}}
                    for k, (i, j) in enumerate(
                        zip(rels.start[start : start + batch].tolist(), rels.end[start : start + batch].tolist()), start
                    )
                ],
            )
