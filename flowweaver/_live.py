"""``flowweaver.progress()``: a run's progress shown to a person while it runs.

Theory of operation: :class:`Progress` is a run observer. On the loop thread it only
counts (:class:`RunTally`, a few dict and int updates under a lock per event), so it costs
a run little; what is drawn is drawn elsewhere, and rarely:

* in a Jupyter kernel, one output per run (an IPython display handle), redrawn as HTML a
  few times a second by a thread of its own (:class:`_Ticker`), and once more at the end;
* on a terminal, rich's live display (``_live_term.py``), redrawn by rich's own thread;
  failures and retries are printed above it, so they stay on screen;
* anywhere else (a pipe, a log, CI), occasional lines: the start, each failure and retry
  (the first :data:`MAX_LINES` of each), a count every ``interval`` seconds, and the end.

A run is recognised by its ``RunStarted`` and ended by its ``RunFinished``, which the
engine always sends (also after a failure or an interruption), so no context manager is
needed; one :class:`Progress` can watch runs one after another, or at once (each by its
``run_id``). Items of a mapped task are counted per mapped task, never as tasks.
"""

from __future__ import annotations

import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any, cast

from ._calls import is_async_callable
from ._errors import WorkflowValidationError
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
from ._html import badge, bar, duration_text, error_text, one_line, xml_text
from ._status import TaskStatus

if TYPE_CHECKING:
    from rich.console import Console

# Per run and per kind (failures, retries), the lines printed one by one; the rest are
# counted. A run where 50,000 tasks fail prints what a person reads, not 50,000 lines.
MAX_LINES = 20
SHOWN_RUNNING = 5
SHOWN_MAPS = 4
SHOWN_FAILURES = 3

_FINAL = {"COMPLETED": TaskStatus.COMPLETED, "FAILED": TaskStatus.FAILED}


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

    def __init__(self, view: _View, observer: Callable[[RunEvent], Any] | None = None) -> None:
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


class _AsyncProgress(Progress):
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


class _View:
    """Where a :class:`Progress` shows what it counts. Called on the loop thread."""

    def started(self, progress: Progress, run: RunTally) -> None:
        raise NotImplementedError

    def changed(self, progress: Progress, run: RunTally, event: RunEvent) -> None:
        raise NotImplementedError

    def finished(self, progress: Progress, run: RunTally) -> None:
        raise NotImplementedError


class _Lines(_View):
    """For a pipe or a log: the start, failures and retries, a count every ``interval``
    seconds (at the next event after it), the end."""

    def __init__(self, file: IO[str] | None, interval: float) -> None:
        self._file = file
        self._interval = interval

    def _write(self, lines: list[str]) -> None:
        # sys.stderr looked up now: a test's or a notebook's replacement counts
        out = self._file if self._file is not None else sys.stderr
        out.write("".join(line + "\n" for line in lines))
        out.flush()

    def started(self, progress: Progress, run: RunTally) -> None:
        run.last_line = run.began
        self._write([f"{run.workflow}: started, {run.total:,} tasks"])

    def changed(self, progress: Progress, run: RunTally, event: RunEvent) -> None:
        kind = type(event)
        lines = []
        if kind is TaskFailed or kind is TaskRetrying:
            with progress.lock:
                line = event_line(run, event)
            if line is not None:
                lines.append(line)
        if event.timestamp - run.last_line >= self._interval:
            run.last_line = event.timestamp
            with progress.lock:
                lines.append(run.summary(event.timestamp))
        if lines:
            self._write(lines)

    def finished(self, progress: Progress, run: RunTally) -> None:
        self._write(final_lines(run))


class _Ticker:
    """A daemon thread calling ``tick`` every ``period`` seconds while a run is on.

    The count of runs on is kept under the same lock the thread checks before it exits,
    so a run that starts just as the thread decides to stop is never left undrawn.
    """

    def __init__(self, period: float, tick: Callable[[], None]) -> None:
        self._period = period
        self._tick = tick
        self._thread: threading.Thread | None = None
        self._guard = threading.Lock()
        self._on = 0

    def begin(self) -> None:
        with self._guard:
            self._on += 1
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._loop, name="flowweaver-progress", daemon=True
                )
                self._thread.start()

    def end(self) -> None:
        with self._guard:
            self._on -= 1

    def _loop(self) -> None:
        while True:
            time.sleep(self._period)
            with self._guard:
                if self._on <= 0:
                    self._thread = None
                    return
            self._tick()


