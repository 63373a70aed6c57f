"""The commands that analyse models: `ingest`, `demo`, `debug` and `methods` (the root command line
is `neurocypher.cli`). Their options' defaults, help and bounds come from their declaration in
`ingest.options.AnalysisOptions` (checked there, as for the Python API) and the method registry."""

from pathlib import Path
from typing import Annotated, Optional

import typer

from neurocypher.config import settings
from neurocypher.errors import UserError
from neurocypher.output import Format, print_rows
from neurocypher.queries import connect
from neurocypher.queries.store import already_stored

from .bounds import help_of
from .data import BUILTIN_SPECS
from .methods import METHODS, table
from .modelfile import source_of
from .options import AnalysisOptions

commands = typer.Typer()
DEFAULT = AnalysisOptions()


def _help(name: str) -> str:
    return help_of(AnalysisOptions, name)


@commands.command()
def ingest(
    model: Annotated[str, typer.Option(help="FILE.py:FACTORY, a function returning the torch.nn.Module")],
    data: Annotated[
        str,
        typer.Option(
            help="FILE.npz or FILE.pt with X and y (text: integer token ids, optionally attention_mask and vocab), "
            "FILE.py:FACTORY (a function returning them, or a torch Dataset), or " + "|".join(BUILTIN_SPECS)
        ),
    ],
    name: Annotated[str, typer.Option(help="model id in the store: letters, digits, . _ -")],
    weights: Annotated[Optional[Path], typer.Option(help="state dict saved with torch.save")] = None,
    checkpoints: Annotated[
        Optional[str],
        typer.Option(
            help="a quoted glob of training checkpoints ('ckpts/*.pt'), each analysed and stored as "
            "NAME-stepSTEP, the series as NAME (see `query evolution`)"
        ),
    ] = None,
    replace: Annotated[bool, typer.Option(help="replace a stored model of the same name")] = False,
    layers: Annotated[Optional[str], typer.Option(help=_help("layers") + ", comma-separated")] = None,
    token_reduce: Annotated[str, typer.Option(help=_help("token_reduce"))] = DEFAULT.token_reduce,
    logits: Annotated[str, typer.Option(help=_help("logits"))] = DEFAULT.logits,
    batch_size: Annotated[int, typer.Option(help=_help("batch_size"))] = DEFAULT.batch_size,
    device: Annotated[str, typer.Option(help=_help("device"))] = DEFAULT.device,
    memory_budget: Annotated[float, typer.Option(help=_help("memory_budget"))] = DEFAULT.memory_budget,
    bins: Annotated[int, typer.Option(help=_help("bins"))] = DEFAULT.bins,
    top_k: Annotated[int, typer.Option(help=_help("top_k"))] = DEFAULT.top_k,
    weight_coupled: Annotated[bool, typer.Option(help=_help("weight_coupled"))] = DEFAULT.weight_coupled,
    deletion: Annotated[bool, typer.Option(help=_help("deletion"))] = DEFAULT.deletion,
    deletion_samples: Annotated[int, typer.Option(help=_help("deletion_samples"))] = DEFAULT.deletion_samples,
    methods: Annotated[
        str,
        typer.Option(
            help=_help("methods")
            + ", comma-separated, of: "
            + ", ".join(METHODS)
            + " (empty: none; see `neurocypher methods`)"
        ),
    ] = ",".join(DEFAULT.methods),
    option: Annotated[
        Optional[list[str]],
        typer.Option(help="a method's own option, METHOD.NAME=VALUE, repeatable (see `neurocypher methods`)"),
    ] = None,
    close_to_mean: Annotated[bool, typer.Option(help=_help("close_to_mean"))] = DEFAULT.close_to_mean,
    close_pairs: Annotated[bool, typer.Option(help=_help("close_pairs"))] = DEFAULT.close_pairs,
    shortcuts: Annotated[bool, typer.Option(help=_help("shortcuts"))] = DEFAULT.shortcuts,
    chain_draws: Annotated[int, typer.Option(help=_help("chain_draws"))] = DEFAULT.chain_draws,
    relay_states: Annotated[int, typer.Option(help=_help("relay_states"))] = DEFAULT.relay_states,
    binarization: Annotated[str, typer.Option(help=_help("binarization"))] = DEFAULT.binarization,
) -> None:
    """Neuronize a model on a labelled dataset, measure its information flow, and store the result."""
    from .analysis import check_model_name
    from .data import load_data
    from .modelfile import load_model
    from .pipeline import analyze
    from .summary import summary
    from .writer import write

    check_model_name(name)
    options = AnalysisOptions(
        layers=_split(layers),
        token_reduce=token_reduce,
        logits=logits,
        batch_size=batch_size,
        device=device,
        memory_budget=memory_budget,
        bins=bins,
        top_k=top_k,
        weight_coupled=weight_coupled,
        deletion=deletion,
        deletion_samples=deletion_samples,
        methods=_split(methods),
        close_to_mean=close_to_mean,
        close_pairs=close_pairs,
        shortcuts=shortcuts,
        chain_draws=chain_draws,
        relay_states=relay_states,
        binarization=binarization,
    )
    for setting in option or []:
        options = options.with_method_option(setting)
    dataset = load_data(data)
    if checkpoints is not None:
        if weights is not None:
            raise UserError("give --weights (one model) or --checkpoints (a series), not both")
        return _ingest_series(model, checkpoints, data, dataset, name, replace, options)
    module = load_model(model, weights)
    with connect() as store:
        if not replace and store.has_model(name):  # fail before the analysis, not after
            raise already_stored(name)
        analysis = analyze(module, dataset.X, dataset.y, name=name, **dataset.analyze_kwargs, options=options)
        analysis.source = source_of(model, weights, data)
        text = summary(analysis)
        write(store, analysis, replace=replace)
    print(f"stored {text}")


