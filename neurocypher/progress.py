"""Progress bars on stderr for work that can take more than a second (hidden when not a terminal).

Bars opened inside one another share one display, so a long run shows its stage and, under it, the
step the stage is at."""

from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

_console = Console(stderr=True)
_shown: list[Progress] = []  # the display the open bars share (none when no bar is open)


@contextmanager
def progress_bar(total: int, description: str):
    """Yield `advance(n=1, doing=None)`: n more done, and (when given) what is being done now; the
    bar disappears when the block ends."""
    if not _shown:
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        _shown.append(Progress(*columns, console=_console, transient=True, disable=not _console.is_terminal))
        _shown[0].start()
    display = _shown[0]
    task = display.add_task(description, total=total)

    def advance(n: int = 1, doing: str | None = None) -> None:
        display.update(task, advance=n, **({"description": f"{description}: {doing}"} if doing else {}))

    try:
        yield advance
    finally:
        display.remove_task(task)
        if not display.tasks:
            display.stop()
            _shown.clear()
