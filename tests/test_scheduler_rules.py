"""Trigger rules and skips on purpose in the scheduler alone. No loop, no threads.

Each rule against each mix of upstream outcomes (``decide``), then the scheduler's own
bookkeeping: ruled nodes decided as their upstream nodes end, skips with their reasons,
skips on purpose, nodes added mid-run, restore, and the ``fail_fast`` stop that leaves
``all_done`` nodes to run.
"""

from __future__ import annotations

import itertools

import pytest

from flowweaver._engine._rules import (
    ALL_DONE,
    ALL_SUCCESS,
    NONE_FAILED,
    ONE_FAILED,
    ONE_SUCCESS,
    RUN,
    SKIP,
    SKIP_BY_FAILURE,
    WAIT,
    decide,
)
from flowweaver._engine._scheduler import (
    DONE,
    FAILED,
    READY,
    RUNNING,
    SKIPPED,
    WAITING,
    Failure,
    Scheduler,
    SchedulerError,
)
from flowweaver._outcomes import TRIGGER_RULES


def _reference(rule: int, ok: int, failed: int, skipped: int, total: int) -> int:
    """The rules as the README states them, written out case by case."""
    left = total - ok - failed - skipped
    name = TRIGGER_RULES[rule]
    if name == "all_success":
        if failed:
            return SKIP_BY_FAILURE
        if skipped and not left:
            return SKIP
        return RUN if not left else WAIT
    if name == "all_done":
        return RUN if not left else WAIT
    if name == "none_failed":
        if failed:
            return SKIP_BY_FAILURE
        return RUN if not left else WAIT
    if name == "one_failed":
        return RUN if failed else (SKIP if not left else WAIT)
    assert name == "one_success"
    if ok:
        return RUN
    if left:
        return WAIT
    return SKIP_BY_FAILURE if failed else SKIP


def test_every_rule_against_every_mix_of_upstream_outcomes() -> None:
    for rule in range(len(TRIGGER_RULES)):
        for ok, failed, skipped, left in itertools.product(range(3), repeat=4):
            total = ok + failed + skipped + left
            got = decide(rule, ok, failed, skipped, total)
            assert got == _reference(rule, ok, failed, skipped, total), (rule, ok, failed)


def _fan_in(rule: int, n_up: int = 2, concurrency: int = 4) -> Scheduler:
    """n_up roots -> node n_up with ``rule``."""
    s = Scheduler(concurrency)
    for _ in range(n_up):
        s.add()
    s.add(range(n_up), rule=rule)
    return s


def _end(s: Scheduler, i: int, outcome: str) -> None:
    assert i in s.admit() or s.state[i] == RUNNING
    if outcome == "ok":
        s.completed(i)
    elif outcome == "fail":
        assert isinstance(s.attempt_failed(i), Failure)
    else:
        s.skip(i)


@pytest.mark.parametrize(
    ("rule", "outcomes", "expected"),
    [
        (ALL_DONE, ("ok", "fail"), READY),
        (ALL_DONE, ("fail", "skip"), READY),
        (ALL_DONE, ("skip", "skip"), READY),
        (NONE_FAILED, ("ok", "skip"), READY),
        (NONE_FAILED, ("ok", "fail"), SKIPPED),
        (ONE_FAILED, ("ok", "ok"), SKIPPED),
        (ONE_FAILED, ("skip", "fail"), READY),
        (ONE_SUCCESS, ("fail", "fail"), SKIPPED),
        (ONE_SUCCESS, ("skip", "ok"), READY),
    ],
)
def test_a_ruled_node_is_decided_when_its_upstream_nodes_end(
    rule: int, outcomes: tuple[str, str], expected: int
) -> None:
    s = _fan_in(rule)
    for i, outcome in enumerate(outcomes):
        _end(s, i, outcome)
    assert s.state[2] == expected
    if expected == SKIPPED:
        (why,) = s.take_skips()
        assert (why.node, why.rule) == (2, rule)
        assert s.unsettled == 0
    else:
        assert s.admit() == [2]


