"""Showing a run as it happens: a live display on a terminal, one line per event elsewhere.

Both are run observers (see :mod:`flowweaver._events`). An observer is called on the run's
event loop thread and must be quick, so neither draws anything heavy there: the plain one
writes a line; the live one only updates :class:`RunState` under a lock, and rich's own
refresh thread (``Live``, a few times a second) reads it and redraws.

Items of a mapped task arrive as task events with ``item`` set (``task`` is
``process_file[3]``); they are counted per mapped task, never as tasks, so "3 of 4 tasks"
stays true of the workflow's own tasks however many items a map has.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from .._events import (
    RunEvent,
    RunFinished,
    RunStarted,
    TaskCancelled,
    TaskCompleted,
    TaskEvent,
    TaskFailed,
    TaskRestored,
    TaskRetrying,
    TaskSkipped,
    TaskStarted,
)
from ._output import describe_error, format_clock, format_duration, write_line

if TYPE_CHECKING:
    from .._task import Task

# The live display lists at most this many running tasks, then "and N more".
_SHOWN_RUNNING = 8


@dataclass
class _Running:
    since: float
    attempt: int
    retrying: bool = False


@dataclass
class ItemCounts:
    """How one mapped task's items ended so far, counted from their events."""

    done: int = 0
    restored: int = 0
    failed: list[str] = field(default_factory=list)
    skipped: int = 0


def map_task_of(event: TaskEvent) -> str:
    """The mapped task an item event is about: ``"p"`` for ``"p[3]"``."""
    return event.task[: -len(str(event.item)) - 2]


@dataclass
class RunState:
    """What the displays know about a run, updated from its events.

    :ivar mapped: the workflow's mapped tasks by name; how many items each has so far is
        read from the task itself (it knows them all once it expanded, before they ran).
    """

    workflow: str
    total: int
    mapped: dict[str, Task] = field(default_factory=dict)
    items: dict[str, ItemCounts] = field(default_factory=dict)
    began: float | None = None
    completed: int = 0
    restored: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    skipped: int = 0
    cancelled: int = 0
    running: dict[str, _Running] = field(default_factory=dict)
    finished: RunFinished | None = None
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def apply(self, event: RunEvent) -> None:
        with self.lock:
            if isinstance(event, TaskEvent):
                self._track(event)
                if event.item is not None:
                    self._count_item(event)
                else:
                    self._count_task(event)
            elif isinstance(event, RunStarted):
                self.began = event.timestamp
                self.total = event.total
            elif isinstance(event, RunFinished):
                self.finished = event

    def _track(self, event: TaskEvent) -> None:
        """What is running now: tasks and items alike."""
        if isinstance(event, TaskStarted):
            current = self.running.get(event.task)
            since = current.since if current is not None else event.timestamp
            self.running[event.task] = _Running(since, event.attempt)
        elif isinstance(event, TaskRetrying):
            current = self.running.get(event.task)
            if current is not None:
                current.retrying = True
        elif isinstance(event, (TaskCompleted, TaskFailed, TaskCancelled)):
            self.running.pop(event.task, None)

    def _count_task(self, event: TaskEvent) -> None:
        if isinstance(event, TaskCompleted):
            self.completed += 1
        elif isinstance(event, TaskFailed):
            self.failed.append(event.task)
        elif isinstance(event, TaskSkipped):
            self.skipped += 1
        elif isinstance(event, TaskRestored):
            self.restored.append(event.task)
        elif isinstance(event, TaskCancelled):
            self.cancelled += 1

    def _count_item(self, event: TaskEvent) -> None:
        """Items count per mapped task, never as tasks."""
        counts = self.items.setdefault(map_task_of(event), ItemCounts())
        if isinstance(event, TaskCompleted):
            counts.done += 1
        elif isinstance(event, TaskFailed):
            counts.failed.append(event.task)
        elif isinstance(event, TaskSkipped):
            counts.skipped += 1
        elif isinstance(event, TaskRestored):
            counts.restored += 1

    def item_counts(self) -> list[tuple[str, int, int, int, int, int]]:
        """Each mapped task with items so far: ``(name, known, done, restored, failed,
        skipped)``, where ``known`` is how many items it has (ended or not). Call with the
        lock held."""
        out = []
        for name, c in self.items.items():
            task = self.mapped.get(name)
            # its items are all known once it expanded, before they run
            known = len(task.items) if task is not None else 0
            out.append((name, known, c.done, c.restored, len(c.failed), c.skipped))
        return out

    def elapsed(self, now: float | None = None) -> float:
        if self.began is None:
            return 0.0
        if self.finished is not None:
            return self.finished.duration
        return (time.time() if now is None else now) - self.began


