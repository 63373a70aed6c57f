"""The Neo4j 5 backend: all models share one database (Community edition has exactly one), and a
model is written in one transaction of batched `UNWIND $rows` statements, which is how this backend
keeps the write contract of `queries.store.Store`."""

from collections.abc import Iterator
from urllib.parse import urlsplit

from . import schema
from .errors import UserError
from .graph import ModelGraph
from .store import Store, already_stored, plain_params, query_error, timed_out

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
        self._uri = neo4j_address(uri)
        try:
            self._driver = neo4j.GraphDatabase.driver(uri, auth=(user, password or ""))
            self._driver.verify_connectivity()
            for statement in schema.NEO4J_SCHEMA:
                self._driver.execute_query(statement, database_=database)
        except neo4j.exceptions.AuthError as exc:
            raise UserError(
                f"Neo4j at {uri} refused the credentials of user {user!r}: check NEO4J_USER and NEO4J_PASSWORD"
            ) from exc
        except (ValueError, OSError) as exc:
            raise unreachable(uri, exc) from exc
        except (neo4j.exceptions.DriverError, neo4j.exceptions.Neo4jError) as exc:
            raise neo4j_error(exc, uri, database) from exc

    def read(self, cypher, params=None, *, model=None, timeout=None):
        return self._execute(cypher, params, self._neo4j.RoutingControl.READ, timeout)

    def write(self, cypher, params=None, *, model):
        return self._execute(cypher, params, self._neo4j.RoutingControl.WRITE)

    def write_model(self, graph, *, replace=False, progress=None):
        try:
            with self._driver.session(database=self._database) as session, session.begin_transaction() as tx:
                present = tx.run(schema.MODEL_PRESENT, {"model": graph.model_id}).single() is not None
                if present and not replace:
                    raise already_stored(graph.model_id)
                for statement in schema.DELETE_MODEL_BATCH:  # the old model, or what an interrupted drop left
                    while tx.run(statement, {"model": graph.model_id}).single()["deleted"]:
                        pass
                for cypher, rows in neo4j_batches(graph):
                    tx.run(cypher, {"rows": rows}).consume()
                    if progress is not None:
                        progress(len(rows))
                tx.commit()
        except (self._neo4j.exceptions.DriverError, self._neo4j.exceptions.Neo4jError) as exc:
            raise neo4j_error(exc, self._uri, self._database) from exc

    def drop(self, model_id):
        """Hide the model, then delete its nodes in batches, the Model node last; nodes of the id
        left by an interrupted drop are removed too (True when anything was)."""
        found = bool(self.write(schema.HIDE_MODEL, {"model": model_id}, model=model_id))
        for statement in schema.DELETE_MODEL_BATCH:
            while self.write(statement, {"model": model_id}, model=model_id)[0]["deleted"]:
                found = True
        return found

    def close(self):
        self._driver.close()

    def _execute(self, cypher, params, routing, timeout=None):
        try:
            records, _, _ = self._driver.execute_query(
                self._neo4j.Query(cypher, timeout=timeout),
                plain_params(params),
                routing_=routing,
                database_=self._database,
            )
        except (self._neo4j.exceptions.DriverError, self._neo4j.exceptions.Neo4jError) as exc:
            raise neo4j_error(exc, self._uri, self._database, timeout) from exc
        return [{key: plain_neo4j(value) for key, value in record.items()} for record in records]


def plain_neo4j(value):
    """A Neo4j result value as the embedded store gives it: a node or a relationship as its
    properties (the driver's `record.data()` turns a relationship into a tuple without them), a
    path as its nodes' properties."""
    from neo4j.graph import Entity, Path

    if isinstance(value, Path):
        return [dict(node) for node in value.nodes]
    if isinstance(value, Entity):
        return dict(value)
    if isinstance(value, list):
        return [plain_neo4j(v) for v in value]
    if isinstance(value, dict):
        return {k: plain_neo4j(v) for k, v in value.items()}
    return value


def unreachable(uri: str, exc: Exception) -> UserError:
    return UserError(
        f"cannot reach Neo4j at {uri} ({type(exc).__name__}): start it "
        "(docker compose up -d neo4j) or unset NEO4J_URI to use the embedded store"
    )


MEMORY_CODES = ("Neo.TransientError.General.MemoryPoolOutOfMemoryError", "Neo.TransientError.General.OutOfMemoryError")


def neo4j_error(exc: Exception, uri: str, database: str | None, timeout: float | None = None) -> UserError:
    """One `error:` line for a driver or server error, chosen by its class and its Neo4j status
    code (not its message), saying what to do."""
    import neo4j

    if isinstance(exc, neo4j.exceptions.DriverError) and not isinstance(exc, neo4j.exceptions.Neo4jError):
        return unreachable(uri, exc)  # ServiceUnavailable, SessionExpired, ...
    code = getattr(exc, "code", "") or ""
    if code.startswith("Neo.ClientError.Transaction.TransactionTimedOut") and timeout is not None:
        return timed_out(timeout)
    if code == "Neo.ClientError.Database.DatabaseNotFound":
        return UserError(f"Neo4j at {uri} has no database {database!r}: set NEO4J_DATABASE to one it has")
    if code in MEMORY_CODES:
        return UserError(
            "Neo4j ran out of transaction memory: raise dbms.memory.transaction.total.max and the heap "
            "(server.memory.heap.max_size; see docker-compose.yml)"
        )
    if code == "Neo.ClientError.Schema.ConstraintValidationFailed":
        return UserError(
            "Neo4j refused a node whose uid is already stored: drop the model (neurocypher drop NAME), then write it"
        )
    if code.startswith("Neo.ClientError.Schema."):
        return UserError(
            f"the Neo4j database holds an index or constraint that conflicts with neurocypher's ({code}): "
            "drop it, or use another NEO4J_DATABASE"
        )
    message = getattr(exc, "message", None) or str(exc)
    return query_error(message, writes=code == "Neo.ClientError.Statement.AccessMode")


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
