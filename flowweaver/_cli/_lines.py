"""The text of the progress lines: one per event (``--verbose``), and the lines a person
reads in a log (a progress line, a group of skips, a count of restored tasks).

Every line starts with the time since the run began, ``[  1.25s]``, then a verb padded to
ten characters, so ``grep`` and ``awk`` can pick lines by their second field.
"""

from __future__ import annotations

from .._events import (
    RunEvent,
    RunFinished,
    RunStarted,
    TaskCancelled,
    TaskCompleted,
    TaskFailed,
    TaskRestored,
    TaskRetrying,
    TaskSkipped,
    TaskStarted,
)
from ._output import describe_error, format_clock, format_duration
from ._state import RunState, count, some_names


def stamp(offset: float) -> str:
    return f"[{offset:7.2f}s]"


def line(offset: float, verb: str, text: str) -> str:
    """``[  1.25s] completed  load (0.40 s)``."""
    return f"{stamp(offset)} {verb:<10} {text}"


def event_line(event: RunEvent, began: float | None) -> str | None:
    """The plain line for ``event``: ``[  1.25s] completed  load (0.40 s)``."""
    offset = event.timestamp - began if began is not None else 0.0
    if isinstance(event, RunStarted):
        return line(offset, "run", f"{event.workflow}: {count(event.total, 'task')}")
    if isinstance(event, TaskStarted):
        again = f" (attempt {event.attempt})" if event.attempt > 1 else ""
        return line(offset, "started", f"{event.task}{again}")
    if isinstance(event, TaskRetrying):
        return line(offset, "retrying", retry_text(event))
    if isinstance(event, TaskCompleted):
        return line(offset, "completed", f"{event.task} ({format_duration(event.duration)})")
    if isinstance(event, TaskFailed):
        return line(offset, "FAILED", failure_text(event))
    if isinstance(event, TaskSkipped):
        return line(offset, "skipped", f"{event.task} ({skip_reason(event)})")
    if isinstance(event, TaskRestored):
        return line(offset, "restored", f"{event.task} (saved result)")
    if isinstance(event, TaskCancelled):
        return line(offset, "cancelled", f"{event.task} (interrupted; it runs again next time)")
    if isinstance(event, RunFinished):
        took = format_duration(event.duration)
        return line(offset, "finished", f"{event.workflow}: {event.status} in {took}")
    return None


def retry_text(event: TaskRetrying) -> str:
    wait = f"; next attempt in {format_duration(event.delay)}" if event.delay else ""
    return f"{event.task} (attempt {event.attempt} failed: {describe_error(event.error)}{wait})"


def failure_text(event: TaskFailed) -> str:
    tries = "1 attempt" if event.attempts == 1 else f"{event.attempts} attempts"
    return f"{event.task} after {tries}: {describe_error(event.error)}"


def skip_reason(event: TaskSkipped) -> str:
    # a task skipped by fail_fast that was not below the failure has no reason of its own
    return event.reason or f"upstream task {event.upstream!r} failed"


def skip_group_text(upstream: str, reason: str, names: list[str], n: int) -> str:
    """The line for ``n`` tasks skipped for one reason: the task itself when it is one;
    ``2,990 tasks below 'extract' (it failed): t1, t2, t3 and 2,987 more`` otherwise."""
    if n == 1:
        return f"{names[0]} ({reason})"
    if upstream and reason == f"upstream task {upstream!r} failed":
        why = f"below {upstream!r} (it failed)"
    elif upstream and reason == f"upstream task {upstream!r} was skipped":
        why = f"below {upstream!r} (it was skipped)"
    else:
        why = f"({reason})"
    return f"{count(n, 'task')} {why}: {some_names(names, n)}"


def map_counts(state: RunState, name: str) -> str:
    """``"10 items done, 2 failed"`` for the mapped task ``name``."""
    c = state.items.get(name)
    if c is None:
        return "0 items done, 0 failed"
    text = f"{count(c.done + c.restored, 'item')} done, {len(c.failed):,} failed"
    return text + (f", {c.skipped:,} skipped" if c.skipped else "")


# The progress line names the task running longest once it has run this many seconds, and
# at most this many maps with items still to go.
_LONG_RUNNING = 10.0
_SHOWN_MAPS = 3


def progress_text(state: RunState, now: float, rate: float | None) -> str:
    """``1,234/3,000 done · 4 running · 2 failed · 28 skipped · 246 tasks/s`` and, when
    there are some, the maps' items and the task running longest."""
    done = state.completed + len(state.restored)
    parts = [f"{done:,}/{state.total:,} done"]
    parts.append(f"{len(state.running):,} running")
    parts.append(f"{len(state.failed):,} failed")
    parts.append(f"{state.skipped:,} skipped")
    if state.retries:
        parts.append(f"{count(state.retries, 'retry', 'retries')}")
    if rate is not None:
        parts.append(f"{rate:,.0f} tasks/s")
    text = " · ".join(parts)
    going = [
        (name, known, c)
        for name, c in list(state.items.items())
        if (known := _known(state, name)) > c.done + c.restored + len(c.failed) + c.skipped
    ]
    for name, known, c in going[:_SHOWN_MAPS]:
        failed = f" ({len(c.failed):,} failed)" if c.failed else ""
        text += f" · {name} {c.done + c.restored:,}/{known:,} items{failed}"
    for name, since in state.longest_running(1):
        if now - since >= _LONG_RUNNING:
            text += f" · longest running: {name} ({format_clock(now - since)})"
    return text


def _known(state: RunState, name: str) -> int:
    task = state.mapped.get(name)
    return len(task.items) if task is not None else 0
