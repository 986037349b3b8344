"""What ``flowweaver run`` prints once the run is over: the table, the maps' items, the
failures' tracebacks on stderr, and the final line.

A small run's table has a row per task. A big one's has the rows worth reading (failed,
retried, not finished, mapped, and the slowest) and counts the rest ("and 2,990 more
completed"): a 3,000-row table is read by nobody. ``--all`` brings every row back.
"""

from __future__ import annotations

import heapq
import os
import sys
import traceback
from collections import Counter
from pathlib import Path
from shlex import quote
from types import TracebackType

import click

import flowweaver

from .._errors import ItemsFailedError
from .._status import TaskStatus
from .._task import Task
from .._workflow import Workflow
from ._output import Output, format_duration
from ._state import RunState, count, some_names

# A run of at most this many tasks shows every row (as it always did).
ALL_ROWS_UP_TO = 20
# A bigger one shows at most this many rows of each kind, and the slowest completed tasks.
_ROWS = {"failed": 20, "retried": 10, "unfinished": 10, "mapped": 10}
SLOWEST = 5
_KIND_WORDS = {
    "failed": "failed",
    "retried": "retried",
    "unfinished": "not finished",
    "mapped": "mapped",
}

# The summary names at most this many failed items of a map, then "and N more"; the
# tracebacks of at most _TRACED_ITEMS of them go to stderr, and of _TRACED_TASKS failed
# tasks (all of them with --verbose).
_LISTED_ITEMS = 5
_TRACED_ITEMS = 3
_TRACED_TASKS = 5
# A failed task's summary shows the last this many lines it logged and printed.
_LAST_LINES = 5
# The final line names at most this many failed tasks.
_NAMED_FAILED = 5

_UNFINISHED = (TaskStatus.PENDING, TaskStatus.RUNNING, TaskStatus.RETRYING)

# Frames from these folders are the engine's, not the user's: a failed task's traceback
# starts below them.
_LIBRARY_DIRS = tuple(
    os.path.dirname(m.__file__) + os.sep for m in (flowweaver,) if m.__file__ is not None
)


def summarise(out: Output, tasks: list[Task], state: RunState, *, show_all: bool = False) -> None:
    """The table at the end: task, status, attempts, duration (and a mapped task's items),
    of the tasks the run was given (a partial run leaves the others out).

    :param show_all: a row per task however many there are.
    """
    restored = set(state.restored)
    big = not show_all and len(tasks) > ALL_ROWS_UP_TO
    shown, why = rows_worth_reading(tasks, restored) if big else (tasks, "")
    with_items = any(t.map_over is not None for t in shown)
    rows = []
    for t in shown:
        status = t.status.value
        if t.name in restored and t.status is TaskStatus.COMPLETED:
            status += " (restored)"
        row = [t.name, status, str(t.attempts), format_duration(t.duration)]
        if with_items:
            row.append(item_cell(t, state) if t.map_over is not None else "")
        rows.append(row)
    out.line()
    if big:
        out.line(f"{count(len(tasks), 'task')}; shown: {why}")
    columns = ["task", "status", "attempts", "duration"] + (["items"] if with_items else [])
    out.table(columns, rows, status_column=1)
    if big:
        picked = {id(t) for t in shown}
        out.line(rest_line([t for t in tasks if id(t) not in picked], restored))
    lines = [
        (text, t)
        for t in shown
        if t.map_over is not None and (text := item_summary(t, state)) is not None
    ]
    if lines:
        out.line()
    for text, t in lines:
        out.line(text, style="red" if t.failed_items else None)


