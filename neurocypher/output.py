"""Rows on stdout, as the commands print them: a table (on a terminal, or 240 characters wide),
JSON or CSV (`--format`)."""

import csv
import json
import sys
from enum import Enum

from rich.console import Console
from rich.table import Table


class Format(str, Enum):
    table = "table"
    json = "json"
    csv = "csv"


def print_rows(rows: list[dict], fmt: Format) -> None:
    """Print `rows` as `fmt` says; the columns are every key of the rows, in the order first met."""
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
