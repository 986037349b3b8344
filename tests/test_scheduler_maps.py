"""Maps in the scheduler alone: items added mid-run, their limit, the gather. No loop, no
threads.

A mapped node, once handed out, is expanded into item nodes (``Scheduler.expand``); the
tests below drive those calls the way the driver does (``_Run._expand``, ``_gather``) and
check the scheduler's counters against its table after each step
(``tests.helpers.scheduler_faults``).
"""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flowweaver import TaskStatus
from flowweaver._engine._rules import ALL_DONE, NONE_FAILED
from flowweaver._engine._scheduler import (
    DONE,
    FAILED,
    HELD,
    MAPPED,
    READY,
    RETRYING,
    RUNNING,
    SKIPPED,
    WAITING,
    Failure,
    Retry,
    Scheduler,
    SchedulerError,
)
from tests.helpers import scheduler_faults


def _ok(s: Scheduler) -> None:
    assert scheduler_faults(s) == []


def _mapped(
    n: int,
    limit: int | None = None,
    concurrency: int = 10,
    retries: int = 0,
    fail_fast: bool = False,
) -> tuple[Scheduler, int, range]:
    """``src -> p``, with ``p`` expanded into ``n`` items; nothing handed out yet."""
    s = Scheduler(concurrency, fail_fast)
    src = s.add()
    p = s.add([src])
    assert s.admit() == [src]
    s.completed(src)
    assert s.admit() == [p]
    items = s.expand(p, n, retries, limit)
    _ok(s)
    return s, p, items


def _active(s: Scheduler, items: range) -> list[int]:
    """The items queued or holding a slot (what a map's limit bounds)."""
    return [k for k in items if s.state[k] in (READY, RUNNING, RETRYING)]


# -- expand ----------------------------------------------------------------------------------


def test_expand_maps_the_node_and_frees_its_slot_so_concurrency_1_never_deadlocks() -> None:
    s, p, items = _mapped(3, concurrency=1)
    assert s.state[p] == MAPPED
    assert s.public_status(p) is TaskStatus.RUNNING
    assert s.in_flight == 0
    assert s.attempts[p] == 1
    order = []
    while s.unsettled > 1:  # p itself settles only once gathered
        (k,) = s.admit()
        order.append(k)
        s.completed(k)
        _ok(s)
    assert order == list(items)
    assert s.take_gathered() == [p]


def test_items_get_ids_after_every_node_in_element_order() -> None:
    s = Scheduler(4)
    src = s.add()
    p = s.add([src])
    after = s.add([p])
    s.admit()
    s.completed(src)
    s.admit()
    items = s.expand(p, 4)
    assert items == range(after + 1, after + 5)
    assert s.items(p) == items
    assert len(s) == after + 5
    assert all(s.upstream[k] == () and s.downstream[k] == [] for k in items)
    assert s.admit() == list(items)
    assert s.items(after) == range(0)  # not a map


def test_a_limit_bounds_the_items_queued_or_in_flight() -> None:
    s, _p, items = _mapped(10, limit=3)
    assert _active(s, items) == list(items[:3])
    assert [s.state[k] for k in items[3:]] == [WAITING] * 7
    assert s.admit() == list(items[:3])  # 10 slots, but only 3 items may go
    assert s.admit() == []
    _ok(s)


@pytest.mark.parametrize("end", ["completed", "held", "failed", "skipped"])
def test_the_next_item_is_let_in_as_one_ends(end: str) -> None:
    s, _p, items = _mapped(5, limit=2)
    first, second, third = items[:3]
    assert s.admit() == [first, second]
    if end == "completed":
        s.completed(first)
    elif end == "held":  # the slot is free even though the record is not saved yet
        s.completed(first, durable=False)
    elif end == "failed":
        decision = s.attempt_failed(first)
        assert isinstance(decision, Failure)
        assert decision.skipped == []
        assert not decision.stop
    else:
        assert s.skip(first) == []
    _ok(s)
    assert s.state[third] == READY
    assert s.admit() == [third]
    assert _active(s, items) == [second, third]


