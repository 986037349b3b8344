"""Tag limits and rate limits in the pure scheduler: no loop, no clock, no threads.

The gate (``_engine/_limits``) parks a ready node on the tag that stops it; a parked node
holds no slot, goes first when its tag frees up, and is reported once per attempt and tag.
"""

from __future__ import annotations

import random

import pytest

from flowweaver import WorkflowValidationError
from flowweaver._engine._limits import Gate, build_gate
from flowweaver._engine._scheduler import (
    DONE,
    READY,
    RETRYING,
    RUNNING,
    SKIPPED,
    WAITING,
    Retry,
    Scheduler,
)
from tests.helpers import scheduler_faults


def _gated(
    tags: list[tuple[str, ...] | None],
    concurrency: int = 10,
    limits: dict[str, int] | None = None,
    rates: dict[str, tuple[float, float]] | None = None,
    retries: int = 0,
) -> Scheduler:
    """Independent nodes, one per entry of ``tags``, under these limits."""
    every = {t for ts in tags if ts for t in ts}
    gate, _ = build_gate("wf", every, tags, limits or {}, rates or {})
    s = Scheduler(concurrency, gate=gate)
    s.add_graph([()] * len(tags), [retries] * len(tags))
    return s


def _ok(s: Scheduler) -> None:
    assert scheduler_faults(s) == []


def test_a_limit_lets_that_many_tagged_nodes_run_and_parks_the_rest_holding_no_slot() -> None:
    s = _gated([("db",), ("db",), ("db",), (), ("db",)], concurrency=3, limits={"db": 2})
    # node 2 is parked on "db": the untagged node 3 takes the slot it would have held
    assert s.admit() == [0, 1, 3]
    assert s.take_queued() == [(2, "db", "limit")]
    assert s.in_flight == 3
    _ok(s)
    s.completed(3)
    assert s.admit() == []  # a free slot, but "db" is full: node 4 parks behind node 2
    assert s.take_queued() == [(4, "db", "limit")]
    s.completed(0)
    assert s.admit() == [2]  # first come, first served
    assert s.take_queued() == []  # reported once per attempt and tag
    _ok(s)
    s.completed(1)
    assert s.admit() == [4]
    s.completed(2)
    s.completed(4)
    assert s.unsettled == 0
    _ok(s)


def test_parked_nodes_go_before_nodes_that_became_ready_later() -> None:
    s = Scheduler(2, gate=build_gate("wf", ["db"], [("db",), ("db",), None], {"db": 1}, {})[0])
    s.add_graph([(), (), (0,)], [0, 0, 0])
    assert s.admit() == [0]  # node 1 parked; node 2 waits for node 0
    s.completed(0)  # frees "db" and makes node 2 ready
    assert s.admit() == [1, 2]
    _ok(s)


def test_a_node_with_several_tags_waits_for_all_and_is_reported_for_each() -> None:
    s = _gated([("a",), ("b",), ("a", "b")], limits={"a": 1, "b": 1})
    assert s.admit() == [0, 1]
    assert s.take_queued() == [(2, "a", "limit")]
    s.completed(0)  # "a" is free now, "b" is not: node 2 moves to the line of "b"
    assert s.admit() == []
    assert s.take_queued() == [(2, "b", "limit")]
    _ok(s)
    s.completed(1)
    assert s.admit() == [2]
    assert s.gate is not None
    assert s.gate._used == [1, 1]
    s.completed(2)
    assert s.gate._used == [0, 0]


def test_a_rate_limit_spends_a_token_per_start_and_says_when_the_next_comes() -> None:
    # 2 a second, a bucket of 2: two start at once, then one every half second
    s = _gated([("api",)] * 4, rates={"api": (2.0, 2.0)})
    assert s.admit(now=100.0) == [0, 1]
    assert s.take_queued() == [(2, "api", "rate"), (3, "api", "rate")]
    assert s.next_token_at() == pytest.approx(100.5)
    assert s.admit(now=100.4) == []
    assert s.admit(now=100.5) == [2]
    assert s.next_token_at() == pytest.approx(101.0)
    assert s.admit(now=102.0) == [3]
    assert s.next_token_at() is None  # nothing waits for a token
    _ok(s)


def test_tokens_never_pile_up_beyond_the_bucket() -> None:
    s = _gated([("api",)] * 5, rates={"api": (1.0, 1.0)})
    assert s.admit(now=0.0) == [0]
    # an hour later the bucket holds one token, not 3,600
    assert s.admit(now=3600.0) == [1]
    assert s.admit(now=3600.0) == []


def test_a_node_under_a_limit_and_a_rate_on_one_tag_is_reported_for_the_one_that_stops_it() -> None:
    s = _gated([("api",)] * 3, limits={"api": 1}, rates={"api": (10.0, 10.0)})
    assert s.admit(now=0.0) == [0]
    assert s.take_queued() == [(1, "api", "limit"), (2, "api", "limit")]
    s.completed(0)
    assert s.admit(now=0.0) == [1]


def test_a_retry_gives_its_slot_and_tags_back_during_its_backoff() -> None:
    s = _gated([("db",), ("db",)], concurrency=1, limits={"db": 1}, retries=1)
    assert s.admit() == [0]
    assert isinstance(s.attempt_failed(0), Retry)
    assert s.state[0] == RETRYING
    assert s.admit() == [1]  # the slot and the tag went to node 1
    _ok(s)
    s.retry(0)
    assert s.admit() == []  # the concurrency slot is taken: it waits in the queue
    s.completed(1)
    assert s.admit() == [0]
    assert s.attempts[0] == 2
    _ok(s)