def test_all_done_waits_for_every_upstream_node() -> None:
    s = _fan_in(ALL_DONE)
    _end(s, 0, "fail")
    assert s.state[2] == WAITING
    _end(s, 1, "ok")
    assert s.state[2] == READY


def test_one_failed_and_one_success_fire_before_the_other_upstream_nodes_end() -> None:
    for rule, first in ((ONE_FAILED, "fail"), (ONE_SUCCESS, "ok")):
        s = _fan_in(rule)
        s.admit()
        _end(s, 0, first)
        assert s.state[1] == RUNNING
        assert s.admit() == [2]  # fires while node 1 still runs
        # node 1's outcome, when it comes, no longer changes node 2
        assert isinstance(s.attempt_failed(1), Failure)
        assert s.state[2] == RUNNING
        s.completed(2)
        assert s.unsettled == 0
        assert s.take_skips() == []


def test_the_default_rule_skips_below_a_failure_with_the_failure_as_reason() -> None:
    s = Scheduler(4)
    s.add_graph([(), (0,), (1,)], [0, 0, 0])  # a -> b -> c
    s.admit()
    decision = s.attempt_failed(0)
    assert isinstance(decision, Failure)
    assert decision.skipped == [1, 2]
    whys = s.take_skips()
    assert [(w.node, w.upstream, w.by_failure, w.stop) for w in whys] == [
        (1, 0, True, False),
        (2, 0, True, False),  # the failure a chain of skips started from
    ]
    assert s.take_skips() == []


def test_a_skip_caused_by_a_failure_counts_as_a_failure_below() -> None:
    # a (fails) -> b (all_success, skipped) -> c (none_failed): skipped, as Airflow's
    # upstream_failed; d (one_failed) below b runs.
    s = Scheduler(4)
    a = s.add()
    b = s.add([a])
    c = s.add([b], rule=NONE_FAILED)
    d = s.add([b], rule=ONE_FAILED)
    s.admit()
    s.attempt_failed(a)
    assert s.state[b] == SKIPPED
    assert s.state[c] == SKIPPED
    assert s.state[d] == READY
    assert s.reasons[c].upstream == a


def test_a_skip_on_purpose_skips_the_default_rule_and_runs_none_failed() -> None:
    s = Scheduler(4)
    a = s.add()
    b = s.add([a])
    c = s.add([a], rule=NONE_FAILED)
    d = s.add([a], rule=ONE_FAILED)
    s.admit()
    assert s.skip(a) == [b, d]
    assert s.state[a] == SKIPPED
    assert s.reasons[a].upstream is None
    assert not s.reasons[a].by_failure
    assert s.state[b] == SKIPPED
    assert not s.reasons[b].by_failure
    assert s.state[c] == READY
    assert s.state[d] == SKIPPED  # nothing failed
    assert s.in_flight == 0
    assert [w.node for w in s.take_skips()] == [b, d]


def test_skip_is_refused_for_a_node_not_running() -> None:
    s = Scheduler(1)
    s.add()
    with pytest.raises(SchedulerError, match="not RUNNING"):
        s.skip(0)


def test_a_held_upstream_is_counted_when_durable() -> None:
    s = _fan_in(ALL_DONE)
    s.admit()
    s.completed(0, durable=False)
    _end(s, 1, "fail")
    assert s.state[2] == WAITING
    s.durable(0)
    assert s.state[2] == READY


def test_one_rules_with_no_upstream_are_skipped_at_once_others_ready() -> None:
    s = Scheduler(4)
    s.add_graph([(), (), (), ()], [0] * 4, {0: ONE_FAILED, 1: ONE_SUCCESS, 2: ALL_DONE})
    assert s.state == [SKIPPED, SKIPPED, READY, READY]
    assert [w.node for w in s.take_skips()] == [0, 1]
    assert s.unsettled == 2