def test_an_item_retrying_keeps_its_place_under_the_limit() -> None:
    s, _p, items = _mapped(3, limit=1, retries=1)
    assert s.admit() == [items[0]]
    decision = s.attempt_failed(items[0])
    assert isinstance(decision, Retry)
    assert decision.attempt == 1
    assert s.state[items[0]] == RETRYING
    assert s.state[items[1]] == WAITING  # the retry is still the map's one item in flight
    assert s.admit() == []
    _ok(s)
    s.retry(items[0])
    assert s.admit() == [items[0]]
    assert s.attempts[items[0]] == 2
    s.completed(items[0])
    assert s.admit() == [items[1]]
    # the last attempt fails for good: the item is FAILED, the next one goes
    assert isinstance(s.attempt_failed(items[1]), Retry)
    s.retry(items[1])
    assert s.admit() == [items[1]]
    assert isinstance(s.attempt_failed(items[1]), Failure)
    assert s.state[items[1]] == FAILED
    assert s.attempts[items[1]] == 2
    assert s.admit() == [items[2]]
    _ok(s)


def test_without_a_limit_every_item_is_queued_and_concurrency_bounds_them() -> None:
    s, _p, items = _mapped(6, concurrency=2)
    assert [s.state[k] for k in items] == [READY] * 6
    assert s.admit() == list(items[:2])
    assert s.admit() == []
    s.completed(items[0])
    assert s.admit() == [items[2]]
    _ok(s)


def test_concurrency_bounds_items_and_other_nodes_together() -> None:
    s = Scheduler(3)
    src = s.add()
    p = s.add([src])
    others = [s.add([src]) for _ in range(3)]
    s.admit()
    s.completed(src)
    assert s.admit() == [p, *others[:2]]
    items = s.expand(p, 5, limit=4)
    # p's slot went to the next node ready: the other node queued before the items
    assert s.admit() == [others[2]]
    assert s.in_flight == 3
    s.completed(others[0])
    s.completed(others[1])
    assert s.admit() == list(items[:2])
    _ok(s)


def test_items_are_admitted_in_element_order_across_their_limit() -> None:
    s, _p, items = _mapped(7, limit=3, concurrency=2)
    order = []
    rng = random.Random(3)
    running: list[int] = []
    while len(order) < 7:
        out = s.admit()
        order.extend(out)
        running.extend(out)
        s.completed(running.pop(rng.randrange(len(running))))
        _ok(s)
    assert order == list(items)


def test_a_map_of_100000_with_limit_8_never_queues_more_than_8_items() -> None:
    s, p, _items = _mapped(100_000, limit=8, concurrency=4)
    longest = len(s._ready)
    handed = 0
    while s.unsettled > 1:
        out = s.admit()
        handed += len(out)
        for k in out:
            s.completed(k)
        longest = max(longest, len(s._ready))
    assert longest <= 8
    assert handed == 100_000
    assert s.take_gathered() == [p]


def test_restoring_items_behind_a_limit_leaves_the_queue_short() -> None:
    # A resumed map restores its saved items right after it expanded: each restore lets
    # the next item in, and must not leave the restored ones queued (a map of 100,000
    # restored would otherwise hold 100,000 dead entries).
    s = Scheduler(1)
    src = s.add()
    p = s.add([src])
    others = [s.add([src]) for _ in range(3)]  # queued ahead of the items
    s.admit()
    s.completed(src)
    assert s.admit() == [p]
    items = s.expand(p, 10_000, limit=8)
    longest = 0
    for k in items[:6_000]:
        s.restore(k)
        longest = max(longest, len(s._ready))
    _ok(s)
    assert longest < 50
    order = []
    while len(order) < 5:
        (i,) = s.admit()
        order.append(i)
        s.completed(i)
    assert order == [*others, items[6_000], items[6_001]]


# -- the gather ------------------------------------------------------------------------------


