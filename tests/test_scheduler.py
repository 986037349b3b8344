"""The scheduler on its own: every transition, admission, misuse. No loop, no threads."""

from __future__ import annotations

import pytest

from flowweaver import TaskStatus
from flowweaver._engine._scheduler import (
    DONE,
    FAILED,
    HELD,
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


def _diamond(concurrency: int = 4, retries: int = 0) -> Scheduler:
    """a -> (b, c) -> d"""
    s = Scheduler(concurrency)
    s.add_graph([(), (0,), (0,), (1, 2)], [retries] * 4)
    return s


def test_roots_are_ready_and_the_rest_waits() -> None:
    s = _diamond()
    assert s.state == [READY, WAITING, WAITING, WAITING]
    assert s.unsettled == 4
    assert s.has_ready


def test_admit_hands_out_ready_nodes_as_running_with_one_attempt() -> None:
    s = _diamond()
    assert s.admit() == [0]
    assert s.state[0] == RUNNING
    assert s.attempts[0] == 1
    assert s.in_flight == 1
    assert s.admit() == []  # nothing else is ready


def test_completion_releases_dependents_once_their_last_upstream_is_done() -> None:
    s = _diamond()
    s.admit()
    assert s.completed(0) == [1, 2]
    assert s.state[0] == DONE
    assert s.admit() == [1, 2]
    assert s.completed(1) == []  # d still waits for c
    assert s.completed(2) == [3]
    assert s.admit() == [3]
    s.completed(3)
    assert s.unsettled == 0
    assert s.state == [DONE] * 4


def test_admission_never_exceeds_the_concurrency_bound() -> None:
    s = Scheduler(2)
    s.add_graph([()] * 5, [0] * 5)
    assert s.admit() == [0, 1]
    assert s.admit() == []
    assert s.in_flight == 2
    s.completed(0)
    assert s.admit() == [2]
    s.completed(1)
    s.completed(2)
    assert s.admit() == [3, 4]


def test_ready_nodes_are_handed_out_in_the_order_they_became_ready() -> None:
    s = Scheduler(1)
    s.add_graph([(), (), (0,), (1,)], [0] * 4)
    order = []
    while s.unsettled:
        (i,) = s.admit()
        order.append(i)
        s.completed(i)
    assert order == [0, 1, 2, 3]


def test_a_held_node_frees_its_slot_but_releases_nothing_until_durable() -> None:
    s = _diamond(concurrency=1)
    s.admit()
    assert s.completed(0, durable=False) == []
    assert s.state[0] == HELD
    assert s.in_flight == 0
    assert s.unsettled == 4  # held is not ended: its release is still to come
    assert s.waits_for_store
    assert s.durable(0) == [1, 2]
    assert s.state[0] == DONE
    assert not s.waits_for_store


def test_waits_for_store_is_false_while_every_slot_is_busy() -> None:
    s = Scheduler(1)
    s.add_graph([(), ()], [0, 0])
    s.admit()
    assert not s.waits_for_store  # the slot is busy
    s.completed(0, durable=False)
    assert not s.waits_for_store  # node 1 is ready
    s.admit()
    s.completed(1, durable=False)
    assert s.waits_for_store


def test_a_failed_attempt_with_retries_left_gives_its_slot_back_until_it_is_retried() -> None:
    s = Scheduler(1)
    s.add_graph([(), ()], [2, 0])
    assert s.admit() == [0]
    decision = s.attempt_failed(0)
    assert isinstance(decision, Retry)
    assert decision.attempt == 1
    assert s.state[0] == RETRYING
    assert s.in_flight == 0
    assert s.admit() == [1]  # the other node runs during the backoff
    s.retry(0)
    assert s.state[0] == READY
    assert s.admit() == []  # no slot free: it waits
    s.completed(1)
    assert s.admit() == [0]
    assert s.state[0] == RUNNING
    assert s.attempts[0] == 2
    assert isinstance(s.attempt_failed(0), Retry)
    s.retry(0)
    assert s.admit() == [0]
    assert s.attempts[0] == 3
    assert isinstance(s.attempt_failed(0), Failure)  # retries=2: three attempts in all


def test_a_final_failure_skips_the_whole_downstream_and_frees_the_slot() -> None:
    s = _diamond()
    s.admit()
    decision = s.attempt_failed(0)
    assert isinstance(decision, Failure)
    assert decision.skipped == [1, 2, 3]
    assert s.state == [FAILED, SKIPPED, SKIPPED, SKIPPED]
    assert s.in_flight == 0
    assert s.unsettled == 0


def test_a_failure_leaves_independent_branches_and_finished_nodes_alone() -> None:
    s = Scheduler(4)
    # 0 -> 1 -> 3, 2 -> 3, 4 alone
    s.add_graph([(), (0,), (), (1, 2), ()], [0] * 5)
    s.admit()  # 0, 2, 4
    s.completed(2)
    s.completed(0)
    s.admit()  # 1
    decision = s.attempt_failed(1)
    assert isinstance(decision, Failure)
    assert decision.skipped == [3]
    assert s.state[4] == RUNNING
    assert s.state[2] == DONE


def test_final_refuses_a_retry() -> None:
    s = _diamond(retries=5)
    s.admit()
    assert isinstance(s.attempt_failed(0, final=True), Failure)


def test_skips_reached_twice_are_counted_once() -> None:
    s = Scheduler(4)
    # two roots both feed 2; both fail
    s.add_graph([(), (), (0, 1), (2,)], [0] * 4)
    s.admit()
    first = s.attempt_failed(0)
    second = s.attempt_failed(1)
    assert isinstance(first, Failure)
    assert isinstance(second, Failure)
    assert first.skipped == [2, 3]
    assert second.skipped == []
    assert s.unsettled == 0


def test_restore_releases_dependents_without_running_anything() -> None:
    s = _diamond()
    assert s.restore(0) == [1, 2]
    assert s.state[0] == DONE
    assert s.attempts[0] == 0
    assert s.admit() == [1, 2]  # the restored root is not handed out


def test_restored_roots_are_dropped_from_the_ready_queue() -> None:
    s = Scheduler(10)
    s.add_graph([()] * 1000, [0] * 1000)
    for i in range(0, 1000, 2):
        s.restore(i)
    assert s.admit() == list(range(1, 21, 2))


def test_restore_refuses_a_node_whose_upstream_is_not_done() -> None:
    s = _diamond()
    with pytest.raises(SchedulerError, match="restore them first"):
        s.restore(3)


@pytest.mark.parametrize(
    ("setup", "call", "message"),
    [
        (lambda s: None, lambda s: s.completed(0), "not RUNNING"),
        (lambda s: s.admit(), lambda s: s.durable(0), "not HELD"),
        (lambda s: s.admit(), lambda s: s.retry(0), "not RETRYING"),
        (lambda s: None, lambda s: s.attempt_failed(0), "not RUNNING"),
        (lambda s: (s.admit(), s.completed(0)), lambda s: s.completed(0), "DONE, not RUNNING"),
        (lambda s: (s.admit(), s.completed(0, False)), lambda s: s.restore(0), "only a node"),
        (
            lambda s: (s.admit(), s.completed(0, False), s.durable(0)),
            lambda s: s.durable(0),
            "DONE, not HELD",
        ),
    ],
    ids=[
        "complete-not-handed-out",
        "durable-not-held",
        "retry-not-retrying",
        "fail-not-handed-out",
        "complete-twice",
        "restore-started",
        "durable-twice",
    ],
)
def test_misuse_is_refused_and_changes_nothing(setup, call, message) -> None:  # type: ignore[no-untyped-def]
    s = _diamond()
    setup(s)
    before = (list(s.state), list(s.attempts), s.in_flight, s.unsettled)
    with pytest.raises(SchedulerError, match=message):
        call(s)
    assert (list(s.state), list(s.attempts), s.in_flight, s.unsettled) == before


def test_nodes_added_mid_run_wait_for_their_upstream_or_are_ready_at_once() -> None:
    s = Scheduler(4)
    a = s.add()
    b = s.add([a])
    assert s.admit() == [a]
    s.completed(a)
    c = s.add([a])  # its upstream is done already: ready now
    d = s.add([b, c])
    assert s.state[c] == READY
    assert s.state[d] == WAITING
    assert s.admit() == [b, c]
    s.completed(b)
    assert s.completed(c) == [d]
    assert s.admit() == [d]
    s.completed(d)
    assert s.unsettled == 0


def test_adding_after_a_held_upstream_waits_for_it_to_be_durable() -> None:
    s = Scheduler(1)
    a = s.add()
    s.admit()
    s.completed(a, durable=False)
    b = s.add([a])
    assert s.state[b] == WAITING
    assert s.durable(a) == [b]


def test_add_refuses_an_unknown_upstream_node() -> None:
    s = Scheduler(1)
    s.add()
    with pytest.raises(SchedulerError, match="does not exist"):
        s.add([5])
    assert len(s) == 1


def test_a_node_added_below_a_failed_one_is_skipped_at_once() -> None:
    s = Scheduler(1)
    a = s.add()
    s.admit()
    s.attempt_failed(a)
    b = s.add([a])
    c = s.add([b])
    assert s.state[b] == SKIPPED
    assert s.state[c] == SKIPPED
    assert s.unsettled == 0
    assert s.admit() == []


def test_repeated_upstream_counts_once() -> None:
    s = Scheduler(1)
    a = s.add()
    b = s.add([a, a])
    s.admit()
    assert s.completed(a) == [b]


def test_interrupt_puts_nodes_in_flight_back_to_waiting() -> None:
    s = _diamond(retries=1)
    s.admit()
    s.completed(0)
    s.admit()  # 1, 2
    s.attempt_failed(1)  # retrying
    cancelled, skipped = s.interrupt()
    assert cancelled == [1, 2]
    assert skipped == []
    assert s.state == [DONE, WAITING, WAITING, WAITING]
    assert s.in_flight == 0
    assert s.admit() == []  # nothing is handed out after the end


def test_with_fail_fast_the_first_failure_stops_the_run() -> None:
    s = Scheduler(3, fail_fast=True)
    s.add_graph([(), (), (), (), (3,)], [0] * 5)
    s.admit()  # 0, 1, 2
    s.completed(0, durable=False)  # held: completed, stays so
    decision = s.attempt_failed(2)
    assert isinstance(decision, Failure)
    assert decision.stop
    assert s.stopped_by == 2
    cancelled, skipped = s.interrupt()
    assert cancelled == [1]
    assert skipped == [1, 3, 4]  # in flight, ready, waiting: none will run
    assert s.state == [HELD, SKIPPED, FAILED, SKIPPED, SKIPPED]


def test_without_fail_fast_a_failure_does_not_stop_the_run() -> None:
    s = Scheduler(2)
    s.add_graph([(), ()], [0, 0])
    s.admit()
    decision = s.attempt_failed(0)
    assert isinstance(decision, Failure)
    assert not decision.stop
    assert s.stopped_by is None


def test_only_the_first_failure_stops_the_run() -> None:
    s = Scheduler(2, fail_fast=True)
    s.add_graph([(), ()], [0, 0])
    s.admit()
    assert s.attempt_failed(0).stop  # type: ignore[union-attr]
    assert not s.attempt_failed(1).stop  # type: ignore[union-attr]
    assert s.stopped_by == 0


def test_public_status_of_each_state() -> None:
    s = _diamond(concurrency=1, retries=1)
    assert s.public_status(0) is TaskStatus.PENDING
    s.admit()
    assert s.public_status(0) is TaskStatus.RUNNING
    s.attempt_failed(0)
    assert s.public_status(0) is TaskStatus.RETRYING
    s.retry(0)
    s.admit()
    s.completed(0, durable=False)
    assert s.public_status(0) is TaskStatus.COMPLETED
    assert s.public_status(1) is TaskStatus.PENDING


def test_concurrency_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Scheduler(0)


def test_a_long_chain_costs_no_recursion() -> None:
    n = 50_000
    s = Scheduler(1)
    s.add_graph([()] + [(i,) for i in range(n - 1)], [0] * n)
    s.admit()
    decision = s.attempt_failed(0)
    assert isinstance(decision, Failure)
    assert len(decision.skipped) == n - 1


def test_adding_nodes_never_changes_the_lists_add_graph_was_given() -> None:
    upstream = [(), (0,)]
    downstream = [[1], []]
    s = Scheduler(2)
    s.add_graph(upstream, [0, 0], downstream=downstream)
    s.add([0])
    s.add([0, 1])
    assert downstream == [[1], []]  # the caller's graph (a workflow's cached one) is intact
    assert s.downstream[0] == [1, 2, 3]
    assert s.downstream[1] == [3]


def test_many_nodes_added_below_one_node_cost_constant_time_each() -> None:
    s = Scheduler(1)
    s.add_graph([()], [0], downstream=[[]])
    s.admit()
    s.completed(0)
    for _ in range(20_000):  # quadratic copying would take minutes here
        s.add([0])
    assert len(s.downstream[0]) == 20_000
    assert len(s.admit()) == 1
