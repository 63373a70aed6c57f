"""FalkorDB's binary bulk format (the GRAPH.BULK command) for a ModelGraph.

A bulk load creates a new graph. Each call carries node blobs (one per label) and relationship
blobs (one per type): a header (name, property count, property names, each NUL-terminated) and then
the entities, each property as a type byte and its value. Nodes get ids 0, 1, 2, ... in the order
they are sent; a relationship names its ends by those ids. Relationship records are fixed-width and
built as NumPy structured arrays, so a million relationships encode in milliseconds.
"""

import struct
from collections.abc import Iterator

import numpy as np

from .graph import ModelGraph, NodeSet, RelSet

NULL, BOOL, DOUBLE, STRING, LONG, ARRAY = 0, 1, 2, 3, 4, 5
BLOB_BYTES = 32 * 2**20  # bytes per call, well under Redis's 512 MiB argument limit


def bulk_calls(graph: ModelGraph) -> Iterator[tuple[list, int]]:
    """Arguments for successive GRAPH.BULK calls (after the graph name), and the entities each carries."""
    offsets, first = {}, 0
    for nodes in graph.nodes:
        offsets[nodes.label] = first
        first += len(nodes.rows)
    blobs = [(blob, count, 0) for nodes in graph.nodes for blob, count in _node_blobs(nodes)]
    blobs += [(blob, 0, count) for rels in graph.rels for blob, count in _rel_blobs(rels, offsets)]
    for i, (blob, n_nodes, n_rels) in enumerate(blobs):
        args = [n_nodes, n_rels, int(n_nodes > 0), int(n_rels > 0), blob]
        yield (["BEGIN", *args] if i == 0 else args), n_nodes + n_rels


def _header(name: str, props: list[str]) -> bytes:
    return b"".join([name.encode() + b"\0", struct.pack("=I", len(props)), *(p.encode() + b"\0" for p in props)])


def _node_blobs(nodes: NodeSet) -> Iterator[tuple[bytes, int]]:
    props = list(dict.fromkeys(key for row in nodes.rows for key in row))
    header = _header(nodes.label, props)
    chunk, size = [], 0
    for row in nodes.rows:
        record = b"".join(_value(row.get(p)) for p in props)
        chunk.append(record)
        size += len(record)
        if size >= BLOB_BYTES:
            yield header + b"".join(chunk), len(chunk)
            chunk, size = [], 0
    if chunk:
        yield header + b"".join(chunk), len(chunk)


def _rel_blobs(rels: RelSet, offsets: dict[str, int]) -> Iterator[tuple[bytes, int]]:
    names = list(rels.props)
    fields = [("start", "<u8"), ("end", "<u8")]
    for name in names:
        kind = "<i8" if np.issubdtype(rels.props[name].dtype, np.integer) else "<f8"
        fields += [(f"{name}_type", "u1"), (name, kind)]
    records = np.empty(len(rels), dtype=np.dtype(fields))
    records["start"] = rels.start + offsets[rels.start_label]
    records["end"] = rels.end + offsets[rels.end_label]
    for name in names:
        is_int = records.dtype[name].kind == "i"
        records[f"{name}_type"] = LONG if is_int else DOUBLE
        records[name] = rels.props[name]
    header = _header(rels.type, names)
    per_blob = max(1, BLOB_BYTES // records.dtype.itemsize)
    for start in range(0, len(records), per_blob):
        part = records[start : start + per_blob]
        yield header + part.tobytes(), len(part)


def _value(value) -> bytes:
    if value is None:
        return struct.pack("=B", NULL)
    if isinstance(value, bool | np.bool_):
        return struct.pack("=B?", BOOL, bool(value))
    if isinstance(value, int | np.integer):
        return struct.pack("=Bq", LONG, int(value))
    if isinstance(value, float | np.floating):
        if not np.isfinite(value):
            raise ValueError(f"a property holds {value}; NaN and inf cannot be stored")
        return struct.pack("=Bd", DOUBLE, float(value))
    if isinstance(value, str):
        return struct.pack("=B", STRING) + value.encode() + b"\0"
    if isinstance(value, list | tuple | np.ndarray):
        return struct.pack("=Bq", ARRAY, len(value)) + b"".join(_value(v) for v in value)
    raise TypeError(f"cannot store a {type(value).__name__} as a property")
