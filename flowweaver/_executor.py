"""What every executor is, whichever form its ``execute`` takes.

An executor is a configuration of the one engine: how many tasks may be in flight at once
and whether sync functions may run on the loop's own thread. The blocking forms
(``SequentialExecutor``, ``ThreadedExecutor``) and the awaitable ones (``AsyncExecutor``
and the ``flowweaver.aio`` classes) differ only in ``execute``; they are generated from one
source (``_async/_executors.py`` -> ``_sync/_executors.py``).
"""

from __future__ import annotations

import math
import os
import sys
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Literal, TypedDict

from ._errors import WorkflowValidationError

if TYPE_CHECKING:
    if sys.version_info >= (3, 11):
        from typing import Unpack
    else:
        from typing_extensions import Unpack

    from ._events import RunEvent
    from ._explain import Plan
    from ._remote._protocol import RemoteRunner
    from ._workflow import Workflow

Observer = Callable[["RunEvent"], Any]

Backend = Literal["asyncio", "trio"]
_BACKENDS = ("asyncio", "trio")


class ExecutorOptions(TypedDict, total=False):
    """The keyword-only options every executor takes (see :class:`BaseExecutor`)."""

    fail_fast: bool
    backend: Backend
    observer: Observer | Any
    fresh: bool
    fingerprint_code: bool
    commit_interval: float
    wait_for_lock: float | None
    limits: Mapping[str, int] | None
    rate_limits: Mapping[str, str] | None
    kill_grace: float
    capture_logs: bool
    capture_logs_lines: int


class RunOptions(TypedDict, total=False):
    """What one run (``execute``, ``plan``) takes besides the workflow.

    ``params``: run parameters, injected by parameter name into every task that takes
    them. ``targets``: run only these tasks and what they need upstream. ``from_tasks``:
    run these tasks and everything downstream of them, the results they need from
    upstream taken from the state store.
    """

    params: Mapping[str, Any] | None
    targets: Iterable[str] | None
    from_tasks: Iterable[str] | None


