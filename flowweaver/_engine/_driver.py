"""The one engine: an anyio task-group scheduler that every executor configures.

Theory of operation. A run compiles the workflow into a :class:`~flowweaver._engine._graph.Graph`
and hands it to a :class:`~flowweaver._engine._scheduler.Scheduler`, which makes every
decision about when a task runs; this module only carries them out. A task is *admitted*
the moment its last upstream task completes, as long as fewer than ``concurrency`` tasks
are in flight; there are no waves, no polling and no sleeps. Admitted tasks go one of two
ways:

* *lanes* are coroutines in the run's task group. They await ``async def`` functions, call
  sync functions directly when the run owns its loop and is sequential, and wait (with a
  deadline) for sync functions that have a timeout. A lane that finishes a task settles it
  on the spot, which admits its dependents, and takes the next item from the lane queue
  without a context switch. Lanes are started lazily, never more than ``concurrency``.
* the *worker pool* (``_workers``) runs sync functions without a timeout on long-lived
  threads; outcomes come back through an inbox that wakes the driver once per batch. A
  task that runs in a worker process (``_processes``) is such a job too, timeout or not:
  its thread waits for the process, and the process pool, not a lane, keeps the deadline,
  because a process can be killed where a thread could only be abandoned.

All bookkeeping (statuses, results, the ready set) happens on the loop thread, so it needs
no locks; each task's public state is replaced in one assignment, so other threads read it
consistently. Settling a task is O(its edges); a run is O(tasks + edges).

Failure: a task that fails after its retries marks its whole downstream ``SKIPPED``; the
rest keeps running, then the run raises :class:`WorkflowExecutionError`. With
``fail_fast`` the task group is cancelled instead. Cancellation of the caller (or Ctrl-C)
cancels lanes and abandons workers; tasks in flight go back to ``PENDING``, and the
exception propagates.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from contextlib import nullcontext
from functools import partial
from typing import TYPE_CHECKING, Any, Literal

import anyio
import anyio.abc
from anyio.lowlevel import checkpoint

from .. import _log
from .._blocking import loop_running_in_this_thread, run_blocking
from .._capture import Tail, capture_off, capture_on
from .._context import _CURRENT as _current
from .._context import (
    InContext,
    TaskContext,
    attempt_scope_of,
    inline_calls_by,
    log_attributes_off,
    log_attributes_on,
    parent_run_id,
    scope_carrier,
    scope_enter,
    scope_exit,
    scoped_call,
)
from .._errors import (
    FlowWeaverError,
    MapError,
    TaskExecutionError,
    UnsendableError,
    WorkflowExecutionError,
    WorkflowValidationError,
    describe_exception,
)
from .._events import (
    RunFinished,
    RunStarted,
    TaskCompleted,
    TaskFailed,
    TaskQueued,
    TaskRestored,
    TaskRetrying,
    TaskSkipped,
    TaskStarted,
)
from .._outcomes import SKIPPED, TRIGGER_RULES, Failed, Skip
from .._remote._protocol import RemoteResult
from .._remote._steps import RemoteSteps
from .._status import TaskStatus, WorkflowStatus
from .._store._api import StateSerializationError, TaskRecord
from .._store._resume import Judged
from . import _gc
from ._attempt import await_with_timeout, call_with_timeout, is_awaitable, log_retry
from ._callbacks import SyncCall, run_callbacks
from ._endings import (
    bare_interrupt,
    execution_error,
    is_interruption,
    settle_interrupted,
    skip_reason,
)
from ._graph import Graph
from ._limits import build_gate
from ._maps import MapSource, check_item_names, elements, items_failed, keys
from ._observe import Emitter
from ._persist import RunStore
from ._plan import (
    ASYNC,
    INLINE,
    MAP,
    POOL,
    PROCESS,
    REMOTE,
    REMOTE_TIMED,
    Planned,
    cached_plan,
)
from ._scheduler import DONE, FAILED, Failure, Scheduler
from ._select import Selection, check_params, held, results_unavailable, select
from ._sigint import (
    InlineGuard,
    Terminated,
    interrupt_inline_calls,
    protect_waits_under_trio,
    sigterm_cancels,
    wait_event,
    wake_loop_on_signals,
)
from ._wake import Waker
from ._workers import Job, WorkerPool, thread_context, threadsafe_caller
from ._writer import Writer

if TYPE_CHECKING:
    from .._executor import BaseExecutor, RunOptions
    from .._task import Task
    from .._workflow import Workflow
    from ._processes import ProcessPool

logger = _log.logger  # with its NullHandler (see _log)

set_current = _current.set
reset_current = _current.reset

# A lane yields to the loop after this many tasks that did not suspend, so a long run of
# tiny tasks cannot starve the driver, the store writer or a pending cancellation.
_YIELD_EVERY = 64

# Result types that are never awaitable: spares the inspect.isawaitable call per task.
_PLAIN = frozenset({type(None), bool, int, float, str, bytes, list, tuple, dict, set})

_COMPLETED = TaskStatus.COMPLETED
_COMPLETED_NONE: tuple[TaskStatus, Any, BaseException | None] = (_COMPLETED, None, None)
_RUNNING = TaskStatus.RUNNING
_SKIPPED = TaskStatus.SKIPPED
_RULE = {name: rule for rule, name in enumerate(TRIGGER_RULES)}


class _Run:
    """One execution of one workflow."""

    def __init__(
        self,
        executor: BaseExecutor | _SoloSettings,
        workflow: Workflow | _Solo,
        owns_loop: bool,
        params: Mapping[str, Any] | None = None,
        selection: Selection | None = None,
    ) -> None:
        self.workflow = workflow
        self.selection = selection
        hold = held(workflow, selection)
        self.graph = hold.graph
        by_name = workflow._tasks
        self.run_id = uuid.uuid4().hex[:16]
        # A run started by a task of another run (a nested workflow) says whose it is.
        self.parent_id = parent_run_id()
        self.inline_node = -1  # the node whose sync function is being called inline
        # An observer's code around each attempt, where it runs (a tracer's span)
        self.attempt_scope = attempt_scope_of(executor.observer)
        self.run_params: Mapping[str, Any] = dict(params) if params else {}
        # capture_logs: each running task's lines (see _capture); None: the run captures
        # nothing, and its tasks pay nothing for it.
        self.tails: dict[int, Tail] | None = None
        self.tail_lines = executor.capture_logs_lines
        if executor.capture_logs:
            self.tails = {}
            # Swapped in, as _kwargs_with_params is: the hot path of a run that does not
            # capture stays exactly as it was.
            self._dispatch = self._dispatch_capturing  # type: ignore[method-assign]
            self._succeeded = self._succeeded_capturing  # type: ignore[method-assign]
        index = self.graph.index
        # Tasks outside a selection whose saved results it takes (from_tasks): restored
        # at the start, never run, never reported (they stay PENDING).
        given = hold.given_names
        self.given = hold.given
        self.forced = hold.forced
        self.concurrency = executor.concurrency
        self.fail_fast = executor.fail_fast
        inline = owns_loop and executor._inline_sync
        self.inline = inline
        self.owns_loop = owns_loop
        runner = executor._remote_runner()
        self.remote = (
            RemoteSteps(
                runner,
                self.run_id[:8],
                self._succeeded,
                self._failed_for_good,
                needs_values=executor.state_store is not None,
                wrap=self._remote_wrap,
            )
            if runner is not None
            else None
        )
        # The workflow's plan, made by its first run (see _plan.cached_plan); a run with maps
        # copies the lists it grows. A selection's graph is the run's own: planned anew.
        remote = self.remote is not None
        if selection is None and workflow._plans is not None:
            planned = cached_plan(
                workflow._plans, self.graph, by_name, inline, remote, executor._isolation
            )
        else:
            tasks = [by_name[n] for n in self.graph.names]
            planned = Planned(tasks, self.graph, inline, remote, executor._isolation)
        self.tasks: list[Task] = planned.tasks
        self.kinds = planned.kinds
        self.inject = planned.inject
        if workflow._mapped:  # only maps change these lists (MAP, and their items)
            self.tasks, self.kinds, self.inject = (
                list(self.tasks),
                list(self.kinds),
                list(self.inject),
            )
        # The keyword under which each node's result is passed (see _plan.Inject); a run
        # with maps extends a copy of its own.
        self.keywords: list[str] = self.graph.names
        self.kill_grace = executor.kill_grace
        # Maps: items are appended to the run's lists (tasks, kinds, inject, results) as
        # their task expands; the workflow's own tasks are the first n_static.
        self.n_static = len(self.tasks)
        self.maps: dict[int, MapSource] = {}
        mapped = [n for n in workflow._mapped if n in index and n not in given]
        check_item_names(set(mapped), self.graph.names)
        for name in mapped:
            if self.remote is not None:
                raise WorkflowValidationError(
                    f"task {name!r} maps over {by_name[name].map_over!r}, and maps do not run "
                    "on a remote executor (Dask) yet; use ThreadedExecutor or AsyncExecutor"
                )
            p = self.graph.index[name]
            over = by_name[name].map_over
            assert over is not None
            self.maps[p] = MapSource(self.graph.index[over], self.kinds[p])
            self.kinds[p] = MAP
        # Values given to the run as a whole (Task.execute's context) reach every task
        # that takes them by name; a run without them keeps the plain, faster _kwargs.
        self.params: list[dict[str, Any]] = []
        if params:
            self.params = [{k: v for k, v in params.items() if t.accepts(k)} for t in self.tasks]
            self._kwargs = self._kwargs_with_params  # type: ignore[method-assign]

        # Tag limits and rate limits: the scheduler's gate (None when the executor has
        # none, which keeps admission on its fast path). A mapped task's items take its
        # tags, never the mapped task itself.
        kinds = self.kinds
        gate, self.tag_ids = build_gate(
            workflow.name,
            (tag for t in by_name.values() for tag in t.tags),
            [None if kinds[i] == MAP else t.tags for i, t in enumerate(self.tasks)],
            executor.limits,
            executor._rates,
        )
        self.clocked = gate is not None and gate.clocked
        self.timer_at: float | None = None  # when the token timer wakes admission
        self.timers: set[anyio.CancelScope] = set()
        # Every decision about when a task runs is the scheduler's; this class carries
        # them out (lanes, threads, the store, events) and tells it what happened.
        self.sched = Scheduler(self.concurrency, self.fail_fast, gate)
        self.sched.add_graph(
            self.graph.upstream,
            [t.retries for t in self.tasks],
            {
                index[n]: _RULE[by_name[n].trigger]
                for n in workflow._ruled
                if n in index and n not in given
            },
            self.graph.downstream,
        )
        # What each task passes on: its result, Failed(error) or SKIPPED. Only a task whose
        # trigger rule lets it run before every upstream task ended (one_failed,
        # one_success) can read an entry not yet written: it gets SKIPPED.
        self.results: list[Any] = [SKIPPED] * len(self.tasks)
        self.failed: list[int] = []
        self.skipped: list[int] = []
        self.finished = False
        self.fatal: BaseException | None = None
        self.guard = InlineGuard()
        self.scope = anyio.CancelScope()

        # lanes
        self.lane_queue: deque[int] = deque()
        self.idle_lanes: deque[anyio.Event] = deque()
        self.lanes = 0
        self.awaiting: dict[int, Awaitable[Any]] = {}

        # worker pool and its inbox (filled from worker threads)
        self.pool: WorkerPool | None = None
        self.inbox: list[tuple[int, bool, Any, float]] = []
        self.inbox_flagged = False
        self.epoch = 0  # a fail_fast stop starts a new one (see _clean_up)
        self.lock = threading.Lock()
        self.procs: ProcessPool | None = None  # worker processes (PROCESS), made lazily

        self.work: anyio.abc.TaskGroup | None = None  # lanes, retry timers
        self.side: anyio.abc.TaskGroup | None = None  # callbacks: outlive a fail_fast

        self.emitter = (
            Emitter(executor.observer, self.run_id) if executor.observer is not None else None
        )
        self.emit = self.emitter.emit if self.emitter is not None else None
        self.name = workflow.name

        self.store: RunStore | None = None
        if executor.state_store is not None:
            self.store = RunStore(
                executor.state_store,
                self.name,
                self.graph,
                self.tasks,
                run_id=self.run_id,
                fresh=executor.fresh,
                fingerprint_code=executor.fingerprint_code,
                params=params,
                commit_interval=executor.commit_interval,
                wait_for_lock=executor.wait_for_lock,
            )
            if self.remote is not None:
                keyed = [t.name for t in self.tasks if t.cache_key is not None]
                if keyed:
                    raise WorkflowValidationError(
                        f"task {keyed[0]!r} has a cache_key, which does not run on a remote "
                        "executor (Dask) yet; use ThreadedExecutor or AsyncExecutor, or drop it"
                    )
        elif self.given:
            raise results_unavailable(
                self.name, [self.graph.names[i] for i in self.given], store=False
            )
        self.writer: Writer | None = None
        # Tasks whose saved record stands but for what they receive: decided when ready
        # (see _restore_later); why each task that runs does (the run's history).
        self.later: dict[int, TaskRecord] = {}
        self.keyed: set[int] = set()
        self.to_restore: list[tuple[int, TaskRecord]] = []
        self.deciding = False
        self.judged = Judged()
        self.given_records: dict[int, TaskRecord] = {}
        if self.store is not None:
            self.keyed = {i for i, t in enumerate(self.tasks) if t.cache_key is not None}

    # -- what flowweaver.current() reads (see _context) ------------------------------------

    def context_of(self, i: int) -> TaskContext:
        t = self.tasks[i]
        return TaskContext(
            self.name, t.name, t.item, t.attempts, self.run_id, self.run_params, self.parent_id
        )

    def log_fields(self, i: int) -> tuple[str, str, int, str]:
        t = self.tasks[i]
        return self.name, t.name, t.attempts, self.run_id

    def tail_of(self, i: int) -> Tail | None:
        tails = self.tails
        return None if tails is None else tails.get(i)

    def _tail_for(self, i: int, attempt: int) -> Tail:
        """Task ``i``'s tail as its attempt starts: a retry goes on below the attempt
        before it, under a ``--- attempt N ---`` line."""
        assert self.tails is not None
        tail = self.tails.get(i)
        if tail is None:
            tail = self.tails[i] = Tail(self.tail_lines)
        elif attempt > 1:
            tail.new_attempt(attempt)
        return tail

    def _dispatch_capturing(self, i: int) -> None:
        if self.kinds[i] != MAP:  # a mapped task runs no code of its own
            self._tail_for(i, self.sched.attempts[i])
        _Run._dispatch(self, i)

    def _succeeded_capturing(self, i: int, value: Any, ended: float) -> None:
        if type(value) in _PLAIN or not is_awaitable(value):  # else: awaited on a lane first
            self._take_logs(i, self.tasks[i])
        _Run._succeeded(self, i, value, ended)

    def _take_logs(self, i: int, t: Task) -> list[str] | None:
        """Task ``i`` ended: its captured lines, kept on the task (``Task.logs``)."""
        tails = self.tails
        if tails is None:
            return None
        tail = tails.pop(i, None)
        if tail is not None:  # else taken already: a result the store refused fails it
            t._logs = tail.take()
        return t._logs

    def _remote_wrap(self, i: int, func: Callable[..., Any]) -> Callable[..., Any]:
        ctx = self.context_of(i)
        return InContext(ctx, func, scope_carrier(self.attempt_scope, ctx))

    # -- the run ---------------------------------------------------------------------------

    async def run(self) -> None:
        # Ctrl-C interrupts an inline call (a task's function on the loop thread, or the
        # store's, which a run that owns its loop reaches inline: see _sessions) from the
        # moment the store opens until it is closed.
        inline_io = self.inline or (self.owns_loop and self.store is not None)
        with interrupt_inline_calls(self.guard) if inline_io else nullcontext():
            await self._run()

    async def _run(self) -> None:
        workflow = self.workflow
        if workflow._running:
            raise WorkflowValidationError(
                f"workflow {workflow.name!r} is already running; wait for that run to end"
            )
        workflow._running = True
        if self.store is not None:
            try:
                # A loop started for this run has nothing of anyone else's to run while a
                # batch is written on it, and the thread round trip costs more than most
                # batches; an awaited run must never block its caller's loop.
                await self.store.open(self._durable, self.guard if self.owns_loop else None)
                self.given_records = await self._check_given(self.store)
                await self.store.begin()
            except BaseException:
                workflow._running = False
                raise
            self.writer = self.store.writer
        if self.remote is not None:
            try:
                await self.remote.start(self.name, self.emit)
            except BaseException:
                workflow._running = False
                if self.store is not None:
                    await self.store.close(False)
                with anyio.CancelScope(shield=True):
                    await self.remote.runner.aclose()
                raise
        workflow._status = WorkflowStatus.RUNNING
        protect_waits_under_trio()
        # A partial run leaves every task outside it PENDING, whatever an earlier run left.
        for t in workflow._tasks.values() if self.selection is not None else self.tasks:
            t._reset()
        self.call_soon = threadsafe_caller()
        self.job_context = thread_context()
        self.waker = Waker(self._settle_woken, self.call_soon)
        began = time.time()
        emitter = self.emitter
        if self.emit is not None:
            self.emit(RunStarted(self.name, began, len(self.tasks) - len(self.given)))
        ok = interrupted = False
        _gc.hold()  # released first thing in _shutdown
        log_attributes_on()  # off in _shutdown
        if self.tails is not None:
            capture_on()  # off in _shutdown
        inline_before = inline_calls_by(self) if self.inline else None
        try:
            with self.scope:
                async with anyio.create_task_group() as side:
                    self.side = side
                    if emitter is not None and emitter.is_async:
                        side.start_soon(self._guarded, emitter.deliver)
                    if self.writer is not None:
                        side.start_soon(self._guarded, self.writer.run)
                    self._restore()
                    async with anyio.create_task_group() as work:
                        self.work = work
                        if self.remote is not None:
                            work.start_soon(self._guarded, self.remote.fetcher)
                        try:
                            self._start()
                        except BaseException as exc:
                            self._abort(exc)
                        await self._guarded(self._drive)
                    if self.sched.stopped_by is not None and self.fatal is None:
                        await self._clean_up()
                    if self.writer is not None:
                        self.writer.close()
                    if emitter is not None:
                        emitter.close()
            if self.fatal is not None:
                raise self.fatal
            ok = True
        except BaseException as exc:
            interrupted = is_interruption(exc)
            bare = bare_interrupt(exc)
            if bare is not None:
                # Ctrl-C, whatever task of the run trio raised it in, leaves as itself
                # (after the cleanup below), never wrapped in a group.
                raise bare from None
            raise
        finally:
            if self.inline:
                inline_calls_by(inline_before)
            await self._shutdown(ok, began, interrupted)
        if self.failed:
            # As with failures, an item's skip is its mapped task's to report (a stopped map
            # of 100,000 items would list them all).
            skipped = [j for j in self.skipped if j < self.n_static]
            raise execution_error(self.name, self.tasks, self.failed, skipped)

    async def _shutdown(self, ok: bool, began: float, interrupted: bool = False) -> None:
        """Stop the workers, flush and close the store and the cluster, settle statuses.

        Every step runs even if an earlier one fails. A failure is raised when the run
        was otherwise fine; when an error or a cancellation is already on its way out it
        is logged instead, so that it does not hide the original.

        :param interrupted: the run was cancelled, interrupted (Ctrl-C) or terminated: the
            workflow ends ``CANCELLED``, even when a task had failed before, because the
            run did not finish.
        """
        self.finished = True
        _gc.release()
        log_attributes_off()
        if self.tails is not None:
            capture_off()
        if self.pool is not None:
            self.pool.close()
        with self.lock:
            self.waker.close()
        if self.procs is not None:
            # Before the store: a task's process must be gone before the run's record of
            # it is final. Shielded, since it is the cleanup of a cancelled run too; it
            # blocks up to kill_grace (a task that ignores SIGTERM), so on a thread.
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(self.procs.close)
        errors: list[BaseException] = []
        if self.store is not None:
            try:
                await self.store.close(ok, interrupted)
            except BaseException as exc:
                errors.append(exc)
        if self.remote is not None:
            try:
                await self.remote.close(ok, self.tasks)
            except BaseException as exc:
                if ok:
                    errors.append(exc)
                else:
                    logger.exception("could not close the remote runner of %r", self.name)
        cancelled, skipped = self.sched.interrupt()
        stop = self.sched.stopped_by
        stopped_by = self.tasks[stop].name if stop is not None else None
        self.skipped.extend(skipped)
        settle_interrupted(self.name, self.tasks, cancelled, skipped, stopped_by, self.emit)
        workflow = self.workflow
        workflow._running = False
        given = {self.tasks[i].name for i in self.given} if self.given else ()
        failed = (
            bool(self.failed)
            or not ok
            or bool(errors)
            or any(
                t.status is not _COMPLETED and t.status is not _SKIPPED
                for t in self.tasks[: self.n_static]
                if t.name not in given  # taken from the store: they stay PENDING
            )
        )
        if interrupted:
            workflow._status = WorkflowStatus.CANCELLED
        else:
            workflow._status = WorkflowStatus.FAILED if failed else WorkflowStatus.COMPLETED
        if self.emitter is not None:
            await self._last_events(self.emitter, began)
        if errors:
            raise errors[0]

    async def _last_events(self, emitter: Emitter, began: float) -> None:
        """Emit the end of the run; an async observer gets a bounded, shielded drain."""
        end = time.time()
        status = self.workflow._status.value
        emitter.emit(RunFinished(self.name, end, status, end - began))
        if emitter.is_async:
            emitter.close()
            with anyio.move_on_after(5, shield=True):
                await emitter.deliver()

    async def _guarded(self, step: Callable[[], Any]) -> None:
        """Run a task of the run; an error other than cancellation ends the run with it.

        Every child task of the run's task groups runs through this: anyio's task groups
        wrap errors in ExceptionGroup, and trio raises Ctrl-C's KeyboardInterrupt in
        whichever task is running. The run re-raises the error itself once the groups have
        exited (see :meth:`_abort`).
        """
        try:
            await step()
        except anyio.get_cancelled_exc_class():
            raise
        except BaseException as exc:
            self._abort(exc)

    async def _clean_up(self) -> None:
        """After a ``fail_fast`` stop: skip what is left, then run the ``all_done`` tasks.

        The stop cancelled everything in flight; a clean-up task caught in flight runs
        again from the start. Attempts abandoned on worker threads report to an older
        epoch, and are ignored.
        """
        sched = self.sched
        cancelled, skipped = sched.stop()
        assert sched.stopped_by is not None
        stopped_by = self.tasks[sched.stopped_by].name
        self.skipped.extend(skipped)
        settle_interrupted(self.name, self.tasks, cancelled, skipped, stopped_by, self.emit)
        if sched.unsettled == 0:
            return
        self.epoch += 1
        if self.procs is not None:
            # The stop cancelled the attempts in flight; in a process they can be stopped
            # for real, and are, before a clean-up task can take their place. Jobs of the
            # old epoch that have not taken a process yet never start (see _in_process).
            await anyio.to_thread.run_sync(self.procs.kill_busy)
        self.finished = False
        self.lane_queue.clear()
        self.idle_lanes.clear()
        self.lanes = 0
        self.awaiting.clear()
        with self.lock:
            self.inbox = []
            self.inbox_flagged = False
        self.timer_at = None  # the stop cancelled the timers with the work group
        async with anyio.create_task_group() as work:
            self.work = work
            if self.remote is not None:
                self.remote.restart()
                work.start_soon(self._guarded, self.remote.fetcher)
            self._admit_or_finish()
            await self._guarded(self._drive)

    async def _check_given(self, store: RunStore) -> dict[int, TaskRecord]:
        """The saved results of the given tasks (see ``_select``): each must be there."""
        if not self.given:
            return {}
        found, missing = store.given(self.given)
        if missing:
            await store.close(False)
            raise results_unavailable(self.name, [self.graph.names[i] for i in missing], store=True)
        return found

    def _restore(self) -> None:
        """Mark each task with a usable saved result COMPLETED, without running it."""
        if self.store is None:
            return
        sched = self.sched
        for i, rec in self.given_records.items():  # from_tasks: taken as saved, not shown
            sched.restore(i, skipped=rec.status is TaskStatus.SKIPPED)
            self.results[i] = SKIPPED if rec.status is TaskStatus.SKIPPED else rec.result
        judged = self.store.judge(self.forced)
        found = judged.restore
        self.later = judged.later
        self.judged = judged
        # Only then does a dispatch have anything to decide (kept off the hot path).
        self.deciding = bool(self.later or self.keyed)
        given = self.given_records
        candidates = []
        for i, rec in found.items():  # upstream tasks first: the order _resume found them in
            if i in given:
                continue  # restored above
            on_purpose = rec.status is _SKIPPED
            if on_purpose and rec.token is None:
                continue  # skipped by a rule: the scheduler decides it again
            candidates.append((i, on_purpose))
        # Only once every upstream task has ended as it did then: one that a rule now
        # decides otherwise (it runs) makes its whole downstream run again too.
        restored = sched.restore_all(candidates)
        if len(restored) < len(candidates):
            done = set(restored)
            for i, _ in candidates:
                if i not in done:
                    judged.reasons[i] = "an upstream task ends otherwise than when it was saved"
        emit = self.emit
        tasks = self.tasks
        results = self.results
        restored = sorted(restored)
        self.store.restored_tasks(restored)
        for i in restored:
            rec = found[i]
            t = tasks[i]
            if rec.status is _SKIPPED:  # skipped on purpose: the decision stands
                t._state = (_SKIPPED, None, None)
                results[i] = SKIPPED
                self.skipped.append(i)
            else:
                value = rec.result
                t._state = _COMPLETED_NONE if value is None else (_COMPLETED, value, None)
                results[i] = value
            t._logs = rec.logs
            if emit is not None:
                emit(TaskRestored(self.name, time.time(), t.name))
        if self.maps and restored:
            self._restored_keys(set(restored))
        if sched.skips:
            self._report_skips(time.time())

    def _restored_keys(self, restored: set[int]) -> None:
        """Mapped tasks restored whole: the keys of the items in their results, which a map
        over them reuses (``MapSource.keys``), worked out again from their sources, as far
        as the store holds those items' records."""
        assert self.store is not None
        for p in self.graph.topological_order():  # a map over a map: the first one first
            m = self.maps.get(p)
            if m is None or p not in restored:
                continue
            t = self.tasks[p]
            src = m.source
            source = self.maps.get(src)
            try:
                values = elements(t, self.tasks[src].name, self.results[src])
                names = keys(t, values, source.keys if source is not None else None)
            except MapError:
                continue
            m.keys = self.store.saved_keys(p, names)

    def _durable(self, indices: list[int]) -> None:
        """The writer saved these completed tasks: their dependents may start now."""
        durable = self.sched.durable
        for i in indices:
            durable(i)
        if self.sched.skips:
            self._report_skips(time.time())
        if self.sched.gathered:
            self._gather(time.time())
        self._admit_or_finish()

    def _start(self) -> None:
        if self.sched.skips:  # one_failed / one_success tasks with no upstream task
            self._report_skips(time.time())
        self._admit_or_finish()

    async def _drive(self) -> None:
        """Settle what the worker threads hand back, until every task is settled."""
        waker = self.waker
        while not self.finished:
            await waker.wait()
            self._settle_inbox()

    def _settle_inbox(self) -> None:
        """Settle the batch of outcomes the worker threads handed back so far."""
        if self.finished:
            return  # a stop or a fatal error: what is still in flight is not settled
        with self.lock:
            batch, self.inbox = self.inbox, []
            self.inbox_flagged = False
        kinds = self.kinds
        for i, ok, value, ended in batch:
            if ok:
                if kinds[i] == REMOTE:
                    assert self.remote is not None
                    self.remote.done(i, value, ended)
                else:
                    self._succeeded(i, value, ended)
            elif isinstance(value, Exception):
                self._attempt_failed(i, value, ended)
            else:
                self._abort(value)
                return

    def _settle_woken(self) -> None:
        """Settle the inbox from the loop's callback on the wake pipe (asyncio, see
        _wake): an error ends the run, as one raised in _drive would (see _guarded)."""
        try:
            self._settle_inbox()
        except BaseException as exc:
            self._abort(exc)

    def _abort(self, exc: BaseException) -> None:
        """End the run because of ``exc`` (Ctrl-C, SystemExit...), re-raised after cleanup.

        Raising it straight out of a lane would let asyncio tear the loop down under the
        run (it re-raises KeyboardInterrupt out of the loop itself), skipping the cleanup.
        """
        if self.fatal is None:
            self.fatal = exc
        self.finished = True
        self.scope.cancel()

    def terminate(self) -> None:
        """SIGTERM arrived: end the run as Ctrl-C would, with :class:`Terminated`."""
        self._abort(Terminated())

    def _finish(self) -> None:
        self.finished = True
        self.waker.nudge()
        for scope in self.timers:
            scope.cancel()
        if self.remote is not None:
            self.remote.stop_fetching()
        while self.idle_lanes:
            self.idle_lanes.popleft().set()

    # -- admission and dispatch -------------------------------------------------------------

    def _admit_or_finish(self) -> None:
        if self.sched.unsettled == 0:
            self._finish()
        else:
            self._admit()

    def _admit(self) -> None:
        if self.finished:
            return  # stopped (fail_fast, a fatal error): nothing new starts
        sched = self.sched
        # without limits, the scheduler's own admit: no extra call per admission
        for i in sched.admit() if sched.gate is None else self._handed_out():
            self._dispatch(i)
        if self.deciding and self.to_restore:
            self._restore_later()
        if self.writer is not None and sched.waits_for_store:
            # A free slot and nothing to start: what waits is waiting for the store, so
            # save now. While every slot is busy, records pile up into a bigger batch.
            self.writer.kick()

    def _handed_out(self) -> list[int]:
        """The tasks the scheduler hands out now; under tag limits, also report the
        tasks it parked and keep a timer for the next token a parked task waits for."""
        sched = self.sched
        gate = sched.gate
        if gate is None:
            return sched.admit()
        out = sched.admit(time.monotonic() if self.clocked else 0.0)
        if gate.queued:
            self._report_queued(sched.take_queued())
        if self.clocked:
            at = sched.next_token_at()
            later = self.timer_at
            if at is not None and self.work is not None and (later is None or at < later):
                self.timer_at = at
                self.work.start_soon(self._guarded, partial(self._token_timer, at))
        return out

    def _report_queued(self, queued: list[tuple[int, str, str]]) -> None:
        now = time.time()
        attempts = self.sched.attempts
        for i, tag, kind in queued:
            t = self.tasks[i]
            logger.debug("task %r waits for tag %r (%s)", t.name, tag, kind)
            if self.emit is not None:
                self.emit(
                    TaskQueued(self.name, now, t.name, attempts[i] + 1, tag, kind, item=t.item)
                )

    async def _token_timer(self, at: float) -> None:
        """Wake admission when a task parked for a rate limit may have its token."""
        scope = anyio.CancelScope()
        self.timers.add(scope)
        try:
            with scope:
                # a millisecond late rather than early: a bucket checked a hair before
                # its token is due would only set another timer
                await anyio.sleep(max(0.0, at - time.monotonic()) + 0.001)
        finally:
            self.timers.discard(scope)
        if scope.cancel_called:
            return
        if self.timer_at == at:
            self.timer_at = None
        self._admit()

    def _dispatch(self, i: int) -> None:
        """Start the attempt of task ``i`` the scheduler just handed out."""
        t = self.tasks[i]
        t.attempts = self.sched.attempts[i]
        if self.deciding and self._decided(i, t):
            return
        now = time.time()
        if t._started is None:
            t._started = now
        t._state = (_RUNNING, None, None)
        if self.emit is not None:
            # _make: the positional constructor (a class call with item= costs half again)
            self.emit(TaskStarted._make(self.name, now, t.name, t.attempts, "", t.item))
        if self.store is not None:
            self.store.started(i, self.judged.reason(i))
        kind = self.kinds[i]
        if kind == POOL:
            self._submit(i, t)
        elif kind == PROCESS:
            self._in_process(i, t)
        elif kind == MAP:
            self._expand(i, t)
        elif kind == REMOTE:
            assert self.remote is not None
            post = self._post
            epoch = self.epoch

            def done(ok: bool, value: Any) -> None:
                post(i, ok, value, epoch)

            self.remote.submit(i, t, self._kwargs(i), done)
        else:
            self.lane_queue.append(i)
            if self.idle_lanes:
                self.idle_lanes.popleft().set()
            elif self.lanes < self.concurrency and self.work is not None:
                self.lanes += 1
                self.work.start_soon(self._guarded, self._lane)

    def _decided(self, i: int, t: Task) -> bool:
        """Decide task ``i`` now that it is ready, if the run could not at the start (see
        _decide_now): True when nothing is left to dispatch (it stands, or its
        ``cache_key`` raised, which fails it)."""
        decided = self._decide_now(i, t)
        if decided is None:
            return False
        if decided is not True:
            t._started = time.time()
            t._state = (_RUNNING, None, None)
            if self.emit is not None:
                self.emit(TaskStarted(self.name, t._started, t.name, t.attempts, item=t.item))
            assert self.store is not None
            self.store.started(i, self.judged.reason(i))
            self._attempt_failed(i, decided, time.time(), final=True)
        return True

    def _decide_now(self, i: int, t: Task) -> Literal[True] | Exception | None:
        """Task ``i`` is ready, and its saved record stood but for what it receives (or its
        ``cache_key`` decides): True when it stands now (queued for _restore_later), an
        error when its ``cache_key`` raised (the attempt fails with it), None: it runs."""
        if t.attempts > 1:
            return None  # a retry: decided at its first attempt
        rec = self.later.pop(i, None)
        keyed = i in self.keyed
        if rec is None and not keyed:
            return None
        store = self.store
        assert store is not None
        try:
            kwargs = self._kwargs(i) if keyed else None
            if rec is None:
                assert kwargs is not None
                store.keyed(i, kwargs)
                return None
            why = store.unchanged(i, rec, kwargs)
        except Exception as exc:
            # The task's failure, not the run's: reported like an error of its function.
            error = FlowWeaverError(
                f"task {t.name!r}: its cache_key raised {describe_exception(exc)}; the key "
                "must be a str made from the task's keyword arguments"
            )
            error.__cause__ = exc
            return error
        if why is None:
            self.to_restore.append((i, rec))
            return True
        self.judged.reasons[i] = why
        return None

    def _restore_later(self) -> None:
        """Restore the tasks _decide_now found standing, and start what that makes ready:
        a loop, not recursion, for a long chain restored task by task."""
        sched = self.sched
        while self.to_restore:
            batch, self.to_restore = self.to_restore, []
            for i, rec in batch:
                self._restore_one(i, rec)
            now = time.time()
            if sched.skips:
                self._report_skips(now)
            if sched.gathered:
                self._gather(now)
            if sched.unsettled == 0:
                self._finish()
                return
            if self.finished:
                return
            for i in self._handed_out():
                self._dispatch(i)

    def _restore_one(self, i: int, rec: TaskRecord) -> None:
        assert self.store is not None
        self.store.restored(i, rec)
        t = self.tasks[i]
        t.attempts = 0  # not run: as a task restored at the start
        t._logs = rec.logs
        self.judged.reasons.pop(i, None)
        if rec.status is TaskStatus.SKIPPED:  # skipped on purpose: the decision stands
            t._state = (TaskStatus.SKIPPED, None, None)
            self.results[i] = SKIPPED
            self.skipped.append(i)
            self.sched.skip(i)
        else:
            t._state = (_COMPLETED, rec.result, None)
            self.results[i] = rec.result
            self.sched.completed(i)  # its record is durable already
        if self.emit is not None:
            self.emit(TaskRestored(self.name, time.time(), t.name))
        if i in self.maps:
            self._restored_keys({i})

    def _kwargs(self, i: int) -> dict[str, Any]:
        results = self.results
        keywords = self.keywords
        return {keywords[j]: results[j] for j in self.inject[i]}

    def _kwargs_with_params(self, i: int) -> dict[str, Any]:
        results = self.results
        keywords = self.keywords
        return {**self.params[i], **{keywords[j]: results[j] for j in self.inject[i]}}

    def _pool(self) -> WorkerPool:
        if self.pool is None:
            self.pool = WorkerPool(self.concurrency, self.call_soon, self.workflow.name)
            # Outcomes of this pool's jobs wake the loop through a pipe of the run's own.
            self.waker.open()
        return self.pool

    def _submit(self, i: int, t: Task) -> None:
        post = self._post
        epoch = self.epoch

        def finish(ok: bool, value: Any) -> None:
            post(i, ok, value, epoch)

        context = self.job_context.copy()
        context.run(set_current, (self, i))  # the job's own copy: flowweaver.current()
        func = t.func
        if self.attempt_scope is not None:
            func = partial(scoped_call, self.attempt_scope, self.context_of(i), func)
        self._pool().submit(Job(func, self._kwargs(i), finish, context))

    def _in_process(self, i: int, t: Task) -> None:
        """Run task ``i`` in a worker process, through a worker thread that waits for it."""
        if self.procs is None:
            # Imported here: cloudpickle costs 25 ms, which a run without processes skips.
            from ._processes import ProcessPool, current_backend

            self.procs = ProcessPool(
                self.concurrency, self.kill_grace, current_backend(), self.workflow.name
            )
        procs = self.procs
        post = self._post
        epoch = self.epoch
        kwargs = self._kwargs(i)

        ctx = self.context_of(i)
        carrier = scope_carrier(self.attempt_scope, ctx)
        # the worker process captures by itself and sends its lines back (_proc_child)
        tail = self.tail_of(i)

        def call() -> Any:
            return procs.run(
                t.name,
                t.func,
                kwargs,
                t.timeout,
                t.is_async,
                lambda: self.epoch == epoch,
                ctx,
                carrier,
                tail,
            )

        def finish(ok: bool, value: Any) -> None:
            post(i, ok, value, epoch)

        self._pool().submit(Job(call, {}, finish, self.job_context.copy()))

    def _post(self, i: int, ok: bool, value: Any, epoch: int) -> None:
        """Runs on a worker thread: queue an outcome; wake the loop once per batch."""
        ended = time.time()
        with self.lock:
            if self.finished or epoch != self.epoch:
                return
            self.inbox.append((i, ok, value, ended))
            if self.inbox_flagged:
                return
            self.inbox_flagged = True
            # Under the lock: _shutdown closes the waker's pipe under it too.
            self.waker.wake()

    # -- lanes --------------------------------------------------------------------------------

    async def _lane(self) -> None:
        queue = self.lane_queue
        kinds = self.kinds
        tasks = self.tasks
        awaiting = self.awaiting
        guard = self.guard
        writer = self.writer
        scope = self.attempt_scope
        streak = 0
        cancelled = anyio.get_cancelled_exc_class()
        while True:
            if queue:
                i = queue.popleft()
                if kinds[i] == INLINE and not (awaiting and i in awaiting):
                    # The sequential hot path, kept free of coroutine objects.
                    if guard.interrupted:
                        self._abort(KeyboardInterrupt())
                        return
                    guard.active = True
                    self.inline_node = i  # flowweaver.current() (see _context.marker)
                    entered = None if scope is None else scope_enter(scope, self.context_of(i))
                    try:
                        try:
                            value = tasks[i].func(**self._kwargs(i))
                        finally:
                            self.inline_node = -1
                            if scope is not None:
                                scope_exit(scope, entered)
                    except Exception as exc:
                        guard.active = False
                        self._attempt_failed(i, exc, time.time())
                    except BaseException as exc:  # not an Exception: see _abort
                        guard.active = False
                        self._abort(exc)
                        return
                    else:
                        guard.active = False
                        ended = time.time()
                        self._succeeded(i, value, ended)
                        if writer is not None and writer.overdue(ended):
                            # The writer cannot run while this lane holds the loop.
                            streak = _YIELD_EVERY
                else:
                    try:
                        await self._run_on_lane(i)
                    except cancelled:
                        raise
                    except BaseException as exc:  # not an Exception: see _abort
                        self._abort(exc)
                        return
                streak += 1
                if streak >= _YIELD_EVERY:
                    streak = 0
                    await checkpoint()
            elif self.finished:
                return
            else:
                event = anyio.Event()
                self.idle_lanes.append(event)
                await wait_event(event)

    async def _run_on_lane(self, i: int) -> None:
        """Run one attempt of task ``i`` that must be awaited, and settle it."""
        t = self.tasks[i]
        pending = self.awaiting.pop(i, None)
        # The task's context only while its code runs: what settles it next (dispatching
        # others, starting callbacks and lanes, which copy this context) runs outside it.
        mark = set_current((self, i))
        scope = self.attempt_scope
        entered = None if scope is None else scope_enter(scope, self.context_of(i))
        try:
            if pending is not None:
                value = await await_with_timeout(t.name, t.timeout, pending)
            elif self.kinds[i] == ASYNC:
                value = await await_with_timeout(t.name, t.timeout, t.func(**self._kwargs(i)))
            elif self.kinds[i] == REMOTE_TIMED:
                assert self.remote is not None
                handle = await self.remote.submit_and_wait(i, t, self._kwargs(i), self.call_soon)
                self.remote.done(i, handle, time.time())
                return
            else:  # TIMED
                assert t.timeout is not None
                value = await call_with_timeout(
                    t.name, t.timeout, self._pool().call, t.func, self._kwargs(i)
                )
        except Exception as exc:
            self._leave(mark, entered)
            self._attempt_failed(i, exc, time.time())
            return
        except BaseException:
            self._leave(mark, entered)
            raise
        self._leave(mark, entered)
        self._succeeded(i, value, time.time())

    def _leave(self, mark: Any, entered: Any) -> None:
        if self.attempt_scope is not None:
            scope_exit(self.attempt_scope, entered)
        reset_current(mark)

    # -- settling -----------------------------------------------------------------------------

    def _succeeded(self, i: int, value: Any, ended: float) -> None:
        if type(value) not in _PLAIN and is_awaitable(value):
            # A sync function (a lambda, say) returned a coroutine: await it on a lane.
            self.awaiting[i] = value
            self.lane_queue.append(i)
            self._wake_or_start_lane()
            return
        t = self.tasks[i]
        store = self.store
        if store is not None:
            try:
                encoded = store.encode(
                    t.name, value.get() if type(value) is RemoteResult else value
                )
            except Exception as exc:
                # Deterministic: another attempt would return the same kind of value. Any
                # failure of the value on its way into the store is the task's, never the run's.
                if not isinstance(exc, StateSerializationError):
                    exc = StateSerializationError(t.name, value, describe_exception(exc))
                self._attempt_failed(i, exc, ended, final=True)
                return
        t._finished = ended
        # Under a remote runner a dependent gets the handle: the data stays on the cluster.
        self.results[i] = value.handle if type(value) is RemoteResult else value
        # One shared state for the many tasks that return None: a tuple less per task.
        t._state = _COMPLETED_NONE if value is None else (_COMPLETED, value, None)
        if self.emit is not None:
            took = max(ended - t._started, 0.0) if t._started is not None else 0.0
            self.emit(TaskCompleted._make(self.name, ended, t.name, t.attempts, took, "", t.item))
        if t._callbacks:  # t.callbacks would make a list for a task with none
            self._callbacks(t)
        sched = self.sched
        if store is not None:
            # Dependents wait until the record is durable (see _durable), unless the store
            # commits in order (durability="ordered"); the slot is free now.
            sched.completed(i, durable=store.ordered)
            store.completed(i, encoded, t._logs)  # taken by _succeeded_capturing
        else:
            sched.completed(i)
        if sched.skips:
            self._report_skips(ended)
        if sched.gathered:
            self._gather(ended)
        if sched.unsettled == 0:
            self._finish()
        else:
            self._admit()

    def _failed_for_good(self, i: int, exc: Exception, ended: float) -> None:
        self._attempt_failed(i, exc, ended, final=True)

    def _attempt_failed(self, i: int, exc: Exception, ended: float, final: bool = False) -> None:
        if isinstance(exc, Skip):
            self._skipped_on_purpose(i, exc, ended)
            return
        t = self.tasks[i]
        if not final and t.attempts <= t.retries:
            if type(exc) is UnsendableError:
                final = True  # it cannot be pickled now, nor on the next attempt
            elif (t.retry_on is not None or t.retry_if is not None) and not t.retryable(exc):
                final = True  # an error its retry conditions do not retry: fails at once
        decision = self.sched.attempt_failed(i, final)
        if not isinstance(decision, Failure):
            t._state = (TaskStatus.RETRYING, None, exc)
            wait = t.retry_wait(t.attempts)
            log_retry(t, exc, wait)
            if self.emit is not None:
                self.emit(
                    TaskRetrying(self.name, ended, t.name, t.attempts, wait, exc, item=t.item)
                )
            if wait > 0 and self.work is not None:
                # Its slot and tags are free during the backoff: others may take them.
                self.work.start_soon(self._guarded, partial(self._retry_later, i, wait))
                self._admit()
            else:
                self._retry(i)
            return
        self._publish_failure(i, t, exc, ended, decision)

    def _publish_failure(
        self, i: int, t: Task, exc: BaseException, ended: float, decision: Failure
    ) -> None:
        t._finished = ended
        logs = self._take_logs(i, t) if self.tails is not None else None
        t._state = (TaskStatus.FAILED, None, exc)
        self.results[i] = Failed(exc)
        if i < self.n_static:  # an item's failure is its mapped task's to report
            self.failed.append(i)
        logger.error("task %r failed: %s", t.name, describe_exception(exc))
        emit = self.emit
        if emit is not None:
            emit(
                TaskFailed(
                    self.name, ended, t.name, t.attempts, t.duration or 0.0, exc, item=t.item
                )
            )
        if t._callbacks:  # t.callbacks would make a list for a task with none
            self._callbacks(t)
        if self.store is not None:
            self.store.failed(i, exc, logs)
        self._report_skips(ended)
        if self.sched.gathered:
            self._gather(ended)
        if decision.stop and self.work is not None:
            self._finish()
            self.work.cancel_scope.cancel()
        else:
            self._admit_or_finish()

    def _skipped_on_purpose(self, i: int, exc: Skip, ended: float) -> None:
        """Task ``i`` raised ``Skip``: it ends SKIPPED, not FAILED, and is not retried."""
        t = self.tasks[i]
        t._finished = ended
        logs = self._take_logs(i, t) if self.tails is not None else None
        t._state = (TaskStatus.SKIPPED, None, None)
        self.results[i] = SKIPPED
        self.skipped.append(i)
        logger.info("task %r skipped: %s", t.name, exc.reason)
        if self.emit is not None:
            self.emit(TaskSkipped(self.name, ended, t.name, "", exc.reason, item=t.item))
        if t._callbacks:  # t.callbacks would make a list for a task with none
            self._callbacks(t)
        if self.store is not None:
            self.store.skipped_on_purpose(i, exc.reason, logs)
        self.sched.skip(i)
        self._report_skips(ended)
        if self.sched.gathered:
            self._gather(ended)
        self._admit_or_finish()

    def _report_skips(self, now: float) -> None:
        """Show the skips the scheduler decided: status, event, record."""
        sched = self.sched
        tasks = self.tasks
        emit = self.emit
        store = self.store
        for why in sched.take_skips():
            j = why.node
            t = tasks[j]
            t._state = (TaskStatus.SKIPPED, None, None)
            self.results[j] = SKIPPED
            self.skipped.append(j)
            upstream = tasks[why.upstream].name if why.upstream is not None else ""
            reason = skip_reason(why, upstream, sched.state)
            if emit is not None:
                emit(TaskSkipped(self.name, now, t.name, upstream, reason, item=t.item))
            if store is not None:
                store.skipped(j, reason)

    # -- maps ---------------------------------------------------------------------------------

    def _expand(self, p: int, t: Task) -> None:
        """Mapped task ``p`` was handed out: add an item per element of what it maps over."""
        m = self.maps[p]
        src = m.source
        value = self.results[src]
        now = time.time()
        if value is SKIPPED or type(value) is Failed:
            # Only a trigger rule lets a map run after its source did not complete.
            what = "was skipped" if value is SKIPPED else "failed"
            reason = f"nothing to map over: upstream task {self.tasks[src].name!r} {what}"
            self._skipped_on_purpose(p, Skip(reason), now)
            return
        source = self.maps.get(src)
        try:
            values = elements(t, self.tasks[src].name, value)
            names = keys(t, values, source.keys if source is not None else None)
        except MapError as exc:
            self._attempt_failed(p, exc, now, final=True)
            return
        first = len(self.tasks)
        items = [t._item(k) for k in names]
        t._items = items
        _gc.refreeze()  # the items live as long as the run: the collector need not scan them
        n = len(items)
        self.tasks.extend(items)
        self.kinds.extend([m.kind] * n)
        source_name = self.tasks[src].name
        others = tuple(j for j in self.inject[p] if j != src)
        # Each item reads its element where its result will go: results[item], under the
        # name of the source (the graph's names are the workflow's: extend a copy).
        if self.keywords is self.graph.names:
            self.keywords = list(self.keywords)
        self.keywords.extend([source_name] * n)
        self.inject.extend((k, *others) for k in range(first, first + n))
        self.results.extend(values)
        if self.params:
            self.params.extend([self.params[p]] * n)
        sched = self.sched
        tag_ids = self.tag_ids
        tags = tuple(tag_ids[x] for x in t.tags if x in tag_ids) if tag_ids else ()
        ids = sched.expand(p, n, t.retries, t.max_concurrent, tags)
        assert ids.start == first
        if self.store is not None:
            self._restore_items(self.store.add_items(p, ids, values, names))
        if sched.gathered:
            self._gather(now)
        self._admit_or_finish()

    def _restore_items(self, found: Mapping[int, Any]) -> None:
        """Restore the items whose saved records still stand (see RunStore.add_items)."""
        sched = self.sched
        emit = self.emit
        now = time.time()
        for k, rec in found.items():
            if not sched.restorable(k):
                continue
            t = self.tasks[k]
            t._logs = rec.logs
            if rec.status is TaskStatus.SKIPPED:
                sched.restore(k, skipped=True)
                t._state = (TaskStatus.SKIPPED, None, None)
                self.results[k] = SKIPPED
            else:
                sched.restore(k)
                t._state = (_COMPLETED, rec.result, None)
                self.results[k] = rec.result
            if emit is not None:
                emit(TaskRestored(self.name, now, t.name, item=t.item))

    def _gather(self, ended: float) -> None:
        """Mapped tasks whose items all ended: complete (or fail) each with their results."""
        sched = self.sched
        state = sched.state
        tasks = self.tasks
        results = self.results
        for p in sched.take_gathered():
            t = tasks[p]
            values: list[Any] = []
            names: list[str | int] = []
            failed: list[Task] = []
            ids = sched.items(p)
            for k in ids:
                s = state[k]
                if s == DONE:
                    values.append(results[k])
                    item = tasks[k].item
                    assert item is not None
                    names.append(item)
                elif s == FAILED:
                    failed.append(tasks[k])
                # an item skipped on purpose (it raised Skip) is left out
            t._failed_items = [f.name for f in failed]
            if failed and t.on_item_failure == "fail":
                error = items_failed(t, failed, len(ids))
                self._publish_failure(p, t, error, ended, sched.fail_map(p))
                continue
            self.maps[p].keys = names
            self._map_completed(p, t, values, ended)

    def _map_completed(self, p: int, t: Task, values: list[Any], ended: float) -> None:
        sched = self.sched
        store = self.store
        if store is not None:
            try:
                encoded = store.encode(t.name, values)
            except Exception as exc:
                if not isinstance(exc, StateSerializationError):
                    exc = StateSerializationError(t.name, values, describe_exception(exc))
                self._publish_failure(p, t, exc, ended, sched.fail_map(p))
                return
        t._finished = ended
        self.results[p] = values
        t._state = (_COMPLETED, values, None)
        if self.emit is not None:
            self.emit(TaskCompleted(self.name, ended, t.name, t.attempts, t.duration or 0.0))
        if t._callbacks:  # t.callbacks would make a list for a task with none
            self._callbacks(t)
        if store is not None:
            sched.finish_map(p, durable=store.ordered)
            store.completed(p, encoded)
        else:
            sched.finish_map(p)
        if sched.skips:
            self._report_skips(ended)

    async def _retry_later(self, i: int, wait: float) -> None:
        await anyio.sleep(wait)
        self._retry(i)

    def _retry(self, i: int) -> None:
        """Queue task ``i`` again (first in line): it starts when a slot and its tags are
        free, which, without limits, is at once (the slot it gave back is free)."""
        self.sched.retry(i)
        self._admit()

    def _wake_or_start_lane(self) -> None:
        if self.idle_lanes:
            self.idle_lanes.popleft().set()
        elif self.lanes < self.concurrency and self.work is not None:
            self.lanes += 1
            self.work.start_soon(self._guarded, self._lane)

    def _callbacks(self, t: Task) -> None:
        if self.side is not None:
            self.side.start_soon(self._guarded, partial(run_callbacks, t, self._sync_caller()))

    def _sync_caller(self) -> SyncCall | None:
        return None if self.inline else self._pool().call


