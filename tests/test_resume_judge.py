"""The pure decisions of input-aware resume (``_store/_resume.py``), without a store or a
loop: tokens, parameter and key entries, each staleness rule with its reason, and which
tasks a run restores at the start, decides later, or runs."""

from __future__ import annotations

import itertools
import json
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flowweaver import TaskRecord, TaskStatus
from flowweaver._engine._graph import Graph
from flowweaver._store._resume import (
    TaskFacts,
    inputs_unchanged,
    judge,
    key_entry,
    param_entry,
    result_token,
    skip_token,
    stale_reason,
)

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=timezone.utc)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=8,
)


def rec(name: str, token: str | None = "t", inputs: str | None = "", **changes: Any) -> TaskRecord:
    r = TaskRecord(name, TaskStatus.COMPLETED, 1, None, NOW, "wf", None, None, token, inputs)
    for key, value in changes.items():
        setattr(r, key, value)
    return r


# -- tokens and entries ----------------------------------------------------------------------


def test_a_token_depends_on_the_value_and_the_task_not_on_the_run() -> None:
    assert result_token("a", '{"x": 1}') == result_token("a", '{"x": 1}')
    assert result_token("a", '{"x": 1}') != result_token("a", '{"x": 2}')
    # Two tasks that return equal values do not share a token: swapping their values
    # must change what a task that reads both received.
    assert result_token("a", "1") != result_token("b", "1")
    assert result_token("a", b"\x00\x01") == result_token("a", b"\x00\x01")
    assert len(result_token("a", "1")) == 16
    assert skip_token("a") != result_token("a", "null")


@given(JSON)
def test_the_json_stores_copies_hash_by_content_whatever_the_dict_order(value: Any) -> None:
    if isinstance(value, dict):
        reordered = dict(reversed(list(value.items())))
        assert result_token("t", value, value=True) == result_token("t", reordered, value=True)


@given(JSON)
def test_the_json_stores_copy_hashes_as_its_canonical_json_text(value: Any) -> None:
    # value=True: the JSON store's copy of the value is hashed as its JSON, whatever its
    # type, so a str is hashed with its quotes and never as a number's or None's text.
    text = json.dumps(value, sort_keys=True, separators=(",", ":"))
    assert result_token("t", value, value=True) == result_token("t", text)
    if isinstance(value, str):
        assert result_token("t", value, value=True) != result_token("t", value)


def test_a_value_that_cannot_be_hashed_gets_a_token_that_matches_nothing() -> None:
    odd = {"a": {1, 2}}  # not JSON: only a serializer of one's own could store it
    assert result_token("t", odd) != result_token("t", odd)


def test_parameter_and_key_entries() -> None:
    assert param_entry("date", "2026-11-30") == param_entry("date", "2026-11-30")
    assert param_entry("date", "2026-11-30") != param_entry("date", "2026-12-01")
    assert param_entry("a", 1) != param_entry("b", 1)  # the name is part of it
    assert param_entry("a", 1).startswith("$")
    assert key_entry("k") == key_entry("k") != key_entry("k2")
    assert key_entry("k").startswith("=")


# -- staleness, each rule with its reason ------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "facts", "reason"),
    [
        ({}, TaskFacts(None), None),
        ({"status": TaskStatus.FAILED}, TaskFacts(None), "the saved attempt failed"),
        ({"status": TaskStatus.RUNNING}, TaskFacts(None), "no saved result"),
        ({"status": TaskStatus.SKIPPED}, TaskFacts(None), None),  # skipped on purpose
        ({"workflow": "other"}, TaskFacts(None), "saved by workflow 'other'"),
        ({"workflow": None}, TaskFacts(None), None),  # a user's store: taken by name
        ({"version": "1"}, TaskFacts("2"), "version 2 != 1"),
        ({}, TaskFacts("2"), "version 2 != none"),
        ({"fingerprint": "f1"}, TaskFacts(None, "f2"), "code changed"),
        ({"fingerprint": "f1"}, TaskFacts(None, None), None),  # fingerprints off
        (
            {"timestamp": NOW - timedelta(seconds=61)},
            TaskFacts(None, ttl=60),
            "older than cache_ttl",
        ),
        ({"timestamp": NOW - timedelta(seconds=59)}, TaskFacts(None, ttl=60), None),
    ],
)
def test_each_rule_says_why_a_record_is_stale(
    changes: dict[str, Any], facts: TaskFacts, reason: str | None
) -> None:
    assert stale_reason(rec("t", **changes), "wf", facts, NOW) == reason


