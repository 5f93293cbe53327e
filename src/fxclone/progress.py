"""Progress display for long work (rich), as simple ``(done, total)`` callbacks."""

from __future__ import annotations

import sys
from collections.abc import Callable

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn

_console = Console(stderr=True)


def progress_callback(label: str) -> Callable[[int, int], None]:
    """Return ``cb(done, total)`` that draws a bar on stderr and closes itself at 100 %.

    On a non-interactive stream (CI logs) it prints nothing.
    """
    if not sys.stderr.isatty():
        return lambda done, total: None
    bar = Progress(
        TextColumn(f"[bold]{label}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeRemainingColumn(),
        console=_console,
        transient=True,
    )
    task = None

    def update(done: int, total: int) -> None:
        nonlocal task
        if task is None:
            bar.start()
            task = bar.add_task(label, total=total)
        bar.update(task, completed=done, total=total)
        if done >= total:
            bar.stop()

    return update
