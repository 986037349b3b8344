"""What :func:`flowweaver.progress` knows of a run: counts kept from its events.

:class:`Progress` is the observer. On the loop thread it only counts (:class:`RunTally`: a
few dict and int updates under one lock per event); a view (``_live.py``,
``_live_term.py``) shows the counts, from threads of its own or rarely. A run is
recognised by its ``RunStarted`` and ended by its ``RunFinished``, which the engine always
sends (after a failure or an interruption too), so no context manager is needed; one
observer can watch runs one after another, or at once (each by its ``run_id``). Items of a
mapped task are counted per mapped task, never as tasks.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

from ._events import (
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
from ._html import duration_text, error_text, one_line

# Per run and per kind (failures, retries), the lines printed one by one; the rest are
# counted. A run where 50,000 tasks fail prints what a person reads, not 50,000 lines.
MAX_LINES = 20
SHOWN_RUNNING = 5
SHOWN_MAPS = 4
SHOWN_FAILURES = 3


@dataclass
class MapTally:
    """How the items of one mapped task ended so far."""

    done: int = 0
    restored: int = 0
    failed: int = 0
    skipped: int = 0


@dataclass
class RunTally:
    """What is known of one run, from its events. Read under :attr:`Progress.lock`."""

    workflow: str
    run_id: str
    total: int
    began: float
    done: int = 0
    restored: int = 0
    failed: int = 0
    skipped: int = 0
    cancelled: int = 0
    retries: int = 0
    retry_lines: int = 0
    fail_lines: int = 0
    # task (or item) name -> (since, attempt, waiting to retry)
    running: dict[str, tuple[float, int, bool]] = field(default_factory=dict)
    maps: dict[str, MapTally] = field(default_factory=dict)
    failures: deque[str] = field(default_factory=lambda: deque(maxlen=SHOWN_FAILURES))
    finished: RunFinished | None = None
    last_line: float = 0.0

    @property
    def settled(self) -> int:
        return self.done + self.restored + self.failed + self.skipped + self.cancelled

    def elapsed(self, now: float) -> float:
        return self.finished.duration if self.finished is not None else max(now - self.began, 0)

    def counts(self) -> str:
        """``"5,230/10,000 tasks · 2 failed · 3 skipped · 40 running"``."""
        parts = [f"{self.settled:,}/{self.total:,} tasks"]
        if self.restored:
            parts.append(f"{self.restored:,} restored")
        for n, word in (
            (self.failed, "failed"),
            (self.skipped, "skipped"),
            (self.cancelled, "cancelled"),
            (self.retries, "retry" if self.retries == 1 else "retries"),
        ):
            if n:
                parts.append(f"{n:,} {word}")
        if self.finished is None:
            parts.append(f"{len(self.running):,} running")
        return " · ".join(parts)

    def map_lines(self) -> list[str]:
        lines = []
        for name, m in list(self.maps.items())[:SHOWN_MAPS]:
            text = f"{name}: {m.done + m.restored:,} items done"
            for n, word in ((m.failed, "failed"), (m.skipped, "skipped")):
                if n:
                    text += f" · {n:,} {word}"
            lines.append(text)
        if len(self.maps) > SHOWN_MAPS:
            lines.append(f"and {len(self.maps) - SHOWN_MAPS} more mapped tasks")
        return lines

    def running_lines(self, now: float) -> list[str]:
        oldest = sorted(self.running.items(), key=lambda kv: kv[1][0])[:SHOWN_RUNNING]
        lines = []
        for name, (since, attempt, waiting) in oldest:
            text = f"{name}  {duration_text(max(now - since, 0.0))}"
            if waiting:
                text += "  (waiting to retry)"
            elif attempt > 1:
                text += f"  (attempt {attempt})"
            lines.append(text)
        if len(self.running) > SHOWN_RUNNING:
            lines.append(f"and {len(self.running) - SHOWN_RUNNING:,} more running")
        return lines

    def summary(self, now: float) -> str:
        """One line: ``"etl: 5,230/10,000 tasks · 2 failed · 40 running · 12.30 s"``."""
        status = f" {self.finished.status}" if self.finished is not None else ""
        elapsed = duration_text(self.elapsed(now))
        return f"{self.workflow}:{status} {self.counts()} · {elapsed}"


def _map_of(event: TaskEvent) -> str:
    """The mapped task an item's event is about: ``"p"`` for ``"p[3]"``."""
    return event.task[: -len(str(event.item)) - 2]