def rows_worth_reading(tasks: list[Task], restored: set[str]) -> tuple[list[Task], str]:
    """Failed, retried, unfinished and mapped tasks (each kind capped), and the slowest of
    the tasks that ran and completed, in the workflow's order; and what they are, in
    words (``"1 failed, 2 retried, the 5 slowest"``)."""
    kinds: dict[str, list[Task]] = {kind: [] for kind in _ROWS}
    found: Counter[str] = Counter()
    for t in tasks:
        if t.status is TaskStatus.FAILED:
            kind = "failed"
        elif t.status in _UNFINISHED:
            kind = "unfinished"
        elif t.map_over is not None:
            kind = "mapped"
        elif t.attempts > 1:
            kind = "retried"
        else:
            continue
        found[kind] += 1
        if len(kinds[kind]) < _ROWS[kind]:
            kinds[kind].append(t)
    ran = (
        t
        for t in tasks
        if t.status is TaskStatus.COMPLETED and t.name not in restored and t.duration is not None
    )
    picked = {id(t) for group in kinds.values() for t in group}
    slowest = heapq.nlargest(SLOWEST, ran, key=lambda t: t.duration or 0.0)
    picked.update(id(t) for t in slowest)
    words = []
    for kind, group in kinds.items():
        if group:
            more = f" of {found[kind]:,}" if found[kind] > len(group) else ""
            words.append(f"{len(group):,}{more} {_KIND_WORDS[kind]}")
    if slowest:
        words.append(f"the {len(slowest)} slowest" if len(slowest) > 1 else "the slowest")
    return [t for t in tasks if id(t) in picked], ", ".join(words)


def rest_line(rest: list[Task], restored: set[str]) -> str:
    """``"and 2,990 more completed (--all shows every task)"``, or by status when the
    rest ended in several ways."""
    by_status = Counter(t.status for t in rest)
    n_restored = sum(t.status is TaskStatus.COMPLETED for t in rest if t.name in restored)
    parts = []
    for status in TaskStatus:
        n = by_status.get(status, 0)
        if n:
            text = f"{n:,} {status.value.lower()}"
            if status is TaskStatus.COMPLETED and n_restored:
                text += f" ({n_restored:,} restored)"
            parts.append(text)
    if len(parts) == 1:
        return f"and {len(rest):,} more {parts[0].split(' ', 1)[1]} (--all shows every task)"
    if not parts:
        return "(--all shows every task)"
    return f"and {len(rest):,} more: {', '.join(parts)} (--all shows every task)"


def item_cell(task: Task, state: RunState) -> str:
    """A mapped task's items in its row: ``"118/120 done (3 restored), 2 failed"``."""
    items = task.items
    if not items:
        if task.status is TaskStatus.COMPLETED and type(task.result) is list:
            return f"{len(task.result):,} restored with the task"
        return "-"
    done = sum(i.status is TaskStatus.COMPLETED for i in items)
    counts = state.items.get(task.name)
    text = f"{done:,}/{len(items):,} done"
    if counts is not None and counts.restored:
        text += f" ({counts.restored:,} restored)"
    failed = len(task.failed_items)
    if failed:
        text += f", {failed:,} failed"
    skipped = sum(i.status is TaskStatus.SKIPPED for i in items)
    if skipped:
        text += f", {skipped:,} skipped"
    return text


def item_summary(task: Task, state: RunState) -> str | None:
    """``"process_file: 118 of 120 items completed (3 restored), 2 failed: process_file[3],
    process_file[7]"`` for a mapped task; None for one that never expanded."""
    items = task.items
    if not items:
        if task.status is TaskStatus.COMPLETED and type(task.result) is list:
            # restored whole from the store: its items did not run, nor were they restored
            return f"{task.name}: {len(task.result)} items, restored with the task"
        return None
    completed = sum(i.status is TaskStatus.COMPLETED for i in items)
    counts = state.items.get(task.name)
    restored = counts.restored if counts is not None else 0
    text = f"{task.name}: {completed} of {len(items)} items completed"
    if restored:
        text += f" ({restored} restored)"
    failed = task.failed_items
    skipped = sum(i.status is TaskStatus.SKIPPED for i in items)
    if skipped:
        text += f", {skipped} skipped"
    if failed:
        listed = ", ".join(failed[:_LISTED_ITEMS])
        more = len(failed) - _LISTED_ITEMS
        text += f", {len(failed)} failed: {listed}" + (f" and {more} more" if more > 0 else "")
        if task.on_item_failure == "skip":
            text += " (left out of its result: on_item_failure='skip')"
    return text


