"""What every executor is, whichever form its ``execute`` takes.

An executor is a configuration of the one engine: how many tasks may be in flight at once
and whether sync functions may run on the loop's own thread. The blocking forms
(``SequentialExecutor``, ``ThreadedExecutor``) and the awaitable ones (``AsyncExecutor``
and the ``flowweaver.aio`` classes) differ only in ``execute``; they are generated from one
source (``_async/_executors.py`` -> ``_sync/_executors.py``).
"""

from __future__ import annotations

import math
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
    :raises WorkflowValidationError: for an unknown ``backend``, an ``observer`` that
        cannot be called, a ``commit_interval`` that is not a positive finite number, or a
        ``wait_for_lock`` that is neither None nor a number of seconds (0 or more).
    """

    _inline_sync = False

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
