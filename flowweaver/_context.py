"""The running task's context: :func:`flowweaver.current`, and the run's log attributes.

Theory of operation. The engine marks each attempt it runs with a context variable,
set where the function runs: around the call on a lane (async and inline functions), in
the job's own context copy on a worker thread, in the worker process (``_proc_child``
sets it when the task's code imported flowweaver) and on a Dask worker (:class:`InContext`).
What the variable holds is cheap to set, a ``(source, node)`` pair; the
:class:`TaskContext` is built only when a task asks for it, so a run whose tasks never
call :func:`current` pays one ``ContextVar.set`` and ``reset`` per attempt.

In a worker process the job's fields are kept by the worker script itself, which imports
no flowweaver (a task that imports it inside its function still finds them).

While a run is under way a log-record factory (installed by the first run, removed by
the last; it calls the factory it replaced) gives every record ``fw_workflow``,
``fw_task``, ``fw_attempt`` and ``fw_run``: the running task's, or None outside tasks.
Outside runs it adds nothing: no global side effect survives the runs. During a run
with ``capture_logs`` it also hands each record made in a task to ``_capture``
(:data:`capture_record`), which keeps it in that task's tail.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from . import _log as _library_log
from ._errors import FlowWeaverError

if TYPE_CHECKING:
    from ._capture import Tail


class Source(Protocol):
    """What the engine puts in the context variable with a node: its run, which knows."""

    def context_of(self, i: int) -> TaskContext: ...

    def log_fields(self, i: int) -> tuple[str, str, int, str]: ...

    def tail_of(self, i: int) -> Tail | None:
        """Where the attempt's lines go under ``capture_logs`` (see ``_capture``), or None."""
        ...


_CURRENT: ContextVar[tuple[Source, int] | None] = ContextVar("flowweaver_current", default=None)


class AttemptScope(Protocol):
    """What an observer may offer to run code around each attempt where the attempt runs
    (a tracer making the task's span current): the engine finds it as the observer's
    ``_flowweaver_attempt_scope`` attribute. Every call is guarded: an error is logged
    and the attempt runs without it.

    ``enter`` and ``exit`` run in the attempt's own thread and context, around its code;
    ``carrier`` is for an attempt that runs in another process (a worker process, a Dask
    worker): W3C trace-context headers, attached there around the attempt.
    """

    def enter(self, ctx: TaskContext) -> Any: ...

    def exit(self, token: Any) -> None: ...

    def carrier(self, ctx: TaskContext) -> dict[str, str] | None: ...


_log = _library_log.logger  # with its NullHandler (see _log)


def scope_enter(scope: AttemptScope, ctx: TaskContext) -> Any:
    try:
        return scope.enter(ctx)
    except Exception:
        _log.exception("the observer's attempt scope raised entering %r; the task runs", ctx.task)
        return None


def scope_exit(scope: AttemptScope, token: Any) -> None:
    if token is None:
        return
    try:
        scope.exit(token)
    except Exception:
        _log.exception("the observer's attempt scope raised on exit; the run goes on")


def scope_carrier(scope: AttemptScope | None, ctx: TaskContext) -> dict[str, str] | None:
    if scope is None:
        return None
    try:
        return scope.carrier(ctx)
    except Exception:
        _log.exception("the observer's attempt scope raised for %r; the task runs", ctx.task)
        return None


def attach_carrier(carrier: dict[str, str] | None) -> Any:
    """In another process: make the trace context of ``carrier`` current (OpenTelemetry's
    W3C propagation, when it is installed there); returns what :func:`detach_carrier`
    takes."""
    if not carrier:
        return None
    try:
        from opentelemetry import context, propagate

        return context.attach(propagate.extract(carrier))
    except Exception:
        return None


def detach_carrier(token: Any) -> None:
    if token is not None:
        from opentelemetry import context

        context.detach(token)


def scoped_call(
    scope: AttemptScope, ctx: TaskContext, func: Callable[..., Any], /, **kwargs: Any
) -> Any:
    """``func(**kwargs)`` inside the observer's scope: a worker thread's job."""
    token = scope_enter(scope, ctx)
    try:
        return func(**kwargs)
    finally:
        scope_exit(scope, token)


