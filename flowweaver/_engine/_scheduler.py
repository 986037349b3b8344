"""The scheduler: every decision about *when* a task runs. No I/O, no threads, no clock.

Theory of operation. The scheduler keeps a table of nodes (one per task), each with its
upstream and downstream nodes, a count of upstream nodes not yet released, a state and
the number of attempts handed out. The driver (``_driver``) tells it what happened and
asks it what to do next, the way :class:`graphlib.TopologicalSorter` is told ``done`` and
asked ``get_ready``, and h11's state machine is fed events:

* :meth:`Scheduler.admit` hands out ready nodes while fewer than ``concurrency`` hold a
  slot; each is ``RUNNING`` with one more attempt. The driver runs them.
* :meth:`~Scheduler.completed` frees the node's slot. Its dependents are released at once,
  or, when the run keeps a store, only once :meth:`~Scheduler.durable` says its record is
  saved (until then the node is ``HELD``): no dependent starts on a result a crash could
  lose.
* :meth:`~Scheduler.attempt_failed` decides between another attempt (the node stays
  ``RETRYING`` and keeps its slot until :meth:`~Scheduler.retry` hands it out again) and a
  final failure, which skips every node downstream that has not ended.
* :meth:`~Scheduler.interrupt` ends a run early: nodes in flight go back to waiting (or,
  when a failure stopped the run, everything unfinished is skipped).

Nodes can be added at any time (:meth:`~Scheduler.add`), also while a run is under way; a
node whose upstream nodes are all released is ready at once. Each node and edge is touched
a constant number of times, so a run costs O(nodes + edges). Calls that make no sense in
the node's state (completing a node that was not handed out, releasing one twice) raise
:class:`SchedulerError`: they are bugs in the driver, never a user's error.

States are small ints, not an enum: the table is read and written several times per task
on the engine's hot path. :data:`PUBLIC_STATUS` maps each to the task's public status.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence

from .._status import TaskStatus

#: Some upstream node has not been released yet.
WAITING = 0
#: Every upstream node is released; queued for a slot.
READY = 1
#: Handed out: an attempt is in flight and holds a slot.
RUNNING = 2
#: An attempt failed and another will be handed out; the node keeps its slot.
RETRYING = 3
#: Completed; its dependents wait until its record is durable.
HELD = 4
#: Completed and released.
DONE = 5
#: Failed for good.
FAILED = 6
#: Will not run: an upstream node failed or was skipped, or a failure stopped the run.
SKIPPED = 7

_NAMES = ("WAITING", "READY", "RUNNING", "RETRYING", "HELD", "DONE", "FAILED", "SKIPPED")

#: The task status each scheduler state shows to users.
PUBLIC_STATUS = (
    TaskStatus.PENDING,
    TaskStatus.PENDING,
    TaskStatus.RUNNING,
    TaskStatus.RETRYING,
    TaskStatus.COMPLETED,
    TaskStatus.COMPLETED,
    TaskStatus.FAILED,
    TaskStatus.SKIPPED,
)


# Returned when nothing changed: no list to allocate (callers only iterate it).
_NONE: list[int] = []


class SchedulerError(RuntimeError):
    """The driver asked for a transition the node's state does not allow (a bug)."""


class Retry:
    """Decision: hand the node out again (after the driver's retry delay, if any).

    :ivar attempt: the attempt that failed (1 for the first).
    """

    __slots__ = ("attempt",)

    def __init__(self, attempt: int) -> None:
        self.attempt = attempt

    def __repr__(self) -> str:
        return f"Retry(attempt={self.attempt})"


class Failed:
    """Decision: the node failed for good.

    :ivar skipped: the nodes downstream that will not run because of it, in the order the
        skip reached them.
    :ivar stop: the run stops here (``fail_fast``): cancel what is in flight, then
        :meth:`Scheduler.interrupt`.
    """

    __slots__ = ("skipped", "stop")

    def __init__(self, skipped: list[int], stop: bool = False) -> None:
        self.skipped = skipped
        self.stop = stop

    def __repr__(self) -> str:
        return f"Failed(skipped={self.skipped}, stop={self.stop})"


