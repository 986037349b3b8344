"""What the command knows about a run while it goes, counted from the run's events.

The displays (:mod:`._progress`, :mod:`._live`) read it; the run's event loop thread writes
it through :meth:`RunState.apply`, once per event, so that call is kept to a dictionary
lookup on the event's type and a few counter updates: at 100,000 tasks anything more shows
in the run's own time (``benchmarks/progress.py`` measures it).

No lock: the writer is the one event loop thread, and a reader on another thread (rich's
refresh, the plain display's ticker) copies a dict before it iterates it (a copy is one
step under the GIL, an iteration is not), so it never sees one change size under it. Its
counts may be one event apart from each other, which a display redrawn a moment later
does not mind; a lock taken twice per task cost a no-op run more than the rest of this.

Items of a mapped task arrive as task events with ``item`` set (``task`` is
``process_file[3]``); they are counted per mapped task, never as tasks, so "3 of 4 tasks"
stays true of the workflow's own tasks however many items a map has.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from operator import itemgetter
from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    from .._task import Task


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
    :ivar retried: the tasks (not items) that failed an attempt and were retried.
    :ivar retries: every retry so far, of tasks and items.
    :ivar running: what is in flight (tasks and items): since when, the start of its first
        attempt.
    :ivar again: of those, the ones on a later attempt: which one.
    :ivar waiting: of those, the ones waiting to retry.
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
    retried: list[str] = field(default_factory=list)
    retries: int = 0
    running: dict[str, float] = field(default_factory=dict)
    again: dict[str, int] = field(default_factory=dict)
    waiting: set[str] = field(default_factory=set)
    finished: RunFinished | None = None
    _on: dict[type, Callable[[Any], None]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        # the rarer events: one lookup instead of a chain of isinstance checks
        self._on = {
            TaskCompleted: self._completed,
            TaskFailed: self._failed,
            TaskRetrying: self._retrying,
            TaskSkipped: self._skipped,
            TaskRestored: self._restored,
            TaskCancelled: self._cancelled,
            RunStarted: self._run_started,
            RunFinished: self._run_finished,
        }

    def apply(self, event: RunEvent) -> None:
        # A start and a completion are most events by far: counted here, without a call
        # more (a Python call is a good part of what this costs a no-op task).
        if type(event) is TaskStarted:
            running = self.running
            if event.task not in running:  # a later attempt keeps the first one's start
                running[event.task] = event.timestamp
            if event.attempt > 1:
                self._again(event)
        elif type(event) is TaskCompleted and event.item is None and not self.again:
            self.running.pop(event.task, None)
            self.completed += 1
        else:
            handler = self._on.get(type(event))
            if handler is not None:  # None: an event not counted here (TaskQueued...)
                handler(event)

    def _run_started(self, event: RunStarted) -> None:
        self.began = event.timestamp
        self.total = event.total

    def _run_finished(self, event: RunFinished) -> None:
        self.finished = event

    def _again(self, event: TaskStarted) -> None:
        self.again[event.task] = event.attempt
        self.waiting.discard(event.task)

    def _retrying(self, event: TaskRetrying) -> None:
        self.retries += 1
        self.waiting.add(event.task)
        if event.item is None and event.attempt == 1:
            self.retried.append(event.task)

    def _ended(self, task: str) -> None:
        self.running.pop(task, None)
        if self.again:
            self.again.pop(task, None)
            self.waiting.discard(task)

    def _completed(self, event: TaskCompleted) -> None:
        self._ended(event.task)
        if event.item is None:
            self.completed += 1
        else:
            self._counts(event).done += 1

    def _failed(self, event: TaskFailed) -> None:
        self._ended(event.task)
        if event.item is None:
            self.failed.append(event.task)
        else:
            self._counts(event).failed.append(event.task)

    def _skipped(self, event: TaskSkipped) -> None:
        if event.item is None:
            self.skipped += 1
        else:
            self._counts(event).skipped += 1

    def _restored(self, event: TaskRestored) -> None:
        if event.item is None:
            self.restored.append(event.task)
        else:
            self._counts(event).restored += 1

    def _cancelled(self, event: TaskCancelled) -> None:
        self._ended(event.task)
        if event.item is None:
            self.cancelled += 1

    def _counts(self, event: TaskEvent) -> ItemCounts:
        """Items count per mapped task, never as tasks."""
        name = map_task_of(event)
        counts = self.items.get(name)
        if counts is None:
            counts = self.items[name] = ItemCounts()
        return counts

    def settled(self) -> int:
        """Tasks (not items) that ended one way or another."""
        return self.completed + len(self.restored) + len(self.failed) + self.skipped

    def ran(self) -> int:
        """Tasks and items that ran to an end (completed or failed): what a rate counts,
        not the restores and skips that come by the thousand at once."""
        counts = list(self.items.values())  # see the module's docstring
        return self.completed + len(self.failed) + sum(c.done + len(c.failed) for c in counts)

    def longest_running(self, n: int) -> list[tuple[str, float]]:
        """The ``n`` tasks (or items) in flight for longest, and since when."""
        return heapq.nsmallest(n, self.running.copy().items(), key=itemgetter(1))

    def item_counts(self) -> list[tuple[str, int, int, int, int, int]]:
        """Each mapped task with items so far: ``(name, known, done, restored, failed,
        skipped)``, where ``known`` is how many items it has (ended or not)."""
        out = []
        for name, c in list(self.items.items()):
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


def count(n: int, one: str, many: str | None = None) -> str:
    """``"1 task"``, ``"2,990 tasks"``."""
    return f"{n:,} {one if n == 1 else (many or one + 's')}"


def some_names(names: list[str], total: int, shown: int = 3) -> str:
    """``"a, b, c and 2,987 more"``: the first ``shown`` of ``total`` names (all of them
    when one more would be left: a name says more than "and 1 more")."""
    if total == shown + 1 and len(names) == total:
        shown = total
    text = ", ".join(names[:shown])
    return text + (f" and {total - shown:,} more" if total > shown else "")