async def run_workflow(
    executor: BaseExecutor,
    workflow: Workflow,
    owns_loop: bool,
    options: RunOptions | None = None,
) -> None:
    """Run ``workflow`` on the current event loop with ``executor``'s settings.

    :param owns_loop: True when the loop was started for this run (a blocking
        ``execute``), so sync functions may run on its thread without starving anyone.
    :raises WorkflowValidationError: before anything runs, for an invalid graph.
    :raises WorkflowExecutionError: after the run, when a task failed.
    :raises Terminated: (a KeyboardInterrupt) when SIGTERM stopped a run that owns its
        loop on the main thread; the blocking caller re-delivers the signal.
    """
    params, selection = run_inputs(workflow, options)
    await _carry_out(_Run(executor, workflow, owns_loop, params, selection), owns_loop)


def run_inputs(
    workflow: Workflow, options: RunOptions | None
) -> tuple[dict[str, Any], Selection | None]:
    """A run's parameters and selection, checked (see ``_select``).

    :raises WorkflowValidationError: before anything runs.
    """
    if not options:
        return {}, None
    params = check_params(options.get("params"), workflow)
    selection = select(workflow, options.get("targets"), options.get("from_tasks"))
    return params, selection


async def _carry_out(run: _Run, owns_loop: bool) -> None:
    if not owns_loop:  # awaited: the host program owns the signals
        await run.run()
        return
    # A loop started for this run is woken by signals from its first to its last await
    # (the store's opening and final flush included): see wake_loop_on_signals. SIGTERM
    # stops it as Ctrl-C does (see sigterm_cancels).
    with wake_loop_on_signals(), sigterm_cancels(run.terminate, threadsafe_caller(), run.guard):
        await run.run()