def test_ruled_nodes_added_mid_run_count_the_upstream_nodes_that_ended() -> None:
    s = Scheduler(4)
    a, b = s.add(), s.add()
    s.admit()
    s.completed(a)
    s.attempt_failed(b)
    assert s.state[s.add([a, b], rule=ALL_DONE)] == READY
    assert s.state[s.add([a, b], rule=ONE_FAILED)] == READY
    late = s.add([a, b], rule=NONE_FAILED)
    assert s.state[late] == SKIPPED
    assert s.reasons[late].upstream == b
    default = s.add([a, b])
    assert s.state[default] == SKIPPED
    assert s.reasons[default].by_failure
    c = s.add()
    waiting = s.add([a, c], rule=ONE_FAILED)
    assert s.state[waiting] == WAITING
    s.admit()
    s.completed(c)
    assert s.state[waiting] == SKIPPED


def test_restore_of_a_skip_on_purpose_decides_its_dependents() -> None:
    s = Scheduler(4)
    a = s.add()
    b = s.add([a])
    c = s.add([a], rule=NONE_FAILED)
    assert s.restore(a, skipped=True) == [c]
    assert s.state == [SKIPPED, SKIPPED, READY]
    assert s.restore(c) == []
    assert s.state[c] != READY
    assert s.unsettled == 0
    assert [w.node for w in s.take_skips()] == [b]


def test_restore_of_a_ruled_node_needs_every_upstream_node_ended() -> None:
    s = _fan_in(ONE_SUCCESS)
    s.restore(0)
    assert s.state[2] == READY  # fires on the first success
    with pytest.raises(SchedulerError, match="restore them first"):
        s.restore(2)
    s.restore(1)
    s.restore(2)
    assert s.state == [DONE, DONE, DONE]


def test_fail_fast_stop_skips_the_rest_but_leaves_all_done_nodes_to_run() -> None:
    s = Scheduler(4, fail_fast=True)
    a = s.add()  # fails
    slow = s.add()  # in flight when the run stops
    after = s.add([slow])
    clean = s.add([slow, after], rule=ALL_DONE)
    cleaning = s.add(rule=ALL_DONE)  # in flight too: runs again
    last = s.add([clean], rule=ALL_DONE)
    assert s.admit() == [a, slow, cleaning]
    decision = s.attempt_failed(a)
    assert isinstance(decision, Failure)
    assert decision.stop
    cancelled, skipped = s.stop()
    assert cancelled == [slow, cleaning]
    assert skipped == [slow, after]
    assert s.reasons[after].stop
    assert s.reasons[after].upstream == a
    assert s.state[clean] == READY
    assert s.state[cleaning] == READY
    assert s.state[last] == WAITING
    assert sorted(s.admit()) == [clean, cleaning]
    s.completed(clean)
    s.completed(cleaning)
    assert s.admit() == [last]
    s.completed(last)
    assert s.unsettled == 0


def test_stop_needs_a_failure_that_stopped_the_run() -> None:
    s = Scheduler(1, fail_fast=True)
    s.add()
    with pytest.raises(SchedulerError, match="without a failure"):
        s.stop()


def test_a_wide_fan_in_of_failures_costs_one_decision_per_edge() -> None:
    s = Scheduler(10_000)
    roots = [s.add() for _ in range(5_000)]
    node = s.add(roots, rule=ALL_DONE)
    s.admit()
    for i in roots[:-1]:
        s.attempt_failed(i)
        assert s.state[node] == WAITING
    s.skip(roots[-1])
    assert s.state[node] == READY
    assert s._counts[node] == [0, 4_999, 1]
    assert s.state.count(SKIPPED) == 1
    assert s.state.count(FAILED) == 4_999
    assert ALL_SUCCESS == 0  # the default rule is the fast path's: rule 0


def test_a_skip_that_reaches_a_node_twice_in_one_walk_is_counted_once() -> None:
    # a (skips) -> b; (a, b, c) -> d. The walk from a skips b and starts counting d; b's
    # skip, still on its way down, must not be counted twice.
    s = Scheduler(4)
    a, c = s.add(), s.add()
    b = s.add([a])
    d = s.add([a, b, c])
    s.admit()
    s.skip(a)
    assert s.state[b] == SKIPPED
    assert s._counts[d] == [0, 0, 2]
    assert s.state[d] == WAITING  # waits for c: a failure there would change the reason
    s.attempt_failed(c)
    assert s.state[d] == SKIPPED
    assert s.reasons[d].by_failure
    assert s.reasons[d].upstream == c
