"""``flowweaver run``: import, pick the workflow, run it with progress, summarise, exit code.

Exit codes: 0 when every task completed, 1 when a task failed, 130 when Ctrl-C stopped
the run (the engine has flushed the store by then, so the next run resumes), 143 when
SIGTERM did (the same way), 2 for bad usage (see :class:`~flowweaver._cli._errors.BadInput`).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import click

import flowweaver

from .._errors import WorkflowExecutionError, WorkflowValidationError
from .._executor import BaseExecutor
from .._store._api import StateStoreError
from ._errors import INTERRUPTED, OK, TASK_FAILED, TERMINATED, BadInput
from ._load import load_valid_workflow
from ._output import Output, stdout_is_terminal
from ._params import Selection
from ._progress import DEFAULT_INTERVAL, LiveProgress, PlainProgress, RunState
from ._stores import CliStore, run_store
from ._summary import finish_line, show_failures, summarise

EXECUTORS = ("sequential", "threaded", "async", "process")


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
    verbose: bool = False  # a line per event in a log; every traceback
    show_all: bool = False  # a summary row per task
    progress_interval: float = DEFAULT_INTERVAL  # seconds between progress lines in a log


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
    # a live display on a terminal; in logs and pipes the lines a person reads
    progress: LiveProgress | PlainProgress = (
        LiveProgress(state, out.console, verbose=options.verbose)
        if out.console is not None
        else PlainProgress(state, verbose=options.verbose, interval=options.progress_interval)
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

    summarise(out, tasks, state, show_all=options.show_all)
    if outcome == "failed":
        show_failures(tasks, every=options.verbose)
    finish_line(out, workflow, tasks, state, outcome, store_path)
    if outcome == "interrupted":
        return INTERRUPTED
    if outcome == "terminated":
        return TERMINATED
    return TASK_FAILED if outcome == "failed" else OK
