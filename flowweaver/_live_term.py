"""``flowweaver.progress()`` on a terminal: rich's live display. Imported only there.

The observer's counts (:class:`flowweaver._live.RunTally`) are read by rich's own refresh
thread through :meth:`Terminal.__rich__`, a few times a second; the loop thread only
prints failures and retries above the display (the first few of each per run), so they
stay on screen once the display is gone. Tasks' own ``print`` output goes above it too
(rich redirects stdout and stderr while it is live).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from ._events import RunEvent, TaskFailed, TaskRetrying
from ._tally import Progress, RunTally, View, event_line, final_lines

if TYPE_CHECKING:
    from rich.console import ConsoleOptions, RenderResult

_STATUS_STYLE = {"COMPLETED": "green", "FAILED": "bold red", "CANCELLED": "yellow"}


class Terminal(View):
    """One live display for every run on at once; started by the first, stopped by the
    last."""

    def __init__(self, console: Console | None, refresh_per_second: float) -> None:
        self.console = console if console is not None else Console(stderr=True)
        self._refresh = refresh_per_second
        self._live: Live | None = None
        self._progress: Progress | None = None

    def started(self, progress: Progress, run: RunTally) -> None:
        self._progress = progress
        if self._live is None:
            self._live = Live(
                _Board(self),
                console=self.console,
                refresh_per_second=self._refresh,
                transient=True,
            )
            self._live.start()

    def changed(self, progress: Progress, run: RunTally, event: RunEvent) -> None:
        kind = type(event)
        if kind is TaskFailed or kind is TaskRetrying:
            with progress.lock:
                line = event_line(run, event)
            if line is not None:
                style = "red" if kind is TaskFailed else "magenta"
                self.console.print(Text(line, style=style))

    def finished(self, progress: Progress, run: RunTally) -> None:
        with progress.lock:
            lines = final_lines(run)
            last = not progress.runs
        if last and self._live is not None:
            self._live.stop()
            self._live = None
        status = run.finished.status if run.finished is not None else ""
        for i, line in enumerate(lines):
            self.console.print(Text(line, style=_STATUS_STYLE.get(status, "") if i == 0 else ""))


class _Board:
    """What the live display draws: per run a bar and counts, its maps, the tasks
    running longest, the last failures."""

    def __init__(self, terminal: Terminal) -> None:
        self._terminal = terminal

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield self._render()

    def _render(self) -> RenderableType:
        progress = self._terminal._progress
        if progress is None:
            return Text("")
        now = time.time()
        parts: list[RenderableType] = []
        with progress.lock:
            for run in progress.runs.values():
                head = Table.grid(padding=(0, 1))
                head.add_column()
                head.add_column(width=30)
                head.add_column()
                head.add_row(
                    Text(run.workflow, style="bold"),
                    ProgressBar(total=max(run.total, 1), completed=run.settled),
                    Text(f"{run.counts()} · {_clock(run.elapsed(now))}"),
                )
                parts.append(head)
                parts += [Text(f"  ▦ {line}", style="cyan") for line in run.map_lines()]
                parts += [Text(f"  ▶ {line}", style="dim") for line in run.running_lines(now)]
                parts += [Text(f"  ✗ {line}", style="red") for line in run.failures]
        return Group(*parts)


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}:{secs:02d}"
    return f"{minutes // 60}:{minutes % 60:02d}:{secs:02d}"
