"""A lexical guard for user-supplied Cypher; the backends' read-only modes are the second line."""

import re

from .errors import UserError

_WRITE_WORDS = ("CREATE", "MERGE", "DELETE", "DETACH", "SET", "REMOVE", "DROP", "FOREACH", "LOAD",
                "GRANT", "REVOKE", "DENY", "ALTER", "RENAME", "TERMINATE", "START", "STOP", "ENABLE")
_NOISE = re.compile(r"""//[^\n]*|/\*.*?\*/|'(?:\\.|[^'\\])*'|"(?:\\.|[^"\\])*"|`[^`]*`""", re.S)
_WRITE = re.compile(r"(?<![.:$\w])(" + "|".join(_WRITE_WORDS) + r")\b", re.I)


def check_read_only(cypher: str) -> None:
    """Raise UserError when the statement contains a write, schema or admin clause."""
    match = _WRITE.search(_NOISE.sub(" ", cypher))
    if match:
        raise UserError(f"refused: {match.group(1).upper()} would change the store, and this "
                        "console is read-only; use `neurocypher ingest` or `drop` to change models")
