"""Tag limits and rate limits: which ready node may start now. No I/O, no threads, no clock.

Theory of operation. A run's executor may bound tags (``limits={"db": 2}``: at most two
nodes with that tag in flight) and rate them (``rate_limits={"api": "10/s"}``: a token
bucket per tag, refilled at the rate, holding up to the per-second figure). The
:class:`Gate` is the scheduler's part that knows them: when the scheduler is about to
hand a ready node out, :meth:`Gate.take` either takes every tag the node needs (a slot of
each limited tag, a token of each rated one) or names the first tag that stops it, and
the node is *parked* on that tag. A parked node holds nothing: no slot of the run's
concurrency, no worker. Each tag keeps its parked nodes in order; :meth:`Gate.drain`
lets them go first whenever the scheduler has free slots, a parked node that another of
its tags stops moves to that tag's line. Time is the caller's: the scheduler passes the
``now`` the driver gave it, and :meth:`Gate.next_token_at` says when a rated tag that has
nodes parked gets its next token, so the driver keeps one timer and asks again then.

Costs: a node without a limited tag never reaches the gate (the scheduler checks a dict
of tagged nodes only when the run has limits). A parked node is moved O(1) times per
admission that lets it go, so a map of 100,000 rate-limited items parks each item once.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping, Sequence

from .._errors import WorkflowValidationError

LIMIT = 0
RATE = 1
KINDS = ("limit", "rate")


class Gate:
    """The limits and token buckets of one run, and the nodes parked on each tag.

    :param names: the tags that have a limit or a rate (their index is their id).
    :param limits: the most nodes in flight per tag id (absent: no limit).
    :param rates: per tag id, (tokens a second, bucket size); buckets start full.

    :ivar tags: each tagged node's tag ids (nodes without limited tags are absent).
    :ivar queued: ``(node, tag id, kind)`` for each park since the driver last took them
        (:meth:`take_queued`): the driver reports each as one ``TaskQueued`` event.
    """

    __slots__ = (
        "_at",
        "_cap",
        "_lines",
        "_parked_on",
        "_rate",
        "_size",
        "_tokens",
        "_used",
        "clocked",
        "names",
        "queued",
        "tags",
    )

    def __init__(
        self,
        names: Sequence[str],
        limits: Mapping[int, int],
        rates: Mapping[int, tuple[float, float]],
    ) -> None:
        n = len(names)
        self.names = list(names)
        self._cap = [limits.get(t, 0) for t in range(n)]  # 0: no limit
        self._used = [0] * n
        self._rate = [rates[t][0] if t in rates else 0.0 for t in range(n)]
        self._size = [rates[t][1] if t in rates else 0.0 for t in range(n)]
        self._tokens = list(self._size)
        self._at: float | None = None  # when the buckets were last refilled
        self.clocked = bool(rates)  # the scheduler needs the time only for rates
        self.tags: dict[int, tuple[int, ...]] = {}
        self._lines: list[deque[int]] = [deque() for _ in range(n)]
        # Which line a parked node is in (tag id + 1), 0 when it is in none: lines drop
        # entries lazily, a node that left its line is skipped when reached.
        self._parked_on: dict[int, int] = {}
        self.queued: list[tuple[int, int, int]] = []

    # -- what a node needs -------------------------------------------------------------

    def refill(self, now: float) -> None:
        """Add the tokens earned since the last refill (never beyond a bucket's size)."""
        if not self.clocked:
            return
        at = self._at
        self._at = now
        if at is None or now <= at:
            return
        elapsed = now - at
        tokens = self._tokens
        for t, rate in enumerate(self._rate):
            if rate:
                tokens[t] = min(self._size[t], tokens[t] + elapsed * rate)

    def take(self, i: int) -> int:
        """Take everything node ``i`` needs, or nothing.

        :returns: -1 when it took them, else ``tag * 2 + kind`` of the first tag that
            stops the node (``kind``: LIMIT or RATE).
        """
        tags = self.tags.get(i)
        if not tags:
            return -1
        cap, used, rate, tokens = self._cap, self._used, self._rate, self._tokens
        for t in tags:
            if cap[t] and used[t] >= cap[t]:
                return t * 2 + LIMIT
            if rate[t] and tokens[t] < 1.0:
                return t * 2 + RATE
        for t in tags:
            if cap[t]:
                used[t] += 1
            if rate[t]:
                tokens[t] -= 1.0
        return -1

    def release(self, i: int) -> None:
        """Node ``i``'s attempt ended: give its tags' slots back (tokens are spent)."""
        tags = self.tags.get(i)
        if tags:
            cap, used = self._cap, self._used
            for t in tags:
                if cap[t]:
                    used[t] -= 1

    # -- parked nodes ------------------------------------------------------------------

    def park(self, i: int, blocked: int) -> None:
        """Node ``i`` waits for the tag :meth:`take` named (reported once per tag)."""
        tag = blocked >> 1
        if self._parked_on.get(i) != tag + 1:
            self.queued.append((i, tag, blocked & 1))
        self._parked_on[i] = tag + 1
        self._lines[tag].append(i)

    @property
    def parked(self) -> bool:
        """Some node may be parked (dead entries included)."""
        return bool(self._parked_on)

    def is_parked(self, i: int) -> bool:
        """Node ``i`` waits in a tag's line."""
        return i in self._parked_on

    def unpark(self, i: int) -> None:
        """Node ``i`` left its line without starting (restored, skipped, stopped)."""
        self._parked_on.pop(i, None)

    def drain(self, free: int, state: Sequence[int], ready: int) -> list[int]:
        """Let parked nodes go, first come first served per tag, while ``free`` slots
        last: each returned node took its tags and is the scheduler's to hand out.

        :param state: each node's scheduler state; a parked node no longer in state
            ``ready`` (restored, or the run stopped) is dropped from its line.
        """
        out: list[int] = []
        parked_on = self._parked_on
        for tag, line in enumerate(self._lines):
            while line and free:
                i = line[0]
                if parked_on.get(i) != tag + 1 or state[i] != ready:
                    line.popleft()  # it moved to another line, or left
                    continue
                blocked = self.take(i)
                if blocked >> 1 == tag:
                    break  # this tag is still full or empty: its line waits
                line.popleft()
                if blocked < 0:
                    del parked_on[i]
                    out.append(i)
                    free -= 1
                else:
                    self.park(i, blocked)  # another of its tags stops it now
        return out

    def next_token_at(self) -> float | None:
        """When the first rated tag with a node parked gets a token (on the ``now`` scale
        the scheduler is given), or None when no node waits for a token."""
        if self._at is None:
            return None
        soonest: float | None = None
        for tag, line in enumerate(self._lines):
            rate = self._rate[tag]
            if rate and line and self._tokens[tag] < 1.0:
                at = self._at + (1.0 - self._tokens[tag]) / rate
                if soonest is None or at < soonest:
                    soonest = at
        return soonest

    def clear(self) -> None:
        """The run stopped: nothing is in flight or parked any more."""
        self._used = [0] * len(self._used)
        for line in self._lines:
            line.clear()
        self._parked_on.clear()

    def take_queued(self) -> list[tuple[int, str, str]]:
        """``(node, tag, "limit" | "rate")`` for each park since the last call."""
        out, self.queued = self.queued, []
        return [(i, self.names[t], KINDS[k]) for i, t, k in out]


def build_gate(
    workflow: str,
    every_tag: Iterable[str],
    node_tags: Sequence[tuple[str, ...] | None],
    limits: Mapping[str, int],
    rates: Mapping[str, tuple[float, float]],
) -> tuple[Gate | None, dict[str, int]]:
    """The gate of a run, or None when its executor limits no tag.

    :param every_tag: the tags of every task of the workflow (not only those a partial
        run holds): a limit on a tag no task has is a typo, refused before anything runs.
    :param node_tags: each node's tags, in node order; None for a node that takes none
        itself (a mapped task: its items do).
    :returns: the gate and the id of each limited tag (for items added later).
    :raises WorkflowValidationError: for a limit or rate on a tag no task has.
    """
    if not limits and not rates:
        return None, {}
    known = set(every_tag)
    for what, named in (("limits", limits), ("rate_limits", rates)):
        for tag in named:
            if tag not in known:
                have = ", ".join(repr(t) for t in sorted(known)) or "none"
                raise WorkflowValidationError(
                    f"workflow {workflow!r}: the executor's {what} name tag {tag!r}, which no "
                    f"task has (its tasks' tags: {have}); fix the tag, or give a task "
                    f"tags=[{tag!r}]"
                )
    names = sorted(set(limits) | set(rates))
    ids = {tag: k for k, tag in enumerate(names)}
    gate = Gate(
        names,
        {ids[t]: n for t, n in limits.items()},
        {ids[t]: r for t, r in rates.items()},
    )
    for i, tags in enumerate(node_tags):
        if tags:
            mine = tuple(ids[t] for t in tags if t in ids)
            if mine:
                gate.tags[i] = mine
    return gate, ids
