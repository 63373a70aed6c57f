"""The graph store: one small interface over the embedded FalkorDB and Neo4j 5.

Every method takes and returns plain Python values (dicts, lists, numbers, strings). A model is
written whole and atomically by `write_model`: it becomes visible to readers only once complete, and
a failed or interrupted write leaves nothing visible.

On FalkorDB each model is its own graph (`neurocypher:<model_id>`): a model is bulk-loaded into a
staging graph (GRAPH.BULK) and published with one atomic RENAME; a read with `model=None` runs on
every model's graph and concatenates the rows. On Neo4j all models share one database and a model
is written in one transaction of batched `UNWIND $rows` statements.
"""

import math
import os
import re
import secrets
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import suppress
from urllib.parse import urlsplit

import numpy as np

from . import schema
from .bulk import bulk_calls
from .errors import UserError, clip, first_line, shown
from .graph import ModelGraph
from .readonly import check_read_only
from .server import pid_alive

GRAPH_PREFIX = "neurocypher:"
STAGING_PREFIX = "neurocypher-staging:"
BATCH_ROWS = 5000


class Store(ABC):
    backend: str

    @abstractmethod
    def read(self, cypher: str, params: dict | None = None, *, model: str | None = None) -> list[dict]:
        """Run a read-only query; on FalkorDB `model` picks the model's graph (None: all models)."""

    @abstractmethod
    def write(self, cypher: str, params: dict | None = None, *, model: str) -> list[dict]:
        """Run a write query that concerns one stored model."""

    @abstractmethod
    def write_model(self, graph: ModelGraph, *, replace: bool = False, progress=None) -> None:
        """Store a whole model atomically: visible only once complete, nothing left on failure.
        `progress(n)` is called as nodes and relationships are sent."""

    @abstractmethod
    def drop(self, model_id: str) -> bool:
        """Remove a model; False when there was none."""

    @abstractmethod
    def close(self) -> None: ...

    def console(self, cypher: str, params: dict | None = None, *, model: str | None = None) -> list[dict]:
        """A user's own Cypher, refused unless read-only."""
        check_read_only(cypher)
        if model is not None and not self.has_model(model):
            raise UserError(f"no model named {shown(model)} is stored; see `neurocypher models`")
        return self.read(cypher, params, model=model)

    def models(self) -> list[dict]:
        """The complete stored models, newest first."""
        rows = self.read(schema.LIST_MODELS)
        return sorted(rows, key=lambda r: r["created_at"] or "", reverse=True)

    def ask(self, name: str, **params) -> list[dict]:
        """Run a named query of the library (`queries.library.QUERIES`), e.g.
        `store.ask("relay-path", model="digits-mlp", **{"class": 3})`."""
        from .library import ask

        return ask(self, name, **params)

    def has_model(self, model_id: str) -> bool:
        return bool(self.read(schema.MODEL_EXISTS, {"model": model_id}, model=model_id))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# ---------------------------------------------------------------- FalkorDB

class FalkorStore(Store):
    backend = "falkordb"

    def __init__(self, server):
        from falkordb import FalkorDB

        self._db = FalkorDB(**server.connection_kwargs())

    def read(self, cypher, params=None, *, model=None):
        keys = [GRAPH_PREFIX + model] if model else self._model_graphs()
        rows = []
        for key in keys:
            rows += self._query(key, cypher, params, read_only=True)
        return rows

    def write(self, cypher, params=None, *, model):
        return self._query(GRAPH_PREFIX + model, cypher, params, read_only=False)

    def write_model(self, graph, *, replace=False, progress=None):
        if not replace and self.has_model(graph.model_id):
            raise already_stored(graph.model_id)
        self._remove_abandoned_staging()
        stage = f"{STAGING_PREFIX}{graph.model_id}:{os.getpid()}:{secrets.token_hex(4)}"
        try:
            for args, count in bulk_calls(graph):
                self._command("GRAPH.BULK", stage, *args)
                if progress is not None:
                    progress(count)
            for statement in schema.FALKORDB_INDEXES:
                self._query(stage, statement, None, read_only=False)
            self._wait_for_indexes(stage)
            rename = "RENAME" if replace else "RENAMENX"
            if not self._command(rename, stage, GRAPH_PREFIX + graph.model_id):
                raise already_stored(graph.model_id)
        except BaseException:
            with suppress(UserError):  # the server is gone; the first write after this process ends removes it
                self._delete_graph(stage)
            raise

    def drop(self, model_id):
        return self._delete_graph(GRAPH_PREFIX + model_id)

    def close(self):
        self._db.connection.close()

    def _model_graphs(self) -> list[str]:
        return sorted(g for g in self._command("GRAPH.LIST") if g.startswith(GRAPH_PREFIX))

    def _query(self, key, cypher, params, read_only):
        from redis.exceptions import ConnectionError, ResponseError

        graph = self._db.select_graph(key)
        run = graph.ro_query if read_only else graph.query
        try:
            result = run(cypher, plain_params(params))
        except ResponseError as exc:
            if "empty key" in str(exc):
                return []  # no such model graph
            raise _query_error(str(exc)) from exc
        except ConnectionError as exc:
            raise _server_lost() from exc
        names = [column[1] for column in result.header]
        return [dict(zip(names, map(_plain_falkor, row))) for row in result.result_set]

    def _wait_for_indexes(self, key: str, seconds: float = 600.0) -> None:
        """Block until FalkorDB has built the indexes (it builds them in the background), so that a
        published model is fast from its first query and no plan is cached without them."""
        deadline = time.monotonic() + seconds
        while any(row["status"] != "OPERATIONAL" for row in self._query(key, schema.FALKORDB_INDEX_STATUS, None, True)):
            if time.monotonic() > deadline:
                raise UserError(f"FalkorDB did not finish building indexes within {seconds:.0f} s; try again")
            time.sleep(0.02)

    def _remove_abandoned_staging(self) -> None:
        """Delete staging graphs left by writer processes that no longer exist."""
        for key in self._command("GRAPH.LIST"):
            if key.startswith(STAGING_PREFIX) and not pid_alive(int(key.split(":")[2])):
                self._delete_graph(key)

    def _delete_graph(self, key: str) -> bool:
        return bool(self._command("DEL", key))

    def _command(self, *args):
        """Send one server command; a lost connection becomes a UserError that says what to do."""
        from redis.exceptions import ConnectionError

        try:
            return self._db.connection.execute_command(*args)
        except ConnectionError as exc:
            raise _server_lost() from exc


