"""The registry of community methods. Each method is one module of this package with a `METHOD`
entry (`ingest.communities.Method`: name, description, reference, options, `find`); adding a
method is its module, one line below, its test, and the declaration of any property, metric or
link value it stores (`queries.declared`)."""

from . import flow, innersight, neurflow, relay, weights

METHODS = {
    m.name: m
    for m in (
        innersight.METHOD,
        flow.METHOD,
        weights.METHOD,
        relay.METHOD,
        neurflow.METHOD,
    )
}


def default_methods() -> tuple[str, ...]:
    """The methods that run when none are named."""
    return tuple(name for name, method in METHODS.items() if method.default)


def table() -> str:
    """The methods as a Markdown table (the README's, and `neurocypher methods`)."""
    rows = ["| method | what it finds | reference | default |", "|---|---|---|---|"]
    rows += [
        f"| `{m.name}` | {m.description} | {m.reference} | {'yes' if m.default else 'no'} |" for m in METHODS.values()
    ]
    return "\n".join(rows)