class Progress:
    """A run observer that shows progress (see :func:`flowweaver.progress`)."""

    def __init__(self, view: View, observer: Callable[[RunEvent], Any] | None = None) -> None:
        self._view = view
        self._observer = observer
        self.lock = threading.Lock()
        self.runs: dict[str, RunTally] = {}
        # By exact type: the engine makes each event of its own class, and a dict lookup
        # is cheaper per event than a chain of isinstance checks.
        self._on: dict[type, Callable[[Any, RunTally], None]] = {
            TaskStarted: self._started,
            TaskCompleted: self._completed,
            TaskFailed: self._failed,
            TaskSkipped: self._skipped,
            TaskRestored: self._restored,
            TaskRetrying: self._retrying,
            TaskCancelled: self._cancelled,
        }

    def __call__(self, event: RunEvent) -> None:
        self._take(event)
        if self._observer is not None:
            self._observer(event)

    def _take(self, event: RunEvent) -> None:
        kind = type(event)
        if kind is RunStarted:
            begun = cast(RunStarted, event)
            new = RunTally(begun.workflow, begun.run_id, begun.total, begun.timestamp)
            with self.lock:
                self.runs[event.run_id] = new
            self._view.started(self, new)
            return
        run = self.runs.get(event.run_id)
        if run is None:
            return  # a run that began before this observer was watching
        if kind is RunFinished:
            with self.lock:
                run.finished = cast(RunFinished, event)
                del self.runs[event.run_id]
            self._view.finished(self, run)
            return
        handler = self._on.get(kind)
        if handler is not None:
            with self.lock:
                handler(event, run)
            self._view.changed(self, run, event)

    # -- one per kind of task event, called with the lock held -------------------------------

    def _started(self, e: TaskStarted, run: RunTally) -> None:
        current = run.running.get(e.task)
        run.running[e.task] = (current[0] if current else e.timestamp, e.attempt, False)

    def _completed(self, e: TaskCompleted, run: RunTally) -> None:
        run.running.pop(e.task, None)
        if e.item is None:
            run.done += 1
        else:
            run.maps.setdefault(_map_of(e), MapTally()).done += 1

    def _failed(self, e: TaskFailed, run: RunTally) -> None:
        run.running.pop(e.task, None)
        if e.item is None:
            run.failed += 1
        else:
            run.maps.setdefault(_map_of(e), MapTally()).failed += 1
        run.failures.append(f"{e.task}: {one_line(error_text(e.error), 200)}")

    def _skipped(self, e: TaskSkipped, run: RunTally) -> None:
        run.running.pop(e.task, None)  # it may have raised Skip
        if e.item is None:
            run.skipped += 1
        else:
            run.maps.setdefault(_map_of(e), MapTally()).skipped += 1

    def _restored(self, e: TaskRestored, run: RunTally) -> None:
        if e.item is None:
            run.restored += 1
        else:
            run.maps.setdefault(_map_of(e), MapTally()).restored += 1

    def _retrying(self, e: TaskRetrying, run: RunTally) -> None:
        run.retries += 1
        current = run.running.get(e.task)
        if current is not None:
            run.running[e.task] = (current[0], current[1], True)

    def _cancelled(self, e: TaskCancelled, run: RunTally) -> None:
        run.running.pop(e.task, None)
        run.cancelled += 1


class AsyncProgress(Progress):
    """The same, wrapping an ``async def`` observer: awaited in order by the run."""

    async def __call__(self, event: RunEvent) -> None:  # type: ignore[override]
        self._take(event)
        if self._observer is not None:
            await self._observer(event)


def event_line(run: RunTally, event: RunEvent) -> str | None:
    """The line a person reads for a failure or a retry (bounded per run), or None."""
    if type(event) is TaskFailed:
        run.fail_lines += 1
        if run.fail_lines > MAX_LINES:
            return None
        tries = "1 attempt" if event.attempts == 1 else f"{event.attempts} attempts"
        line = f"{run.workflow}: {event.task} FAILED after {tries}: "
        line += one_line(error_text(event.error), 300)
        if run.fail_lines == MAX_LINES:
            line += " (further failures are counted, not listed)"
        return line
    if type(event) is TaskRetrying:
        run.retry_lines += 1
        if run.retry_lines > MAX_LINES:
            return None
        wait = f", next in {duration_text(event.delay)}" if event.delay else ""
        line = f"{run.workflow}: {event.task} attempt {event.attempt} failed{wait}: "
        line += one_line(error_text(event.error), 300)
        if run.retry_lines == MAX_LINES:
            line += " (further retries are counted, not listed)"
        return line
    return None


def final_lines(run: RunTally) -> list[str]:
    lines = [run.summary(time.time())]
    lines += [f"  {line}" for line in run.map_lines()]
    return lines


class View:
    """Where a :class:`Progress` shows what it counts. Called on the loop thread."""

    def started(self, progress: Progress, run: RunTally) -> None:
        raise NotImplementedError

    def changed(self, progress: Progress, run: RunTally, event: RunEvent) -> None:
        raise NotImplementedError

    def finished(self, progress: Progress, run: RunTally) -> None:
        raise NotImplementedError
