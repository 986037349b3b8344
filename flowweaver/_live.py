"""``flowweaver.progress()``: a run's progress shown to a person while it runs.

Theory of operation: the observer (:class:`flowweaver._tally.Progress`) only counts on
the loop thread, so it costs a run little; a view draws the counts elsewhere, and rarely:

* in a Jupyter kernel, one output per run (an IPython display handle), redrawn as HTML a
  few times a second by a thread of its own (:class:`_Ticker`), and once more at the end;
* on a terminal, rich's live display (``_live_term.py``), redrawn by rich's own thread;
  failures and retries are printed above it, so they stay on screen;
* anywhere else (a pipe, a log, CI), occasional lines: the start, each failure and retry
  (the first twenty of each), a count every ``interval`` seconds, and the end.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import IO, TYPE_CHECKING, Any

from ._calls import is_async_callable
from ._errors import WorkflowValidationError
from ._events import RunEvent, TaskFailed, TaskRetrying
from ._html import badge, bar, duration_text, xml_text
from ._status import TaskStatus
from ._tally import AsyncProgress, Progress, RunTally, View, event_line, final_lines

if TYPE_CHECKING:
    from rich.console import Console

_FINAL = {"COMPLETED": TaskStatus.COMPLETED, "FAILED": TaskStatus.FAILED}


class _Lines(View):
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


class _Notebook(View):
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
    view: View
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
    cls = AsyncProgress if observer is not None and is_async_callable(observer) else Progress
    return cls(view, observer)