def attempt_scope_of(observer: Any) -> AttemptScope | None:
    """The attempt scope an executor's observer offers (a bound ``on_event`` stands for
    its object), or None."""
    owner = getattr(observer, "__self__", observer)
    return getattr(owner, "_flowweaver_attempt_scope", None)


class InlineRun(Source, Protocol):
    """A run that calls sync functions on its loop's thread: the node it is calling, or -1."""

    inline_node: int


# The run calling sync functions inline on this thread, if any. Setting a context variable
# around each inline call would cost the cheapest path (a no-op task in a blocking
# SequentialExecutor run) about 4% of its time; two attribute stores cost nothing
# measurable, and nothing else runs on the thread during an inline call.
_inline = threading.local()


def marker() -> tuple[Source, int] | None:
    """The running task's ``(source, node)``: the inline call of this thread's run, the
    context variable, or the job of this worker process. None outside tasks."""
    # An inline call first: while it runs it is the innermost code of this thread, even
    # when the thread's context names a task of an outer run (a nested blocking run on a
    # worker thread inherits that task's context).
    run: InlineRun | None = getattr(_inline, "run", None)
    if run is not None and run.inline_node >= 0:
        return (run, run.inline_node)
    value = _CURRENT.get()
    if value is not None:
        return value
    return _in_worker_process()


def inline_calls_by(run: InlineRun | None) -> InlineRun | None:
    """``run`` calls sync functions inline on this thread from now on (None: no run);
    returns the one that did before (a nested run puts it back when it ends)."""
    previous: InlineRun | None = getattr(_inline, "run", None)
    _inline.run = run
    return previous


@dataclass(frozen=True, slots=True)
class TaskContext:
    """The running attempt of a task, as :func:`flowweaver.current` returns it.

    :ivar workflow: the workflow's name (a task run with ``Task.execute``: the task's).
    :ivar task: the task's name; an item of a mapped task: the item's (``"load[3]"``).
    :ivar item: an item's key, else None.
    :ivar attempt: 1 for the first attempt, 2 for the first retry...
    :ivar run_id: the run's id (as in the run history and the events).
    :ivar params: the run's parameters (all of them, not only the task's).
    :ivar parent_run_id: when a task of another run started this run (a nested
        workflow), that run's id; else None.
    """

    workflow: str
    task: str
    item: str | int | None
    attempt: int
    run_id: str
    params: Mapping[str, Any] = field(default_factory=dict)
    parent_run_id: str | None = None

    @property
    def logger(self) -> logging.Logger:
        """A logger whose records carry the running task's context (``fw_workflow``,
        ``fw_task``, ``fw_attempt``, ``fw_run``): ``flowweaver.task.<workflow>``, a child of
        ``logging.getLogger("flowweaver.task")``, so handlers and levels can be set per
        workflow. Call it from the task (the context is read when a record is made)."""
        log = _TASK_LOGGER.getChild(self.workflow)
        if _FILTER not in log.filters:
            log.addFilter(_FILTER)
        return log


