"""The embedded FalkorDB backend: each model is its own graph (`neurocypher:<model_id>`).

A model is bulk-loaded into a staging graph (GRAPH.BULK, see `queries.bulk`) and published with one
atomic RENAME, which is how this backend keeps the write contract of `queries.store.Store`; a read
with `model=None` runs on every model's graph and concatenates the rows.
"""

import os
import re
import secrets
import time
from contextlib import suppress

from neurocypher.errors import UserError

from . import schema
from .bulk import bulk_calls
from .server import pid_alive
from .store import Store, already_stored, plain_params, query_error, timed_out

GRAPH_PREFIX = "neurocypher:"
STAGING_PREFIX = "neurocypher-staging:"
SYNTAX_ERROR = re.compile(r"errMsg: (.*?) line: (\d+), column: (\d+), offset: \d+ errCtx: .* errCtxOffset: \d+")


class FalkorStore(Store):
    backend = "falkordb"

    def __init__(self, server):
        from falkordb import FalkorDB

        self._db = FalkorDB(**server.connection_kwargs())

    def read(self, cypher, params=None, *, model=None, timeout=None):
        keys = [GRAPH_PREFIX + model] if model else self._model_graphs()
        rows = []
        for key in keys:
            rows += self._query(key, cypher, params, read_only=True, timeout=timeout)
        return rows

    def write(self, cypher, params=None, *, model):
        return self._query(GRAPH_PREFIX + model, cypher, params, read_only=False)

    def write_model(self, graph, *, replace=False, progress=None):
        graph.new_generation()
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

    def _query(self, key, cypher, params, read_only, timeout=None):
        from redis.exceptions import ConnectionError, ResponseError

        graph = self._db.select_graph(key)
        run = graph.ro_query if read_only else graph.query
        try:
            result = run(
                cypher, plain_params(params), timeout=None if timeout is None else max(1, round(timeout * 1000))
            )
        except ResponseError as exc:
            if "empty key" in str(exc):
                return []  # no such model graph
            raise self._failed(str(exc), timeout) from exc
        except ConnectionError as exc:
            raise _server_lost() from exc
        names = [column[1] for column in result.header]
        return [dict(zip(names, map(_plain_falkor, row))) for row in result.result_set]

    def _failed(self, message: str, timeout: float | None) -> UserError:
        """A statement's failure in one line; stopped by one of the server's limits (`server.LIMITS`),
        which limit, as the server has it, and what to do."""
        if "mem consumption exceeded capacity" in message:
            return UserError(
                f"the query needed more than the server's memory for one query (QUERY_MEM_CAPACITY "
                f"{self._setting('QUERY_MEM_CAPACITY') // 2**20} MB) and was stopped: narrow it "
                "(one model, a WHERE on a layer, a LIMIT)"
            )
        if "timed out" in message.lower():
            if timeout is None:
                return timed_out(self._setting("TIMEOUT_DEFAULT") / 1000, "the server's TIMEOUT_DEFAULT")
            return timed_out(timeout)
        if "cannot exceed the TIMEOUT_MAX" in message:
            most = self._setting("TIMEOUT_MAX") / 1000
            return UserError(f"a timeout of {timeout:g} s is more than the server allows (TIMEOUT_MAX {most:g} s)")
        syntax = SYNTAX_ERROR.search(message)
        if syntax:  # FalkorDB's parser says where, then repeats the statement and an offset: where is enough
            return query_error(f"syntax error at line {syntax[2]}, column {syntax[3]}: {syntax[1]}")
        return query_error(message)

    def _setting(self, name: str) -> int:
        """The value of one of FalkorDB's settings (GRAPH.CONFIG GET)."""
        return self._command("GRAPH.CONFIG", "GET", name)[1]

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
    if value is None or isinstance(value, (str, int, float)):  # most values: returned as they are, at once
        return value
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


def _server_lost() -> UserError:
    return UserError(
        "lost the connection to the embedded FalkorDB server (did it stop?); run `neurocypher db start` and try again"
    )
