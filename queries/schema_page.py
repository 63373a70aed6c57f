"""The page docs/schema.md, generated from the declared schema (`queries.declared`); a test keeps
the committed page equal to `markdown()`. Regenerate it with the command COMMAND."""

from typing import get_origin

from .declared import EVERY_NODE, NODE_TYPES, RELATIONSHIP_TYPES, Property

COMMAND = "python -m neurocypher.queries.schema_page > docs/schema.md"


def markdown() -> str:
    """docs/schema.md: every label, relationship type and property as `queries.declared` declares them."""
    lines = [
        f"<!-- Generated from queries/declared.py by `{COMMAND}`; do not edit. -->",
        "",
        "# Graph schema",
        "",
        "Every label, relationship type and property neurocypher stores, as declared in `queries/declared.py`;",
        "the writer refuses anything else. *Written by* names a stage of `ingest.stages.STAGES`, a community",
        "method (`ingest/methods/`) or a module. A name with `<placeholder>` stands for one property per value.",
        "",
        "## Every node",
        "",
        *_table(EVERY_NODE),
        "",
        "Each label has a key, unique within a generation. Indexes: on FalkorDB (a graph per model) each label's",
        "key; on Neo4j (one database for all models) each label's key with `generation`, as a uniqueness",
        "constraint, and for every label an index on each of "
        + ", ".join(f"`{p.name}`" for p in EVERY_NODE if p.index)
        + ".",
        "",
        "## Nodes",
    ]
    for node in NODE_TYPES.values():
        lines += [
            "",
            f"### {node.label}",
            "",
            f"{node.meaning}. Key: `{node.key}`.",
            "",
            *_table(node.properties),
        ]
    lines += ["", "## Relationships"]
    for rel in RELATIONSHIP_TYPES.values():
        lines += [
            "",
            f"### `{rel.pattern}`",
            "",
            f"{rel.meaning}; written by {rel.written_by}.",
        ]
        if rel.properties:
            lines += ["", *_table(rel.properties)]
    return "\n".join(lines) + "\n"


def _table(properties: tuple[Property, ...]) -> list[str]:
    rows = ["| property | type | unit | meaning | written by |", "|---|---|---|---|---|"]
    return rows + [
        f"| `{p.name}` | {_type_name(p.type)} | {p.unit} | {p.meaning} | {p.written_by} |" for p in properties
    ]


def _type_name(kind) -> str:
    return str(kind) if get_origin(kind) else kind.__name__


if __name__ == "__main__":
    print(markdown(), end="")
