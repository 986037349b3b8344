"""Showing a run as it happens: a live display on a terminal (:mod:`._live`), plain lines
in a log or a pipe (:class:`PlainProgress`).

Both are run observers (see :mod:`flowweaver._events`), called on the run's event loop
thread, so neither draws anything heavy there.

In a log a person reads what needs them: retries, failures, skips with their reason (one
line per cause, not one per task), a count of the tasks restored, and a progress line every
few seconds. A 3,000-task run printed a line per start and per completion (9,008 lines in
all with its table); a clean one now prints a handful. ``--verbose`` prints every event as
before. The lines that could still come by the thousand (retries, failures, a map's failed
items) are capped, and what was left out is counted at the end.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from types import TracebackType

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
from ._lines import (
    event_line,
    failure_text,
    line,
    map_counts,
    progress_text,
    retry_text,
    skip_group_text,
    skip_reason,
)
from ._live import LiveProgress
from ._output import format_duration, write_line
from ._state import RunState, count, map_task_of, some_names

__all__ = ["DEFAULT_INTERVAL", "LiveProgress", "PlainProgress", "RunState"]

# Seconds between two progress lines in a log (--progress-interval, or
# FLOWWEAVER_PROGRESS_INTERVAL): often enough to see a run is alive, rarely enough that a
# long run's log stays short (720 lines an hour).
DEFAULT_INTERVAL = 5.0

# At most this many lines of each kind, then a count: a run where every task fails the
# same way must not print it 3,000 times. Per map for its failed items.
_SHOWN = {"retrying": 10, "FAILED": 10, "cancelled": 10, "skipped": 10}
_SHOWN_ITEMS = 5
_HIDDEN_NOTE = {
    "retrying": "more retries are counted, not printed (--verbose prints each)",
    "FAILED": "more failures are counted, not printed (the summary lists them)",
    "cancelled": "more interrupted tasks are counted, not printed",
    "skipped": "more skips are counted, not printed (the summary counts them)",
}


class _Group:
    """Tasks waiting to be printed as one line: restored ones, or skipped for one cause."""

    __slots__ = ("n", "names", "reason", "upstream", "when")

    def __init__(self, when: float, upstream: str, reason: str) -> None:
        self.when = when  # of its first event: the line is stamped with it
        self.upstream = upstream
        self.reason = reason
        self.names: list[str] = []
        self.n = 0

    def add(self, name: str) -> None:
        if len(self.names) < 4:  # see some_names
            self.names.append(name)
        self.n += 1


class PlainProgress:
    """Lines on stdout, each flushed at once, for logs and pipes.

    :param verbose: a line per event (each start, completion, item...), as the command
        printed before it learnt to summarise.
    :param interval: seconds between two progress lines (0: none); a thread of this
        object's writes them while the run goes, so a long task with no events in between
        still shows the run is alive.
    :param clock: what "now" is for the progress lines (``time.time``; tests pass theirs).
    :param write: where a line goes (stdout, flushed at once, by default).
    """

    def __init__(
        self,
        state: RunState,
        *,
        verbose: bool = False,
        interval: float = DEFAULT_INTERVAL,
        clock: Callable[[], float] = time.time,
        write: Callable[[str], None] = write_line,
    ) -> None:
        self.state = state
        self.verbose = verbose
        self.interval = interval
        self.clock = clock
        self.write = write
        # The ticker thread writes too: one writer at a time, groups flushed in order.
        self._lock = threading.Lock()
        self._pending: dict[tuple[str, str, str], _Group] = {}
        self._shown: Counter[str] = Counter()
        self._hidden: Counter[str] = Counter()
        self._items_shown: Counter[str] = Counter()
        self._items_hidden: Counter[str] = Counter()
        self._last: tuple[float, int] | None = None  # when the last progress line was
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None

    # -- the observer ------------------------------------------------------------------------

    def __call__(self, event: RunEvent) -> None:
        state = self.state
        state.apply(event)
        if self.verbose:
            self._every_event(event)
            return
        if not self._pending and (
            type(event) is TaskStarted
            or (type(event) is TaskCompleted and not self._is_map(event.task))
        ):
            # no news in a log, and most events by far: back to the run at once, no lock
            return
        with self._lock:
            if self._pending and type(event) not in (TaskSkipped, TaskRestored):
                # a burst of skips or restores has ended: its lines come before what follows
                self._flush()
            if isinstance(event, TaskEvent):
                if event.item is None:
                    self._task_event(event)
                elif isinstance(event, TaskFailed):
                    self._item_failed(event)
            elif isinstance(event, RunStarted):
                self._emit(line(0.0, "run", f"{event.workflow}: {count(event.total, 'task')}"))
            elif isinstance(event, RunFinished):
                self._finish(event)

    def _every_event(self, event: RunEvent) -> None:
        text = event_line(event, self.state.began)
        if text is None:
            return
        if isinstance(event, (TaskCompleted, TaskFailed)) and self._is_map(event.task):
            # a mapped task ended: its items, counted (each had a line of its own)
            text += f": {map_counts(self.state, event.task)}"
        self.write(text)

    def _task_event(self, event: TaskEvent) -> None:
        offset = self._offset(event.timestamp)
        if isinstance(event, TaskSkipped):
            reason = skip_reason(event)
            if event.upstream:  # one of a burst of skips below a failure: grouped
                self._group(event, "skipped", event.upstream, reason).add(event.task)
            else:  # on purpose (flowweaver.Skip) or by a trigger rule: its own line
                text = line(offset, "skipped", f"{event.task} ({reason})")
                self._capped_emit("skipped", text, offset)
        elif isinstance(event, TaskRestored):
            self._group(event, "restored", "", "").add(event.task)
        elif isinstance(event, TaskRetrying):
            self._capped_emit("retrying", line(offset, "retrying", retry_text(event)), offset)
        elif isinstance(event, TaskFailed):
            text = failure_text(event)
            if self._is_map(event.task):
                text += f" ({map_counts(self.state, event.task)})"
            self._capped_emit("FAILED", line(offset, "FAILED", text), offset)
            self._items_left_out(event.task, offset)
        elif isinstance(event, TaskCompleted) and self._is_map(event.task):
            # a map is one line in a log, its items counted (they have no lines of their own)
            counts = map_counts(self.state, event.task)
            took = f"{event.task} ({format_duration(event.duration)}): {counts}"
            self._emit(line(offset, "completed", took))
            self._items_left_out(event.task, offset)
        elif isinstance(event, TaskCancelled):
            text = f"{event.task} (interrupted; it runs again next time)"
            self._capped_emit("cancelled", line(offset, "cancelled", text), offset)

    def _item_failed(self, event: TaskFailed) -> None:
        name = map_task_of(event)
        if self._items_shown[name] < _SHOWN_ITEMS:
            self._items_shown[name] += 1
            self._emit(line(self._offset(event.timestamp), "FAILED", failure_text(event)))
        else:
            self._items_hidden[name] += 1

    def _items_left_out(self, name: str, offset: float) -> None:
        hidden = self._items_hidden.pop(name, 0)
        if hidden:
            text = f"and {count(hidden, 'more item')} of {name!r} failed"
            self._emit(line(offset, "FAILED", text))

    def _finish(self, event: RunFinished) -> None:
        offset = self._offset(event.timestamp)
        self._flush()
        for kind, n in self._hidden.items():
            what = (
                count(n, "more retry", "more retries")
                if kind == "retrying"
                else count(n, "more task")
            )
            self._emit(line(offset, kind, f"and {what} (not shown above)"))
        self._hidden.clear()
        self._emit(event_line(event, self.state.began) or "")

    # -- lines ---------------------------------------------------------------------------

    def _emit(self, text: str) -> None:
        """Write ``text`` after the groups waiting, so lines stay in the order of events."""
        self._flush()
        self.write(text)

    def _capped_emit(self, kind: str, text: str, offset: float) -> None:
        self._flush()
        self._capped(kind, text, offset)

    def _capped(self, kind: str, text: str, offset: float, n: int = 1) -> None:
        """Write ``text`` (about ``n`` tasks) unless ``kind`` had its share of lines: then
        count them, and say so once."""
        if self._shown[kind] < _SHOWN[kind]:
            self._shown[kind] += 1
            self.write(text)
            return
        if not self._hidden[kind]:
            self.write(line(offset, kind, f"({_HIDDEN_NOTE[kind]})"))
        self._hidden[kind] += n

    def _group(self, event: TaskEvent, verb: str, upstream: str, reason: str) -> _Group:
        key = (verb, upstream, reason)
        group = self._pending.get(key)
        if group is None:
            group = self._pending[key] = _Group(event.timestamp, upstream, reason)
        return group

    def _flush(self) -> None:
        """Print the skips and restores gathered since the last line, a line per cause."""
        if not self._pending:
            return
        for (verb, upstream, reason), g in self._pending.items():
            if verb == "restored":
                text = (
                    f"{g.names[0]} (saved result)"
                    if g.n == 1
                    else f"{count(g.n, 'task')} (saved results): {some_names(g.names, g.n)}"
                )
                self.write(line(self._offset(g.when), verb, text))
            else:
                offset = self._offset(g.when)
                text = line(offset, verb, skip_group_text(upstream, reason, g.names, g.n))
                self._capped("skipped", text, offset, g.n)
        self._pending.clear()

    def _offset(self, timestamp: float) -> float:
        began = self.state.began
        return timestamp - began if began is not None else 0.0

    def _is_map(self, name: str) -> bool:
        return name in self.state.mapped or name in self.state.items

    # -- the progress line ---------------------------------------------------------------------

    def tick(self, now: float | None = None) -> None:
        """Write the progress line (and the groups waiting), unless the run has not begun
        or has ended."""
        now = self.clock() if now is None else now
        state = self.state
        with self._lock:
            began = state.began
            if began is None or state.finished is not None:
                return
            ended = state.ran()
            # the rate since the last progress line (since the start for the first)
            since, before = self._last or (began, 0)
            rate = (ended - before) / (now - since) if now > since else None
            self._last = (now, ended)
            self._emit(line(now - began, "progress", progress_text(state, now, rate)))

    def _tick_until_stopped(self) -> None:
        while not self._stop.wait(self.interval):
            self.tick()

    def __enter__(self) -> PlainProgress:
        if self.interval > 0 and not self.verbose:
            self._ticker = threading.Thread(
                target=self._tick_until_stopped, name="flowweaver-progress", daemon=True
            )
            self._ticker.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join()
        with self._lock:
            self._flush()  # a run stopped before its end event still shows its skips