def test_judge_restores_a_task_exactly_when_stale_reason_finds_nothing() -> None:
    # judge checks the records of plain tasks (nothing but a version to check) without
    # stale_reason: both must come to the same decision and give the same reason, for
    # every combination of what a record and a task's facts hold (31,104 of them).
    dated = f"tok,{param_entry('date', 1)}"
    all_facts = [
        TaskFacts(version, fingerprint, ttl, False, params)
        for version, fingerprint, ttl, params in itertools.product(
            [None, "1", "2"], [None, "f1", "f2"], [None, 60.0], [{}, {"date": dated[4:]}]
        )
    ]
    for status, token, workflow, version, fingerprint, inputs, age in itertools.product(
        [TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.SKIPPED],
        [None, "t"],
        ["wf", "other", None],
        [None, "1", "2"],
        [None, "f1"],
        [None, "", "tok", dated],
        [0, 120],
    ):
        r = rec(
            "t",
            token=token,
            inputs=inputs,
            status=status,
            workflow=workflow,
            version=version,
            fingerprint=fingerprint,
            timestamp=NOW - timedelta(seconds=age),
        )
        for facts in all_facts:
            judged = judge(Graph(["t"], {}), "wf", {"t": r}, [facts], NOW)
            if status is TaskStatus.SKIPPED and token is None:
                assert 0 in judged.restore  # skipped by a rule: decided again by the run
                continue
            why = stale_reason(r, "wf", facts, NOW)
            assert (0 in judged.restore) == (why is None), (r, facts)
            assert judged.reasons.get(0) == why, (r, facts)


def test_a_naive_timestamp_from_a_users_store_is_local_time() -> None:
    naive = (NOW - timedelta(hours=2)).astimezone().replace(tzinfo=None)
    assert stale_reason(rec("t", timestamp=naive), "wf", TaskFacts(None, ttl=3600), NOW) == (
        "older than cache_ttl"
    )


def test_parameters_must_be_exactly_the_ones_saved() -> None:
    date1, date2, limit = param_entry("date", 1), param_entry("date", 2), param_entry("limit", 5)
    facts = TaskFacts(None, params={"date": date1})
    assert stale_reason(rec("t", inputs=f"tok,{date1}"), "wf", facts, NOW) is None
    assert stale_reason(rec("t", inputs=f"tok,{date2}"), "wf", facts, NOW) == (
        "parameter `date` changed"
    )
    # One it was saved with is no longer given (a task with a default for it).
    assert stale_reason(rec("t", inputs=f"tok,{date1},{limit}"), "wf", facts, NOW) == (
        "a parameter it was saved with is no longer given"
    )
    # A user's store keeps no inputs: with parameters nothing can be checked.
    assert stale_reason(rec("t", inputs=None), "wf", facts, NOW) is not None
    assert stale_reason(rec("t", inputs=None), "wf", TaskFacts(None), NOW) is None
    # With a cache_key the key covers the parameters.
    keyed = TaskFacts(None, keyed=True, params={"date": date1})
    assert stale_reason(rec("t", inputs=key_entry("k")), "wf", keyed, NOW) is None


def test_what_a_task_decided_later_receives() -> None:
    saved = rec("c", inputs="ta,tb")
    assert inputs_unchanged(saved, [("a", "ta"), ("b", "tb")], None) is None
    assert inputs_unchanged(saved, [("a", "ta"), ("b", "tX")], None) == "upstream `b` changed"
    assert inputs_unchanged(saved, [("a", None)], None) == "upstream `a` changed"
    keyed = rec("c", inputs=key_entry("k1"))
    assert inputs_unchanged(keyed, [("a", "new")], key_entry("k1")) is None
    assert inputs_unchanged(keyed, [], key_entry("k2")) == "cache_key changed"
    assert inputs_unchanged(rec("c", inputs=None), [("a", "ta")], None) is not None


# -- judge: at the start, later, or run ------------------------------------------------------


def chain(*names: str) -> Graph:
    return Graph(list(names), {b: (a,) for a, b in itertools.pairwise(names)})