def test_the_mapped_node_is_gathered_once_when_its_last_item_ends() -> None:
    s, p, items = _mapped(3)
    s.admit()
    s.completed(items[2])
    assert s.attempt_failed(items[0]).__class__ is Failure
    assert s.gathered == []
    s.skip(items[1])
    assert s.gathered == [p]
    assert s.take_gathered() == [p]
    assert s.take_gathered() == []
    assert s.state[p] == MAPPED  # until the driver ends it
    assert s.unsettled == 1
    _ok(s)
    s.finish_map(p)
    assert s.take_gathered() == []
    assert s.unsettled == 0
    assert [s.state[k] for k in items] == [FAILED, SKIPPED, DONE]


def test_held_items_hold_the_gather_until_durable() -> None:
    s, p, items = _mapped(2)
    s.admit()
    s.completed(items[0], durable=False)
    s.completed(items[1], durable=False)
    assert s.state[items[0]] == HELD
    assert s.gathered == []
    s.durable(items[1])
    assert s.gathered == []
    _ok(s)
    s.durable(items[0])
    assert s.take_gathered() == [p]
    _ok(s)


def test_an_empty_map_is_gathered_at_once() -> None:
    s, p, items = _mapped(0)
    assert items == range(len(s), len(s))
    assert s.take_gathered() == [p]
    assert s.state[p] == MAPPED
    s.finish_map(p)
    assert s.state[p] == DONE
    assert s.unsettled == 0


@pytest.mark.parametrize("durable", [True, False])
def test_finish_map_releases_the_dependents(durable: bool) -> None:
    s = Scheduler(4)
    src = s.add()
    p = s.add([src])
    below = s.add([p])
    clean = s.add([p], rule=ALL_DONE)
    s.admit()
    s.completed(src)
    s.admit()
    (item,) = s.expand(p, 1)
    s.admit()
    s.completed(item)
    assert s.take_gathered() == [p]
    released = s.finish_map(p, durable=durable)
    if not durable:
        assert released == []
        assert s.state[p] == HELD
        assert s.state[below] == WAITING
        _ok(s)
        released = s.durable(p)
    assert released == [below]
    assert s.state[p] == DONE
    assert s.state[clean] == READY
    assert s.admit() == [below, clean]
    _ok(s)


def test_fail_map_skips_below_by_the_rules() -> None:
    s = Scheduler(4)
    src = s.add()
    p = s.add([src])
    below = s.add([p])
    deeper = s.add([below])
    none_failed = s.add([p], rule=NONE_FAILED)
    clean = s.add([p], rule=ALL_DONE)
    s.admit()
    s.completed(src)
    s.admit()
    (item,) = s.expand(p, 1)
    s.admit()
    s.attempt_failed(item)
    assert s.take_gathered() == [p]
    decision = s.fail_map(p)
    assert sorted(decision.skipped) == [below, deeper, none_failed]
    assert not decision.stop
    assert s.stopped_by is None
    assert s.state[p] == FAILED
    assert s.reasons[deeper].upstream == p
    assert s.reasons[none_failed].by_failure
    assert s.state[clean] == READY
    assert {why.node for why in s.take_skips()} == {below, deeper, none_failed}
    _ok(s)


def test_an_items_failure_never_stops_a_fail_fast_run_the_mapped_nodes_does() -> None:
    s, p, items = _mapped(3, fail_fast=True)
    other = s.add()
    s.admit()
    decision = s.attempt_failed(items[0])
    assert isinstance(decision, Failure)
    assert not decision.stop
    assert s.stopped_by is None
    s.completed(items[1])
    s.completed(items[2])  # the other items went on
    assert s.take_gathered() == [p]
    decision = s.fail_map(p)
    assert decision.stop
    assert s.stopped_by == p
    cancelled, skipped = s.stop()
    assert cancelled == [other]
    assert skipped == [other]
    assert s.reasons[other].upstream == p
    assert s.unsettled == 0


# -- restore ---------------------------------------------------------------------------------


