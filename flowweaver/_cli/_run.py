"""``flowweaver run``: import, pick the workflow, run it with progress, summarise, exit code.

Exit codes: 0 when every task completed, 1 when a task failed, 130 when Ctrl-C stopped
the run (the engine has flushed the store by then, so the next run resumes), 143 when
SIGTERM did (the same way), 2 for bad usage (see :class:`~flowweaver._cli._errors.BadInput`).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from shlex import quote
from types import FrameType, TracebackType
from typing import Any

import click

import flowweaver

from .._errors import ItemsFailedError, WorkflowExecutionError, WorkflowValidationError
from .._executor import BaseExecutor
from .._status import TaskStatus
from .._store._api import StateStoreError
from .._task import Task
from .._workflow import Workflow
from ._errors import INTERRUPTED, OK, TASK_FAILED, TERMINATED, BadInput
from ._load import load_valid_workflow
from ._output import Output, format_duration, stdout_is_terminal
from ._params import Selection
from ._progress import LiveProgress, PlainProgress, RunState
from ._stores import CliStore, run_store

EXECUTORS = ("sequential", "threaded", "async", "process")

# The summary names at most this many failed items of a map, then "and N more"; the
# tracebacks of at most _TRACED of them go to stderr.
_LISTED_ITEMS = 5
_TRACED_ITEMS = 3
# A failed task's summary shows the last this many lines it logged and printed.
_LAST_LINES = 5

# Frames from these folders are the engine's, not the user's: a failed task's traceback
# starts below them.
_LIBRARY_DIRS = tuple(
    os.path.dirname(m.__file__) + os.sep for m in (flowweaver,) if m.__file__ is not None
)


class _Terminated(BaseException):
    """SIGTERM reached the command during its run (after the engine cleaned up)."""


@contextmanager
def _sigterm_ends_the_run() -> Iterator[None]:
    """SIGTERM raises :class:`_Terminated` here, so the command can summarise and exit 143.

    During ``execute`` the engine handles SIGTERM first (cancel, flush the store), then
    re-delivers it to this handler.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        raise _Terminated

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        # None: a handler set from C, which Python cannot put back; the default is closest
        signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)


@dataclass
class RunOptions:
    target: str
    executor: str = "threaded"
    workers: int | None = None
    store: str | None = None
    no_store: bool = False
    fresh: bool = False
    backend: str = "asyncio"
    fail_fast: bool = False
    selection: Selection = field(default_factory=Selection)
    limits: tuple[str, ...] = ()  # TAG=N
    rates: tuple[str, ...] = ()  # TAG=RATE


def _tag_values(option: str, pairs: tuple[str, ...], example: str) -> dict[str, str]:
    """``("db=2",)`` -> ``{"db": "2"}``; a pair without ``=`` or a tag given twice is bad
    input naming the option."""
    out: dict[str, str] = {}
    for pair in pairs:
        tag, sep, value = pair.partition("=")
        tag, value = tag.strip(), value.strip()
        if not sep or not tag or not value:
            raise BadInput(f"{option} takes TAG=VALUE, as in {option} {example}; got {pair!r}")
        if tag in out:
            raise BadInput(f"{option} names tag {tag!r} twice")
        out[tag] = value
    return out


def _resource_options(options: RunOptions) -> dict[str, Any]:
    """The executor's ``limits`` and ``rate_limits`` from ``--limit`` and ``--rate``."""
    common: dict[str, Any] = {}
    if options.limits:
        limits: dict[str, Any] = {}
        for tag, value in _tag_values("--limit", options.limits, "db=2").items():
            try:
                limits[tag] = int(value)
            except ValueError:
                raise BadInput(
                    f"--limit {tag}={value}: the limit must be a whole number of tasks"
                ) from None
        common["limits"] = limits
    if options.rates:
        common["rate_limits"] = _tag_values("--rate", options.rates, "api=10/s")
    return common


def make_executor(options: RunOptions, store: CliStore | None, observer: Any) -> BaseExecutor:
    """The blocking executor the options describe.

    :raises BadInput: for ``--workers`` with the sequential executor, a bad ``--limit``
        or ``--rate``.
    """
    common: dict[str, Any] = {
        "state_store": store,
        "fail_fast": options.fail_fast,
        "backend": options.backend,
        "observer": observer,
        "fresh": options.fresh,
        # what a failed task logged and printed: its summary shows the last lines, and
        # `flowweaver status --logs TASK` all that the store kept
        "capture_logs": True,
    }
    common.update(_resource_options(options))
    try:
        return _executor(options, common)
    except WorkflowValidationError as exc:
        raise BadInput(str(exc)) from exc


def _executor(options: RunOptions, common: dict[str, Any]) -> BaseExecutor:
    if options.executor == "sequential":
        if options.workers is not None and options.workers != 1:
            raise BadInput(
                f"--workers {options.workers} does not apply to the sequential executor "
                "(it runs one task at a time); use --executor threaded or async"
            )
        return flowweaver.SequentialExecutor(**common)
    if options.executor == "threaded":
        if options.workers is not None:
            common["max_workers"] = options.workers
        return flowweaver.ThreadedExecutor(**common)
    if options.executor == "process":
        if options.workers is not None:
            common["max_workers"] = options.workers
        return flowweaver.ProcessExecutor(**common)
    if options.workers is not None:
        common["max_concurrent"] = options.workers
    # the blocking form of AsyncExecutor: same scheduling, execute() returns when done
    return flowweaver.ConcurrentExecutor(**common)


