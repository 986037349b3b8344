"""The executors: a configuration from ``_executor`` plus an ``execute``.

``flowweaver/_async/_executors.py`` is written by hand; ``scripts/unasync.py`` turns it
into ``flowweaver/_sync/_executors.py``, line for line. Edit the first, then regenerate.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from .._dask._runner import DaskBase
from .._executor import (
    BaseExecutor,
    ConcurrentBase,
    ProcessBase,
    RunOptions,
    SequentialBase,
    ThreadedBase,
)

if TYPE_CHECKING:
    if sys.version_info >= (3, 11):
        from typing import Unpack
    else:
        from typing_extensions import Unpack

    from .._explain import Plan
    from .._workflow import Workflow


class AsyncPlanning(BaseExecutor):
    """``plan``: what ``execute`` would do, without running anything."""

    async def plan(self, workflow: Workflow, **options: Unpack[RunOptions]) -> Plan:
        """What a run of ``workflow`` with these options would do with each task, and
        why (see :class:`~flowweaver.Plan`). Runs nothing and writes nothing: it reads the
        state store's saved records, as ``execute`` would.

        :raises WorkflowValidationError: as ``execute`` would, before anything runs: an
            invalid graph, a bad parameter, an unknown target, an upstream result that
            ``from_tasks`` needs and the store does not hold.
        :raises StateStoreError: the store cannot be read.
        """
        return await self._plan_async(workflow, options)


class AsyncSequentialExecutor(AsyncPlanning, SequentialBase):
    """One task at a time, in dependency order. Best for CPU-bound work.

    :param state_store: where task states are saved and restored from (default: none).
    :param fail_fast: cancel the rest at the first failure instead of finishing the
        independent branches.
    :param backend: the event loop a blocking ``execute`` starts.
    """

    async def execute(self, workflow: Workflow, **options: Unpack[RunOptions]) -> None:
        """Run ``workflow`` to the end.

        :param options: ``params``, ``targets``, ``from_tasks`` (see
            :class:`~flowweaver.RunOptions`).
        :raises WorkflowValidationError: before anything runs, for an invalid graph, a bad
            parameter or selection.
        :raises WorkflowExecutionError: when a task failed (its downstream was skipped).

        On cancellation (or Ctrl-C) the tasks in flight are cancelled and go back to
        ``PENDING``, the workflow is ``CANCELLED``, and the cancellation propagates. A
        blocking run on the main thread treats SIGTERM like Ctrl-C, then re-delivers it
        to the previous handler (``SystemExit(143)`` if that handler returns).
        """
        await self._run_async(workflow, options)


class AsyncThreadedExecutor(AsyncPlanning, ThreadedBase):
    """Up to ``max_workers`` tasks at once, sync ones on as many worker threads.

    Best for blocking I/O. ``async def`` tasks run on the event loop and count towards
    ``max_workers`` too.

    :param max_workers: the most tasks in flight (and worker threads) at once.
    :param state_store: where task states are saved and restored from (default: none).
    :param fail_fast: cancel the rest at the first failure.
    :param backend: the event loop a blocking ``execute`` starts.
    """

    async def execute(self, workflow: Workflow, **options: Unpack[RunOptions]) -> None:
        """Run ``workflow`` to the end.

        :param options: ``params``, ``targets``, ``from_tasks`` (see
            :class:`~flowweaver.RunOptions`).
        :raises WorkflowValidationError: before anything runs, for an invalid graph, a bad
            parameter or selection.
        :raises WorkflowExecutionError: when a task failed (its downstream was skipped).

        On cancellation (or Ctrl-C) the tasks in flight are cancelled and go back to
        ``PENDING``, and the cancellation propagates; a sync function already running
        on a worker thread runs on to its end in the background.
        """
        await self._run_async(workflow, options)


class AsyncConcurrentExecutor(AsyncPlanning, ConcurrentBase):
    """Up to ``max_concurrent`` tasks at once on the event loop. Best for async I/O.

    Sync functions go to worker threads (at most ``max_concurrent``) so they never
    block the loop.

    :param max_concurrent: the most tasks in flight at once.
    :param state_store: where task states are saved and restored from (default: none).
    :param fail_fast: cancel the rest at the first failure.
    :param backend: the event loop a blocking ``execute`` starts.
    """

    async def execute(self, workflow: Workflow, **options: Unpack[RunOptions]) -> None:
        """Run ``workflow`` to the end.

        :param options: ``params``, ``targets``, ``from_tasks`` (see
            :class:`~flowweaver.RunOptions`).
        :raises WorkflowValidationError: before anything runs, for an invalid graph, a bad
            parameter or selection.
        :raises WorkflowExecutionError: when a task failed (its downstream was skipped).

        On cancellation (or Ctrl-C) the tasks in flight are cancelled and go back to
        ``PENDING``, the workflow is ``CANCELLED``, and the cancellation propagates. A
        blocking run on the main thread treats SIGTERM like Ctrl-C, then re-delivers it
        to the previous handler (``SystemExit(143)`` if that handler returns).
        """
        await self._run_async(workflow, options)


class AsyncProcessExecutor(AsyncPlanning, ProcessBase):
    """Up to ``max_workers`` tasks at once, sync ones in as many worker processes.

    Best for CPU-bound Python code, which threads cannot run in parallel. Functions,
    their inputs and their results travel by cloudpickle (lambdas and closures work);
    ``async def`` tasks run on the event loop here unless their ``isolation`` is
    ``"process"``, and ``isolation="thread"`` keeps a sync task in this process. A
    timeout stops the work: the worker gets SIGTERM, then SIGKILL after ``kill_grace``
    seconds, and a retry starts in a fresh process. A worker that dies fails the attempt
    with :class:`~flowweaver.TaskCrashedError`. Worker processes are reused within a run
    and none outlives it. POSIX only.

    :param max_workers: the most tasks in flight (and worker processes) at once; None
        (the default): the number of CPUs.
    :param state_store: where task states are saved and restored from (default: none).
    :param fail_fast: cancel the rest at the first failure.
    :param backend: the event loop a blocking ``execute`` starts (and the one an
        ``async def`` task runs on in its worker process).
    """

    async def execute(self, workflow: Workflow, **options: Unpack[RunOptions]) -> None:
        """Run ``workflow`` to the end.

        :param options: ``params``, ``targets``, ``from_tasks`` (see
            :class:`~flowweaver.RunOptions`).
        :raises WorkflowValidationError: before anything runs, for an invalid graph, a bad
            parameter or selection.
        :raises WorkflowExecutionError: when a task failed (its downstream was skipped).

        On cancellation (or Ctrl-C, or SIGTERM) the tasks in flight are cancelled and go
        back to ``PENDING``, their worker processes are terminated before the state store
        is flushed, and the cancellation propagates.
        """
        await self._run_async(workflow, options)


class AsyncDaskExecutor(AsyncPlanning, DaskBase):
    """Every task function runs on a Dask distributed cluster; this process schedules.

    ``pip install "flowweaver[dask]"``. Retries, timeouts, callbacks, events, skipping and
    state-store writes stay here, in the driver. Results stay on the cluster (dependents
    get them there) until a store saves them or ``task.result`` is read.

    :param client: a ``distributed.Client`` (left open), a scheduler address
        (``"tcp://host:8786"``), or ``None`` to start a ``LocalCluster`` for the run and
        close it afterwards.
    :param state_store: where task states are saved and restored from (default: none);
        restored tasks are not sent to the cluster.
    :param max_in_flight: the most tasks submitted and not yet finished (default 1000).
    :param connect_timeout: seconds to reach a scheduler by address (default 10).
    :param worker_timeout: seconds with no worker at all before the attempts in flight
        fail (default 60).
    :param keep_results: leave results on the cluster, fetched through your ``Client``
        on first read (default: brought to the driver when the run ends).
    :param cluster_options: ``LocalCluster`` arguments for ``client=None``.
    :param fail_fast: cancel the rest at the first failure.
    :param backend: the event loop a blocking ``execute`` starts.
    :raises FlowWeaverError: ``distributed`` is not installed.
    """

    async def execute(self, workflow: Workflow, **options: Unpack[RunOptions]) -> None:
        """Run ``workflow`` to the end on the cluster.

        :param options: ``params``, ``targets``, ``from_tasks`` (see
            :class:`~flowweaver.RunOptions`).
        :raises WorkflowValidationError: before anything runs, for an invalid graph, a bad
            parameter or selection.
        :raises FlowWeaverError: the scheduler cannot be reached within
            ``connect_timeout``; nothing ran.
        :raises WorkflowExecutionError: when a task failed (its downstream was skipped).

        On cancellation (or Ctrl-C) the futures in flight are cancelled, the tasks go back
        to ``PENDING``, and the cancellation propagates; a function already running on a
        worker runs on to its end there.
        """
        await self._run_async(workflow, options)
