"""The Neo4j 5 backend: all models share one database (Community edition has exactly one).

A model is written as a hidden generation, one transaction per batch of about BATCH_ROWS rows (so
a write never needs more transaction memory than a batch), published by one small transaction that
flips the Model nodes' status, and the old generation is then removed in batches: this is how this
backend keeps the write contract of `queries.store.Store`. What a crash leaves (an unpublished or a
replaced generation, nodes of a half-finished drop) is removed by the next write or drop of the id.
"""

import os
import socket
from collections.abc import Iterator
from urllib.parse import urlsplit

from neurocypher.errors import UserError

from . import schema
from .graph import ModelGraph
from .readonly import scoped_to_generation
from .server import STATEMENT_SECONDS, pid_alive
from .store import Store, already_stored, plain_params, query_error, timed_out

BATCH_ROWS = 10_000  # rows per write transaction
INDEX_SECONDS = 300  # how long opening a store waits for its indexes to come online
CONSOLE_GENERATION = "neurocypher_generation"  # the parameter a console query is scoped with


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
            # no notifications: the driver logs each (a property key the database has not seen yet, say)
            # as a multi-line warning on stderr, among the command's output
            self._driver = neo4j.GraphDatabase.driver(
                uri, auth=(user, password or ""), notifications_min_severity="OFF"
            )
            self._driver.verify_connectivity()
            for statement in schema.NEO4J_SCHEMA:
                self._driver.execute_query(statement, database_=database)
            self._driver.execute_query(schema.NEO4J_AWAIT_INDEXES, {"seconds": INDEX_SECONDS}, database_=database)
        except neo4j.exceptions.AuthError as exc:
            raise UserError(
                f"Neo4j at {uri} refused the credentials of user {user!r}: check NEO4J_USER and NEO4J_PASSWORD"
            ) from exc
        except (ValueError, OSError) as exc:
            raise unreachable(uri, exc) from exc
        except (neo4j.exceptions.DriverError, neo4j.exceptions.Neo4jError) as exc:
            raise neo4j_error(exc, uri, database) from exc

    def read(self, cypher, params=None, *, model=None, timeout=None):
        """As `Store.read`; a read that asks for no timeout is stopped after STATEMENT_SECONDS, as on
        the embedded server. A read runs once, in READ access mode, as a transaction of its own: the
        driver tries a managed transaction again after a transient error, and a statement past the
        transaction memory is one (other transactions may free theirs), which would run again and
        again for 30 s, each time taking the memory and saying so on stderr."""
        timeout = STATEMENT_SECONDS if timeout is None else timeout
        try:
            with self._session(default_access_mode=self._neo4j.READ_ACCESS) as session:
                records = list(session.run(self._neo4j.Query(cypher, timeout=timeout), plain_params(params)))
        except (self._neo4j.exceptions.DriverError, self._neo4j.exceptions.Neo4jError) as exc:
            raise neo4j_error(exc, self._uri, self._database, timeout) from exc
        return plain_records(records)

    def write(self, cypher, params=None, *, model):
        """As `Store.write`: one managed write transaction (tried again after a transient error)."""
        try:
            records, _, _ = self._driver.execute_query(
                cypher, plain_params(params), routing_=self._neo4j.RoutingControl.WRITE, database_=self._database
            )
        except (self._neo4j.exceptions.DriverError, self._neo4j.exceptions.Neo4jError) as exc:
            raise neo4j_error(exc, self._uri, self._database) from exc
        return plain_records(records)

    def write_model(self, graph, *, replace=False, progress=None):
        graph.new_generation()
        model = graph.model_id
        stored = self.read(schema.STORED_GENERATION, {"model": model})
        if stored and not replace:
            raise already_stored(model)
        self._remove(model, keep=[row["generation"] for row in stored] + self._live_writes(model))
        try:
            self._write_generation(graph, replace, progress)
        except BaseException:
            try:  # best effort: what is left here, the next write or drop of the id removes
                self._remove(model, keep=[g for g in self._generations(model) if g != graph.generation])
            except UserError:
                pass
            raise
        self._remove(model, keep=[graph.generation] + self._live_writes(model))

    def drop(self, model_id):
        """Hide the model (one small transaction), then delete every node of its id in batches, the
        Model nodes last, whatever generation they belong to; True when anything was there."""
        hidden = bool(self.write(schema.HIDE_MODEL, {"model": model_id}, model=model_id))
        return self._remove(model_id, keep=[]) or hidden

    def _console_read(self, cypher, params, model, timeout):
        """As on the embedded store: once per stored model or series (or once for `model`), the rows
        one after another; each run sees only that model's stored generation, as every node pattern
        with one of the store's labels is scoped to it (`queries.readonly.scoped_to_generation`)."""
        scoped = scoped_to_generation(cypher, CONSOLE_GENERATION)
        if model is None:
            stored = self.read(schema.STORED_GENERATIONS)
        else:
            stored = self.read(schema.STORED_GENERATION, {"model": model})
        rows = []
        for row in stored:
            rows += self.read(scoped, {**(params or {}), CONSOLE_GENERATION: row["generation"]}, timeout=timeout)
        return rows

    def _write_generation(self, graph: ModelGraph, replace: bool, progress) -> None:
        """Write `graph` as a hidden generation, a transaction per batch, and publish it."""
        try:
            with self._session() as session:
                for cypher, rows in neo4j_batches(graph):
                    session.execute_write(_run, cypher, {"rows": rows, "generation": graph.generation})
                    if progress is not None:
                        progress(len(rows))
                session.execute_write(_publish, graph.model_id, graph.generation, replace)
        except (self._neo4j.exceptions.DriverError, self._neo4j.exceptions.Neo4jError) as exc:
            raise neo4j_error(exc, self._uri, self._database) from exc

    def _generations(self, model: str) -> list[str]:
        return [row["generation"] for row in self.read(schema.GENERATIONS, {"model": model})]

    def _live_writes(self, model: str) -> list[str]:
        """The unpublished generations of `model` whose writer is still running on this machine."""
        return [
            row["generation"]
            for row in self.read(schema.GENERATIONS, {"model": model})
            if row["status"] == "writing" and _writer_alive(row["writer"])
        ]

    def _remove(self, model: str, keep: list[str]) -> bool:
        """Delete, a batch per transaction, every node of `model` outside the generations `keep`: their
        relationships first, so that a transaction holds at most BATCH_ROWS of them."""
        removed = False
        for statement in schema.DELETE_MODEL_BATCH:
            params = {"model": model, "keep": keep, "batch": BATCH_ROWS}
            while self.write(statement, params, model=model)[0]["deleted"]:
                removed = True
        return removed

    def _session(self, **config):
        """A session that shares the driver's bookmarks with `execute_query`, so a read after a write
        sees it, on a cluster too."""
        return self._driver.session(
            database=self._database, bookmark_manager=self._driver.execute_query_bookmark_manager, **config
        )

    def close(self):
        self._driver.close()


