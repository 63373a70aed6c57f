"""Write docs/cli.md from the command line itself: every `neurocypher` command and subcommand, its
usage, its help and its parameters, as typer's click sees them (the text `--help` prints, as Markdown).

    .venv/bin/python docs/generate_cli.py

`tests/test_docs.py` fails while the committed page differs from what this renders.
"""

from pathlib import Path

import typer
from typer.core import TyperGroup

from neurocypher.cli import app

PAGE = Path(__file__).with_name("cli.md")
HEADER = (
    "Generated from the command line by `docs/generate_cli.py`: after changing a command, run "
    "`.venv/bin/python docs/generate_cli.py` to write this page again.\n\n"
    "# Command line\n\n"
    "Every command and subcommand of `neurocypher`, as its `--help` describes it (each also takes "
    "`--help`). Bad input ends with one line on stderr, starting `error:`, and exit status 2; nothing is "
    "written. What goes into `ingest` (model files, data, layers) is in [Models, layers and data](models.md)."
)


def render() -> str:
    """The Markdown page: the header, then one section per command, depth first in listed order."""
    root = typer.main.get_command(app)
    sections = [HEADER] + [_section(ctx) for ctx in _contexts(typer.Context(root, info_name="neurocypher"))]
    return "\n\n".join(sections) + "\n"


def _contexts(ctx: typer.Context):
    """`ctx` and the context of every command below it, in the order `--help` lists them (read before
    a lazily loaded command is first loaded, which appends it to the group)."""
    command = ctx.command
    names = command.list_commands(ctx) if isinstance(command, TyperGroup) else []
    yield ctx
    for name in names:
        yield from _contexts(typer.Context(command.get_command(ctx, name), info_name=name, parent=ctx))


def _section(ctx: typer.Context) -> str:
    """One command: its heading, usage, help and parameters (or subcommands)."""
    command = ctx.command
    parts = [f"## {ctx.command_path}", f"```\n{command.get_usage(ctx)}\n```", command.help or ""]
    if isinstance(command, TyperGroup):
        parts.append(_subcommand_table(ctx))
    rows = [record for param in command.get_params(ctx) if (record := _parameter(param, ctx))]
    if rows:
        parts.append("| parameter | meaning |\n|---|---|\n" + "\n".join(f"| {name} | {text} |" for name, text in rows))
    return "\n\n".join(part for part in parts if part)


def _subcommand_table(ctx: typer.Context) -> str:
    """A group's subcommands, each linked to its section, with its short help."""
    group = ctx.command
    rows = []
    for name in group.list_commands(ctx):
        sub = group.get_command(ctx, name)
        anchor = f"{ctx.command_path} {name}".replace(" ", "-")
        rows.append(f"| [`{name}`](#{anchor}) | {_cell(sub.get_short_help_str(limit=200))} |")
    return "| command | what it does |\n|---|---|\n" + "\n".join(rows)


def _parameter(param, ctx: typer.Context) -> tuple[str, str] | None:
    """A parameter's name and help as `--help` shows them; None for `--help` itself."""
    if param.name == "help":
        return None
    record = param.get_help_record(ctx)
    if record is None:
        return None
    name, text = record
    return f"`{_cell(name)}`", _cell(text)


def _cell(text: str) -> str:
    """Text for one cell of a Markdown table: on one line, its pipes escaped."""
    return " ".join(text.split()).replace("|", "\\|")


def main() -> None:
    PAGE.write_text(render())
    print(f"wrote {PAGE}")


if __name__ == "__main__":
    main()