def event_line(event: RunEvent, began: float | None) -> str | None:
    """The plain line for ``event``: ``[  1.25s] completed  load (0.40 s)``."""
    offset = event.timestamp - began if began is not None else 0.0
    stamp = f"[{offset:7.2f}s]"
    if isinstance(event, RunStarted):
        return f"{stamp} run        {event.workflow}: {event.total} tasks"
    if isinstance(event, TaskStarted):
        again = f" (attempt {event.attempt})" if event.attempt > 1 else ""
        return f"{stamp} started    {event.task}{again}"
    if isinstance(event, TaskRetrying):
        wait = f"; next attempt in {format_duration(event.delay)}" if event.delay else ""
        return (
            f"{stamp} retrying   {event.task} (attempt {event.attempt} failed: "
            f"{describe_error(event.error)}{wait})"
        )
    if isinstance(event, TaskCompleted):
        return f"{stamp} completed  {event.task} ({format_duration(event.duration)})"
    if isinstance(event, TaskFailed):
        tries = "1 attempt" if event.attempts == 1 else f"{event.attempts} attempts"
        return f"{stamp} FAILED     {event.task} after {tries}: {describe_error(event.error)}"
    if isinstance(event, TaskSkipped):
        why = event.reason or f"upstream task {event.upstream!r} failed"
        return f"{stamp} skipped    {event.task} ({why})"
    if isinstance(event, TaskRestored):
        return f"{stamp} restored   {event.task} (saved result)"
    if isinstance(event, TaskCancelled):
        return f"{stamp} cancelled  {event.task} (interrupted; it runs again next time)"
    if isinstance(event, RunFinished):
        return (
            f"{stamp} finished   {event.workflow}: {event.status} in "
            f"{format_duration(event.duration)}"
        )
    return None


class PlainProgress:
    """Writes one line per event to stdout, flushed at once (for logs and pipes)."""

    def __init__(self, state: RunState) -> None:
        self.state = state

    def __call__(self, event: RunEvent) -> None:
        state = self.state
        state.apply(event)
        line = event_line(event, state.began)
        if line is None:
            return
        if isinstance(event, (TaskCompleted, TaskFailed)) and event.task in state.items:
            # a mapped task ended: its items, counted (each had a line of its own)
            c = state.items[event.task]
            line += f": {c.done + c.restored} items done, {len(c.failed)} failed"
        write_line(line)

    def __enter__(self) -> PlainProgress:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None


class LiveProgress:
    """A live display on the terminal: counts, a bar, the running tasks, elapsed time.

    Retries and failures are also printed above it as they happen, so they stay on screen
    after the display is gone.
    """

    def __init__(self, state: RunState, console: Console) -> None:
        self.state = state
        self.console = console
        # The display is drawn by rich's refresh thread from __rich__; stdout and stderr
        # are redirected above it, so the tasks' own prints do not tear it.
        self.live = Live(self, console=console, refresh_per_second=8, transient=True)

    def __call__(self, event: RunEvent) -> None:
        self.state.apply(event)
        if isinstance(event, (TaskRetrying, TaskFailed)):
            line = event_line(event, self.state.began)
            if line is not None:
                style = "red" if isinstance(event, TaskFailed) else "magenta"
                self.console.print(Text(line, style=style))

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
        with state.lock:
            done = state.completed + len(state.restored)
            failed = len(state.failed)
            settled = done + failed + state.skipped
            running = sorted(state.running.items(), key=lambda item: item[1].since)
            elapsed = state.elapsed(now)
            total = state.total
            maps = state.item_counts()

        head = Table.grid(padding=(0, 1))
        head.add_column()
        head.add_column(ratio=1)
        head.add_column(justify="right")
        head.add_row(
            Text(state.workflow, style="bold"),
            ProgressBar(total=max(total, 1), completed=settled),
            Text(f"{settled}/{total}  {format_clock(elapsed)}"),
        )
        counts = Text()
        counts.append(f"{done} done", style="green")
        if state.restored:
            counts.append(f" ({len(state.restored)} restored)", style="green")
        counts.append(" · ")
        counts.append(f"{len(running)} running", style="cyan")
        counts.append(" · ")
        counts.append(f"{failed} failed", style="bold red" if failed else "")
        counts.append(" · ")
        counts.append(f"{state.skipped} skipped", style="yellow" if state.skipped else "")
        parts: list[RenderableType] = [head, counts]
        parts.extend(_item_line(*counts) for counts in maps)
        for name, info in running[:_SHOWN_RUNNING]:
            line = Text("  ▶ ", style="cyan")
            line.append(name)
            line.append(f"  {_running_for(now - info.since)}", style="dim")
            if info.attempt > 1 or info.retrying:
                note = "waiting to retry" if info.retrying else f"attempt {info.attempt}"
                line.append(f"  ({note})", style="magenta")
            parts.append(line)
        if len(running) > _SHOWN_RUNNING:
            parts.append(Text(f"  … and {len(running) - _SHOWN_RUNNING} more", style="dim"))
        return Group(*parts)


def _item_line(name: str, known: int, ran: int, restored: int, failed: int, skipped: int) -> Text:
    """``  ▦ process_file  57/120 items done (3 restored) · 2 failed · 1 skipped``."""
    done = ran + restored
    line = Text("  ▦ ", style="cyan")
    line.append(name)
    line.append(f"  {done}/{max(known, done + failed + skipped)} items done", style="green")
    if restored:
        line.append(f" ({restored} restored)", style="green")
    if failed:
        line.append(" · ")
        line.append(f"{failed} failed", style="bold red")
    if skipped:
        line.append(" · ")
        line.append(f"{skipped} skipped", style="yellow")
    return line


def _running_for(seconds: float) -> str:
    """``"0.4s"`` for a task running under a minute (a moving number shows it is alive),
    ``m:ss`` after."""
    return f"{max(seconds, 0.0):.1f}s" if seconds < 60 else format_clock(seconds)