def run(options: RunOptions) -> int:
    """Run the workflow ``options.target`` names; returns the exit code.

    :raises BadInput: for a bad file, name, option or store (exit code 2).
    """
    path, workflow = load_valid_workflow(options.target)
    selection = options.selection
    try:
        tasks = selection.tasks_in(workflow)
    except WorkflowValidationError as exc:
        raise BadInput(f"cannot run workflow {workflow.name!r} in {path}: {exc}") from exc
    store: CliStore | None = None
    store_path: Path | None = None
    if not options.no_store:
        store, store_path = run_store(options.store)

    out = Output(stdout_is_terminal())
    mapped = {t.name: t for t in workflow.tasks if t.map_over is not None}
    state = RunState(workflow.name, len(tasks), mapped)
    # a live display on a terminal; one plain line per event in logs and pipes
    progress: LiveProgress | PlainProgress = (
        LiveProgress(state, out.console) if out.console is not None else PlainProgress(state)
    )
    executor = make_executor(options, store, progress)

    outcome = "completed"
    with progress, _sigterm_ends_the_run():
        try:
            executor.execute(workflow, **selection.options())
        except WorkflowValidationError as exc:
            # a parameter or selection the engine refused, before anything ran
            raise BadInput(f"cannot run workflow {workflow.name!r} in {path}: {exc}") from exc
        except WorkflowExecutionError:
            outcome = "failed"
        except KeyboardInterrupt:
            outcome = "interrupted"
        except _Terminated:
            outcome = "terminated"
        except StateStoreError as exc:
            if state.began is None or not (state.completed or state.failed or state.restored):
                # The store could not be opened or read: nothing ran, it is bad input.
                raise BadInput(str(exc)) from exc
            raise click.ClickException(f"the state store failed during the run: {exc}") from exc

    summarise(out, tasks, state)
    if outcome == "failed":
        show_failures(tasks)
    finish_line(out, workflow, tasks, state, outcome, store_path)
    if outcome == "interrupted":
        return INTERRUPTED
    if outcome == "terminated":
        return TERMINATED
    return TASK_FAILED if outcome == "failed" else OK


def summarise(out: Output, tasks: list[Task], state: RunState) -> None:
    """The table at the end: task, status, attempts, duration (of the tasks the run was
    given: a partial run leaves the others out)."""
    restored = set(state.restored)
    rows = []
    for t in tasks:
        status = t.status.value
        if t.name in restored and t.status is TaskStatus.COMPLETED:
            status += " (restored)"
        rows.append([t.name, status, str(t.attempts), format_duration(t.duration)])
    out.line()
    out.table(["task", "status", "attempts", "duration"], rows, status_column=1)
    lines = [
        (line, t)
        for t in tasks
        if t.map_over is not None and (line := item_summary(t, state)) is not None
    ]
    if lines:
        out.line()
    for line, t in lines:
        out.line(line, style="red" if t.failed_items else None)


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


def show_failures(tasks: list[Task]) -> None:
    """Each failed task's error and traceback (from the task's own code on), on stderr."""
    for t in tasks:
        if t.status is not TaskStatus.FAILED or t.error is None:
            continue
        if isinstance(t.error, ItemsFailedError):
            # its own traceback is the engine's; its items' say what went wrong
            click.echo(f"\ntask {t.name!r} failed: {t.error}", err=True)
            _show_item_failures(t)
            continue
        click.echo(f"\ntask {t.name!r} failed after {_tries(t)}:", err=True)
        click.echo(_task_traceback(t.error), err=True, nl=False)
        _last_lines(t)


def _last_lines(t: Task) -> None:
    """The last lines the task logged and printed (captured by the run), if any."""
    logs = t.logs
    if not logs:
        return
    shown = logs[-_LAST_LINES:]
    if len(shown) == len(logs):
        many = "line" if len(logs) == 1 else "lines"
        click.echo(f"what it logged and printed ({len(logs)} {many}):", err=True)
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
    restored = f" ({n_restored} restored)" if n_restored else ""
    took = format_duration(state.elapsed())
    counts = f"{completed} completed{restored}, {len(failed)} failed, {skipped} skipped"
    out.line()
    if outcome == "completed":
        out.line(f"{workflow.name}: COMPLETED in {took}: {counts}.", style="bold green")
    elif outcome == "failed":
        out.line(
            f"{workflow.name}: FAILED in {took}: {counts} (failed: {', '.join(failed)}).",
            style="bold red",
        )
    else:
        pending = sum(t.status is TaskStatus.PENDING for t in tasks)
        out.line(
            f"{workflow.name}: {workflow.status.value} ({outcome}) after {took}: {counts}, "
            f"{pending} not finished.",
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