def test_items_restored_mid_run_whether_queued_or_behind_the_limit() -> None:
    s, p, items = _mapped(6, limit=2)
    assert all(s.restorable(k) for k in items)
    assert s.restore(items[0]) == []  # queued: the next item takes its place
    assert s.state[items[0]] == DONE
    assert _active(s, items) == [items[1], items[2]]
    assert s.restore(items[4]) == []  # still behind the limit: it is passed over
    assert s.restore(items[3], skipped=True) == []
    assert s.state[items[3]] == SKIPPED
    assert s.take_skips() == []  # a skip on purpose restored is not a new skip
    _ok(s)
    assert s.admit() == [items[1], items[2]]
    assert not s.restorable(items[1])  # handed out
    assert not s.restorable(items[0])  # ended
    with pytest.raises(SchedulerError, match="only a node not started"):
        s.restore(items[1])
    s.completed(items[1])
    assert s.admit() == [items[5]]
    s.completed(items[2])
    assert s.gathered == []
    s.completed(items[5])
    assert s.take_gathered() == [p]
    _ok(s)


def test_a_map_restored_whole_is_gathered_without_handing_anything_out() -> None:
    s, p, items = _mapped(3, limit=1)
    s.restore(items[0], skipped=True)
    s.restore(items[2])
    assert s.gathered == []
    s.restore(items[1])
    assert s.take_gathered() == [p]
    assert s.admit() == []
    assert all(s.attempts[k] == 0 for k in items)
    _ok(s)


# -- the end of a run ------------------------------------------------------------------------


def test_a_cancellation_puts_the_mapped_node_and_its_items_back_to_waiting() -> None:
    s, p, items = _mapped(5, limit=3, concurrency=2)
    s.admit()
    s.completed(items[0])
    s.admit()
    cancelled, skipped = s.interrupt()
    assert cancelled == [p, items[1], items[2]]
    assert skipped == []
    assert s.state[p] == WAITING
    assert [s.state[k] for k in items] == [DONE, WAITING, WAITING, READY, WAITING]
    assert s.in_flight == 0
    assert s.public_status(p) is TaskStatus.PENDING


def test_after_a_failure_stopped_the_run_interrupt_skips_the_map_and_every_item_left() -> None:
    s, p, items = _mapped(5, limit=2, fail_fast=True)
    bad = s.add()
    s.admit()
    s.completed(items[0], durable=False)
    assert s.attempt_failed(bad).stop
    unsettled = s.unsettled
    cancelled, skipped = s.interrupt()
    assert cancelled == [p, items[1]]
    assert skipped == [p, *items[1:]]
    assert s.state[items[0]] == HELD  # its record may still be saved
    assert s.unsettled == unsettled - len(skipped) == 1


def test_stop_skips_a_mapped_node_and_its_items_with_the_failure_as_reason() -> None:
    s, p, items = _mapped(4, limit=2, fail_fast=True)
    below = s.add([p])
    bad = s.add()
    s.admit()
    s.completed(items[0], durable=False)
    assert s.attempt_failed(bad).stop
    cancelled, skipped = s.stop()
    assert cancelled == [p, items[1]]
    assert skipped == [p, *items[1:], below]
    assert all(s.reasons[k].stop and s.reasons[k].upstream == bad for k in skipped)
    _ok(s)
    s.durable(items[0])  # the record of the held item is saved after all
    assert s.take_gathered() == []
    assert s.unsettled == 0
    _ok(s)


def test_stop_decides_an_all_done_mapped_node_again_and_it_expands_afresh() -> None:
    s = Scheduler(4, fail_fast=True)
    src = s.add()
    bad = s.add()
    p = s.add([src], rule=ALL_DONE)
    assert s.admit() == [src, bad]
    s.completed(src)
    assert s.admit() == [p]
    old = s.expand(p, 3, limit=2)
    assert s.admit() == list(old[:2])
    s.completed(old[0], durable=False)  # its record is not saved when the run stops
    assert s.attempt_failed(bad).stop
    cancelled, skipped = s.stop()
    assert cancelled == [p, old[1]]
    assert skipped == list(old[1:])
    assert s.state[p] == READY
    _ok(s)
    assert s.admit() == [p]
    assert s.attempts[p] == 2
    new = s.expand(p, 2)
    assert new.start == old.stop
    assert s.items(p) == new
    assert s.admit() == list(new)
    # the old item's record is saved now: it ends, but it is not one of the new items
    s.durable(old[0])
    _ok(s)
    s.completed(new[0])
    assert s.take_gathered() == []
    s.completed(new[1])
    assert s.take_gathered() == [p]
    s.finish_map(p)
    assert s.unsettled == 0
    _ok(s)