class _SoloSettings:
    """The executor settings of a one-task run (``Task.execute``): one at a time, no store."""

    concurrency = 1
    fail_fast = False
    _inline_sync = True
    state_store = None
    observer = None
    fresh = False
    fingerprint_code = False
    commit_interval = 0.2  # unused without a store
    wait_for_lock: float | None = 0.0
    kill_grace = 5.0  # the executors' default (isolation="process")
    capture_logs = False
    capture_logs_lines = 200
    _isolation = "thread"
    limits: Mapping[str, int] = {}
    _rates: Mapping[str, tuple[float, float]] = {}

    def _remote_runner(self) -> None:
        return None


class _Solo:
    """What a one-task run needs of a workflow."""

    _plans = None  # one task: nothing to keep between runs

    def __init__(self, task: Task) -> None:
        self.name = task.name
        self._tasks = {task.name: task}
        self._ruled = [task.name] if task.trigger != "all_success" else []
        self._given: frozenset[str] = frozenset()
        self._forced: frozenset[str] = frozenset()
        # A mapped task run alone runs once, on the context as given (one element, say).
        self._mapped: list[str] = []
        self._running = False
        self._status = WorkflowStatus.IDLE
        self._graph = Graph([task.name], {})

    def graph(self) -> Graph:
        return self._graph


async def run_task(task: Task, context: Mapping[str, Any] | None, owns_loop: bool) -> Any:
    """Run ``task`` alone, as a one-task run of the engine; see :meth:`Task.execute`.

    :param context: upstream results by name, given to the function by the usual rule.
    :raises TaskExecutionError: when the last attempt failed (the function's exception is
        its ``__cause__``).
    """
    try:
        await _carry_out(_Run(_SoloSettings(), _Solo(task), owns_loop, context), owns_loop)
    except WorkflowExecutionError as exc:
        cause = exc.__cause__
        assert isinstance(cause, TaskExecutionError)
        raise cause from cause.__cause__
    return task.result


def run_task_blocking(task: Task, context: Mapping[str, Any] | None) -> Any:
    """Block until :func:`run_task` is done, with or without a loop in this thread."""
    # As for a workflow: sync functions run on the loop's own thread only when that loop
    # runs in the caller's thread (see BaseExecutor._run_blocking).
    owns_loop = not loop_running_in_this_thread()
    return run_blocking(run_task, task, context, owns_loop)
