"""The `neurocypher` command line."""

import csv
import json
import os
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from queries import EmbeddedServer, UserError, connect, settings
from queries.errors import clip, shown
from queries.store import neo4j_address

app = typer.Typer(no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False,
                  help="Open up trained neural networks as a graph you can query with Cypher.")
db_app = typer.Typer(no_args_is_help=True, help="Manage the embedded FalkorDB server.")
app.add_typer(db_app, name="db")


class Format(str, Enum):
    table = "table"
    json = "json"
    csv = "csv"


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
def demo() -> None:
    """Train the demo models on scikit-learn's digits, analyse them and store them."""
    from ingest.demo import run_demo

    with connect() as store:
        run_demo(store, settings().home / "demo")
        print(f"{len(store.models())} model(s) stored ({store.backend}). "
              "Next: neurocypher models; neurocypher app (then open the address it prints)")


@app.command()
def ingest(
    model: Annotated[str, typer.Option(help="FILE.py:FACTORY, a function returning the torch.nn.Module")],
    data: Annotated[str, typer.Option(help="FILE.npz or FILE.pt with X and y, or sklearn:digits|wine|breast_cancer")],
    name: Annotated[str, typer.Option(help="model id in the store: letters, digits, . _ -")],
    weights: Annotated[Optional[Path], typer.Option(help="state dict saved with torch.save")] = None,
    replace: Annotated[bool, typer.Option(help="replace a stored model of the same name")] = False,
    layers: Annotated[Optional[str], typer.Option(help="comma-separated module names to neuronize")] = None,
    batch_size: Annotated[int, typer.Option(min=1)] = 256,
    bins: Annotated[int, typer.Option(min=2, max=64, help="equal-frequency bins per neuron for MI")] = 8,
    top_k: Annotated[int, typer.Option(min=1, help="strongest significant flow edges kept into each neuron")] = 32,
    weight_coupled: Annotated[bool, typer.Option(help="flow = MI x |weight|, renormalised per target")] = False,
    deletion: Annotated[bool, typer.Option(help="run the attribution deletion check")] = True,
    methods: Annotated[str, typer.Option(help="community methods, comma-separated: innersight,flow,weights,"
                                              "relay (empty: none)")] = "innersight,flow,weights,relay",
    close_to_mean: Annotated[bool, typer.Option(help="close communities to their mean instead of 0")] = False,
    close_pairs: Annotated[bool, typer.Option(help="also close every pair of communities within a layer")] = False,
    relay_states: Annotated[int, typer.Option(min=2, help="joint states a group is coarse-grained to")] = 16,
    relay_keep: Annotated[float, typer.Option(min=0.01, max=1.0, help="share of I_R a relay module keeps")] = 0.9,
    binarization: Annotated[str, typer.Option(help="kmeans (2-means per neuron) or median")] = "kmeans",
) -> None:
    """Neuronize a model on a labelled dataset, measure its information flow, and store the result."""
    from ingest import analyze, write
    from ingest.analysis import check_model_name
    from ingest.data import load_data
    from ingest.modelfile import load_model
    from ingest.summary import summary
    from queries.store import already_stored

    check_model_name(name)
    dataset = load_data(data)
    module = load_model(model, weights)
    with connect() as store:
        if not replace and store.has_model(name):  # fail before the analysis, not after
            raise already_stored(name)
        analysis = analyze(module, dataset.X, dataset.y, name=name, **dataset.analyze_kwargs,
                           batch_size=batch_size, bins=bins, top_k=top_k, weight_coupled=weight_coupled,
                           deletion=deletion, methods=_split(methods), close_to_mean=close_to_mean,
                           close_pairs=close_pairs, relay_states=relay_states, relay_keep=relay_keep,
                           binarization=binarization, layers=_split(layers))
        analysis.params["source"] = source_of(model, weights, data)
        write(store, analysis, replace=replace)
    print(f"stored {summary(analysis)}")


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
            stored = ", ".join(m["model_id"] for m in store.models()) or "none"
            raise UserError(f"no model named {shown(name)} is stored; stored models: {stored}")
    print(f"dropped {name}")