def _plain_falkor(value):
    from falkordb import Edge, Node, Path

    if isinstance(value, (Node, Edge)):
        return dict(value.properties)
    if isinstance(value, Path):
        return [dict(n.properties) for n in value.nodes()]
    if isinstance(value, list):
        return [_plain_falkor(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain_falkor(v) for k, v in value.items()}
    return value


# ---------------------------------------------------------------- Neo4j

def neo4j_address(uri: str) -> str:
    """`uri` as it may be shown; one holding a user name or password is refused without echoing it."""
    if "@" in urlsplit(uri).netloc:
        raise UserError("NEO4J_URI holds a user name or password: keep it as scheme://host:port "
                        "and set NEO4J_USER and NEO4J_PASSWORD instead")
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
            raise UserError(f"Neo4j at {uri} refused the credentials of user {user!r}: "
                            "check NEO4J_USER and NEO4J_PASSWORD") from exc
        except (neo4j.exceptions.DriverError, neo4j.exceptions.Neo4jError, ValueError, OSError) as exc:
            raise UserError(f"cannot reach Neo4j at {uri} ({type(exc).__name__}): start it "
                            "(docker compose up -d neo4j) or unset NEO4J_URI to use the embedded store") from exc

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
                cypher, plain_params(params), routing_=routing, database_=self._database)
        except self._neo4j.exceptions.Neo4jError as exc:
            raise _query_error(exc.message or str(exc)) from exc
        return [record.data() for record in records]


def neo4j_batches(graph: ModelGraph, batch: int = BATCH_ROWS) -> Iterator[tuple[str, list[dict]]]:
    """The Neo4j statements that write `graph`, each with its batch of rows."""
    for nodes in graph.nodes:
        rows = [plain_params(row) for row in nodes.rows]
        for start in range(0, len(rows), batch):
            yield schema.neo4j_create_nodes(nodes.label), rows[start:start + batch]
    uids = {nodes.label: [row["uid"] for row in nodes.rows] for nodes in graph.nodes}
    for rels in graph.rels:
        starts, ends = uids[rels.start_label], uids[rels.end_label]
        columns = {name: values.tolist() for name, values in rels.props.items()}
        for start in range(0, len(rels), batch):
            yield schema.neo4j_create_rels(rels), [
                {"a": starts[i], "b": ends[j], "p": {name: col[k] for name, col in columns.items()}}
                for k, (i, j) in enumerate(zip(rels.start[start:start + batch].tolist(),
                                               rels.end[start:start + batch].tolist()), start)]


# ---------------------------------------------------------------- shared

def plain_params(params: dict | None) -> dict:
    """Parameters as plain Python values (NumPy converted); a UserError for what Cypher cannot carry:
    names that are not identifiers, NaN, inf, integers beyond 64 bits, NUL characters, other types."""
    for name in params or {}:
        if not isinstance(name, str) or not _IDENTIFIER.fullmatch(name):
            raise UserError(f"query parameter name {shown(name)} is not allowed: use letters, digits and _")
    return {k: _plain_value(v, k) for k, v in (params or {}).items()}


_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_INT64 = 2 ** 63


def _plain_value(value, name):
    if isinstance(value, np.ndarray):
        value = value.tolist()
    elif isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, dict):
        for key in value:
            if not isinstance(key, str) or not key or "`" in key or "\0" in key:
                raise UserError(f"query parameter {name!r} holds a map key {shown(key)}; use non-empty "
                                "text keys without backticks")
        return {k: _plain_value(v, name) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain_value(v, name) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        problem = f"holds {value}; NaN and inf cannot be stored"
    elif isinstance(value, int) and not isinstance(value, bool) and not -_INT64 <= value < _INT64:
        problem = f"holds {clip(value, 30)}, beyond 64-bit integers"
    elif isinstance(value, str) and "\0" in value:
        problem = "holds a NUL character, which the store cannot carry"
    elif value is not None and not isinstance(value, (bool, int, float, str)):
        problem = f"holds a {type(value).__name__}; use numbers, text, booleans, lists or maps"
    else:
        return value
    raise UserError(f"query parameter {name!r} {problem}")


def already_stored(model_id: str) -> UserError:
    return UserError(f"model {model_id!r} is already stored; pass --replace to overwrite it "
                     f"or `neurocypher drop {model_id}` first")


def _server_lost() -> UserError:
    return UserError("lost the connection to the embedded FalkorDB server (did it stop?); "
                     "run `neurocypher db start` and try again")


def _query_error(message: str) -> UserError:
    first = clip(first_line(message), 300)
    if "read-only" in first or "read access mode" in first.lower():
        return UserError(f"refused: the statement writes, but this query runs read-only ({first})")
    return UserError(f"query failed: {first}")