class BaseExecutor(ABC):
    """The base of all executors.

    :param state_store: where task states are saved and restored from (see the stores).
    :param fail_fast: when a task fails, cancel the tasks still running and skip the rest,
        instead of letting independent branches finish.
    :param backend: the event loop a *blocking* ``execute`` starts (``"asyncio"`` or
        ``"trio"``); an awaited ``execute`` runs on the caller's loop, whichever it is.
    :param observer: called with a :class:`~flowweaver.RunEvent` for every task state
        change: a callable (``async def`` or not) or an object with an ``on_event``
        method. It runs on the loop thread and must be quick; if it raises, the error is
        logged and the run goes on.
    :param fresh: ignore the results saved in ``state_store``: every task runs (and its
        new state is saved). The way to force a fresh run.
    :param fingerprint_code: save a hash of each task function's code with its result, and
        restore a result only while the code is unchanged (off by default: an explicit
        ``Task(version=...)`` is the cheaper, predictable way).
    :param commit_interval: with a ``state_store``, the longest a finished task's record
        waits before it is committed, in seconds (default 0.2), however many other tasks
        are ready: a crash loses at most about this much finished work. Records are
        saved in batches; a shorter interval means more, smaller batches.
    :param wait_for_lock: a run holds a lease on (``state_store``, workflow name) while it
        runs, so that two runs of one workflow never share a store at once; when another
        run (another process, or another Workflow object of the same name) holds it, wait
        up to this many seconds for it to end (default 0: fail at once; None: wait as
        long as it takes), then raise :class:`~flowweaver.WorkflowLockedError` naming the
        holder, before anything runs. Only the built-in stores are leased.
    :param limits: the most tasks with a tag in flight at once, per tag (``{"db": 2}``;
        see ``Task(tags=...)``). A task with several tags waits for all of them; a task
        waiting for a tag holds no worker and no slot of the executor's own bound.
    :param rate_limits: the most task starts per second or minute, per tag
        (``{"api": "10/s"}``, ``"600/min"``, ``"100/h"``): a token bucket holding up to
        the per-second figure (at least 1), full at the start of a run.
    :param kill_grace: seconds a task's worker process gets between SIGTERM and SIGKILL
        when its timeout expires or the run ends (``isolation="process"``,
        :class:`~flowweaver.ProcessExecutor`; default 5).
    :param capture_logs: keep the tail of each task's log records (from any logger, as
        ``"WARNING etl: message"`` with the traceback's lines) and of what its code
        writes to ``sys.stdout`` and ``sys.stderr`` from its own thread or coroutine
        (everything still reaches the stream), and save it with the task's record:
        ``Task.logs``, ``flowweaver status --logs TASK``. A retry's lines follow the
        attempt before, under a ``--- attempt N ---`` line. Off by default: a run without
        it replaces no stream.
    :param capture_logs_lines: how many lines the tail keeps per task (default 200).
    :raises WorkflowValidationError: for an unknown ``backend``, an ``observer`` that
        cannot be called, a ``commit_interval`` that is not a positive finite number, a
        ``wait_for_lock`` that is neither None nor a number of seconds (0 or more), a
        limit that is not a whole number of at least 1, or a rate that does not read
        ``"N/s"``, ``"N/min"`` or ``"N/h"``, a ``capture_logs`` that is not a bool or a
        ``capture_logs_lines`` that is not a whole number of at least 1. A limit or rate
        naming a tag that no task of the workflow has is an error of the run, before
        anything runs.
    """

    _inline_sync = False
    # Where sync task functions run when a task does not say (Task.isolation).
    _isolation = "thread"

    def __init__(
        self,
        state_store: Any = None,
        *,
        fail_fast: bool = False,
        backend: Backend = "asyncio",
        observer: Observer | Any = None,
        fresh: bool = False,
        fingerprint_code: bool = False,
        commit_interval: float = 0.2,
        wait_for_lock: float | None = 0,
        limits: Mapping[str, int] | None = None,
        rate_limits: Mapping[str, str] | None = None,
        kill_grace: float = 5.0,
        capture_logs: bool = False,
        capture_logs_lines: int = 200,
    ) -> None:
        if backend not in _BACKENDS:
            raise WorkflowValidationError(f"backend must be 'asyncio' or 'trio', got {backend!r}")
        if observer is not None and not callable(observer):
            on_event = getattr(observer, "on_event", None)
            if not callable(on_event):
                raise WorkflowValidationError(
                    f"observer must be a callable or have an on_event method, got {observer!r}"
                )
            observer = on_event
        self.state_store = state_store
        self.fail_fast = bool(fail_fast)
        self.backend: Backend = backend
        self.observer: Observer | None = observer
        self.fresh = bool(fresh)
        self.fingerprint_code = bool(fingerprint_code)
        self.commit_interval = _positive_seconds("commit_interval", commit_interval)
        self.wait_for_lock = _lock_wait(wait_for_lock)
        self.limits: dict[str, int] = _limits(limits)
        self.rate_limits: dict[str, str] = dict(rate_limits or {})
        # per tag: (tokens per second, bucket size), checked here so a typo fails early
        self._rates: dict[str, tuple[float, float]] = _rates(self.rate_limits)
        self.kill_grace = _grace(kill_grace)
        if not isinstance(capture_logs, bool):
            raise WorkflowValidationError(
                f"capture_logs must be True or False, got {capture_logs!r}"
            )
        self.capture_logs = capture_logs
        self.capture_logs_lines = _positive_int("capture_logs_lines", capture_logs_lines)

    @property
    @abstractmethod
    def concurrency(self) -> int:
        """The most tasks this executor has in flight at once."""

    @abstractmethod
    def execute(self, workflow: Workflow, **options: Unpack[RunOptions]) -> Any:
        """Run ``workflow``; blocking or awaitable depending on the executor's form."""

    def _remote_runner(self) -> RemoteRunner | None:
        """A fresh runner that executes task functions elsewhere, or None (the default).

        Called once per run, inside it (see ``_remote``).
        """
        return None

    def _run_blocking(self, workflow: Workflow, options: RunOptions | None = None) -> None:
        from ._blocking import loop_running_in_this_thread, run_blocking
        from ._engine._driver import run_workflow

        # Sync tasks may run on the loop's own thread only when that loop runs in the
        # caller's thread: on the helper thread (a loop already runs here) they could not
        # be interrupted by Ctrl-C, so they go to worker threads like everywhere else.
        owns_loop = not loop_running_in_this_thread()
        run_blocking(run_workflow, self, workflow, owns_loop, options, backend=self.backend)

    async def _run_async(self, workflow: Workflow, options: RunOptions | None = None) -> None:
        from ._engine._driver import run_workflow

        await run_workflow(self, workflow, False, options)

    def _plan_blocking(self, workflow: Workflow, options: RunOptions | None = None) -> Plan:
        from ._blocking import run_blocking
        from ._engine._planner import plan_workflow

        return run_blocking(plan_workflow, self, workflow, options or {}, backend=self.backend)

    async def _plan_async(self, workflow: Workflow, options: RunOptions | None = None) -> Plan:
        from ._engine._planner import plan_workflow

        return await plan_workflow(self, workflow, options or {})

    def __repr__(self) -> str:
        return f"{type(self).__name__}(concurrency={self.concurrency})"