# -- misuse ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda s, p, items: s.expand(p, 2), SchedulerError, "MAPPED, not RUNNING"),
        (lambda s, p, items: s.expand(0, 2), SchedulerError, "DONE, not RUNNING"),
        (lambda s, p, items: s.finish_map(0), SchedulerError, "DONE, not MAPPED"),
        (lambda s, p, items: s.fail_map(items[0]), SchedulerError, "RUNNING, not MAPPED"),
        (lambda s, p, items: s.completed(items[2]), SchedulerError, "WAITING, not RUNNING"),
        (lambda s, p, items: s.skip(items[2]), SchedulerError, "WAITING, not RUNNING"),
        (lambda s, p, items: s.completed(p), SchedulerError, "MAPPED, not RUNNING"),
        (lambda s, p, items: s.attempt_failed(p), SchedulerError, "MAPPED, not RUNNING"),
        (lambda s, p, items: s.restore(p), SchedulerError, "only a node not started"),
        (lambda s, p, items: s.durable(p), SchedulerError, "MAPPED, not HELD"),
    ],
    ids=[
        "expand-twice",
        "expand-ended",
        "finish-not-mapped",
        "fail-item",
        "complete-waiting-item",
        "skip-waiting-item",
        "complete-mapped",
        "fail-mapped-attempt",
        "restore-mapped",
        "durable-mapped",
    ],
)
def test_misuse_of_maps_is_refused_and_changes_nothing(call, error, message) -> None:  # type: ignore[no-untyped-def]
    s, p, items = _mapped(3, limit=2)
    s.admit()
    before = (list(s.state), list(s.attempts), s.in_flight, s.unsettled, list(s.gathered))
    with pytest.raises(error, match=message):
        call(s, p, items)
    assert (list(s.state), list(s.attempts), s.in_flight, s.unsettled, list(s.gathered)) == before
    _ok(s)


def test_finish_and_fail_map_refuse_a_node_ended_already() -> None:
    s, p, _items = _mapped(0)
    s.finish_map(p)
    with pytest.raises(SchedulerError, match="DONE, not MAPPED"):
        s.finish_map(p)
    with pytest.raises(SchedulerError, match="DONE, not MAPPED"):
        s.fail_map(p)


def test_expand_refuses_a_node_not_handed_out_and_a_limit_below_1() -> None:
    s = Scheduler(1)
    a = s.add()
    b = s.add([a])
    with pytest.raises(SchedulerError, match="READY, not RUNNING"):
        s.expand(a, 1)
    with pytest.raises(SchedulerError, match="WAITING, not RUNNING"):
        s.expand(b, 1)
    s.admit()
    with pytest.raises(ValueError, match="limit must be at least 1"):
        s.expand(a, 1, limit=0)
    assert s.state[a] == RUNNING
    assert len(s) == 2


