"""The live display on a terminal: counts, a bar, the tasks running longest, elapsed time.

The observer call only updates :class:`~._state.RunState`; rich's own
refresh thread (``Live``, four times a second) reads it and redraws. What a redraw
costs does not grow with the run: at most :data:`_SHOWN_RUNNING` running tasks (the
longest-running, found without sorting them all) and :data:`_SHOWN_MAPS` maps are drawn,
the rest counted. ``benchmarks/progress.py`` measures what the display costs a run of
100,000 no-op tasks.
"""

from __future__ import annotations

import time
from collections import Counter
from types import TracebackType

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from .._events import RunEvent, TaskFailed, TaskRetrying
from ._lines import event_line
from ._output import format_clock
from ._state import RunState, map_task_of

# The display lists at most this many running tasks and maps, then "and N more".
_SHOWN_RUNNING = 8
_SHOWN_MAPS = 5
# Lines printed above the display: at most this many retries and failures (of tasks; of
# items, per map), then they are only counted in it.
_PRINTED = 10
_PRINTED_ITEMS = 5
# Redraws a second: a moving clock needs no more, and each redraw holds the GIL.
_REFRESH = 4


class LiveProgress:
    """A live display on the terminal: counts, a bar, the running tasks, elapsed time.

    Retries and failures are also printed above it as they happen (the first few; the rest
    are counted), so they stay on screen after the display is gone.

    :param verbose: print every event's line above the display.
    """

    def __init__(self, state: RunState, console: Console, *, verbose: bool = False) -> None:
        self.state = state
        self.console = console
        self.verbose = verbose
        self._printed: Counter[str] = Counter()
        # The display is drawn by rich's refresh thread from __rich__; stdout and stderr
        # are redirected above it, so the tasks' own prints do not tear it.
        self.live = Live(self, console=console, refresh_per_second=_REFRESH, transient=True)

    def __call__(self, event: RunEvent) -> None:
        self.state.apply(event)
        if self.verbose or (
            isinstance(event, (TaskRetrying, TaskFailed)) and self._print_more(event)
        ):
            text = event_line(event, self.state.began)
            if text is not None:
                self.console.print(Text(text, style=_style(event)))

    def _print_more(self, event: TaskRetrying | TaskFailed) -> bool:
        kind = type(event).__name__
        if event.item is not None:
            kind += map_task_of(event)
            cap = _PRINTED_ITEMS
        else:
            cap = _PRINTED
        self._printed[kind] += 1
        return self._printed[kind] <= cap

    def __enter__(self) -> LiveProgress:
        self.live.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.live.stop()

    def __rich__(self) -> RenderableType:
        state = self.state
        now = time.time()
        done = state.completed + len(state.restored)
        failed = len(state.failed)
        settled = done + failed + state.skipped
        n_running = len(state.running)
        again, waiting = state.again.copy(), state.waiting.copy()
        shown = [
            (name, since, again.get(name, 1), name in waiting)
            for name, since in state.longest_running(_SHOWN_RUNNING)
        ]
        elapsed = state.elapsed(now)
        total = state.total
        maps = state.item_counts()
        n_restored = len(state.restored)
        skipped = state.skipped
        ran = state.ran()

        head = Table.grid(padding=(0, 1))
        head.add_column()
        head.add_column(ratio=1)
        head.add_column(justify="right")
        head.add_row(
            Text(state.workflow, style="bold"),
            ProgressBar(total=max(total, 1), completed=settled),
            Text(f"{settled:,}/{total:,}  {format_clock(elapsed)}"),
        )
        counts = Text()
        counts.append(f"{done:,} done", style="green")
        if n_restored:
            counts.append(f" ({n_restored:,} restored)", style="green")
        counts.append(" · ")
        counts.append(f"{n_running:,} running", style="cyan")
        counts.append(" · ")
        counts.append(f"{failed:,} failed", style="bold red" if failed else "")
        counts.append(" · ")
        counts.append(f"{skipped:,} skipped", style="yellow" if skipped else "")
        if elapsed >= 1 and ran:
            counts.append(f" · {ran / elapsed:,.0f} tasks/s", style="dim")
        parts: list[RenderableType] = [head, counts]
        # maps with items still to go first, then the finished ones
        maps.sort(key=lambda m: m[1] <= m[2] + m[3] + m[4] + m[5])
        parts.extend(_item_line(*m) for m in maps[:_SHOWN_MAPS])
        if len(maps) > _SHOWN_MAPS:
            parts.append(Text(f"  … and {len(maps) - _SHOWN_MAPS:,} more maps", style="dim"))
        for name, since, attempt, retrying in shown:
            line = Text("  ▶ ", style="cyan")
            line.append(name)
            line.append(f"  {_running_for(now - since)}", style="dim")
            if attempt > 1 or retrying:
                note = "waiting to retry" if retrying else f"attempt {attempt}"
                line.append(f"  ({note})", style="magenta")
            parts.append(line)
        if n_running > _SHOWN_RUNNING:
            parts.append(Text(f"  … and {n_running - _SHOWN_RUNNING:,} more", style="dim"))
        return Group(*parts)


def _style(event: RunEvent) -> str:
    if isinstance(event, TaskFailed):
        return "red"
    return "magenta" if isinstance(event, TaskRetrying) else ""


def _item_line(name: str, known: int, ran: int, restored: int, failed: int, skipped: int) -> Text:
    """``  ▦ process_file  57/120 items done (3 restored) · 2 failed · 1 skipped``."""
    done = ran + restored
    line = Text("  ▦ ", style="cyan")
    line.append(name)
    line.append(f"  {done:,}/{max(known, done + failed + skipped):,} items done", style="green")
    if restored:
        line.append(f" ({restored:,} restored)", style="green")
    if failed:
        line.append(" · ")
        line.append(f"{failed:,} failed", style="bold red")
    if skipped:
        line.append(" · ")
        line.append(f"{skipped:,} skipped", style="yellow")
    return line


def _running_for(seconds: float) -> str:
    """``"0.4s"`` for a task running under a minute (a moving number shows it is alive),
    ``m:ss`` after."""
    return f"{max(seconds, 0.0):.1f}s" if seconds < 60 else format_clock(seconds)
