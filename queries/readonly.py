"""A lexical guard for user-supplied Cypher; the backends' read-only modes are the second line.

Refused: every write, schema and admin clause (CREATE, MERGE, SET, DROP, GRANT, ...), LOAD CSV
(FalkorDB reads files and URLs with it even in read-only mode), USE (another database), `IN
TRANSACTIONS`, and CALL of any procedure but the read-only ones in READ_PROCEDURES. SHOW and EXPLAIN
pass: they only read (FalkorDB has no SHOW; Neo4j runs admin SHOW commands on the system database only;
its SHOW INDEXES and SHOW CONSTRAINTS replace the deprecated db.indexes and db.constraints).
Words in strings, comments, backticks, property names (`n.set`), aliases (`AS drop`), map keys
(`{create: 1}`) and variables before a label or a property (`(set:Neuron)`, `set.uid`) are names,
not clauses, and pass; a variable so named and used bare later (`RETURN set`) is still refused.
"""

import re

from neurocypher.errors import UserError, shown

from .schema import LABELS

_WRITE_WORDS = (
    "CREATE",
    "MERGE",
    "DELETE",
    "DETACH",
    "SET",
    "REMOVE",
    "DROP",
    "FOREACH",
    "LOAD",
    "INSERT",
    "GRANT",
    "REVOKE",
    "DENY",
    "ALTER",
    "RENAME",
    "TERMINATE",
    "START",
    "STOP",
    "ENABLE",
    "USE",
    "DEALLOCATE",
    "REALLOCATE",
    r"IN\s+TRANSACTIONS",
)
READ_PROCEDURES = (
    "db.labels",
    "db.relationshipTypes",
    "db.propertyKeys",
    "db.meta.stats",
    "db.schema.visualization",
    "db.schema.nodeTypeProperties",
    "db.schema.relTypeProperties",
)
_NOISE = re.compile(r"""//[^\n]*|/\*.*?\*/|'(?:\\.|[^'\\])*'|"(?:\\.|[^"\\])*"|`[^`]*`""", re.S)
_NAMES = re.compile(r"\bAS\s+\w+|\b\w+\s*:(?!:)", re.I)  # aliases and map keys (or variables before a label)
_WRITE = re.compile(r"(?<![.:$\w])(" + "|".join(_WRITE_WORDS) + r")\b(?!\s*\.)", re.I)  # `set.uid`: a variable
_CALL = re.compile(r"(?<![.:$\w])CALL\b\s*(\{|[\w.]*)", re.I)
_ALLOWED_CALLS = {"{"} | {name.lower() for name in READ_PROCEDURES}
_CHANGES = "would change the store, and this console is read-only; use `neurocypher ingest` or `drop` to change models"
_REASONS = {
    "LOAD": "CSV reads files and URLs, which this console does not; query the stored models instead",
    "USE": "would leave neurocypher's database; this console reads the stored models only",
}


def check_read_only(cypher: str) -> None:
    """Raise UserError when the statement contains a write, schema or admin clause, or calls a
    procedure that is not known to only read."""
    text = _NAMES.sub(" ", _NOISE.sub(" ", cypher))
    match = _WRITE.search(text)
    if match:
        word = " ".join(match.group(1).upper().split())
        raise UserError(f"refused: {word} {_REASONS.get(word, _CHANGES)}")
    for call in _CALL.finditer(text):
        if call.group(1).lower() not in _ALLOWED_CALLS:
            raise UserError(
                f"refused: CALL {shown(call.group(1) or '(a quoted name)', 60)} is not a read-only "
                f"procedure; this console calls only {', '.join(READ_PROCEDURES)}"
            )


_LABELLED_NODE = re.compile(
    r"\(\s*\w*\s*:\s*(?:" + "|".join(LABELS) + r")\b(?:\s*[:&]\s*\w+)*(?P<map>\s*\{\s*(?P<empty>\})?)?"
)


def scoped_to_generation(cypher: str, parameter: str) -> str:
    """`cypher` with every node pattern that names one of the store's labels (`(n:Neuron)`,
    `(:Community {uid: $u})`) restricted to the generation in `$parameter`: how the console on Neo4j,
    where all models share one database, sees one model's stored generation only. Strings,
    comments and backticked names are left alone; a node pattern without a label is not scoped,
    but a node reached from a scoped one by a relationship is in its generation."""
    masked = _NOISE.sub(lambda m: " " * len(m.group()), cypher)  # same length: positions carry over
    scope = f"generation: ${parameter}"
    for found in reversed(list(_LABELLED_NODE.finditer(masked))):
        if found.group("map") is None:
            at, text = found.end(), f" {{{scope}}}"
        else:
            at, text = (
                found.group("map").index("{") + found.start("map") + 1,
                scope + ("" if found.group("empty") else ", "),
            )
        cypher = cypher[:at] + text + cypher[at:]
    return cypher