def plain_records(records) -> list[dict]:
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


MEMORY_CODES = (  # over the transaction memory of one transaction, of all of them, and out of heap
    "Neo.ClientError.General.TransactionOutOfMemoryError",
    "Neo.TransientError.General.MemoryPoolOutOfMemoryError",
    "Neo.TransientError.General.OutOfMemoryError",
)


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
            "Neo4j ran out of memory for the statement and stopped it: narrow it (one model, labels, a LIMIT), "
            "or raise db.memory.transaction.max (one transaction), dbms.memory.transaction.total.max (all) "
            "and the heap, server.memory.heap.max_size (see docker-compose.yml)"
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


def _run(tx, cypher: str, params: dict) -> None:
    tx.run(cypher, params).consume()


def _publish(tx, model: str, generation: str, replace: bool) -> None:
    """Make `generation` the stored one, in one transaction that first locks every Model node of
    the id; refused when the write was removed meanwhile, or another write stored the id first."""
    found = {
        row["generation"]: row["status"] for row in tx.run(schema.LOCK_GENERATIONS, model=model, generation=generation)
    }
    if found.get(generation) != "writing":
        raise UserError(f"another write or drop of {model!r} removed this one before it was stored: run it again")
    if "complete" in found.values() and not replace:
        raise already_stored(model)
    tx.run(schema.PUBLISH, model=model, generation=generation).consume()


def writer_name() -> str:
    """Who is writing, as a hidden Model node records it: host and process id."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _writer_alive(writer: str | None) -> bool:
    host, _, pid = (writer or "").rpartition(":")
    return host == socket.gethostname() and pid.isdigit() and pid_alive(int(pid))


def neo4j_batches(graph: ModelGraph, batch: int = BATCH_ROWS) -> Iterator[tuple[str, list[dict]]]:
    """The Neo4j statements that write `graph`, each with its batch of at most `batch` rows, the
    hidden Model node (status 'writing', its writer named) first."""
    for nodes in graph.nodes:
        rows = [plain_params(row) for row in nodes.rows]
        if nodes.label == "Model":
            rows = [{**row, "status": "writing", "writer": writer_name()} for row in rows]
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
