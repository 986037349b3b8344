"""Task functions on a Dask distributed cluster; FlowWeaver's engine stays the scheduler.

Theory of operation. :class:`DaskBase` is the executor's configuration; each run gets a
fresh :class:`DaskRunner` (the engine's ``RemoteRunner``, see ``_remote``). The engine
decides what runs when (retries, timeouts, callbacks, events, skips and store writes stay
in the driver); the runner only moves calls to the cluster and outcomes back:

* *Submission is batched.* The engine calls :meth:`DaskRunner.submit` for each ready
  task, on the driver's loop thread, and gets a :class:`Call` (the handle) at once. The
  runner collects the calls made in one turn of the loop and sends them to the scheduler
  as one graph (one ``update-graph`` message) when the turn ends. One ``client.submit``
  per task costs the scheduler a whole graph update per task; batching is what keeps a
  wide DAG close to Dask's own speed (see ``benchmarks/dask_cluster.py``).
* *Data stays on the cluster.* A dependent's inputs are its upstream tasks' futures, so
  Dask moves the data between workers. A value comes to the driver only when a state store
  must save it or someone reads ``task.result`` (``fetch`` / ``fetch_blocking``).
* *Outcomes come back on the client's event-loop thread*: one waiter per future there
  calls the engine's ``done``; the engine batches those into one wake-up of its loop.
* *Nothing blocks the driver's loop.* A synchronous ``distributed.Client`` runs its own
  event-loop thread, whatever loop (asyncio or trio) the driver runs; connecting, fetching
  and closing go through ``anyio.to_thread.run_sync``, and cancelling is handed to a
  helper thread.

``distributed`` is imported only when a Dask executor is created, so FlowWeaver itself
does not need it.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import anyio

from .._errors import FlowWeaverError, WorkflowValidationError
from .._executor import BaseExecutor, _positive_int
from ._watch import ExecutionLog, NoWorkersError, WorkerWatch
from ._worker import run_on_worker

if TYPE_CHECKING:
    import asyncio
    import concurrent.futures

    if sys.version_info >= (3, 11):
        from typing import Unpack
    else:
        from typing_extensions import Unpack

    from .._executor import ExecutorOptions
    from .._remote._protocol import Done, Recomputed

#: What a run's own ``LocalCluster`` gets unless ``cluster_options`` says otherwise.
DEFAULT_CLUSTER_OPTIONS: Mapping[str, Any] = {"processes": True, "dashboard_address": ":0"}


def import_distributed() -> Any:
    """``distributed``, or a clear error saying how to install it.

    :raises FlowWeaverError: ``distributed`` is not installed.
    """
    try:
        import distributed
    except ImportError as exc:
        raise FlowWeaverError(
            "DaskExecutor needs Dask's distributed scheduler, which is not installed: "
            'install the extra with  pip install "flowweaver[dask]"'
        ) from exc
    return distributed


class DaskBase(BaseExecutor):
    """Run every task function on a Dask distributed cluster.

    FlowWeaver's engine stays the scheduler of the workflow: retries, timeouts, callbacks,
    events, skip-on-failure and state-store writes happen in the driver (this process);
    the cluster runs task functions only. An upstream task's result stays on the cluster:
    its dependents get it there, and it comes back to the driver only when a state store
    saves it or ``task.result`` is read.

    :param client: where to run: a ``distributed.Client`` (kept open: it is yours), the
        address of a running
        scheduler (``"tcp://10.0.0.5:8786"``; the run connects and disconnects), or
        ``None``: the run starts a ``LocalCluster`` on this machine (see
        ``cluster_options``) and closes it at the end, after bringing the results home.
    :param state_store: where task states are saved and restored from (default: none).
        Restored tasks are not sent to the cluster.
    :param max_in_flight: the most tasks submitted to the cluster and not yet finished.
        Dask queues what its workers cannot run yet, so this only bounds the driver's
        bookkeeping and the futures held at once.
    :param connect_timeout: seconds to wait for a scheduler given by address before
        giving up with a clear error (also how long the run's own cluster may take to
        accept its client).
    :param worker_timeout: seconds a run waits while its cluster has no worker at all and
        attempts are in flight (default 60); then those attempts fail with
        ``NoWorkersError`` (a ``FlowWeaverError`` naming the scheduler), retried like any
        failure when the task has retries, and their downstream is skipped. Without it a
        run whose workers all died would wait forever: Dask holds the tasks until a worker
        joins. Raise it for a cluster that scales up from zero slowly.
    :param keep_results: leave the results on the cluster after the run (only with a
        ``distributed.Client`` you pass in): each is fetched through that client on first
        read of ``task.result``, which then fails with a clear error once the client is
        closed. By default (``False``) every completed task's value is brought to the
        driver at the end of the run in one round trip, so results stay readable whatever
        happens to the client; opt in when the results are too big for the driver.
    :param cluster_options: keyword arguments for the run's own ``LocalCluster``, over
        the defaults ``processes=True`` (one worker process per group of cores, as Dask
        chooses) and ``dashboard_address=":0"`` (a free port: the scheduler always serves
        HTTP, and Dask's usual 8787 may be taken). Only with ``client=None``.
    :param options: the common options (``fail_fast``, ``backend``, ``observer``,
        ``fresh``, ``fingerprint_code``; see :class:`~flowweaver.BaseExecutor`).
    :raises FlowWeaverError: ``distributed`` is not installed.
    :raises WorkflowValidationError: a bad setting (wrong client type, an asynchronous
        client, a non-positive limit or timeout).

    Task functions, the values they return and their inputs must be picklable
    (cloudpickle: lambdas and closures are fine); the workers need the modules your task
    functions come from, and FlowWeaver itself. ``async def`` functions run to their end
    on a fresh event loop of the worker thread. A timeout cancels the Dask future and
    fails the attempt, but a function already running on a worker runs on to its end
    there: Dask cannot stop a running thread.
    """

    def __init__(
        self,
        client: Any = None,
        state_store: Any = None,
        *,
        max_in_flight: int = 1000,
        connect_timeout: float = 10.0,
        worker_timeout: float = 60.0,
        keep_results: bool = False,
        cluster_options: Mapping[str, Any] | None = None,
        **options: Unpack[ExecutorOptions],
    ) -> None:
        distributed = import_distributed()
        if client is not None and not isinstance(client, (str, distributed.Client)):
            raise WorkflowValidationError(
                "client must be a distributed.Client, a scheduler address such as "
                f"'tcp://127.0.0.1:8786', or None for a local cluster; got {client!r}"
            )
        if isinstance(client, distributed.Client) and client.asynchronous:
            raise WorkflowValidationError(
                "DaskExecutor needs a synchronous distributed.Client (it runs its own "
                "event-loop thread, which works under asyncio and trio alike); create it "
                "without asynchronous=True, or pass the scheduler address instead"
            )
        if isinstance(client, str) and not client.strip():
            raise WorkflowValidationError("the scheduler address is empty")
        if cluster_options is not None and client is not None:
            raise WorkflowValidationError(
                "cluster_options configure the run's own LocalCluster; they only apply "
                "with client=None"
            )
        if not isinstance(keep_results, bool):
            raise WorkflowValidationError(
                f"keep_results must be True or False, got {keep_results!r}"
            )
        if keep_results and not isinstance(client, distributed.Client):
            # The run's own connection (an address, or its own cluster) closes with the
            # run, and the cluster forgets results nobody holds a future for.
            raise WorkflowValidationError(
                "keep_results=True leaves results on the cluster, readable through a "
                "distributed.Client you keep open: pass your Client, not "
                f"{'None' if client is None else 'an address'}"
            )
        self.client = client
        self.keep_results = keep_results
        self.max_in_flight = _positive_int("max_in_flight", max_in_flight)
        self.connect_timeout = _positive_seconds("connect_timeout", connect_timeout)
        self.worker_timeout = _positive_seconds("worker_timeout", worker_timeout)
        self.cluster_options = dict(DEFAULT_CLUSTER_OPTIONS)
        if cluster_options is not None:
            self.cluster_options.update(cluster_options)
        super().__init__(state_store, **options)
        if self.capture_logs:
            # A task's value is what its dependents take from the cluster, so its lines
            # would need a channel of their own from the workers (see the README).
            raise WorkflowValidationError(
                "capture_logs does not work with DaskExecutor yet: the lines a task writes "
                "stay in the worker's own output; use ThreadedExecutor, AsyncExecutor or "
                "ProcessExecutor to capture them, or leave capture_logs off"
            )

    @property
    def concurrency(self) -> int:
        return self.max_in_flight

    def _remote_runner(self) -> DaskRunner:
        return DaskRunner(
            self.client,
            self.connect_timeout,
            self.cluster_options,
            keep_results=self.keep_results,
            worker_timeout=self.worker_timeout,
        )

    def __repr__(self) -> str:
        where = "LocalCluster" if self.client is None else repr(self.client)
        return f"{type(self).__name__}({where}, max_in_flight={self.max_in_flight})"


def _positive_seconds(label: str, value: object) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not 0 < value < float("inf")
    ):
        raise WorkflowValidationError(
            f"{label} must be a positive number of seconds, got {value!r}"
        )
    return float(value)


class Call:
    """One attempt of one task on the cluster: the handle the engine keeps.

    ``future`` is set when the batch holding the call is sent to the scheduler.
    """

    __slots__ = ("cancelled", "done", "func", "future", "key", "kwargs", "name")

    def __init__(
        self,
        key: tuple[str, ...],
        name: str,
        func: Callable[..., Any],
        kwargs: dict[str, Any],
        done: Done,
    ) -> None:
        self.key = key
        self.name = name
        self.func: Callable[..., Any] | None = func
        self.kwargs: dict[str, Any] | None = kwargs
        self.done: Done | None = done
        self.future: Any = None
        self.cancelled = False

    def __repr__(self) -> str:
        return f"<dask call {self.key!r}>"


def _dask_key(key: str, group: str) -> tuple[str, ...]:
    """The Dask key of one attempt: ``(function name, task name, run id, attempt)``.

    Dask groups tasks by the first part of their keys (its dashboard shows one bar per
    group, and its scheduler keeps per-group state). Grouping by function, as Dask does
    for its own ``submit`` and ``delayed``, keeps a workflow of thousands of distinctly
    named tasks from making thousands of groups, which slows the scheduler several-fold;
    the task name still shows in every key.
    """
    name, run, attempt = key.rsplit("-", 2)  # the engine's "<task name>-<run id>-<attempt>"
    return (group, name, run, attempt)


class DaskRunner:
    """The remote runner of one run on a Dask cluster (see the module doc).

    :param target: a ``distributed.Client``, a scheduler address, or ``None`` (start a
        ``LocalCluster`` with ``cluster_options``).
    """

    def __init__(
        self,
        target: Any,
        connect_timeout: float,
        cluster_options: Mapping[str, Any],
        *,
        keep_results: bool = False,
        worker_timeout: float = 60.0,
    ) -> None:
        self._target = target
        self._keep_results = keep_results
        self._worker_timeout = worker_timeout
        self._worker_watch: WorkerWatch | None = None
        self._executions: ExecutionLog | None = None
        self._token: str | None = None
        self._connect_timeout = connect_timeout
        self._cluster_options = dict(cluster_options)
        self._client: Any = None
        self._cluster: Any = None
        self._owns_client = False
        self._batch: list[Call] = []
        self._calls: dict[tuple[str, ...], Call] = {}  # by key: the calls sent and not yet finished
        self._lock = threading.Lock()
        self._call_soon: Callable[[Callable[[], object]], object] | None = None
        self._helper: concurrent.futures.ThreadPoolExecutor | None = None
        self._watchers: set[asyncio.Future[Any]] = set()
        self._task_cls: Any = None
        self._expr_cls: Any = None
        self._funcname: Callable[[Any], str] = str

    @property
    def keeps_results(self) -> bool:
        return self._keep_results

    @property
    def client(self) -> Any:
        """The run's ``distributed.Client`` (after :meth:`start`)."""
        return self._client

    # -- connection --------------------------------------------------------------------

    async def start(self, recomputed: Recomputed) -> None:
        """Connect to the cluster, or start the run's own; never blocks the event loop.

        ``recomputed`` hears (from the client's thread) of each function Dask ran again
        after it had finished (see ``_dask_watch.ExecutionLog``).

        :raises FlowWeaverError: the scheduler cannot be reached within
            ``connect_timeout`` seconds, or the local cluster cannot start.

        On cancellation a connection being made is closed again in the background.
        """
        from dask._task_spec import Task
        from dask.utils import funcname

        from .._context import InContext
        from .._engine._workers import threadsafe_caller

        def group(func: Any) -> str:
            # The engine wraps each function to carry its context; the group is the
            # function's (one per wrapper would make a group per attempt).
            return str(funcname(func.func if isinstance(func, InContext) else func))

        distributed = import_distributed()
        self._task_cls = Task
        try:
            from dask._expr import LLGExpr

            self._expr_cls = LLGExpr
        except ImportError:  # an older dask: client.get takes the plain dict
            self._expr_cls = None
        self._funcname = group
        self._call_soon = threadsafe_caller()
        target = self._target
        if isinstance(target, distributed.Client):
            self._client = target
        else:
            self._owns_client = True
            if target is None:
                self._client, self._cluster = await anyio.to_thread.run_sync(self._start_local)
            else:
                self._client = await anyio.to_thread.run_sync(self._connect, target)
        self._worker_watch = WorkerWatch(
            self._client, self._worker_timeout, lambda: bool(self._calls), self._no_workers
        )
        self._worker_watch.start()
        executions = ExecutionLog(self._client, recomputed)
        await anyio.to_thread.run_sync(executions.subscribe)
        self._executions, self._token = executions, executions.token

    def _connect(self, address: str) -> Any:
        import distributed

        try:
            client: Any = distributed.Client(  # type: ignore[no-untyped-call]
                address, timeout=self._connect_timeout, set_as_default=False
            )
            return client
        except (OSError, TimeoutError, ValueError) as exc:
            raise FlowWeaverError(
                f"cannot reach the Dask scheduler at {address!r} within "
                f"{self._connect_timeout:g} s ({type(exc).__name__}: {exc}); check that it "
                "runs and the address (tcp://host:port), or raise connect_timeout"
            ) from exc

    def _start_local(self) -> tuple[Any, Any]:
        import distributed

        try:
            cluster = distributed.LocalCluster(**self._cluster_options)  # type: ignore[no-untyped-call]
        except Exception as exc:
            raise FlowWeaverError(
                f"cannot start a local Dask cluster with {self._cluster_options!r} "
                f"({type(exc).__name__}: {exc})"
            ) from exc
        try:
            client = distributed.Client(  # type: ignore[no-untyped-call]
                cluster, timeout=self._connect_timeout, set_as_default=False
            )
        except BaseException:
            cluster.close()
            raise
        return client, cluster

    async def aclose(self) -> None:
        """Forget what is still in flight; close the client and cluster the run opened.

        A client you passed in stays open. Shielded by the engine; waits for the helper
        thread's pending cancellations first, so none reaches a closed client.
        """
        if self._worker_watch is not None:
            self._worker_watch.stop()
        if self._executions is not None:
            await anyio.to_thread.run_sync(self._executions.unsubscribe)
        with self._lock:
            self._batch.clear()
            for call in self._calls.values():
                call.cancelled = True
            self._calls.clear()
        helper, self._helper = self._helper, None
        if helper is not None:
            await anyio.to_thread.run_sync(helper.shutdown)
        if self._owns_client:
            await anyio.to_thread.run_sync(self._close_owned)

    def _close_owned(self) -> None:
        client, cluster = self._client, self._cluster
        try:
            if client is not None:
                client.close()
        finally:
            if cluster is not None:
                cluster.close()

    # -- submitting ----------------------------------------------------------------------

    def submit(
        self, key: str, func: Callable[..., Any], kwargs: dict[str, Any], done: Done
    ) -> Call:
        """Queue ``func(**kwargs)`` for the batch sent at the end of this loop turn.

        Called on the driver's loop thread. Inputs that are :class:`Call` handles become
        their futures, so the data moves between workers, never through the driver.
        """
        dask_key = _dask_key(key, self._funcname(func))
        call = Call(dask_key, dask_key[1], func, kwargs, done)
        batch = self._batch
        batch.append(call)
        if len(batch) == 1:
            assert self._call_soon is not None
            self._call_soon(self._send)
        return call

    def _send(self) -> None:
        """Send the queued calls to the scheduler as one graph (on the loop thread)."""
        batch, self._batch = self._batch, []
        task_cls = self._task_cls
        graph = {}
        for call in batch:
            if call.cancelled:
                continue
            kwargs = call.kwargs
            assert kwargs is not None
            for name, value in kwargs.items():
                if type(value) is Call:
                    kwargs[name] = value.future
            graph[call.key] = task_cls(
                call.key, run_on_worker, call.name, self._token, call.func, **kwargs
            )
            call.func = call.kwargs = None
        if not graph:
            return
        calls = [c for c in batch if not c.cancelled]
        try:
            self._send_graph(calls, graph)
        except Exception as exc:
            if len(calls) == 1:
                # Nothing was sent (the function or an input cannot be pickled, the
                # client is closed...): the attempt fails, the engine retries or gives up.
                call = calls[0]
                if call.done is not None:
                    done, call.done = call.done, None
                    done(False, _submit_error(call, exc))
                return
            # One bad call must not fail its whole batch: find it by sending one by one.
            for call in calls:
                try:
                    self._send_graph([call], {call.key: graph[call.key]})
                except Exception as exc:
                    if call.done is not None:
                        done, call.done = call.done, None
                        done(False, _submit_error(call, exc))

    def _send_graph(self, calls: list[Call], graph: dict[tuple[str, ...], Any]) -> None:
        # Wrapped as client.submit does: a plain dict would be hashed whole (pickled) to
        # name the graph; a fresh token is as unique and costs nothing.
        import uuid  # here, not at the top: only Dask runs need it (import time)

        expr_cls = self._expr_cls
        expr = graph if expr_cls is None else expr_cls(graph, _determ_token=uuid.uuid4().hex)
        futures = self._client.get(expr, list(graph), sync=False)
        with self._lock:
            for call, future in zip(calls, futures, strict=True):
                call.future = future
                self._calls[call.key] = call
        # One hop to the client's loop per batch; there each future gets a waiter. (The
        # per-future add_done_callback costs a hop to that loop and another to Dask's
        # callback thread for every task.)
        self._client.loop.add_callback(self._watch, futures)

    async def _watch(self, futures: list[Any]) -> None:
        """On the client's event loop: report each future of a batch as it finishes."""
        import asyncio  # the client's loop is asyncio; `import flowweaver` needs none

        from distributed.client import done_callback

        watchers = self._watchers
        finished = self._finished
        for future in futures:
            waiter = asyncio.ensure_future(done_callback(future, finished))  # type: ignore[no-untyped-call]
            watchers.add(waiter)  # the loop keeps only a weak reference to a task
            waiter.add_done_callback(watchers.discard)

    def _finished(self, future: Any) -> None:
        """On the client's event loop: hand the outcome of one call to the engine."""
        with self._lock:
            call = self._calls.pop(future.key, None)
        if call is None or call.cancelled or call.done is None:
            return  # cancelled by the engine, or the run ended: nobody waits for it
        status = future.status
        if status == "finished":
            done, call.done = call.done, None
            done(True, call)
        elif status == "error":
            # Reading the error is a blocking call of the client: not on its own loop.
            self._helper_pool().submit(self._failed, call, future)
        else:
            done, call.done = call.done, None
            done(
                False,
                FlowWeaverError(
                    f"task {call.name!r}: its Dask future was {status} by the cluster "
                    "(a worker or the scheduler went away, or someone cancelled it)"
                ),
            )

    def _failed(self, call: Call, future: Any) -> None:
        try:
            exc = future.exception()
        except Exception as err:
            exc = err
        done, call.done = call.done, None
        if done is not None and not call.cancelled:
            done(False, exc if isinstance(exc, Exception) else _wrapped(call, exc))

    def _no_workers(self, seconds: float) -> None:
        """From the worker watch's thread: fail every attempt sent and not finished."""
        with self._lock:
            calls = [c for c in self._calls.values() if c.done is not None and not c.cancelled]
            dones = []
            for call in calls:
                del self._calls[call.key]
                call.cancelled = True  # what the cluster says of it later goes nowhere
                dones.append(call.done)
                call.done = None
        address = str(getattr(self._client.scheduler, "address", self._client))
        for call, done in zip(calls, dones, strict=True):
            if done is not None:
                done(False, NoWorkersError(call.name, address, seconds))
            self._cancel_now(call.future)  # or a worker joining later would still run it

    def _helper_pool(self) -> concurrent.futures.ThreadPoolExecutor:
        import concurrent.futures  # only Dask runs use it: kept off `import flowweaver`

        with self._lock:
            if self._helper is None:
                self._helper = concurrent.futures.ThreadPoolExecutor(
                    1, thread_name_prefix="flowweaver-dask"
                )
            return self._helper

    def cancel(self, handle: Call) -> None:
        """Cancel one call (a timeout or the end of the run); never raises or blocks.

        A call not sent yet is dropped; a sent one's future is cancelled by a helper
        thread (cancelling waits for the scheduler). A function already running on a
        worker runs on to its end there.
        """
        with self._lock:
            handle.cancelled = True
            handle.done = None
            self._calls.pop(handle.key, None)
        future = handle.future
        if future is None or self._client is None:
            return
        self._helper_pool().submit(self._cancel_now, future)

    def _cancel_now(self, future: Any) -> None:
        try:
            future.cancel()
        except Exception:
            from .._log import logger  # here: `import flowweaver` needs no logging

            logger.debug("could not cancel Dask future %s", future.key, exc_info=True)

    # -- results -------------------------------------------------------------------------

    async def fetch(self, handles: Sequence[Call]) -> list[Any]:
        """Bring finished calls' values to the driver in one round trip (in a thread).

        :raises FlowWeaverError: a value could not be brought back (naming the task).
        """
        # Abandoned on cancellation (a bounded wait after an interrupt): the thread ends
        # with an error when the client closes.
        return await anyio.to_thread.run_sync(self._gather, list(handles), abandon_on_cancel=True)

    def fetch_blocking(self, handle: Call) -> Any:
        """One value, from a plain thread (``task.result``)."""
        return self._gather([handle])[0]

    def _gather(self, handles: list[Call]) -> list[Any]:
        client = self._client
        names = ", ".join(repr(h.name) for h in handles[:5])
        names += f" and {len(handles) - 5} more" if len(handles) > 5 else ""
        if client.status in ("closing", "closed") and not self._keep_results:
            raise FlowWeaverError(
                f"cannot bring the result of task {names} back from the Dask cluster: the "
                "distributed.Client of the run was closed while it ran"
            )
        if client.status in ("closing", "closed"):
            # After the run: without keep_results the values came home before the end.
            raise FlowWeaverError(
                f"the result of task {names} was left on the Dask cluster (keep_results="
                "True) and the distributed.Client it was reachable through is now closed: "
                "read results before closing the client, or run without keep_results to "
                "bring them to the driver at the end of the run"
            )
        try:
            values: list[Any] = client.gather([h.future for h in handles])
        except Exception as exc:
            raise FlowWeaverError(
                f"could not bring the result of task {names} back from the Dask "
                f"cluster ({type(exc).__name__}: {exc})"
            ) from exc
        return values


def _submit_error(call: Call, exc: Exception) -> FlowWeaverError:
    err = FlowWeaverError(
        f"task {call.name!r} could not be sent to the Dask cluster "
        f"({type(exc).__name__}: {exc}); its function and inputs must be picklable"
    )
    err.__cause__ = exc
    return err


def _wrapped(call: Call, exc: BaseException) -> FlowWeaverError:
    err = FlowWeaverError(f"task {call.name!r} raised {type(exc).__name__} on a Dask worker")
    err.__cause__ = exc
    return err
