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
* :meth:`~Scheduler.attempt_failed` decides between another attempt (the node is
  ``RETRYING`` and gives its slot back during its backoff; :meth:`~Scheduler.retry` queues
  it again, ahead of the other ready nodes) and a final failure, which skips every node
  downstream that has not ended.
* :meth:`~Scheduler.skip` ends a node ``SKIPPED`` on purpose (its function raised
  ``flowweaver.Skip``); like a failure, it is an outcome its dependents' rules weigh.
* :meth:`~Scheduler.interrupt` ends a run early: nodes in flight go back to waiting (or,
  when a failure stopped the run, everything unfinished is skipped); :meth:`~Scheduler.stop`
  is the ``fail_fast`` stop, which leaves ``all_done`` nodes to run.

Trigger rules. A node's *rule* says which upstream outcomes let it run: ``ALL_SUCCESS``
(the default), ``ALL_DONE``, ``NONE_FAILED``, ``ONE_FAILED``, ``ONE_SUCCESS``
(``_rules.decide``). Default nodes take the fast path: a count of upstream nodes not yet
released; a failure upstream skips them at once. A node with another rule, or a default
node below a skip, is *counted* instead: three counters (upstream nodes that completed,
failed, were skipped), and a decision each time an upstream node ends: ready, skipped
(its rule can no longer be met), or waiting. Only releases of nodes that feed a counted
node take that slower path, so a run without rules or skips pays one check per release.

A skip caused by a failure (the node's rule failed because of a failure, or the run
stopped) counts as a *failure* for the rules below it, as Airflow's ``upstream_failed``
does: ``none_failed`` below ``a (fails) -> b (skipped)`` is skipped. A default node below
a skip waits for its other upstream nodes before it is skipped, so that whether a failure
caused its skip never depends on which upstream node ended first.
``ONE_FAILED`` and ``ONE_SUCCESS`` fire as soon as their condition holds; upstream nodes
still running go on, and their outcomes no longer change the node. Every skip comes with
its reason as data (:class:`Skipped`): which upstream node decided it, under which rule.

Tags. With a :class:`~flowweaver._engine._limits.Gate` (the executor's ``limits`` and
``rate_limits``), a ready node whose tags are full or out of tokens is *parked* on that
tag instead of being handed out: it holds no slot, and the nodes behind it go ahead.
Parked nodes go first once their tag frees up (see ``_limits``).

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
from collections.abc import Container, Iterable, Mapping, Sequence

from .._status import TaskStatus
from ._limits import Gate
from ._rules import ALL_DONE, ALL_SUCCESS, NONE_FAILED, RUN, SKIP_BY_FAILURE, WAIT, decide

#: Some upstream node has not been released yet.
WAITING = 0
#: Every upstream node is released; queued for a slot.
READY = 1
#: Handed out: an attempt is in flight and holds a slot.
RUNNING = 2
#: An attempt failed and another will be handed out (:meth:`Scheduler.retry`); no slot.
RETRYING = 3
#: A mapped node whose items run (see :meth:`Scheduler.expand`); it holds no slot.
MAPPED = 4
#: Completed; its dependents wait until its record is durable.
HELD = 5
#: Completed and released.
DONE = 6
#: Failed for good.
FAILED = 7
#: Will not run: an upstream node failed or was skipped, or a failure stopped the run.
SKIPPED = 8

# An upstream outcome, as a ruled node counts it (an index into its counters).
_OK = 0
_FAIL = 1
_SKIP = 2

_NAMES = (
    "WAITING",
    "READY",
    "RUNNING",
    "RETRYING",
    "MAPPED",
    "HELD",
    "DONE",
    "FAILED",
    "SKIPPED",
)

