"""The `neurocypher` command line: the root and the commands that need only the store (`models`,
`drop`, `query`, `compare`, `export`, `db`). The commands that analyse models (`ingest`, `demo`,
`debug`, `methods`) live in `neurocypher.ingest.cli` and the explorer's in `neurocypher.app.cli`;
they are imported only when called (or for `--help`), so that questions to the store never import
torch."""

import json
import sys
from difflib import get_close_matches
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer
from typer.core import TyperGroup

from .config import settings
from .errors import UserError, clip, no_such_model, shown
from .output import Format, print_rows
from .queries import EmbeddedServer, connect
from .queries.neo4j_store import neo4j_address

ANALYSING = ("demo", "ingest", "debug", "methods")  # the commands of `neurocypher.ingest.cli`
EXPLORING = ("app",)  # the command of `neurocypher.app.cli`
ELSEWHERE = ANALYSING + EXPLORING  # loaded when first needed (`_Commands.get_command`)


def _commands_of(name: str) -> typer.Typer:
    """The commands (a typer.Typer) of the module that defines the command `name` of ELSEWHERE,
    imported now."""
    if name in EXPLORING:
        from .app import cli
    else:
        from .ingest import cli
    return cli.commands


class _Commands(TyperGroup):
    """The root group: the commands of ELSEWHERE are loaded from their module when first needed."""

    def list_commands(self, ctx):
        return list(super().list_commands(ctx)) + [name for name in ELSEWHERE if name not in self.commands]

    def resolve_command(self, ctx, args):
        """As typer's, with the commands not yet loaded among the suggestions for a typo."""
        try:
            return super().resolve_command(ctx, args)
        except typer.TyperException as error:  # typer's own click: "No such command"
            matches = get_close_matches(args[0], self.list_commands(ctx)) if args else []
            if matches and "Did you mean" not in error.message:
                error.message = f"{error.message.rstrip('.')}. Did you mean {', '.join(map(repr, matches))}?"
            raise

    def get_command(self, ctx, name):
        if name in ELSEWHERE and name not in self.commands:
            group = typer.main.get_group(_commands_of(name))
            for loaded, command in group.commands.items():
                self.add_command(command, loaded)
        return super().get_command(ctx, name)


app = typer.Typer(
    cls=_Commands,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    help="Open up trained neural networks as a graph you can query with Cypher.",
)
db_app = typer.Typer(no_args_is_help=True, help="Manage the embedded FalkorDB server.")
app.add_typer(db_app, name="db")


def main() -> None:
    """Run a command; a bad input or usage ends with one line `error: ...` on stderr and exit status 2."""
    try:
        code = app(standalone_mode=False)
    except UserError as exc:
        _fail(str(exc))
    except typer.TyperException as exc:  # typer's own click: usage errors
        if type(exc).__name__ == "NoArgsIsHelpError":  # not exported; typer tests the name the same way
            exc.show()
            sys.exit(2)
        command = exc.ctx.command_path if getattr(exc, "ctx", None) else "neurocypher"
        _fail(f"{clip(' '.join(exc.format_message().split()), 300)} (see `{command} --help`)", exc.exit_code)
    except typer.Abort:
        _fail("aborted", 1)
    sys.exit(code if isinstance(code, int) else 0)


def _fail(message: str, code: int = 2) -> None:
    print(f"error: {message}", file=sys.stderr)
    sys.exit(code)


@app.command()
def models(fmt: Annotated[Format, typer.Option("--format")] = Format.table) -> None:
    """List the stored models."""
    with connect() as store:
        print_rows(store.models(), fmt)


@app.command()
def drop(name: str) -> None:
    """Remove a stored model."""
    with connect() as store:
        if not store.drop(name):
            raise no_such_model(name, stored=[m["model_id"] for m in store.models()])
    print(f"dropped {name}")