def _positive_int(label: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise WorkflowValidationError(f"{label} must be a whole number, got {value!r}")
    if value < 1:
        raise WorkflowValidationError(f"{label} must be at least 1, got {value}")
    return value


def _positive_seconds(label: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise WorkflowValidationError(f"{label} must be a number of seconds, got {value!r}")
    if not (value > 0 and math.isfinite(value)):
        raise WorkflowValidationError(
            f"{label} must be a positive finite number of seconds, got {value!r}"
        )
    return float(value)


def _lock_wait(value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise WorkflowValidationError(
            f"wait_for_lock must be None (wait as long as it takes) or a number of seconds, "
            f"0 or more, got {value!r}"
        )
    return None if math.isinf(value) else float(value)


def _tags(label: str, value: object) -> Mapping[Any, Any]:
    if not isinstance(value, Mapping):
        raise WorkflowValidationError(f"{label} must be a dict of tag names, got {value!r}")
    for tag in value:
        if not isinstance(tag, str) or not tag:
            raise WorkflowValidationError(
                f"{label}: every tag must be a non-empty str, got {tag!r}"
            )
    return value


def _limits(value: object) -> dict[str, int]:
    if value is None:
        return {}
    return {tag: _positive_int(f"limits[{tag!r}]", n) for tag, n in _tags("limits", value).items()}


_PER = {"s": 1.0, "sec": 1.0, "second": 1.0, "m": 60.0, "min": 60.0, "minute": 60.0}
_PER.update({"h": 3600.0, "hour": 3600.0})


def parse_rate(tag: str, rate: object) -> tuple[float, float]:
    """``"10/s"`` -> (10.0 tokens a second, a bucket of 10): the bucket holds the
    per-second figure (at least one token), so a burst never beats the rate by more."""
    count, _, unit = rate.partition("/") if isinstance(rate, str) else ("", "", "")
    try:
        n = float(count.strip())
    except ValueError:
        n = math.nan
    per = _PER.get(unit.strip().lower())
    if per is None or not (n > 0 and math.isfinite(n)):
        raise WorkflowValidationError(
            f"rate_limits[{tag!r}] must read like '10/s', '600/min' or '100/h' (a positive "
            f"number of task starts per second, minute or hour), got {rate!r}"
        )
    per_second = n / per
    return per_second, max(1.0, per_second)


def _rates(value: object) -> dict[str, tuple[float, float]]:
    return {tag: parse_rate(tag, r) for tag, r in _tags("rate_limits", value).items()}


def _grace(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise WorkflowValidationError(
            f"kill_grace must be a number of seconds (0 or more), got {value!r}"
        )
    if not math.isfinite(value):
        raise WorkflowValidationError(f"kill_grace must be finite, got {value!r}")
    return float(value)


class SequentialBase(BaseExecutor):
    """One task at a time, in dependency order.

    Run blocking, sync functions without a timeout are called directly on the run's own
    thread (no thread hop); awaited inside an async service, they go to one worker thread
    so the service's loop is never blocked.
    """

    _inline_sync = True

    @property
    def concurrency(self) -> int:
        return 1


class ThreadedBase(BaseExecutor):
    """Up to ``max_workers`` tasks at once; sync functions run on that many threads.

    :param max_workers: the most tasks in flight (and worker threads) at once.
    """

    def __init__(
        self, max_workers: int = 4, state_store: Any = None, **options: Unpack[ExecutorOptions]
    ) -> None:
        self.max_workers = _positive_int("max_workers", max_workers)
        super().__init__(state_store, **options)

    @property
    def concurrency(self) -> int:
        return self.max_workers


class ConcurrentBase(BaseExecutor):
    """Up to ``max_concurrent`` tasks at once on the event loop.

    ``async def`` functions run on the loop; sync functions run on worker threads (at most
    ``max_concurrent`` of them) so they never block it.

    :param max_concurrent: the most tasks in flight at once.
    """

    def __init__(
        self,
        max_concurrent: int = 50,
        state_store: Any = None,
        **options: Unpack[ExecutorOptions],
    ) -> None:
        self.max_concurrent = _positive_int("max_concurrent", max_concurrent)
        super().__init__(state_store, **options)

    @property
    def concurrency(self) -> int:
        return self.max_concurrent


class ProcessBase(BaseExecutor):
    """Up to ``max_workers`` tasks at once; sync functions run in as many worker processes.

    :param max_workers: the most tasks in flight (and worker processes) at once; None:
        the number of CPUs.
    """

    # Where the sync functions of this executor's tasks run (a task's own ``isolation``
    # overrides it).
    _isolation = "process"

    def __init__(
        self,
        max_workers: int | None = None,
        state_store: Any = None,
        **options: Unpack[ExecutorOptions],
    ) -> None:
        if max_workers is None:
            max_workers = os.cpu_count() or 1
        self.max_workers = _positive_int("max_workers", max_workers)
        super().__init__(state_store, **options)

    @property
    def concurrency(self) -> int:
        return self.max_workers