class Scheduler:
    """The decisions of one run over a growable table of nodes.

    :param concurrency: the most nodes that hold a slot at once (``RUNNING`` or
        ``RETRYING``).
    :param fail_fast: the first node that fails for good stops the run (see ``Failed``).

    :ivar state: each node's state (``WAITING`` ... ``SKIPPED``).
    :ivar attempts: how many attempts of each node were handed out.
    :ivar in_flight: how many nodes hold a slot now.
    :ivar unsettled: how many nodes have not ended (``HELD`` nodes have not: their release
        is still to come).
    :ivar stopped_by: the node whose failure stopped the run (``fail_fast``), or None.
    """

    __slots__ = (
        "_n_ready",
        "_owned",
        "_pending",
        "_ready",
        "attempts",
        "concurrency",
        "downstream",
        "fail_fast",
        "in_flight",
        "retries",
        "state",
        "stopped_by",
        "unsettled",
        "upstream",
    )

    def __init__(self, concurrency: int, fail_fast: bool = False) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        self.concurrency = concurrency
        self.fail_fast = fail_fast
        self.stopped_by: int | None = None
        self.upstream: list[tuple[int, ...]] = []
        self.downstream: list[list[int]] = []
        self.retries: list[int] = []
        self.state: list[int] = []
        self.attempts: list[int] = []
        self._pending: list[int] = []
        # Ready nodes in the order they became ready. A node restored or skipped while
        # queued is left in place and dropped when reached (removing it from the middle
        # would cost O(n) each); _n_ready counts the live entries.
        self._ready: deque[int] = deque()
        self._n_ready = 0
        self._owned = bytearray()
        self.in_flight = 0
        self.unsettled = 0

    # -- the node table ----------------------------------------------------------------

    def add(self, upstream: Iterable[int] = (), retries: int = 0) -> int:
        """Add a node that runs after ``upstream``, with ``retries`` extra attempts.

        :returns: the new node's id (ids count up from 0). A node added below one that
            failed or was skipped is ``SKIPPED`` at once, as it would have been had it
            been there when that happened.
        :raises SchedulerError: for an unknown upstream node.
        """
        i = len(self.state)
        ups = tuple(dict.fromkeys(upstream))
        pending = 0
        dead = False
        state = self.state
        for j in ups:
            if not 0 <= j < i:
                raise SchedulerError(f"node {i}: upstream node {j} does not exist")
            s = state[j]
            if s >= FAILED:
                dead = True
            elif s != DONE:
                pending += 1
        downstream = self.downstream
        owned = self._owned
        for j in ups:
            if j < len(owned) and not owned[j]:
                # add_graph shares these lists with the caller: copy one before its first
                # change (once, so many nodes added below one node stay O(1) each)
                downstream[j] = list(downstream[j])
                owned[j] = 1
            downstream[j].append(i)
        self.upstream.append(ups)
        self.downstream.append([])
        self.retries.append(retries)
        self.attempts.append(0)
        self._pending.append(pending)
        if dead:
            state.append(SKIPPED)
        elif pending:
            self.unsettled += 1
            state.append(WAITING)
        else:
            self.unsettled += 1
            state.append(READY)
            self._ready.append(i)
            self._n_ready += 1
        return i

    def add_graph(
        self,
        upstream: Sequence[tuple[int, ...]],
        retries: Sequence[int],
        downstream: Sequence[list[int]] | None = None,
    ) -> None:
        """Add a whole workflow to an empty table; node ids follow the sequence.

        :param upstream: each node's upstream nodes, without repeats; the graph was
            validated (no cycle) by its builder.
        :param downstream: the inverse of ``upstream``, when the caller has it: its lists
            are shared, not copied (a node added later copies the list it extends), so a
            run does not build the graph a second time.

        Ready nodes queue in declaration order.
        """
        if self.state:
            for ups, r in zip(upstream, retries, strict=True):
                self.add(ups, r)
            return
        n = len(upstream)
        if downstream is None:
            down: list[list[int]] = [[] for _ in range(n)]
            for i, ups in enumerate(upstream):
                for j in ups:
                    down[j].append(i)
            downstream = down
        self.upstream = list(upstream)
        self.downstream = list(downstream)
        self._owned = bytearray(n)  # 1 once a node's downstream list is our own copy
        self._pending = pending = [len(ups) for ups in upstream]
        self.state = state = [WAITING] * n
        ready = [i for i, p in enumerate(pending) if not p]
        for i in ready:
            state[i] = READY
        self._ready.extend(ready)
        self._n_ready = len(ready)
        self.retries = list(retries)
        self.attempts = [0] * n
        self.unsettled = n

    def __len__(self) -> int:
        return len(self.state)

    # -- before a run: saved results ---------------------------------------------------

    def restore(self, i: int) -> list[int]:
        """Node ``i`` ended ``COMPLETED`` earlier (its saved result is used); release it.

        Only a node that has not been handed out can be restored: restoring happens before
        anything runs, upstream nodes first.

        :returns: its dependents that are now ready.
        """
        s = self.state[i]
        if s != WAITING and s != READY:
            raise SchedulerError(f"node {i} is {_NAMES[s]}; only a node not started is restored")
        if self._pending[i]:
            raise SchedulerError(f"node {i} waits for upstream nodes; restore them first")
        if s == READY:
            self._n_ready -= 1  # its entry in the queue is dropped when reached
        self.state[i] = HELD
        return self._release(i)

    # -- admission ---------------------------------------------------------------------

    def admit(self) -> list[int]:
        """Hand out ready nodes while a slot is free: each is now ``RUNNING``, one more
        attempt. The driver starts exactly these."""
        n = self._n_ready
        free = self.concurrency - self.in_flight
        if not n or free <= 0:
            return _NONE
        ready = self._ready
        state = self.state
        attempts = self.attempts
        out = []
        while ready and free:
            i = ready.popleft()
            if state[i] == READY:  # else restored or skipped while queued
                state[i] = RUNNING
                attempts[i] += 1
                out.append(i)
                free -= 1
        taken = len(out)
        self._n_ready = n - taken
        self.in_flight += taken
        return out

    @property
    def has_ready(self) -> bool:
        """True when a node waits for a slot."""
        return self._n_ready > 0

    @property
    def waits_for_store(self) -> bool:
        """A slot is free and no node is ready: what is left waits for ``durable`` calls
        (or for attempts in flight), so saving what is queued now costs nobody time."""
        return self.in_flight < self.concurrency and not self._n_ready

    # -- outcomes ----------------------------------------------------------------------

    def completed(self, i: int, durable: bool = True) -> list[int]:
        """Node ``i``'s attempt succeeded; its slot is free.

        :param durable: False when its record still has to be saved: the node is ``HELD``
            and its dependents wait for :meth:`durable`.
        :returns: its dependents that are now ready (none while held).
        """
        state = self.state
        if state[i] != RUNNING:
            raise SchedulerError(f"node {i} is {_NAMES[state[i]]}, not RUNNING")
        self.in_flight -= 1
        if not durable:
            state[i] = HELD
            return _NONE
        # _release, inlined: this is the engine's hottest call
        state[i] = DONE
        self.unsettled -= 1
        pending = self._pending
        out = []
        for j in self.downstream[i]:
            n = pending[j] - 1
            pending[j] = n
            if n == 0 and state[j] == WAITING:
                state[j] = READY
                out.append(j)
        if out:
            self._ready.extend(out)
            self._n_ready += len(out)
        return out

    def durable(self, i: int) -> list[int]:
        """Node ``i``'s record is saved: release its dependents.

        :returns: those that are now ready.
        """
        if self.state[i] != HELD:
            raise SchedulerError(f"node {i} is {_NAMES[self.state[i]]}, not HELD")
        return self._release(i)

    def _release(self, i: int) -> list[int]:
        self.state[i] = DONE
        self.unsettled -= 1
        pending = self._pending
        state = self.state
        out = []
        for j in self.downstream[i]:
            n = pending[j] - 1
            pending[j] = n
            if n == 0 and state[j] == WAITING:
                state[j] = READY
                out.append(j)
        if out:
            self._ready.extend(out)
            self._n_ready += len(out)
        return out

    def attempt_failed(self, i: int, final: bool = False) -> Retry | Failed:
        """An attempt of node ``i`` failed: decide whether another one comes.

        :param final: no other attempt may help (the result cannot be stored, say).
        :returns: :class:`Retry` (the node is ``RETRYING`` and keeps its slot) or
            :class:`Failed` (the node is ``FAILED``, its slot free, and every node
            downstream that has not ended is ``SKIPPED``).
        """
        state = self.state
        if state[i] != RUNNING:
            raise SchedulerError(f"node {i} is {_NAMES[state[i]]}, not RUNNING")
        attempt = self.attempts[i]
        if not final and attempt <= self.retries[i]:
            state[i] = RETRYING
            return Retry(attempt)
        state[i] = FAILED
        self.in_flight -= 1
        self.unsettled -= 1
        stop = self.fail_fast and self.stopped_by is None
        if stop:
            self.stopped_by = i
        return Failed(self._skip_downstream(i), stop)

    def retry(self, i: int) -> None:
        """Hand node ``i`` out again (its retry delay, if any, is over): one more attempt."""
        if self.state[i] != RETRYING:
            raise SchedulerError(f"node {i} is {_NAMES[self.state[i]]}, not RETRYING")
        self.state[i] = RUNNING
        self.attempts[i] += 1

    def _skip_downstream(self, i: int) -> list[int]:
        # Only WAITING nodes can be reached: a node downstream of one that never got
        # released cannot be ready. The walk stops at nodes that ended: a node skipped
        # earlier had its whole downstream skipped then, so many failures still cost
        # O(nodes + edges) in all.
        state = self.state
        downstream = self.downstream
        skipped: list[int] = []
        stack = [i]
        while stack:
            for j in downstream[stack.pop()]:
                if state[j] == WAITING:
                    state[j] = SKIPPED
                    skipped.append(j)
                    stack.append(j)
        self.unsettled -= len(skipped)
        return skipped

    # -- the end of a run --------------------------------------------------------------

    def interrupt(self) -> tuple[list[int], list[int]]:
        """The run stops before every node ended.

        When a failure stopped it (``fail_fast``, see :attr:`stopped_by`), every node that
        has not ended, in flight or not, is ``SKIPPED``. Otherwise (a cancellation) nodes
        in flight go back to ``WAITING``, to run next time, and the others stay as they
        are.

        :returns: ``(cancelled, skipped)``: nodes taken out of flight, nodes skipped.
        """
        skip_rest = self.stopped_by is not None
        state = self.state
        cancelled: list[int] = []
        skipped: list[int] = []
        for i, s in enumerate(state):
            if s in (RUNNING, RETRYING):
                cancelled.append(i)
                state[i] = SKIPPED if skip_rest else WAITING
                if skip_rest:
                    skipped.append(i)
            elif skip_rest and s in (WAITING, READY):
                state[i] = SKIPPED
                skipped.append(i)
        self._ready.clear()
        self._n_ready = 0
        self.in_flight = 0
        self.unsettled -= len(skipped)
        return cancelled, skipped

    def public_status(self, i: int) -> TaskStatus:
        """Node ``i``'s state as a :class:`~flowweaver.TaskStatus`."""
        return PUBLIC_STATUS[self.state[i]]