@app.command()
def query(
    name: Annotated[Optional[str], typer.Argument(help="a named query (see --list)")] = None,
    cypher: Annotated[Optional[str], typer.Option(help="your own read-only Cypher instead")] = None,
    param: Annotated[
        Optional[list[str]], typer.Option(help="k=v, repeatable; v is read as JSON when it parses")
    ] = None,
    model: Annotated[
        Optional[str], typer.Option(help="the model (the embedded store keeps one graph per model)")
    ] = None,
    list_queries: Annotated[bool, typer.Option("--list", help="list the named queries")] = False,
    fmt: Annotated[Format, typer.Option("--format")] = Format.table,
) -> None:
    """Ask a named question (`query relay-path --param model=m --param class=3`) or run read-only
    Cypher (`query --cypher "..."`); writes are refused."""
    from .queries.library import QUERIES

    if list_queries:
        for named in QUERIES.values():
            print(f"{named.describe()}\n    reads: {named.bound}")
        return
    if bool(name) == bool(cypher):
        raise UserError('give a query name (see `neurocypher query --list`) or --cypher "...", not both or neither')
    params = dict(_parse_param(p) for p in param or [])
    with connect() as store:
        if cypher:
            rows = store.console(cypher, params, model=model)
        else:
            if model:
                params.setdefault("model", model)
            rows = store.ask(name, **params)
    print_rows(rows, fmt)


@app.command()
def compare(
    models: Annotated[list[str], typer.Argument(help="two or more model ids")],
    class_index: Annotated[int, typer.Option("--class", min=0, help="the class whose relay chain is compared")] = 0,
    method: Annotated[str, typer.Option(help="community method")] = "innersight",
    fmt: Annotated[Format, typer.Option("--format")] = Format.table,
) -> None:
    """Compare stored models side by side, and match the communities of the first two."""
    from .ingest.matching import match_communities, store_matches

    if len(models) < 2:
        raise UserError("compare needs at least two model ids")
    with connect() as store:
        rows = store.ask("compare", models=models, method=method, **{"class": class_index})
        matches = match_communities(store, models[0], models[1], method)
        store_matches(store, matches)
    if fmt is Format.json:
        print(json.dumps({"models": rows, "matches": matches}, indent=2, default=str))
    else:
        print_rows(rows, fmt)
        print()
        print_rows(matches, fmt)


class ExportFormat(str, Enum):
    graphml = "graphml"
    gexf = "gexf"
    csv = "csv"


class Level(str, Enum):
    neurons = "neurons"
    communities = "communities"


@app.command()
def export(
    name: Annotated[str, typer.Argument(help="a stored model id")],
    directory: Annotated[Path, typer.Argument(help="where the files go (created when missing)")],
    to: Annotated[ExportFormat, typer.Option(help="graphml or gexf (Gephi, Cytoscape), or csv (nodes and edges)")],
    level: Annotated[Level, typer.Option(help="the neuron graph, or one method's community graph")] = Level.neurons,
    method: Annotated[str, typer.Option(help="the community method (with --level communities)")] = "innersight",
) -> None:
    """Write a model's neuron graph or one method's community graph as files Gephi and Cytoscape open."""
    from .queries.export import export as export_graph

    with connect() as store:
        paths = export_graph(
            store, name, to.value, directory, level.value, method if level is Level.communities else None
        )
    for path in paths:
        print(f"wrote {path}")


@db_app.command("start")
def db_start() -> None:
    """Start the embedded server (a running one is reused)."""
    server = EmbeddedServer(settings().home)
    started = server.start()
    print(f"{'started' if started else 'already running'}: pid {server.pid()}, socket {server.socket}")


@db_app.command("stop")
def db_stop() -> None:
    """Save and stop the embedded server."""
    server = EmbeddedServer(settings().home)
    print("stopped" if server.stop() else "not running")


@db_app.command("status")
def db_status() -> None:
    """Whether the embedded server runs, and where its data lives."""
    config = settings()
    status = EmbeddedServer(config.home).status()
    for key, value in status.items():
        print(f"{key}: {value}")
    if config.neo4j_uri:
        print(f"note: NEO4J_URI is set, so commands use Neo4j at {neo4j_address(config.neo4j_uri)}, not this server")


def _parse_param(text: str) -> tuple[str, object]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise UserError(f"--param {shown(text)} is not k=v")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value