class _Notebook(_View):
    """In a Jupyter kernel: one output per run, updated in place (a display handle)."""

    def __init__(self, refresh_per_second: float) -> None:
        self._handles: dict[str, Any] = {}
        self._ticker = _Ticker(1 / refresh_per_second, self._tick)
        self._progress: Progress | None = None
        # Held while an output is drawn: the ticker's last redraw of a run must never
        # land after (and hide) its final one.
        self._draw = threading.Lock()

    def started(self, progress: Progress, run: RunTally) -> None:
        from ._notebook import display

        self._progress = progress
        with progress.lock:
            bundle = notebook_bundle(run, time.time())
        with self._draw:
            self._handles[run.run_id] = display(bundle, raw=True, display_id=True)
        self._ticker.begin()

    def changed(self, progress: Progress, run: RunTally, event: RunEvent) -> None:
        pass  # the ticker redraws

    def finished(self, progress: Progress, run: RunTally) -> None:
        self._ticker.end()
        with progress.lock:
            bundle = notebook_bundle(run, time.time())
        with self._draw:
            handle = self._handles.pop(run.run_id, None)
            if handle is not None:
                handle.update(bundle, raw=True)

    def _tick(self) -> None:
        """Redraw every run still on: its elapsed time moves even when nothing else does."""
        progress = self._progress
        if progress is None:
            return
        now = time.time()
        with progress.lock:
            bundles = [(run_id, notebook_bundle(run, now)) for run_id, run in progress.runs.items()]
        with self._draw:
            for run_id, bundle in bundles:
                handle = self._handles.get(run_id)
                if handle is not None:  # not finished meanwhile
                    handle.update(bundle, raw=True)


def notebook_bundle(run: RunTally, now: float) -> dict[str, str]:
    """The run's progress as ``text/html`` and ``text/plain``. Call with the lock held."""
    done = run.done + run.restored
    parts = [
        (TaskStatus.COMPLETED, done),
        (TaskStatus.FAILED, run.failed),
        (TaskStatus.SKIPPED, run.skipped + run.cancelled),
    ]
    if run.finished is not None:
        status = _FINAL.get(run.finished.status, TaskStatus.SKIPPED)
        head = badge(status, run.finished.status)
    else:
        head = badge(TaskStatus.RUNNING)
    elapsed = duration_text(run.elapsed(now))
    html = [
        f"<div><b>{xml_text(run.workflow)}</b> {head} {xml_text(run.counts())} · {elapsed}</div>",
        bar(parts, run.total),
    ]
    text = [run.summary(now)]
    extra = [("▦", line) for line in run.map_lines()]
    if run.finished is None:
        extra += [("▶", line) for line in run.running_lines(now)]
    extra += [("✗", line) for line in run.failures]
    for mark, line in extra:
        html.append(f"<div>{mark} {xml_text(line)}</div>")
        text.append(f"  {mark} {line}")
    return {"text/plain": "\n".join(text), "text/html": "".join(html)}


def in_kernel() -> bool:
    """True inside a Jupyter kernel (IPython's ZMQ shell), not a terminal IPython."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    shell = ipython.get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def _is_tty(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def progress(
    observer: Callable[[RunEvent], Any] | Any = None,
    *,
    console: Console | None = None,
    refresh_per_second: float = 4.0,
    interval: float = 10.0,
) -> Progress:
    """A run observer that shows the progress of a run as it happens.

    Pass it as an executor's ``observer``: ``SequentialExecutor(observer=progress())``.
    In a Jupyter notebook it draws one output per run and updates it in place; on a
    terminal, a live display (needs rich: ``pip install "flowweaver[cli]"``); in a pipe or
    a log, a line at the start, one per failure and retry (the first twenty of each),
    a count every ``interval`` seconds, and one at the end. Blocking and awaited runs
    alike; one observer can watch several runs, one after another or at once.

    :param observer: another observer to call after this one with each event (a callable,
        ``async def`` or not, or an object with an ``on_event`` method), so one you have
        keeps working.
    :param console: a rich ``Console`` to draw on instead of stderr: live when it is a
        terminal (``Console(force_terminal=True)``), lines otherwise.
    :param refresh_per_second: how often a live display is redrawn.
    :param interval: seconds between count lines in a pipe or a log.
    :raises WorkflowValidationError: for an ``observer`` that cannot be called, or a
        ``refresh_per_second`` or ``interval`` that is not a positive number.
    :raises ImportError: on a terminal without rich installed, naming the extra.
    """
    if observer is not None and not callable(observer):
        on_event = getattr(observer, "on_event", None)
        if not callable(on_event):
            raise WorkflowValidationError(
                f"observer must be a callable or have an on_event method, got {observer!r}"
            )
        observer = on_event
    for label, value in (("refresh_per_second", refresh_per_second), ("interval", interval)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise WorkflowValidationError(f"{label} must be a positive number, got {value!r}")
    view: _View
    if console is None and in_kernel():
        view = _Notebook(refresh_per_second)
    elif console is not None and not console.is_terminal:
        view = _Lines(console.file, interval)
    elif console is None and not _is_tty(sys.stderr):
        view = _Lines(None, interval)
    else:
        try:
            from ._live_term import Terminal
        except ImportError as exc:
            raise ImportError(
                "flowweaver.progress() on a terminal draws with rich, which is not "
                f'installed ({exc}): pip install "flowweaver[cli]"'
            ) from exc
        view = Terminal(console, refresh_per_second)
    cls = _AsyncProgress if observer is not None and is_async_callable(observer) else Progress
    return cls(view, observer)