def test_a_chain_with_everything_saved_is_restored_at_the_start() -> None:
    g = chain("a", "b", "c")
    records = {"a": rec("a", "ta"), "b": rec("b", "tb", "ta"), "c": rec("c", "tc", "tb")}
    out = judge(g, "wf", records, [TaskFacts(None)] * 3, NOW)
    assert list(out.restore) == [0, 1, 2]
    assert out.later == {}
    assert out.reasons == {}


def test_below_a_task_that_runs_the_rest_is_decided_later() -> None:
    g = chain("a", "b", "c")
    records = {
        "a": rec("a", "ta", version="1"),
        "b": rec("b", "tb", "ta"),
        "c": rec("c", "tc", "tb"),
    }
    out = judge(g, "wf", records, [TaskFacts("2"), TaskFacts(None), TaskFacts(None)], NOW)
    assert out.restore == {}
    assert sorted(out.later) == [1, 2]
    assert out.reasons == {
        0: "version 2 != 1",
        1: "upstream `a` will run",
        2: "upstream `b` will run",
    }


def test_a_record_computed_from_another_upstream_result_runs() -> None:
    g = chain("a", "b")
    records = {"a": rec("a", "ta2"), "b": rec("b", "tb", "ta1")}
    out = judge(g, "wf", records, [TaskFacts(None)] * 2, NOW)
    assert list(out.restore) == [0]
    assert out.reasons == {1: "upstream `a` changed since it was saved"}


def test_fresh_forced_given_and_keyed() -> None:
    g = chain("a", "b", "c")
    records = {"a": rec("a", "ta"), "b": rec("b", "tb", "ta"), "c": rec("c", "tc", "tb")}
    facts = [TaskFacts(None)] * 3
    assert judge(g, "wf", records, facts, NOW, fresh=True).reasons == dict.fromkeys(
        [0, 1, 2], "fresh run"
    )
    forced = judge(g, "wf", records, facts, NOW, forced={1})
    assert list(forced.restore) == [0]
    assert sorted(forced.later) == [2]
    assert forced.reasons[1] == "selected with from_tasks"
    # A given task stands whatever its checks say (it is taken as saved).
    given = judge(
        g, "wf", {**records, "a": rec("a", "ta", version="9")}, facts, NOW, given={0: records["a"]}
    )
    assert list(given.restore) == [0, 1, 2]
    keyed = judge(
        g, "wf", records, [TaskFacts(None), TaskFacts(None, keyed=True), TaskFacts(None)], NOW
    )
    assert list(keyed.restore) == [0]
    assert sorted(keyed.later) == [1, 2]


def test_a_skip_by_a_rule_is_listed_only_when_its_upstream_tasks_are() -> None:
    g = chain("a", "b")
    skipped = TaskRecord("b", TaskStatus.SKIPPED, None, "upstream failed", NOW, "wf")
    stands = judge(g, "wf", {"a": rec("a"), "b": skipped}, [TaskFacts(None)] * 2, NOW)
    assert list(stands.restore) == [0, 1]
    runs = judge(g, "wf", {"b": skipped}, [TaskFacts(None)] * 2, NOW)
    assert runs.restore == {}
    assert runs.reasons[1] == "upstream `a` will run"


def test_no_records_judges_nothing_and_says_why_for_all() -> None:
    out = judge(chain("a", "b"), "wf", {}, [TaskFacts(None)] * 2, NOW)
    assert out.reason(0) == out.reason(1) == "no saved result"


def test_timestamp_texts_are_parsed_once_each_and_the_memo_stays_bounded() -> None:
    from flowweaver._store import _records

    first = "2026-11-30T12:00:00.000001+00:00"
    moment = _records.parse_timestamp(first)
    assert moment == datetime(2026, 11, 30, 12, 0, 0, 1, tzinfo=timezone.utc)
    assert _records.parse_timestamp(first) is moment  # read again from the memo
    assert _records.parse_timestamp("2026-11-30 12:00:00Z") == NOW  # a space, a Z
    for k in range(_records._PARSED_KEPT + 10):
        text = (NOW + timedelta(microseconds=k)).isoformat()
        assert _records.parse_timestamp(text) == NOW + timedelta(microseconds=k)
    assert len(_records._parsed) <= _records._PARSED_KEPT
