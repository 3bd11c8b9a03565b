"""What a run shows on the terminal: its lines, the progress bar, the summary table. User text
(run names, overrides such as reg=[bn,l2]) is printed as text, never read as rich markup."""

from __future__ import annotations

import sys
from typing import Any, NoReturn

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from regbench.record import SHOWN, Summary

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


def say(line: str, prefix: str = "") -> None:
    """A run's line on stdout, after its dimmed run name where several runs share the terminal."""
    head = f"[dim]{escape(prefix)}[/dim]  " if prefix else ""
    console.print(head + escape(line), soft_wrap=True)


def warn(kind: str, line: str) -> None:
    """`error: ...`, `warning: ...`, `interrupted: ...` on stderr, as plain text."""
    err_console.print(f"{kind}: {line}", soft_wrap=True, markup=False)


def fail(msg: str, code: int) -> NoReturn:
    warn("error", msg)
    sys.exit(code)


def summary_table(summary: Summary) -> Table:
    t = Table(show_header=False)  # the folder goes on its own line: a title wraps mid-word
    for key in SHOWN:  # mc_test_acc only where there is one
        v = getattr(summary, key)
        if key == "mc_test_acc" and v is None:
            continue
        t.add_row(key, f"{v:.4f}" if isinstance(v, float) and key != "wall_seconds" else str(v))
    return t


class Bar:
    """The progress bar of a terminal (rich), one epoch at a time; nothing in plain mode."""

    def __init__(self, mode: str) -> None:
        self.p: Progress | None = None
        if mode == "bar" or (mode == "auto" and console.is_terminal):
            self.p = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                TextColumn("{task.fields[info]}"),
                console=console,
                transient=True,
            )
            self.p.start()
        self.task: Any = None

    def epoch(self, title: str, steps: int) -> None:
        if self.p:
            if self.task is not None:
                self.p.remove_task(self.task)
            self.task = self.p.add_task(title, total=steps, info="")

    def advance(self) -> None:
        if self.p:
            self.p.update(self.task, advance=1)

    def stop(self) -> None:
        if self.p:
            self.p.stop()