#: The task status each scheduler state shows to users.
PUBLIC_STATUS = (
    TaskStatus.PENDING,
    TaskStatus.PENDING,
    TaskStatus.RUNNING,
    TaskStatus.RETRYING,
    TaskStatus.RUNNING,
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


class Skipped:
    """Why a node was skipped (data for the driver's events and records).

    :ivar node: the node skipped.
    :ivar upstream: the node whose outcome decided it: the failure or the on-purpose skip
        a chain of skips started from, the last upstream node to end when a ``ONE_*``
        rule can no longer be met, the failure that stopped the run; None for a node
        skipped on purpose (:meth:`Scheduler.skip`) or a ``ONE_*`` node with no upstream.
    :ivar rule: the node's trigger rule.
    :ivar by_failure: a failure caused it (rules below count it as a failure).
    :ivar stop: the run stopped (``fail_fast``) before the node could run.
    """

    __slots__ = ("by_failure", "node", "rule", "stop", "upstream")

    def __init__(
        self, node: int, upstream: int | None, rule: int, by_failure: bool, stop: bool = False
    ) -> None:
        self.node = node
        self.upstream = upstream
        self.rule = rule
        self.by_failure = by_failure
        self.stop = stop

    def __repr__(self) -> str:
        return (
            f"Skipped({self.node}, upstream={self.upstream}, rule={self.rule}, "
            f"by_failure={self.by_failure}, stop={self.stop})"
        )


class Failure:
    """Decision: the node failed for good.

    :ivar skipped: the nodes downstream that will not run because of it, in the order the
        skip reached them (their reasons are in :attr:`Scheduler.skips`).
    :ivar stop: the run stops here (``fail_fast``): cancel what is in flight, then
        :meth:`Scheduler.interrupt`.
    """

    __slots__ = ("skipped", "stop")

    def __init__(self, skipped: list[int], stop: bool = False) -> None:
        self.skipped = skipped
        self.stop = stop

    def __repr__(self) -> str:
        return f"Failure(skipped={self.skipped}, stop={self.stop})"


class _Map:
    """The items of one mapped node: ids ``first`` to ``end - 1``.

    :ivar next: the first item not yet let into the ready queue (items wait behind the
        node's ``limit``, so a map of 100,000 never queues 100,000 at once).
    :ivar active: items let in that hold or wait for a slot (READY, RUNNING, RETRYING).
    :ivar left: items that have not ended (a HELD item has not: its record is unsaved).
    """

    __slots__ = ("active", "end", "first", "left", "limit", "next")

    def __init__(self, first: int, end: int, limit: int | None) -> None:
        self.first = first
        self.end = end
        self.limit = end - first if limit is None else limit
        self.next = first
        self.active = 0
        self.left = end - first


class Scheduler:
    """The decisions of one run over a growable table of nodes.

    :param concurrency: the most nodes that hold a slot (are ``RUNNING``) at once.
    :param fail_fast: the first node that fails for good stops the run (see ``Failure``).
    :param gate: the run's tag limits and rate limits, if it has any.

    :ivar state: each node's state (``WAITING`` ... ``SKIPPED``).
    :ivar rule: each node's trigger rule (``ALL_SUCCESS`` ...).
    :ivar attempts: how many attempts of each node were handed out.
    :ivar in_flight: how many nodes hold a slot now.
    :ivar unsettled: how many nodes have not ended (``HELD`` nodes have not: their release
        is still to come).
    :ivar stopped_by: the node whose failure stopped the run (``fail_fast``), or None.
    :ivar reasons: why each skipped node was skipped.
    :ivar skips: the skips decided since the driver last called :meth:`take_skips`.
    """

    __slots__ = (
        "_counts",
        "_group",
        "_maps",
        "_n_ready",
        "_owned",
        "_pending",
        "_ready",
        "_watch",
        "attempts",
        "concurrency",
        "downstream",
        "fail_fast",
        "gate",
        "gathered",
        "in_flight",
        "reasons",
        "retries",
        "rule",
        "skips",
        "state",
        "stopped_by",
        "unsettled",
        "upstream",
    )

    def __init__(self, concurrency: int, fail_fast: bool = False, gate: Gate | None = None) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        self.concurrency = concurrency
        self.fail_fast = fail_fast
        self.stopped_by: int | None = None
        self.upstream: list[tuple[int, ...]] = []
        self.downstream: list[list[int]] = []
        self.retries: list[int] = []
        self.rule: list[int] = []
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
        # Ruled nodes only: [completed, failed, skipped] upstream counts. _watch holds the
        # nodes that feed a ruled node: only their releases take the slower path.
        self._counts: dict[int, list[int]] = {}
        self._watch: set[int] = set()
        self.reasons: dict[int, Skipped] = {}
        self.skips: list[Skipped] = []
        # Maps: each item's mapped node, and each mapped node's items (see expand).
        self._group: dict[int, int] = {}
        self._maps: dict[int, _Map] = {}
        self.gathered: list[int] = []
        self.gate = gate

    # -- the node table ----------------------------------------------------------------

    def add(self, upstream: Iterable[int] = (), retries: int = 0, rule: int = ALL_SUCCESS) -> int:
        """Add a node that runs after ``upstream``, with ``retries`` extra attempts, when
        its trigger ``rule`` allows.

        :returns: the new node's id (ids count up from 0). A node whose rule can no longer
            be met given the upstream nodes that already ended is ``SKIPPED`` at once (see
            :attr:`skips`), as it would have been had it been there when they ended.
        :raises SchedulerError: for an unknown upstream node.
        """
        i = len(self.state)
        ups = tuple(dict.fromkeys(upstream))
        state = self.state
        for j in ups:
            if not 0 <= j < i:
                raise SchedulerError(f"node {i}: upstream node {j} does not exist")
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
        self.rule.append(rule)
        self.attempts.append(0)
        self.unsettled += 1
        if rule != ALL_SUCCESS:
            self._pending.append(len(ups) + 1)  # never released by the fast path
            counts = [0, 0, 0]
            last = None
            for j in ups:
                self._watch.add(j)
                if state[j] == DONE or state[j] >= FAILED:
                    counts[self._outcome(j)] += 1
                    last = j
            self._counts[i] = counts
            state.append(WAITING)
            self._decide(i, last)
            return i
        pending = 0
        dead = None
        for j in ups:
            s = state[j]
            if s >= FAILED:
                if dead is None or self._outcome(j) == _FAIL:
                    dead = j
            elif s != DONE:
                pending += 1
        self._pending.append(pending)
        if dead is not None:
            state.append(WAITING)
            if self._outcome(dead) == _FAIL:
                self._skip(i, self._origin(dead), True)
            else:
                self._count(i)
                self._decide(i, dead)
        elif pending:
            state.append(WAITING)
        else:
            state.append(READY)
            self._ready.append(i)
            self._n_ready += 1
        return i

    def add_graph(
        self,
        upstream: Sequence[tuple[int, ...]],
        retries: Sequence[int],
        rules: Mapping[int, int] | None = None,
        downstream: Sequence[list[int]] | None = None,
    ) -> None:
        """Add a whole workflow to an empty table; node ids follow the sequence.

        :param upstream: each node's upstream nodes, without repeats; the graph was
            validated (no cycle, no repeats: ``Graph``) by its builder.
        :param downstream: the inverse of ``upstream``, when the caller has it: its lists
            are shared, not copied (a node added later copies the list it extends), so a
            run does not build the graph a second time.
        :param rules: the trigger rule of each node (by its position in ``upstream``) whose
            rule is not the default. Nodes skipped at once (a ``ONE_*`` rule with no
            upstream) are in :attr:`skips`.

        Ready nodes queue in declaration order.
        """
        if rules or self.state:
            rules = rules or {}
            for k, (ups, r) in enumerate(zip(upstream, retries, strict=True)):
                self.add(ups, r, rules.get(k, ALL_SUCCESS))
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
        self.rule = [ALL_SUCCESS] * n
        self.attempts = [0] * n
        self.unsettled = n

    def __len__(self) -> int:
        return len(self.state)

    # -- before a run: saved results ---------------------------------------------------

    def restore(self, i: int, skipped: bool = False) -> list[int]:
        """Node ``i`` ended earlier (its saved outcome is used); release it.

        :param skipped: it ended ``SKIPPED`` on purpose (see :meth:`skip`), not
            ``COMPLETED``; its dependents follow their rules as they did then.

        Only a node that has not been handed out can be restored: restoring happens before
        anything runs, upstream nodes first.

        :returns: its dependents that are now ready; skips it caused are in :attr:`skips`.
        """
        s = self.state[i]
        if s != WAITING and s != READY:
            raise SchedulerError(f"node {i} is {_NAMES[s]}; only a node not started is restored")
        if not self.restorable(i):
            raise SchedulerError(f"node {i} waits for upstream nodes; restore them first")
        if s == READY:
            # its entry in the queue (or in a tag's line) is dropped when reached
            gate = self.gate
            if gate is not None and gate.is_parked(i):
                gate.unpark(i)
            else:
                self._n_ready -= 1
            if self._group and i in self._group:
                self._item_freed(i)
        if skipped:
            self.unsettled -= 1
            self.state[i] = SKIPPED
            self.reasons[i] = Skipped(i, None, self.rule[i], False)
            if self._group and i in self._group:
                self._item_ended(i)
                return _NONE
            self._spread(i)
            return [j for j in self.downstream[i] if self.state[j] == READY]
        self.state[i] = HELD
        return self._release(i)

    def restore_all(self, nodes: Iterable[tuple[int, bool]]) -> list[int]:
        """:meth:`restore` each ``(node, skipped)`` in turn, upstream nodes first, when it
        is :meth:`restorable` then; the others are left as they are (they run).

        :returns: the nodes restored, in the order given.
        """
        state = self.state
        pending = self._pending
        counts = self._counts
        group = self._group
        plain = self.gate is None
        restored = []
        for i, skipped in nodes:
            if (
                plain
                and state[i] == READY
                and not (skipped or pending[i] or i in counts)
                and not (group and i in group)
            ):
                # What restore does for a plain ready node, without its checks: a resume
                # restores every node this way. Its entry in the queue is dropped when
                # reached.
                self._n_ready -= 1
                self._release(i)
                restored.append(i)
            elif self.restorable(i):
                self.restore(i, skipped)
                restored.append(i)
        return restored

    def restorable(self, i: int) -> bool:
        """Node ``i`` has not started and every upstream node has ended (and been
        released): its saved outcome may stand in for running it."""
        state = self.state
        if state[i] != WAITING and state[i] != READY:
            return False
        if i not in self._counts:
            return self._pending[i] == 0
        # a counted node's counters stop once it is decided: ask its upstream nodes
        return all(state[j] == DONE or state[j] >= FAILED for j in self.upstream[i])

    # -- admission ---------------------------------------------------------------------

    def admit(self, now: float = 0.0) -> list[int]:
        """Hand out ready nodes while a slot is free: each is now ``RUNNING``, one more
        attempt. The driver starts exactly these.

        :param now: the time, in seconds on any steady clock, when the run has rate limits
            (``gate.clocked``): tokens are earned by it. Unused otherwise.
        """
        if self.gate is not None:
            return self._admit_gated(now)
        free = self.concurrency - self.in_flight
        if not self._n_ready or free <= 0:
            return _NONE
        ready = self._ready
        out = []
        state = self.state
        attempts = self.attempts
        while ready and free:
            i = ready.popleft()
            if state[i] != READY:
                continue  # restored or skipped while queued
            state[i] = RUNNING
            attempts[i] += 1
            out.append(i)
            free -= 1
        self._n_ready -= len(out)
        self.in_flight = self.concurrency - free
        return out

    def _admit_gated(self, now: float) -> list[int]:
        """:meth:`admit` under tag limits: parked nodes whose tags freed up go first, then
        the ready queue, where a node a tag stops is parked on that tag (holding no slot)."""
        free = self.concurrency - self.in_flight
        gate = self.gate
        assert gate is not None
        if free <= 0 or not (self._n_ready or gate.parked):
            return _NONE
        gate.refill(now)
        state = self.state
        out = gate.drain(free, state, READY) if gate.parked else []
        free -= len(out)
        ready = self._ready
        tagged = gate.tags
        while ready and free:
            i = ready.popleft()
            if state[i] != READY:
                continue  # restored or skipped while queued
            self._n_ready -= 1
            if i in tagged:
                blocked = gate.take(i)
                if blocked >= 0:
                    gate.park(i, blocked)
                    continue
            out.append(i)
            free -= 1
        attempts = self.attempts
        for i in out:
            state[i] = RUNNING
            attempts[i] += 1
        self.in_flight = self.concurrency - free
        return out

    def next_token_at(self) -> float | None:
        """When a node parked for a rate limit may get its token (on the ``now`` scale of
        :meth:`admit`): the driver calls :meth:`admit` again then. None: nothing waits
        for a token."""
        return None if self.gate is None else self.gate.next_token_at()

    def take_queued(self) -> list[tuple[int, str, str]]:
        """``(node, tag, kind)`` for each node parked on a tag since the last call: the
        driver reports each as a ``TaskQueued`` event (once per attempt and tag)."""
        return [] if self.gate is None else self.gate.take_queued()

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
        :returns: its dependents with the default rule that are now ready (none while
            held); ruled dependents it decided are queued too, and skips go to
            :attr:`skips`.
        """
        state = self.state
        if state[i] != RUNNING:
            raise SchedulerError(f"node {i} is {_NAMES[state[i]]}, not RUNNING")
        self.in_flight -= 1
        if self.gate is not None:
            self.gate.release(i)
        if self._group and i in self._group:
            return self._item_completed(i, durable)
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
        if self._watch and i in self._watch:
            self._tell_ruled(i)
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
        if self._group and i in self._group:
            self._item_ended(i)
            return _NONE  # an item has no dependents
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
        if self._watch and i in self._watch:
            self._tell_ruled(i)
        return out

    def attempt_failed(self, i: int, final: bool = False) -> Retry | Failure:
        """An attempt of node ``i`` failed: decide whether another one comes.

        :param final: no other attempt may help (the result cannot be stored, say).
        :returns: :class:`Retry` (the node is ``RETRYING``: its slot and its tags are
            free until :meth:`retry` queues it again; an item still counts towards its
            map's ``max_concurrent``) or
            :class:`Failure` (the node is ``FAILED``, its slot free; each node downstream
            that has not ended is decided by its rule: skipped, ready, or still waiting).
        """
        state = self.state
        if state[i] != RUNNING:
            raise SchedulerError(f"node {i} is {_NAMES[state[i]]}, not RUNNING")
        attempt = self.attempts[i]
        self.in_flight -= 1
        if self.gate is not None:
            self.gate.release(i)
        if not final and attempt <= self.retries[i]:
            state[i] = RETRYING
            return Retry(attempt)
        state[i] = FAILED
        self.unsettled -= 1
        if self._group and i in self._group:
            # An item has no dependents, and never stops the run itself: its mapped node
            # fails (and may stop it) once every item ended.
            self._item_over(i)
            return Failure([], False)
        stop = self.fail_fast and self.stopped_by is None
        if stop:
            self.stopped_by = i
        return Failure(self._spread(i), stop)

    def retry(self, i: int) -> None:
        """Node ``i``'s retry delay, if any, is over: it is ready again, at the head of the
        queue, and :meth:`admit` hands it out (one more attempt) when a slot is free."""
        if self.state[i] != RETRYING:
            raise SchedulerError(f"node {i} is {_NAMES[self.state[i]]}, not RETRYING")
        self.state[i] = READY
        self._ready.appendleft(i)
        self._n_ready += 1

    def skip(self, i: int) -> list[int]:
        """Node ``i``'s attempt ended it ``SKIPPED`` on purpose; its slot is free.

        Not a failure: no retry, and rules below count it as skipped (``NONE_FAILED`` and
        ``ALL_DONE`` nodes still run).

        :returns: the nodes downstream skipped because of it (reasons in :attr:`skips`).
        """
        if self.state[i] != RUNNING:
            raise SchedulerError(f"node {i} is {_NAMES[self.state[i]]}, not RUNNING")
        self.in_flight -= 1
        if self.gate is not None:
            self.gate.release(i)
        self.unsettled -= 1
        self.state[i] = SKIPPED
        self.reasons[i] = Skipped(i, None, self.rule[i], False)
        if self._group and i in self._group:
            self._item_over(i)
            return _NONE
        return self._spread(i)

    def take_skips(self) -> list[Skipped]:
        """The skips decided since the last call (the driver reports each once)."""
        out, self.skips = self.skips, []
        return out

    # -- rules -------------------------------------------------------------------------

    def _outcome(self, j: int) -> int:
        """How rules below count ended node ``j``: completed, failed or skipped."""
        s = self.state[j]
        if s == DONE:
            return _OK
        if s == FAILED or self.reasons[j].by_failure:
            return _FAIL
        return _SKIP

    def _origin(self, j: int) -> int:
        """The node a chain of skips through ``j`` started from (what a skip names)."""
        if self.state[j] == SKIPPED:
            why = self.reasons[j]
            if (
                why.upstream is not None
                and not why.stop
                and why.rule
                in (
                    ALL_SUCCESS,
                    NONE_FAILED,
                )
            ):
                return why.upstream
        return j

    def _skip(self, i: int, upstream: int | None, by_failure: bool, stop: bool = False) -> None:
        why = Skipped(i, upstream, self.rule[i], by_failure, stop)
        self.state[i] = SKIPPED
        self.unsettled -= 1
        self.reasons[i] = why
        self.skips.append(why)

    def _count(self, i: int, undelivered: Container[int] = ()) -> list[int]:
        """Start counting node ``i``'s upstream outcomes (a default-rule node below a skip
        waits to see whether a failure comes too); the fast path no longer releases it.

        :param undelivered: nodes that ended but whose outcome is still on its way down
            (a walk's stack): they are counted when it arrives.
        """
        state = self.state
        counts = [0, 0, 0]
        for j in self.upstream[i]:
            if (state[j] == DONE or state[j] >= FAILED) and j not in undelivered:
                counts[self._outcome(j)] += 1
            self._watch.add(j)
        self._counts[i] = counts
        self._pending[i] += 1
        return counts

    def _culprit(self, i: int, by_failure: bool) -> int | None:
        """The upstream node a skip of ``i`` names: the first that failed (or, when no
        failure is to blame, was skipped), traced to where its chain of skips started."""
        for j in self.upstream[i]:
            if self.state[j] >= FAILED and (self._outcome(j) == _FAIL) == by_failure:
                return self._origin(j)
        return None

    def _decide(self, i: int, last: int | None) -> bool:
        """Decide WAITING counted node ``i`` after ``last`` ended; True when it was skipped."""
        ok, failed, skipped = self._counts[i]
        rule = self.rule[i]
        verdict = decide(rule, ok, failed, skipped, len(self.upstream[i]))
        if verdict == WAIT:
            return False
        if verdict == RUN:
            self.state[i] = READY
            self._ready.append(i)
            self._n_ready += 1
            return False
        # ALL_SUCCESS and NONE_FAILED nodes name the failure (or skip) a chain started
        # from; a ONE_* node, whose condition no single upstream node broke, the last one
        # to end.
        by_failure = verdict == SKIP_BY_FAILURE
        upstream = last
        if rule in (ALL_SUCCESS, NONE_FAILED):
            upstream = self._culprit(i, by_failure)
        self._skip(i, upstream, by_failure)
        return True

    def _tell_ruled(self, i: int) -> None:
        """Released node ``i`` feeds counted nodes: count it and decide them."""
        state = self.state
        counts = self._counts
        walk = []
        for j in self.downstream[i]:
            if state[j] == WAITING and j in counts:
                counts[j][_OK] += 1
                if self._decide(j, i):
                    walk.append(j)
        if walk:
            self._spread(*walk)

    def _spread(self, *ended: int) -> list[int]:
        """These nodes failed or were skipped: decide the nodes below them that wait.

        Only WAITING nodes can be reached: a node downstream of one that never got
        released is never ready under the default rule, and a ruled node that is ready or
        ran already is no longer changed by its upstream nodes. The walk stops at nodes
        that ended, so many failures still cost O(nodes + edges) in all.
        """
        state = self.state
        downstream = self.downstream
        counts = self._counts
        skipped: list[int] = []
        stack = list(ended)
        undelivered = set(ended)
        while stack:
            u = stack.pop()
            undelivered.discard(u)
            outcome = self._outcome(u)
            origin = self._origin(u)
            for j in downstream[u]:
                if state[j] != WAITING:
                    continue
                c = counts.get(j)
                if c is not None:
                    c[outcome] += 1
                    if not self._decide(j, u):
                        continue
                elif outcome == _FAIL:  # the default rule: a failure above decides at once
                    self._skip(j, origin, True)
                else:  # a skip above: count from here on (u is counted already)
                    self._count(j, undelivered)
                    if not self._decide(j, u):
                        continue
                skipped.append(j)
                stack.append(j)
                undelivered.add(j)
        return skipped

    # -- maps --------------------------------------------------------------------------

    def expand(
        self,
        p: int,
        n: int,
        retries: int = 0,
        limit: int | None = None,
        tags: tuple[int, ...] = (),
    ) -> range:
        """Handed-out node ``p`` is a map over ``n`` elements: add one item node for each.

        ``p`` becomes ``MAPPED`` and gives its slot up (its items take slots like any
        node; a map never waits on itself for one). Items have no upstream and no
        dependents; at most ``limit`` of them are queued or in flight at once, the rest
        wait their turn in order. Once every item has ended, ``p`` is in
        :attr:`gathered`, for the driver to end it with :meth:`finish_map`. Each item
        takes ``tags`` (ids in the run's gate): each counts against their limits.

        :returns: the items' ids, in element order.
        """
        state = self.state
        if state[p] != RUNNING:
            raise SchedulerError(f"node {p} is {_NAMES[state[p]]}, not RUNNING")
        if limit is not None and limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        self.in_flight -= 1
        state[p] = MAPPED
        first = len(state)
        end = first + n
        m = _Map(first, end, limit)
        self._maps[p] = m
        self.upstream.extend([()] * n)
        self.downstream.extend([] for _ in range(n))
        self.retries.extend([retries] * n)
        self.rule.extend([ALL_SUCCESS] * n)
        self.attempts.extend([0] * n)
        self._pending.extend([0] * n)
        state.extend([WAITING] * n)
        self._group.update(dict.fromkeys(range(first, end), p))
        self.unsettled += n
        if tags:
            assert self.gate is not None, "tags without a gate"
            self.gate.tags.update(dict.fromkeys(range(first, end), tags))
        if n == 0:
            self.gathered.append(p)
        else:
            self._let_in(m)
        return range(first, end)

    def items(self, p: int) -> range:
        """The ids of mapped node ``p``'s items (empty when it was not expanded)."""
        m = self._maps.get(p)
        return range(0) if m is None else range(m.first, m.end)

    def finish_map(self, p: int, durable: bool = True) -> list[int]:
        """Gathered node ``p`` (see :attr:`gathered`) completed.

        :param durable: as for :meth:`completed`.
        :returns: as :meth:`completed` does.
        """
        state = self.state
        if state[p] != MAPPED:
            raise SchedulerError(f"node {p} is {_NAMES[state[p]]}, not MAPPED")
        if not durable:
            state[p] = HELD
            return _NONE
        state[p] = HELD
        return self._release(p)

    def fail_map(self, p: int) -> Failure:
        """Gathered node ``p`` failed (its items did): as a final :meth:`attempt_failed`."""
        state = self.state
        if state[p] != MAPPED:
            raise SchedulerError(f"node {p} is {_NAMES[state[p]]}, not MAPPED")
        state[p] = FAILED
        self.unsettled -= 1
        stop = self.fail_fast and self.stopped_by is None
        if stop:
            self.stopped_by = p
        return Failure(self._spread(p), stop)

    def take_gathered(self) -> list[int]:
        """Mapped nodes whose items all ended since the last call."""
        out, self.gathered = self.gathered, []
        return out

    def _let_in(self, m: _Map) -> None:
        """Queue the map's waiting items while it is under its limit."""
        state = self.state
        k = m.next
        out = []
        while m.active < m.limit and k < m.end:
            if state[k] == WAITING:
                state[k] = READY
                out.append(k)
                m.active += 1
            k += 1
        m.next = k
        if out:
            ready = self._ready
            if len(ready) > 2 * self._n_ready + 16:
                # Each item restored while queued (a resumed map restores its saved items
                # one by one) left a dead entry and let the next item in: without this a
                # map of 100,000 restored items would queue 100,000 entries despite its
                # limit. Amortised O(1): the dead entries outnumber the live ones.
                self._ready = ready = deque(j for j in ready if state[j] == READY)
            ready.extend(out)
            self._n_ready += len(out)

    def _item_completed(self, i: int, durable: bool) -> list[int]:
        if not durable:
            self._item_freed(i)
            self.state[i] = HELD
            return _NONE
        self.state[i] = DONE  # _release, less its lookups: an item has no dependents
        self.unsettled -= 1
        self._item_over(i)
        return _NONE

    def _item_over(self, i: int) -> None:
        """:meth:`_item_freed` and :meth:`_item_ended` in one call, for an item that ends
        in its slot: every item of a map passes here (two calls and lookups less each)."""
        p = self._group[i]
        m = self._maps[p]
        m.active -= 1
        if m.next < m.end:
            self._let_in(m)
        if i >= m.first:  # else an item of an earlier expansion: see _item_ended
            m.left -= 1
            if m.left == 0 and self.state[p] == MAPPED:
                self.gathered.append(p)

    def _item_freed(self, i: int) -> None:
        """Item ``i`` no longer holds or waits for a slot: let the next one in."""
        m = self._maps[self._group[i]]
        m.active -= 1
        if m.next < m.end:
            self._let_in(m)

    def _item_ended(self, i: int) -> None:
        p = self._group[i]
        m = self._maps[p]
        if i < m.first:
            # An item of an earlier expansion (stop() decided an ALL_DONE map again) whose
            # record became durable after the stop: it is not one of the items p waits for.
            return
        m.left -= 1
        if m.left == 0 and self.state[p] == MAPPED:
            self.gathered.append(p)

    # -- the end of a run --------------------------------------------------------------

    def stop(self) -> tuple[list[int], list[int]]:
        """``fail_fast``: the failure of :attr:`stopped_by` stops the run, but its
        ``ALL_DONE`` nodes (clean-up) still run.

        Every node that has not ended, in flight or not, is ``SKIPPED`` (a skip by failure,
        ``stop`` set on its reason), except ``ALL_DONE`` nodes: one in flight goes back
        to be handed out again (its attempt is cancelled), and each is decided afresh.
        After this only ``ALL_DONE`` nodes are handed out; the driver runs them as usual.

        :returns: ``(cancelled, skipped)``: nodes taken out of flight, nodes skipped.
        """
        by = self.stopped_by
        if by is None:
            raise SchedulerError("stop() without a failure that stopped the run")
        state = self.state
        rule = self.rule
        cancelled: list[int] = []
        skipped: list[int] = []
        clean_up: list[int] = []
        for i, s in enumerate(state):
            if s in (RUNNING, RETRYING, MAPPED):
                cancelled.append(i)
            elif s not in (WAITING, READY):
                continue
            if rule[i] == ALL_DONE:
                state[i] = WAITING
                clean_up.append(i)
            else:
                state[i] = SKIPPED
                why = Skipped(i, by, rule[i], True, stop=True)
                self.reasons[i] = why
                skipped.append(i)
        self._ready.clear()
        self._n_ready = 0
        self.in_flight = 0
        if self.gate is not None:
            self.gate.clear()
        self.unsettled -= len(skipped)
        for i in clean_up:
            counts = [0, 0, 0]
            for j in self.upstream[i]:
                if state[j] == DONE or state[j] >= FAILED:
                    counts[self._outcome(j)] += 1
                self._watch.add(j)
            self._counts[i] = counts
            self._pending[i] = len(self.upstream[i]) + 1
            self._decide(i, None)
        return cancelled, skipped

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
            if s in (RUNNING, RETRYING, MAPPED):
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
        if self.gate is not None:
            self.gate.clear()
        self.unsettled -= len(skipped)
        return cancelled, skipped

    def public_status(self, i: int) -> TaskStatus:
        """Node ``i``'s state as a :class:`~flowweaver.TaskStatus`."""
        return PUBLIC_STATUS[self.state[i]]
