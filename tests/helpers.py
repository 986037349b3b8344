"""Task functions and tools shared by the tests.

This module is not generated: an ``async def`` written here stays a coroutine function in
the blocking twins that ``scripts/unasync.py`` makes of ``tests/_async``, so tests written
once can prove that async task functions are awaited under the blocking executors too.
Nothing here asserts; the tests do.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
import anyio.lowlevel

from flowweaver import (
    SKIPPED,
    Failed,
    RunEvent,
    Skip,
    Task,
    TaskStatus,
    Workflow,
    WorkflowExecutionError,
)
from flowweaver._engine._scheduler import (
    DONE,
    MAPPED,
    READY,
    RETRYING,
    RUNNING,
    WAITING,
    Scheduler,
)


class Concurrency:
    """Counts how many tasks are inside their function at once, from threads and loops.

    ``peak`` is the most seen at one time; ``threads`` the ids of the threads that ran the
    sync functions.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.now = 0
        self.peak = 0
        self.threads: set[int] = set()
        self.order: list[str] = []

    def enter(self, name: str = "") -> None:
        with self._lock:
            self.now += 1
            self.peak = max(self.peak, self.now)
            self.order.append(name)

    def leave(self) -> None:
        with self._lock:
            self.now -= 1

    def sync_sleeper(self, seconds: float, value: Any = None) -> Callable[[], Any]:
        """A plain function that counts itself in, sleeps ``seconds`` and returns ``value``."""

        def sleeper() -> Any:
            with self._lock:
                self.threads.add(threading.get_ident())
            self.enter()
            try:
                time.sleep(seconds)
            finally:
                self.leave()
            return value

        return sleeper

    def async_sleeper(self, seconds: float, value: Any = None) -> Callable[[], Awaitable[Any]]:
        """An ``async def`` that counts itself in, sleeps ``seconds`` and returns ``value``."""

        async def sleeper() -> Any:
            self.enter()
            try:
                await anyio.sleep(seconds)
            finally:
                self.leave()
            return value

        return sleeper


def async_returning(value: Any) -> Callable[..., Awaitable[Any]]:
    """An ``async def`` that returns ``value`` after one checkpoint."""

    async def returning() -> Any:
        await anyio.lowlevel.checkpoint()
        return value

    return returning


def async_sleeping(seconds: float, value: Any = None) -> Callable[..., Awaitable[Any]]:
    """An ``async def`` that sleeps ``seconds`` and returns ``value``."""

    async def sleeping() -> Any:
        await anyio.sleep(seconds)
        return value

    return sleeping


def raising(exc: BaseException) -> Callable[..., Any]:
    """A plain function that raises ``exc`` (the same instance each call)."""

    def raises() -> Any:
        raise exc

    return raises


def async_raising(exc: BaseException) -> Callable[..., Awaitable[Any]]:
    """An ``async def`` that raises ``exc`` after one checkpoint."""

    async def raising() -> Any:
        await anyio.lowlevel.checkpoint()
        raise exc

    return raising


async def async_upper(fetch_data: dict[str, str] | None = None) -> dict[str, str]:
    """Receives the task ``fetch_data``'s result by parameter name."""
    await anyio.lowlevel.checkpoint()
    assert fetch_data is not None
    return {"processed": fetch_data["name"].upper()}


async def async_collect(**upstream: Any) -> dict[str, Any]:
    """Receives every upstream result through ``**kwargs``."""
    await anyio.lowlevel.checkpoint()
    return dict(upstream)


class Flaky:
    """A plain function that raises ``failures`` times, then returns ``value``.

    ``calls`` counts every call, across runs.
    """

    def __init__(self, failures: int, value: Any = "ok", exc: type[Exception] = RuntimeError):
        self.failures = failures
        self.value = value
        self.exc = exc
        self.calls = 0
        self.__name__ = "flaky"

    def __call__(self) -> Any:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.exc(f"attempt {self.calls} fails")
        return self.value


def flaky_coroutine(
    failures: int, value: Any = "ok"
) -> tuple[Callable[[], Awaitable[Any]], list[int]]:
    """An ``async def`` that raises ``failures`` times then returns ``value``, and its call log."""
    calls: list[int] = []

    async def flaky() -> Any:
        await anyio.lowlevel.checkpoint()
        calls.append(len(calls) + 1)
        if len(calls) <= failures:
            raise RuntimeError(f"attempt {len(calls)} fails")
        return value

    return flaky, calls