@app.command()
def query(
    name: Annotated[Optional[str], typer.Argument(help="a named query (see --list)")] = None,
    cypher: Annotated[Optional[str], typer.Option(help="your own read-only Cypher instead")] = None,
    param: Annotated[Optional[list[str]], typer.Option(help="k=v, repeatable; v is read as JSON when it parses")] = None,
    model: Annotated[Optional[str], typer.Option(help="the model (the embedded store keeps one graph per model)")] = None,
    list_queries: Annotated[bool, typer.Option("--list", help="list the named queries")] = False,
    fmt: Annotated[Format, typer.Option("--format")] = Format.table,
) -> None:
    """Ask a named question (`query relay-path --param model=m --param class=3`) or run read-only
    Cypher (`query --cypher "..."`); writes are refused."""
    from queries.library import QUERIES

    if list_queries:
        for named in QUERIES.values():
            print(named.describe())
        return
    if bool(name) == bool(cypher):
        raise UserError("give a query name (see `neurocypher query --list`) or --cypher \"...\", not both or neither")
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
    from queries.matching import match_communities

    if len(models) < 2:
        raise UserError("compare needs at least two model ids")
    with connect() as store:
        rows = store.ask("compare", models=models, method=method, **{"class": class_index})
        matches = match_communities(store, models[0], models[1], method)
    if fmt is Format.json:
        print(json.dumps({"models": rows, "matches": matches}, indent=2, default=str))
    else:
        print_rows(rows, fmt)
        print()
        print_rows(matches, fmt)


@app.command()
def debug(name: str, sample: int, fmt: Annotated[Format, typer.Option("--format")] = Format.table) -> None:
    """Which NeurFlow groups fire on one sample, and how the logits move when each is masked."""
    from ingest.debug import debug_stored

    with connect() as store:
        head, rows = debug_stored(store, name, sample)
    verdict = "misclassified" if head["true"] != head["predicted"] else "classified correctly"
    print(f"sample {sample}: true class {head['true']}, predicted {head['predicted']} ({verdict})", file=sys.stderr)
    print_rows(rows, fmt)


def source_of(model: str, weights: Path | None, data: str) -> dict:
    """Where a model and its data came from (absolute paths), so that `debug` can reload them."""
    path, _, factory = model.rpartition(":")
    return {"model": f"{Path(path).resolve()}:{factory}", "weights": str(weights.resolve()) if weights else None,
            "data": data if data.startswith("sklearn:") else str(Path(data).resolve())}


@app.command("app")
def run_app(
    port: Annotated[int, typer.Option()] = 8501,
    address: Annotated[str, typer.Option(help="interface to listen on (0.0.0.0 inside a container)")] = "127.0.0.1",
) -> None:
    """Start the Streamlit explorer (on 127.0.0.1 unless told otherwise)."""
    import app as app_package

    connect().close()  # starts the embedded server when needed
    main_page = Path(app_package.__file__).parent / "main.py"
    print(f"neurocypher app: http://{address}:{port}", flush=True)
    # this process becomes streamlit, so that a signal to it (Ctrl-C, a service manager) stops the app
    os.execv(sys.executable, [sys.executable, "-m", "streamlit", "run", str(main_page),
                              "--server.address", address, "--server.port", str(port), "--server.headless", "true",
                              "--browser.gatherUsageStats", "false", "--global.developmentMode", "false",
                              "--client.toolbarMode", "minimal"])


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


def print_rows(rows: list[dict], fmt: Format) -> None:
    columns = list(dict.fromkeys(key for row in rows for key in row))
    if fmt is Format.json:
        print(json.dumps(rows, indent=2, default=str))
    elif fmt is Format.csv:
        writer = csv.DictWriter(sys.stdout, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows({k: _cell(v) for k, v in row.items()} for row in rows)
    else:
        table = Table(*columns)
        for row in rows:
            table.add_row(*(_cell(row.get(column)) for column in columns))
        console = Console()
        if not console.is_terminal:
            console = Console(width=240)
        console.print(table if rows else "(no rows)")


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, dict)):
        return json.dumps(value, default=str)
    return "" if value is None else str(value)


def _split(text: str | None) -> list[str]:
    return [part.strip() for part in (text or "").split(",") if part.strip()]


def _parse_param(text: str) -> tuple[str, object]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise UserError(f"--param {shown(text)} is not k=v")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value