@commands.command()
def demo() -> None:
    """Train the demo models on scikit-learn's digits, analyse them and store them."""
    from .demo import run_demo

    with connect() as store:
        run_demo(store, settings().home / "demo")
        print(
            f"{len(store.models())} model(s) stored ({store.backend}). "
            "Next: neurocypher models; neurocypher app (then open the address it prints)"
        )


@commands.command()
def debug(name: str, sample: int, fmt: Annotated[Format, typer.Option("--format")] = Format.table) -> None:
    """Which NeurFlow groups fire on one sample, and how the logits move when each is masked."""
    import sys

    from .debug import debug_stored

    with connect() as store:
        head, rows = debug_stored(store, name, sample)
    verdict = "misclassified" if head["true"] != head["predicted"] else "classified correctly"
    print(f"sample {sample}: true class {head['true']}, predicted {head['predicted']} ({verdict})", file=sys.stderr)
    print_rows(rows, fmt)


@commands.command("methods")
def list_methods() -> None:
    """The community methods, their references and their options (set one with `ingest --option`)."""
    print(table())
    print()
    for name, method in METHODS.items():
        defaults = method.options().__dict__
        print(f"{name} options: " + (", ".join(f"{key}={value}" for key, value in defaults.items()) or "none"))


def _ingest_series(
    model: str, pattern: str, data: str, dataset, name: str, replace: bool, options: AnalysisOptions
) -> None:
    from .checkpoints import ingest_series, load_checkpoints
    from .modelfile import load_model

    found = load_checkpoints(pattern)
    load_model(model)  # a bad model file fails here, before the first checkpoint is read into it
    with connect() as store:
        analyses = ingest_series(
            store,
            lambda: load_model(model),
            found,
            dataset.X,
            dataset.y,
            name=name,
            replace=replace,
            source=source_of(model, None, data),
            options=options,
            **dataset.analyze_kwargs,
        )
    for analysis, checkpoint in zip(analyses, found):
        print(f"stored {analysis.name}: step {checkpoint.step}, accuracy {analysis.accuracy:.3f}")
    print(
        f"stored series {name}: {len(found)} checkpoints. Next: neurocypher query evolution "
        f"--param model={name} --param class=0"
    )


def _split(text: str | None) -> list[str]:
    return [part.strip() for part in (text or "").split(",") if part.strip()]