class _ContextFilter(logging.Filter):
    """Puts the running task's fields on a record that has none (where no run installed
    the record factory: a worker process, a Dask worker)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "fw_task", None) is None:
            value = marker()
            if value is not None:
                fields = value[0].log_fields(value[1])
                record.fw_workflow, record.fw_task, record.fw_attempt, record.fw_run = fields
        return True


_FILTER = _ContextFilter()
_TASK_LOGGER = logging.getLogger("flowweaver.task")
_RAISE: Any = object()


def current(default: Any = _RAISE) -> TaskContext | None:
    """The context of the task attempt running in this thread or coroutine.

    Works in ``async def`` and sync tasks, on worker threads, in worker processes and on
    Dask workers, and in a nested workflow's run (which gets its own context).

    :param default: returned outside a task instead of raising (``current(default=None)``).
    :raises FlowWeaverError: outside a task, without a default.
    """
    value = marker()
    if value is None:
        if default is _RAISE:
            raise FlowWeaverError(
                "flowweaver.current() was called outside a running task; call it from a "
                "task's function (or use flowweaver.current(default=None) to get None)"
            )
        return default  # type: ignore[no-any-return]
    source, i = value
    return source.context_of(i)


def parent_run_id() -> str | None:
    """The run id of the task this code runs in, if any (for a nested run)."""
    value = marker()
    return None if value is None else value[0].context_of(value[1]).run_id


def _in_worker_process() -> tuple[Source, int] | None:
    """The job's context in a worker process (``_proc_child``, which runs as
    ``__main__`` and imports no flowweaver: it keeps the fields of the job it runs)."""
    fields = getattr(sys.modules.get("__main__"), "FLOWWEAVER_JOB_CONTEXT", None)
    return None if fields is None else (Fixed(TaskContext(*fields)), 0)


class Fixed:
    """A :class:`Source` holding one ready context: for a worker process or a Dask worker."""

    __slots__ = ("ctx",)

    def __init__(self, ctx: TaskContext) -> None:
        self.ctx = ctx

    def context_of(self, i: int) -> TaskContext:
        return self.ctx

    def log_fields(self, i: int) -> tuple[str, str, int, str]:
        c = self.ctx
        return c.workflow, c.task, c.attempt, c.run_id

    def tail_of(self, i: int) -> Tail | None:
        return None  # a worker process captures by itself (_proc_child)


class InContext:
    """``func`` to call elsewhere (a Dask worker) with ``ctx`` as the current context, and
    the trace context of ``carrier`` (see :class:`AttemptScope`) attached."""

    __slots__ = ("carrier", "ctx", "func")

    def __init__(
        self, ctx: TaskContext, func: Callable[..., Any], carrier: dict[str, str] | None = None
    ) -> None:
        self.ctx = ctx
        self.func = func
        self.carrier = carrier

    def __call__(self, **kwargs: Any) -> Any:
        token = _CURRENT.set((Fixed(self.ctx), 0))
        attached = attach_carrier(self.carrier)
        try:
            value = self.func(**kwargs)
        finally:
            detach_carrier(attached)
            _CURRENT.reset(token)
        if hasattr(value, "__await__"):
            return _awaited_in(self.ctx, self.carrier, value)
        return value

    def __reduce__(self) -> tuple[Any, ...]:
        return (InContext, (self.ctx, self.func, self.carrier))


async def _awaited_in(ctx: TaskContext, carrier: dict[str, str] | None, awaitable: Any) -> Any:
    token = _CURRENT.set((Fixed(ctx), 0))
    attached = attach_carrier(carrier)
    try:
        return await awaitable
    finally:
        detach_carrier(attached)
        _CURRENT.reset(token)


# -- the log attributes ---------------------------------------------------------------------

_lock = threading.Lock()
_runs = 0  # runs under way in this process
_previous: Callable[..., logging.LogRecord] | None = None
# Set while a run with capture_logs is under way (see _capture): takes each record made
# in a task, with the task's marker.
capture_record: Callable[[tuple[Source, int], logging.LogRecord], None] | None = None


def _factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
    previous = _previous
    record = (previous or logging.LogRecord)(*args, **kwargs)
    if _runs:
        value = marker()
        if value is None:
            record.fw_workflow = record.fw_task = record.fw_attempt = record.fw_run = None
        else:
            fields = value[0].log_fields(value[1])
            record.fw_workflow, record.fw_task, record.fw_attempt, record.fw_run = fields
            hook = capture_record
            if hook is not None:
                hook(value, record)
    return record


def log_attributes_on() -> None:
    """A run begins: records get the running task's attributes (see the module doc)."""
    global _runs, _previous
    with _lock:
        _runs += 1
        if _runs > 1:
            return
        factory = logging.getLogRecordFactory()
        if factory is _factory:
            return
        # Ours may still be in the chain, below a factory installed over it during an
        # earlier run: a record made now says so (it has the attributes).
        probe = factory("flowweaver", logging.DEBUG, "", 0, "", (), None)
        if not hasattr(probe, "fw_task"):
            _previous = factory
            logging.setLogRecordFactory(_factory)


def log_attributes_off() -> None:
    """A run ended: the last one puts the factory it replaced back, unless another was
    installed over it since (then ours stays, adding nothing until the next run)."""
    global _runs, _previous
    with _lock:
        _runs -= 1
        if _runs == 0 and logging.getLogRecordFactory() is _factory:
            logging.setLogRecordFactory(_previous or logging.LogRecord)
            _previous = None