# -- longer scripted runs --------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(8))
def test_counters_stay_right_through_a_long_run_of_maps(seed: int) -> None:
    """Maps (some over maps, some with limits) among static nodes; attempts fail, retry,
    skip, complete and are held at random; the counters are checked after every call."""
    rng = random.Random(seed)
    s = Scheduler(rng.randint(1, 4))
    src = s.add()
    maps = {s.add([src], retries=1, rule=rng.choice([0, ALL_DONE]))}
    maps.add(s.add([min(maps)]))
    maps.add(s.add([src]))
    tail = s.add(list(maps), rule=ALL_DONE)
    running: list[int] = []
    held: list[int] = []
    while s.unsettled:
        _ok(s)
        for i in s.admit():
            if i in maps:
                s.expand(i, rng.randint(0, 12), s.retries[i], rng.choice([None, 1, 3]))
            else:
                running.append(i)
        _ok(s)
        for p in s.take_gathered():
            if rng.random() < 0.3:
                s.fail_map(p)
            else:
                s.finish_map(p, durable=rng.random() < 0.5)
                if s.state[p] == HELD:
                    held.append(p)
            _ok(s)
        if held and (not running or rng.random() < 0.3):
            s.durable(held.pop(rng.randrange(len(held))))
            continue
        if not running:
            continue
        i = running.pop(rng.randrange(len(running)))
        roll = rng.random()
        if roll < 0.2:
            if isinstance(s.attempt_failed(i), Retry):
                s.retry(i)  # admitted again above
        elif roll < 0.3:
            s.skip(i)
        elif roll < 0.6:
            s.completed(i, durable=False)
            held.append(i)
        else:
            s.completed(i)
    _ok(s)
    assert s.state[tail] >= DONE
    assert s.in_flight == 0


# -- the limit, as a property ----------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(
    maps=st.lists(
        st.tuples(st.integers(0, 30), st.sampled_from([None, 1, 2, 3, 5]), st.integers(0, 2)),
        min_size=1,
        max_size=3,
    ),
    concurrency=st.integers(1, 6),
    seed=st.integers(0, 2**32),
)
def test_a_maps_limit_holds_and_each_item_is_handed_out_once_per_attempt(
    maps: list[tuple[int, int | None, int]], concurrency: int, seed: int
) -> None:
    """Random maps (size, limit, retries) end their items in a random order: completed,
    held, failed (retried or not), skipped, or restored before being handed out."""
    rng = random.Random(seed)
    s = Scheduler(concurrency)
    src = s.add()
    nodes = [s.add([src]) for _ in maps]
    s.admit()
    s.completed(src)
    limits: dict[int, tuple[range, int]] = {}
    handed: dict[int, int] = {}
    first_order: list[int] = []
    restored: set[int] = set()
    running: list[int] = []
    held: list[int] = []
    gathered: list[int] = []

    def check() -> None:
        assert scheduler_faults(s) == []
        for items, limit in limits.values():
            assert len(_active(s, items)) <= limit

    while s.unsettled:
        for i in s.admit():
            if i in nodes:
                n, limit, retries = maps[nodes.index(i)]
                items = s.expand(i, n, retries, limit)
                limits[i] = (items, n if limit is None else limit)
            else:
                assert i not in running
                handed[i] = handed.get(i, 0) + 1
                if handed[i] == 1:
                    first_order.append(i)
                running.append(i)
        check()
        for p in s.take_gathered():
            gathered.append(p)
            s.finish_map(p)
        roll = rng.random()
        waiting = [k for items, _ in limits.values() for k in items if s.restorable(k)]
        if waiting and roll < 0.1:
            k = rng.choice(waiting)
            s.restore(k, skipped=rng.random() < 0.3)
            restored.add(k)
        elif held and (not running or roll < 0.3):
            s.durable(held.pop(rng.randrange(len(held))))
        elif running:
            i = running.pop(rng.randrange(len(running)))
            roll = rng.random()
            if roll < 0.25:
                if isinstance(s.attempt_failed(i, final=roll < 0.05), Retry):
                    s.retry(i)  # handed out again by admit
            elif roll < 0.35:
                s.skip(i)
            elif roll < 0.6:
                s.completed(i, durable=False)
                held.append(i)
            else:
                s.completed(i)
        check()
    assert sorted(gathered) == sorted(nodes)
    every = [k for items, _ in limits.values() for k in items]
    assert all(handed.get(k, 0) == s.attempts[k] for k in every)
    assert all(s.attempts[k] == 0 for k in restored)
    for items, _ in limits.values():
        # each map's items were first handed out in element order
        mine = [k for k in first_order if k in items]
        assert mine == sorted(mine)