def show_failures(tasks: list[Task], *, every: bool = False) -> None:
    """Each failed task's error and traceback (from the task's own code on), on stderr:
    the first few, or ``every`` one."""
    failed = [t for t in tasks if t.status is TaskStatus.FAILED and t.error is not None]
    shown = failed if every else failed[:_TRACED_TASKS]
    for t in shown:
        assert t.error is not None
        if isinstance(t.error, ItemsFailedError):
            # its own traceback is the engine's; its items' say what went wrong
            click.echo(f"\ntask {t.name!r} failed: {t.error}", err=True)
            _show_item_failures(t)
            continue
        click.echo(f"\ntask {t.name!r} failed after {_tries(t)}:", err=True)
        click.echo(_task_traceback(t.error), err=True, nl=False)
        _last_lines(t)
    if len(failed) > len(shown):
        click.echo(
            f"\n(and {count(len(failed) - len(shown), 'more failed task')}: "
            "--verbose prints every traceback)",
            err=True,
        )


def _last_lines(t: Task) -> None:
    """The last lines the task logged and printed (captured by the run), if any."""
    logs = t.logs
    if not logs:
        return
    shown = logs[-_LAST_LINES:]
    if len(shown) == len(logs):
        click.echo(f"what it logged and printed ({count(len(logs), 'line')}):", err=True)
    else:
        click.echo(
            f"the last {len(shown)} of the {len(logs)} lines it logged and printed (all of "
            f"them: flowweaver status --logs {quote(t.name)}):",
            err=True,
        )
    for line in shown:
        click.echo(f"  | {line}", err=True)


def _show_item_failures(task: Task) -> None:
    failed = [i for i in task.items if i.status is TaskStatus.FAILED and i.error is not None]
    for item in failed[:_TRACED_ITEMS]:
        assert item.error is not None
        click.echo(f"\nitem {item.name!r} failed after {_tries(item)}:", err=True)
        click.echo(_task_traceback(item.error), err=True, nl=False)
        _last_lines(item)
    if len(failed) > _TRACED_ITEMS:
        click.echo(f"\n(and {len(failed) - _TRACED_ITEMS} more failed items)", err=True)


def _tries(t: Task) -> str:
    return "1 attempt" if t.attempts == 1 else f"{t.attempts} attempts"


def _task_traceback(error: BaseException) -> str:
    tb: TracebackType | None = error.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename.startswith(_LIBRARY_DIRS):
        tb = tb.tb_next
    if tb is None:  # nothing but library frames (a timeout, say): show them all
        tb = error.__traceback__
    return "".join(traceback.format_exception(type(error), error, tb))


def finish_line(
    out: Output,
    workflow: Workflow,
    tasks: list[Task],
    state: RunState,
    outcome: str,
    store_path: Path | None,
) -> None:
    """One sentence on how the run ended and what to do next, counting ``tasks`` (the
    ones the run was given)."""
    completed = sum(t.status is TaskStatus.COMPLETED for t in tasks)
    failed = [t.name for t in tasks if t.status is TaskStatus.FAILED]
    skipped = sum(t.status is TaskStatus.SKIPPED for t in tasks)
    # a task restored as skipped on purpose (flowweaver.Skip) is counted with the skipped
    was_restored = set(state.restored)
    n_restored = sum(t.status is TaskStatus.COMPLETED for t in tasks if t.name in was_restored)
    restored = f" ({n_restored:,} restored)" if n_restored else ""
    took = format_duration(state.elapsed())
    counts = f"{completed:,} completed{restored}, {len(failed):,} failed, {skipped:,} skipped"
    out.line()
    if outcome == "completed":
        out.line(f"{workflow.name}: COMPLETED in {took}: {counts}.", style="bold green")
    elif outcome == "failed":
        named = some_names(failed, len(failed), _NAMED_FAILED)
        out.line(
            f"{workflow.name}: FAILED in {took}: {counts} (failed: {named}).",
            style="bold red",
        )
    else:
        pending = sum(t.status is TaskStatus.PENDING for t in tasks)
        out.line(
            f"{workflow.name}: {workflow.status.value} ({outcome}) after {took}: {counts}, "
            f"{pending:,} not finished.",
            style="bold yellow",
        )
    if store_path is None:
        if outcome != "completed":
            out.line("No state store (--no-store): the next run starts from the beginning.")
        return
    if outcome == "completed":
        out.line(
            f"State saved in {store_path}: the next run restores these results "
            "(--fresh runs everything again)."
        )
    else:
        what = "Fix the failure and run" if outcome == "failed" else "Run"
        out.line(
            f"Completed tasks are saved in {store_path}. {what} the same command again to "
            "resume: they are restored instead of run again."
        )
    sys.stdout.flush()