def test_a_retry_parked_on_its_tag_is_reported_again_for_the_new_attempt() -> None:
    s = _gated([("db",), ("db",)], concurrency=2, limits={"db": 1}, retries=1)
    assert s.admit() == [0]
    assert s.take_queued() == [(1, "db", "limit")]
    assert isinstance(s.attempt_failed(0), Retry)
    assert s.admit() == [1]
    s.retry(0)
    assert s.admit() == []
    assert s.take_queued() == [(0, "db", "limit")]
    _ok(s)


def test_items_of_a_map_each_count_against_the_limit() -> None:
    gate, ids = build_gate("wf", ["db"], [(), None], {"db": 2}, {})
    s = Scheduler(10, gate=gate)
    s.add_graph([(), (0,)], [0, 0])
    assert s.admit() == [0]
    s.completed(0)
    assert s.admit() == [1]
    items = s.expand(1, 5, tags=(ids["db"],))
    assert s.admit() == list(items[:2])
    assert [i for i, _, _ in s.take_queued()] == list(items[2:])
    _ok(s)
    s.completed(items[0])
    s.completed(items[1])
    assert s.admit() == list(items[2:4])
    s.completed(items[2])
    assert s.admit() == [items[4]]
    _ok(s)
    s.completed(items[3])
    s.completed(items[4])
    assert s.take_gathered() == [1]
    _ok(s)


def test_a_parked_item_restored_leaves_its_line() -> None:
    gate, ids = build_gate("wf", ["db"], [None], {"db": 1}, {})
    s = Scheduler(10, gate=gate)
    s.add_graph([()], [0])
    assert s.admit() == [0]
    items = s.expand(0, 3, tags=(ids["db"],))
    assert s.admit() == [items[0]]
    s.restore(items[1])  # parked, then its saved record stood
    _ok(s)
    s.completed(items[0])
    assert s.admit() == [items[2]]
    assert s.state[items[1]] == DONE


def test_stop_and_interrupt_empty_the_lines_and_free_every_tag() -> None:
    s = _gated([("db",)] * 3, limits={"db": 1})
    s.fail_fast = True
    assert s.admit() == [0]
    s.attempt_failed(0)
    s.stop()
    assert s.state[1] == s.state[2] == SKIPPED
    assert s.gate is not None
    assert not s.gate.parked
    assert s.gate._used == [0]
    _ok(s)

    s = _gated([("db",)] * 3, limits={"db": 1})
    assert s.admit() == [0]
    cancelled, _ = s.interrupt()
    assert cancelled == [0]
    assert [s.state[i] for i in range(3)] == [WAITING, READY, READY]
    assert s.gate is not None
    assert not s.gate.parked
    assert s.gate._used == [0]


def test_a_limit_or_rate_on_a_tag_no_task_has_is_refused_naming_it() -> None:
    with pytest.raises(WorkflowValidationError) as err:
        build_gate("etl", ["db", "api"], [("db",)], {"dbs": 1}, {})
    assert "limits name tag 'dbs', which no task has" in str(err.value)
    assert "'api', 'db'" in str(err.value)
    with pytest.raises(WorkflowValidationError, match="rate_limits name tag 'x'"):
        build_gate("etl", [], [()], {}, {"x": (1.0, 1.0)})


def test_without_limits_there_is_no_gate() -> None:
    assert build_gate("wf", ["db"], [("db",)], {}, {}) == (None, {})


def test_a_gate_of_limits_only_needs_no_clock() -> None:
    gate = Gate(["db"], {0: 1}, {})
    assert not gate.clocked
    assert gate.next_token_at() is None


@pytest.mark.parametrize("seed", range(40))
def test_random_runs_never_exceed_a_limit_and_end_every_node(seed: int) -> None:
    rng = random.Random(seed)
    n = rng.randint(1, 30)
    names = ["a", "b", "c"]
    tags = [tuple(rng.sample(names, rng.randint(0, 2))) for _ in range(n)]
    limits = {t: rng.randint(1, 3) for t in names if rng.random() < 0.8}
    rates = {t: (rng.choice([1.0, 5.0]), 2.0) for t in names if rng.random() < 0.4}
    every = {t for ts in tags for t in ts}
    limits = {t: v for t, v in limits.items() if t in every}
    rates = {t: v for t, v in rates.items() if t in every}
    gate, _ = build_gate("wf", every, tags, limits, rates)
    s = Scheduler(rng.randint(1, 6), gate=gate)
    upstream = [tuple(j for j in range(i) if rng.random() < 0.1) for i in range(n)]
    s.add_graph(upstream, [rng.randint(0, 1) for _ in range(n)])
    now = 0.0
    running: list[int] = []
    retrying: list[int] = []
    for _ in range(10_000):
        if not s.unsettled:
            break
        running += s.admit(now)
        s.take_queued()
        _ok(s)
        if gate is not None:
            for t, cap in enumerate(gate._cap):
                assert not cap or gate._used[t] <= cap
        roll = rng.random()
        if retrying and roll < 0.2:
            s.retry(retrying.pop(rng.randrange(len(retrying))))
        elif running and roll < 0.8:
            i = running.pop(rng.randrange(len(running)))
            assert s.state[i] == RUNNING
            if rng.random() < 0.25:
                if isinstance(s.attempt_failed(i), Retry):
                    retrying.append(i)
            else:
                s.completed(i)
        else:
            at = s.next_token_at()
            now = at if at is not None and rng.random() < 0.7 else now + rng.random()
    assert s.unsettled == 0, "a node never ran"
    _ok(s)