class CallbackLog:
    """Callbacks that record what they saw: ``(task name, status, result)`` per call."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, TaskStatus, Any]] = []
        self.threads: list[int] = []

    def sync(self, t: Task) -> None:
        self.threads.append(threading.get_ident())
        self.calls.append((t.name, t.status, t.result))

    async def coroutine(self, t: Task) -> None:
        await anyio.sleep(0.01)
        self.calls.append((t.name, t.status, t.result))


class EventLog:
    """An observer (sync) that keeps every event, with the task statuses seen at that moment."""

    def __init__(self, workflow: Workflow | None = None) -> None:
        self.events: list[RunEvent] = []
        self.statuses: list[TaskStatus | None] = []
        self.workflow = workflow

    def __call__(self, event: RunEvent) -> None:
        self.events.append(event)
        status = None
        name = getattr(event, "task", None)
        if self.workflow is not None and name is not None:
            t = self.workflow.get_task(name)
            status = None if t is None else t.status
        self.statuses.append(status)

    def of(self, kind: type[RunEvent]) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]


class CoroutineObserver:
    """An ``async def`` observer that is slow on purpose; it keeps the events it got."""

    def __init__(self) -> None:
        self.events: list[RunEvent] = []

    async def __call__(self, event: RunEvent) -> None:
        await anyio.sleep(0.001)
        self.events.append(event)


def heartbeat(beats: list[float], until: threading.Event) -> Callable[[], Awaitable[int]]:
    """An ``async def`` task that ticks every 10 ms until ``until`` is set (at most 5 s).

    If the event loop is blocked by a sync task, it cannot tick meanwhile.
    """

    async def beat() -> int:
        deadline = time.monotonic() + 5
        while not until.is_set() and time.monotonic() < deadline:
            beats.append(time.monotonic())
            await anyio.sleep(0.01)
        return len(beats)

    return beat


def blocking_sleeper(seconds: float, done: threading.Event) -> Callable[[], str]:
    """A plain function that sleeps ``seconds`` (blocking its thread), then sets ``done``."""

    def sleeper() -> str:
        time.sleep(seconds)
        done.set()
        return "slept"

    return sleeper


def final_statuses(wf: Workflow) -> dict[str, TaskStatus]:
    return {t.name: t.status for t in wf.tasks}


# -- random DAGs for the differential test ----------------------------------------------------


@dataclass(frozen=True)
class NodeSpec:
    """One task of a random DAG.

    :ivar kind: ``"sync"``, ``"async"``, ``"sync_timed"`` or ``"async_timed"`` (the last
        two have a generous timeout, so they take the engine's deadline paths).
    :ivar failures: how many first attempts raise.
    :ivar retries: the task's ``retries``.
    :ivar trigger: the task's trigger rule.
    :ivar skip: the first attempt that does not raise raises ``Skip`` instead.
    :ivar items: when not None, the task is mapped over its first upstream task, with one
        item per entry: the item's ``(failures, skip)``, as ``failures`` and ``skip`` are
        for a task (the mapped task's own are unused: its function runs only as items).
        Items have the task's ``retries``.
    :ivar on_item_failure: a mapped task's ``on_item_failure``.
    :ivar limit: a mapped task's ``max_concurrent``.
    :ivar size: when not None, the task (a map's source, not itself mapped) returns a list
        of ``size`` elements ``(k, value)``. For the engine (``expected_outcome(...,
        engine=True)``), a map's items are its source's elements, keyed by ``k``: ``items``
        then holds an entry per key the source can give (``size``, or the length of a
        mapped source's own ``items``).
    """

    deps: tuple[int, ...]
    kind: str
    failures: int
    retries: int
    trigger: str = "all_success"
    skip: bool = False
    items: tuple[tuple[int, bool], ...] | None = None
    on_item_failure: str = "fail"
    limit: int | None = None
    size: int | None = None


@dataclass
class Outcome:
    """What a run left behind, in a form that compares across executors."""

    statuses: dict[str, str]
    results: dict[str, Any]
    attempts: dict[str, int]
    failed: set[str] = field(default_factory=set)
    skipped: set[str] = field(default_factory=set)
    first_failed: str | None = None
    errors: dict[str, str] = field(default_factory=dict)
    failed_items: dict[str, list[str]] = field(default_factory=dict)


_PRIME = (1 << 61) - 1


def node_value(i: int, upstream: dict[str, Any]) -> int:
    """A task's result: a hash of its index and its upstream results (by name)."""
    acc = i * 1_000_003 + 17
    for name in sorted(upstream):
        acc = (acc * 31 + int(name[1:]) * 7 + _digest(upstream[name])) % _PRIME
    return acc


def _digest(value: Any) -> int:
    """An int for a task's result: itself, or a hash of an element ``(k, value)`` or of a
    list of them (a map's source, a mapped task), in order, so that the list's length,
    its keys and its values all count."""
    if isinstance(value, int):
        return value
    if isinstance(value, tuple):
        k, v = value
        return (k * 8191 + _digest(v) * 131 + 5) % _PRIME
    acc = len(value) + 3
    for element in value:
        acc = (acc * 1009 + _digest(element)) % _PRIME
    return acc


# What a task that runs despite its upstream task's outcome hashes in its place.
_FAILED_VALUE = -1
_SKIPPED_VALUE = -2


def _seen(spec: NodeSpec, upstream: dict[str, Any]) -> dict[str, int]:
    # one_failed / one_success start before every upstream task ended, so what they
    # would see of the others depends on timing: they hash none of it.
    if spec.trigger in ("one_failed", "one_success"):
        return {}
    out = {}
    for name, value in upstream.items():
        if isinstance(value, Failed):
            value = _FAILED_VALUE
        elif value is SKIPPED:
            value = _SKIPPED_VALUE
        out[name] = value
    return out


def _node_func(i: int, spec: NodeSpec) -> Callable[..., Any]:
    if spec.items is not None:
        return _item_func(i, spec)
    calls = [0]

    def check() -> None:
        calls[0] += 1
        if calls[0] <= spec.failures:
            raise ValueError(f"n{i} attempt {calls[0]} fails")
        if spec.skip:
            raise Skip(f"n{i} skips")

    if spec.kind.startswith("async"):

        async def node_async(**upstream: Any) -> Any:
            await anyio.lowlevel.checkpoint()
            check()
            return _listed(spec, node_value(i, _seen(spec, upstream)))

        return node_async

    def node_sync(**upstream: Any) -> Any:
        check()
        return _listed(spec, node_value(i, _seen(spec, upstream)))

    return node_sync


def _listed(spec: NodeSpec, value: int) -> Any:
    """A task's result: ``value``, or for a map's source its list of elements."""
    return value if spec.size is None else [(k, value) for k in range(spec.size)]


def _item_func(i: int, spec: NodeSpec) -> Callable[..., Any]:
    """The function of mapped task ``i``, which runs only as its items: the item that
    receives the element ``(k, value)`` acts as ``spec.items[k]`` says, counting its own
    attempts, and returns ``(k, its value)`` (a map over it keys its items the same)."""
    assert spec.items is not None
    items = spec.items
    source = f"n{spec.deps[0]}"
    # Each key's attempts run one at a time, so each entry has one writer.
    calls: dict[int, int] = {}

    def check(k: int) -> None:
        calls[k] = calls.get(k, 0) + 1
        failures, skip = items[k]
        if calls[k] <= failures:
            raise ValueError(f"n{i}[{k}] attempt {calls[k]} fails")
        if skip:
            raise Skip(f"n{i}[{k}] skips")

    if spec.kind.startswith("async"):

        async def item_async(**upstream: Any) -> tuple[int, int]:
            await anyio.lowlevel.checkpoint()
            k = upstream[source][0]
            check(k)
            return k, node_value(i, _seen(spec, upstream))

        return item_async

    def item_sync(**upstream: Any) -> tuple[int, int]:
        k = upstream[source][0]
        check(k)
        return k, node_value(i, _seen(spec, upstream))

    return item_sync


def build_dag(specs: list[NodeSpec], name: str = "random_dag") -> Workflow:
    """A fresh workflow (fresh attempt counters) for ``specs``; task ``i`` is named ``n{i}``."""
    wf = Workflow(name)
    for i, spec in enumerate(specs):
        timeout = 30.0 if spec.kind.endswith("timed") else None
        mapped: dict[str, Any] = {}
        if spec.items is not None:
            mapped = {
                "map_over": f"n{spec.deps[0]}",
                "on_item_failure": spec.on_item_failure,
                "max_concurrent": spec.limit,
            }
        wf.add_task(
            Task(f"n{i}", _node_func(i, spec), retries=spec.retries, timeout=timeout, **mapped),
            depends_on=[f"n{j}" for j in spec.deps],
            trigger=spec.trigger,  # type: ignore[arg-type]
        )
    return wf


def expected_outcome(specs: list[NodeSpec], engine: bool = False) -> Outcome:
    """What any executor must leave behind, worked out without running anything.

    :param engine: work out maps as the engine runs them (results, item keys from the
        source's elements, errors: :func:`_expected_items`), not as the scheduler test
        drives them (``len(items)`` items each, whatever the source left:
        :func:`_expected_map`).
    """
    out = Outcome({}, {}, {})
    values: dict[int, Any] = {}
    # A skip that a failure caused counts as a failure for the rules below it.
    by_failure: set[int] = set()
    for i, spec in enumerate(specs):
        name = f"n{i}"
        deps = set(spec.deps)
        failed = {j for j in deps if f"n{j}" in out.failed or j in by_failure}
        skipped = {j for j in deps if f"n{j}" in out.skipped} - failed
        ok = deps - failed - skipped
        runs = {
            "all_success": not failed and not skipped,
            "all_done": True,
            "none_failed": not failed,
            "one_failed": bool(failed),
            "one_success": bool(ok),
        }[spec.trigger]
        if not runs:
            out.statuses[name] = "SKIPPED"
            out.results[name] = None
            out.attempts[name] = 0
            out.skipped.add(name)
            if failed and spec.trigger != "one_failed":
                by_failure.add(i)
        elif spec.items is not None and engine:
            _expected_items(i, spec, values, out)
        elif spec.items is not None:
            _expected_map(i, spec, values, out)
        elif spec.failures > spec.retries:
            out.statuses[name] = "FAILED"
            out.results[name] = None
            out.attempts[name] = spec.retries + 1
            out.failed.add(name)
            out.errors[name] = f"n{i} attempt {spec.retries + 1} fails"
        elif spec.skip:
            out.statuses[name] = "SKIPPED"
            out.results[name] = None
            out.attempts[name] = spec.failures + 1
            out.skipped.add(name)
        else:
            seen = {f"n{j}": _model_value(j, values, out) for j in deps}
            values[i] = _listed(spec, node_value(i, _seen(spec, seen)))
            out.statuses[name] = "COMPLETED"
            out.results[name] = values[i]
            out.attempts[name] = spec.failures + 1
    if not out.failed:
        out.skipped = set()  # reported by the error a run raises, and none is raised
    return out


def _expected_map(i: int, spec: NodeSpec, values: dict[int, Any], out: Outcome) -> None:
    """Mapped task ``i``, which its rule lets run: the driver's ``_expand`` and ``_gather``.

    Its one attempt expands it, or skips it on purpose when the task it maps over did not
    complete. Its items are named ``n{i}[k]``; its result is the list of the indices of
    the items that completed, in order (a stand-in for their results: ``values`` holds its
    length). Items that failed fail it with ``on_item_failure="fail"``; otherwise, and
    for items skipped on purpose, they are left out of its result.
    """
    assert spec.items is not None
    name = f"n{i}"
    out.attempts[name] = 1
    out.results[name] = None
    if f"n{spec.deps[0]}" in out.failed or f"n{spec.deps[0]}" in out.skipped:
        out.statuses[name] = "SKIPPED"  # nothing to map over: a skip, not a failure
        out.skipped.add(name)
        return
    done = []
    failed = []
    for k, (failures, skip) in enumerate(spec.items):
        item = f"{name}[{k}]"
        if failures > spec.retries:
            out.statuses[item] = "FAILED"
            out.attempts[item] = spec.retries + 1
            failed.append(k)
            continue
        out.attempts[item] = failures + 1
        out.statuses[item] = "SKIPPED" if skip else "COMPLETED"
        if not skip:
            done.append(k)
    if failed and spec.on_item_failure == "fail":
        out.statuses[name] = "FAILED"
        out.failed.add(name)
        return
    out.statuses[name] = "COMPLETED"
    out.results[name] = done
    values[i] = len(done)


def _expected_items(i: int, spec: NodeSpec, values: dict[int, Any], out: Outcome) -> None:
    """Mapped task ``i``, which its rule lets run, as the engine's ``_expand`` and
    ``_gather`` end it.

    Its one attempt skips it on purpose when its source did not complete, else expands it:
    an item ``n{i}[k]`` per element ``(k, value)`` of its source's result (so a map over a
    map has an item per completed item of it, under the same keys). Each item sees that
    element and the other upstream results whole; its result is ``(k, its value)``. The
    task's result is the list of its completed items' results, in order; items that failed
    fail it with ``on_item_failure="fail"`` (one ``ItemsFailedError``); otherwise, and for
    items skipped on purpose, they are left out.
    """
    assert spec.items is not None
    name = f"n{i}"
    src = spec.deps[0]
    out.attempts[name] = 1
    out.results[name] = None
    if f"n{src}" in out.failed or f"n{src}" in out.skipped:
        out.statuses[name] = "SKIPPED"  # nothing to map over: a skip, not a failure
        out.skipped.add(name)
        return
    others = {f"n{j}": _model_value(j, values, out) for j in spec.deps if j != src}
    done = []
    failed: list[str] = []  # the failed items' names, then how ItemsFailedError shows them
    described: list[str] = []
    for element in values[src]:
        k = element[0]
        item = f"{name}[{k}]"
        failures, skip = spec.items[k]
        out.results[item] = None
        if failures > spec.retries:
            out.statuses[item] = "FAILED"
            out.attempts[item] = spec.retries + 1
            failed.append(item)
            described.append(f"{item} (ValueError: {item} attempt {spec.retries + 1} fails)")
            continue
        out.attempts[item] = failures + 1
        if skip:
            out.statuses[item] = "SKIPPED"
            continue
        out.statuses[item] = "COMPLETED"
        out.results[item] = (k, node_value(i, _seen(spec, {**others, f"n{src}": element})))
        done.append(out.results[item])
    if failed:
        out.failed_items[name] = failed
    if failed and spec.on_item_failure == "fail":
        out.statuses[name] = "FAILED"
        out.failed.add(name)
        more = len(failed) - 3
        shown = ", ".join(described[:3]) + (f" and {more} more" if more > 0 else "")
        total = len(values[src])
        out.errors[name] = f"{len(failed)} of {total} items of task {name!r} failed: {shown}"
        return
    out.statuses[name] = "COMPLETED"
    out.results[name] = values[i] = done


def _model_value(j: int, values: dict[int, Any], out: Outcome) -> Any:
    if j in values:
        return values[j]
    return _FAILED_VALUE if f"n{j}" in out.failed else _SKIPPED_VALUE


def observed_outcome(wf: Workflow, error: WorkflowExecutionError | None) -> Outcome:
    tasks = [*wf.tasks, *(item for t in wf.tasks for item in t.items)]
    out = Outcome(
        {t.name: t.status.value for t in tasks},
        {t.name: t.result for t in tasks},
        {t.name: t.attempts for t in tasks},
    )
    out.failed_items = {t.name: t.failed_items for t in wf.tasks if t.failed_items}
    if error is not None:
        out.failed = set(error.failed_tasks)
        out.skipped = set(error.skipped_tasks)
        out.first_failed = error.failed_task
        out.errors = {k: str(v) for k, v in error.errors.items()}
    return out


def cancellable_sleeper(seconds: float, log: list[str]) -> Callable[[], Awaitable[str]]:
    """An ``async def`` that sleeps ``seconds``, logging ``"cancelled"`` or ``"finished"``."""

    async def sleeper() -> str:
        try:
            await anyio.sleep(seconds)
        except anyio.get_cancelled_exc_class():
            log.append("cancelled")
            raise
        log.append("finished")
        return "late"

    return sleeper


def swallows_its_timeout(
    seconds: float, swallowing: int = 1
) -> tuple[Callable[[], Awaitable[str]], list[str]]:
    """An ``async def`` whose first ``swallowing`` calls sleep ``seconds``, catch their
    cancellation and return ``"late"`` anyway; later calls return ``"on time"`` at once.
    The list logs what each call did."""
    log: list[str] = []

    async def swallower() -> str:
        if len(log) >= swallowing:
            log.append("on time")
            return "on time"
        try:
            await anyio.sleep(seconds)
        except anyio.get_cancelled_exc_class():
            log.append("swallowed")
            return "late"
        log.append("slept")
        return "slept"

    return swallower, log


def slow_first_attempt(
    seconds: float, value: Any = "ok"
) -> tuple[Callable[[], Awaitable[Any]], list[int]]:
    """An ``async def`` whose first call sleeps ``seconds``; later calls return at once."""
    attempts: list[int] = []

    async def slow_first() -> Any:
        attempts.append(len(attempts) + 1)
        if len(attempts) == 1:
            await anyio.sleep(seconds)
        return value

    return slow_first, attempts


def raising_coroutine_observer(
    got: list[str], on: type[RunEvent]
) -> Callable[[RunEvent], Awaitable[None]]:
    """An ``async def`` observer that records event kinds and raises on events of type ``on``."""

    async def observer(event: RunEvent) -> None:
        await anyio.lowlevel.checkpoint()
        got.append(type(event).__name__)
        if isinstance(event, on):
            raise RuntimeError("async observer broke")

    return observer


# -- the scheduler's bookkeeping ---------------------------------------------------------------


def scheduler_faults(s: Scheduler) -> list[str]:
    """Where scheduler ``s``'s counters disagree with its table of nodes (empty: nowhere).

    Counted again from the states: nodes in flight, each tag's nodes in flight (never
    above its limit) and the nodes parked on it, nodes not ended, ready nodes (each
    queued once), and for each map whose node is ``MAPPED``, its items let in (never more
    than its limit, and in order) and not ended. Holds after every call while a run is
    under way, and after :meth:`~Scheduler.stop`.
    """
    state = s.state
    faults = []
    in_flight = sum(1 for x in state if x == RUNNING)  # a retry in its backoff holds none
    if s.in_flight != in_flight or in_flight > s.concurrency:
        faults.append(f"in_flight {s.in_flight}, counted {in_flight} (of {s.concurrency})")
    unsettled = sum(1 for x in state if x < DONE)
    if s.unsettled != unsettled:
        faults.append(f"unsettled {s.unsettled}, counted {unsettled}")
    gate = s.gate
    parked = {i for i in gate._parked_on if state[i] == READY} if gate is not None else set()
    ready = [i for i, x in enumerate(state) if x == READY and i not in parked]
    queued = sorted(i for i in s._ready if state[i] == READY)
    if s._n_ready != len(ready) or queued != ready:
        faults.append(f"ready {ready}, queued {queued}, _n_ready {s._n_ready}")
    if gate is not None:
        faults += _gate_faults(s, parked)
    for p, m in s._maps.items():
        if state[p] != MAPPED:
            continue  # ended, or taken back by stop() (its next expansion counts afresh)
        items = range(m.first, m.end)
        active = sum(1 for k in items if READY <= state[k] <= RETRYING)
        if m.active != active or active > m.limit:
            faults.append(f"map {p}: active {m.active}, counted {active} (limit {m.limit})")
        left = sum(1 for k in items if state[k] < DONE)
        if m.left != left:
            faults.append(f"map {p}: left {m.left}, counted {left}")
        if any(state[k] == WAITING for k in range(m.first, m.next)):
            faults.append(f"map {p}: an item before next={m.next} still waits")
    return faults


def _gate_faults(s: Scheduler, parked: set[int]) -> list[str]:
    gate = s.gate
    assert gate is not None
    faults = []
    for t, cap in enumerate(gate._cap):
        if not cap:
            continue  # a rated tag without a limit counts no slots
        holding = sum(1 for i, tags in gate.tags.items() if t in tags and s.state[i] == RUNNING)
        if gate._used[t] != holding or holding > cap:
            faults.append(f"tag {gate.names[t]}: used {gate._used[t]}, counted {holding}")
    for i in parked:
        if i not in gate._lines[gate._parked_on[i] - 1]:
            faults.append(f"node {i} parked on a line that does not hold it")
    return faults
