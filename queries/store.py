"""The graph store's interface and what its backends share: parameters as plain values and the
errors both report. The backends: `queries.falkordb_store` (embedded) and `queries.neo4j_store`."""

import math
import re
from abc import ABC, abstractmethod

import numpy as np

from neurocypher.errors import UserError, clip, first_line, no_such_model, shown

from . import schema
from .export import as_frame, model_digraph
from .graph import ModelGraph
from .readonly import check_read_only

CONSOLE_SECONDS = 30.0  # a console query running longer is stopped, on both backends


class Store(ABC):
    """One small interface over the embedded FalkorDB and Neo4j 5: parameterised Cypher in, plain
    Python values (dicts, lists, numbers, strings) out.

    The write contract, the same on both backends: `write_model` stores a model whole and
    atomically, as a new generation (`ModelGraph.new_generation`). Readers see only a model's stored
    generation: every statement first matches its Model node with status 'complete'
    (`schema.on_complete_model`, or `m.status = 'complete'` for all models) and scopes the nodes it
    starts from by that node's generation (`schema.SCOPE`); the console scopes a user's query the
    same way. So a failed or interrupted write leaves nothing visible, a replaced model stays
    visible, old or new, throughout, and what a crash leaves behind is removed by the next write or
    drop of the id. FalkorDB builds the generation in a staging graph and publishes it by RENAME;
    Neo4j writes it hidden, a transaction per batch, and publishes it by flipping the Model nodes'
    status in one small transaction. `drop` removes a model whole. Every other write (`write`)
    concerns one stored model.
    """

    backend: str

    @abstractmethod
    def read(
        self, cypher: str, params: dict | None = None, *, model: str | None = None, timeout: float | None = None
    ) -> list[dict]:
        """Run a read-only query; on FalkorDB `model` picks the model's graph (None: all models); a
        query running longer than `timeout` seconds (None: `server.STATEMENT_SECONDS`) is stopped
        (`timed_out`). Rows are dicts of plain values on both backends: a node or relationship as its
        properties, a path as its nodes'."""

    @abstractmethod
    def write(self, cypher: str, params: dict | None = None, *, model: str) -> list[dict]:
        """Run a write query that concerns one stored model."""

    @abstractmethod
    def write_model(self, graph: ModelGraph, *, replace: bool = False, progress=None) -> None:
        """Store a whole model under the write contract; `progress(n)` is called as nodes and
        relationships are sent. A UserError when it is stored already and `replace` is False."""

    @abstractmethod
    def drop(self, model_id: str) -> bool:
        """Remove a model; False when there was none."""

    @abstractmethod
    def close(self) -> None: ...

    def console(
        self,
        cypher: str,
        params: dict | None = None,
        *,
        model: str | None = None,
        timeout: float = CONSOLE_SECONDS,
        frame: bool = False,
    ):
        """A user's own Cypher, refused unless read-only, stopped after `timeout` seconds; its rows,
        or with `frame` a pandas DataFrame."""
        check_read_only(cypher)
        if model is not None and not self.has_model(model):
            raise no_such_model(model)
        rows = self._console_read(cypher, params, model, timeout)
        return as_frame(rows) if frame else rows

    def _console_read(self, cypher: str, params: dict | None, model: str | None, timeout: float) -> list[dict]:
        """A console query's rows: on `model`'s graph, or on every model's one after another."""
        return self.read(cypher, params, model=model, timeout=timeout)

    def models(self) -> list[dict]:
        """The complete stored models, newest first."""
        rows = self.read(schema.LIST_MODELS)
        return sorted(rows, key=lambda r: r["created_at"] or "", reverse=True)

    def ask(self, name: str, *, frame: bool = False, **params):
        """Run a named query of the library (`queries.library.QUERIES`), e.g.
        `store.ask("relay-path", model="digits-mlp", **{"class": 3})`; its rows, or with `frame` a
        pandas DataFrame."""
        from .library import ask

        rows = ask(self, name, **params)
        return as_frame(rows) if frame else rows

    def digraph(self, model: str, level: str = "neurons", method: str | None = None):
        """`model`'s neuron graph, or with level "communities" one method's community graph, as a
        networkx DiGraph with every stored property (`queries.export.model_digraph`), read in pages."""
        return model_digraph(self, model, level, method)

    def has_model(self, model_id: str) -> bool:
        return bool(self.read(schema.STORED_GENERATION, {"model": model_id}, model=model_id))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def plain_params(params: dict | None) -> dict:
    """Parameters as plain Python values (NumPy converted); a UserError for what Cypher cannot carry:
    names that are not identifiers, NaN, inf, integers beyond 64 bits, NUL characters, other types."""
    for name in params or {}:
        if not isinstance(name, str) or not _IDENTIFIER.fullmatch(name):
            raise UserError(f"query parameter name {shown(name)} is not allowed: use letters, digits and _")
    return {k: _plain_value(v, k) for k, v in (params or {}).items()}


_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_INT64 = 2**63


def _plain_value(value, name):
    if isinstance(value, np.ndarray):
        value = value.tolist()
    elif isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, dict):
        for key in value:
            if not isinstance(key, str) or not key or "`" in key or "\0" in key:
                raise UserError(
                    f"query parameter {name!r} holds a map key {shown(key)}; use non-empty text keys without backticks"
                )
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
    return UserError(
        f"model {model_id!r} is already stored; pass --replace to overwrite it or `neurocypher drop {model_id}` first"
    )


def timed_out(seconds: float, limit: str = "") -> UserError:
    """The error for a query stopped after `seconds`; `limit` names the setting that said so."""
    said = f" ({limit})" if limit else ""
    return UserError(
        f"the query ran longer than {seconds:g} s{said} and was stopped: narrow it (one model, labels, a LIMIT)"
    )


def query_error(message: str, *, writes: bool = False) -> UserError:
    """A backend's refusal or failure of a statement, said in one line; `writes`: the backend said
    (by its error code) that a read-only statement tried to write."""
    first = clip(first_line(message), 300)
    if writes or "read-only" in first or "read access mode" in first.lower():
        return UserError(f"refused: the statement writes, but this query runs read-only ({first})")
    return UserError(f"query failed: {first}")
