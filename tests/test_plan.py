"""``executor.plan``: what a run would do with each task, and why (a reason for each
rule), under every executor form, store and backend; it refuses what a run refuses, and
writes nothing. The property that a run does what its plan says is in
``test_plan_property.py``.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from flowweaver import (
    AsyncExecutor,
    Plan,
    PlannedTask,
    SequentialExecutor,
    StateStoreError,
    Task,
    TaskRestored,
    Workflow,
    WorkflowValidationError,
)
from tests.helpers import EventLog
from tests.run_helpers import (
    BUILT_IN,
    Runner,
    age_records,
    stored_state,
)
from tests.test_input_resume import ALL_TASKS, A, B, Daily

ALL = ALL_TASKS
REMOVED = "a parameter it was saved with is no longer given"


@pytest.fixture
def store(stored: Runner) -> Any:
    return stored.store


def topological(plan: Plan, wf: Workflow) -> bool:
    """Every task of ``wf`` comes after the tasks it depends on."""
    seen: set[str] = set()
    for name in plan:
        if not set(wf._depends_on[name]) <= seen:
            return False
        seen.add(name)
    return seen == {t.name for t in wf.tasks}


def actions(plan: Plan) -> dict[str, tuple[str, bool]]:
    return {name: (p.action, p.unless_unchanged) for name, p in plan.items()}


def reasons(plan: Plan) -> dict[str, str]:
    return {name: p.reason for name, p in plan.items()}


def saved_once(stored: Runner, d: Daily, **options: Any) -> None:
    """Run ``d``'s workflow once with ``A`` (and ``options``), forgetting its calls."""
    stored.run(d.workflow(), params=A, **options)
    d.take()


# -- what a plan is --------------------------------------------------------------------------


def test_a_plan_on_an_empty_store_runs_everything_for_want_of_a_saved_result(
    stored: Runner,
) -> None:
    d = Daily()
    wf = d.workflow()
    plan = stored.plan(wf, params=A)
    assert isinstance(plan, Plan)
    assert plan.workflow == "daily"
    assert plan.params == A
    assert sorted(plan) == sorted(ALL)
    assert topological(plan, wf)
    assert all(isinstance(p, PlannedTask) and p.name == n for n, p in plan.items())
    assert set(actions(plan).values()) == {("run", False)}
    assert set(reasons(plan).values()) == {"no saved result"}
    assert plan.counts() == {"run": 7, "restore": 0, "skip": 0}
    assert d.take() == set()  # nothing ran
    assert all(t.result is None for t in wf.tasks)


def test_a_plan_without_a_store_runs_everything(form: tuple[type, bool], backend: str) -> None:
    d = Daily()
    plan = Runner(None, *form, backend).plan(d.workflow(), params=A)
    assert set(actions(plan).values()) == {("run", False)}
    assert d.take() == set()


def test_the_order_of_a_plan_is_topological() -> None:
    wf = Workflow("order")
    wf.add_task(Task("late", lambda early, middle: 1), depends_on=["early", "middle"])
    wf.add_task(Task("middle", lambda early: 1), depends_on=["early"])
    wf.add_task(Task("early", lambda: 1))
    assert list(SequentialExecutor().plan(wf)) == ["early", "middle", "late"]


@pytest.mark.parametrize(
    "selection",
    [
        {"from_tasks": ["report"]},
        {"targets": ["rows"]},
        {"from_tasks": ["rows"], "targets": ["report"]},
    ],
)
def test_a_plan_with_a_selection_still_lists_every_task_in_topological_order(
    stored: Runner, selection: dict[str, Any]
) -> None:
    d = Daily()
    saved_once(stored, d)
    wf = d.workflow()
    plan = stored.plan(wf, params=A, **selection)
    assert topological(plan, wf), list(plan)


def test_saved_results_that_stand_are_planned_restore(stored: Runner) -> None:
    d = Daily()
    saved_once(stored, d)
    plan = stored.plan(d.workflow(), params=A)
    assert set(actions(plan).values()) == {("restore", False)}
    assert set(reasons(plan).values()) == {"saved result stands"}
    assert plan.counts() == {"run": 0, "restore": 7, "skip": 0}


# -- a reason for each rule ------------------------------------------------------------------


def test_a_changed_param_and_the_upstream_that_will_run(stored: Runner) -> None:
    d = Daily()
    saved_once(stored, d)
    plan = stored.plan(d.workflow(), params=B)
    assert actions(plan) == {
        "extract": ("run", False),
        "rows": ("run", True),
        "report": ("run", True),
        "stamp": ("run", True),
        "publish": ("run", True),
        "config": ("restore", False),
        "other": ("restore", False),
    }
    assert reasons(plan)["extract"] == "parameter `date` changed"
    assert reasons(plan)["rows"] == "upstream `extract` will run"
    assert reasons(plan)["stamp"] == "upstream `extract` will run"
    assert reasons(plan)["report"] == "upstream `rows` will run"
    assert reasons(plan)["publish"] == "upstream `stamp` will run"
    assert plan.params == B


def test_a_param_removed_or_added_is_a_changed_param(stored: Runner) -> None:
    d = Daily()
    saved_once(stored, d)
    plan = stored.plan(d.workflow(), params={"date": A["date"]})
    assert actions(plan)["config"] == ("run", False)
    # a record keeps a hash of each parameter's name and value, not the name
    assert reasons(plan)["config"] == REMOVED
    assert plan.counts() == {"run": 1, "restore": 6, "skip": 0}
    stored.run(d.workflow(), params={"date": A["date"]})
    plan = stored.plan(d.workflow(), params=A)
    assert actions(plan)["config"] == ("run", False)
    assert reasons(plan)["config"] == "parameter `limit` changed"


def test_a_deleted_record_is_no_saved_result(stored: Runner, store: Any) -> None:
    d = Daily()
    saved_once(stored, d)
    store.delete_task_state("stamp", workflow="daily")
    plan = stored.plan(d.workflow(), params=A)
    assert reasons(plan)["stamp"] == "no saved result"
    assert actions(plan)["stamp"] == ("run", False)
    assert actions(plan)["publish"] == ("run", True)
    assert reasons(plan)["publish"] == "upstream `stamp` will run"
    assert plan.counts() == {"run": 2, "restore": 5, "skip": 0}


def test_a_new_version(stored: Runner) -> None:
    d = Daily()
    d.versions["rows"] = "1"
    saved_once(stored, d)
    d.versions["rows"] = "2"
    plan = stored.plan(d.workflow(), params=A)
    assert actions(plan)["rows"] == ("run", False)
    assert re.fullmatch(r"version '?2'? != '?1'?", reasons(plan)["rows"])
    assert actions(plan)["report"] == ("run", True)


def test_changed_code_with_fingerprints_on(stored: Runner) -> None:
    d = Daily()
    saved_once(stored, d, fingerprint_code=True)

    def stamp(extract: dict[str, Any]) -> str:
        return "something else"

    plan = stored.plan(d.workflow(stamp=stamp), params=A, fingerprint_code=True)
    assert actions(plan)["stamp"] == ("run", False)
    assert reasons(plan)["stamp"] == "code changed"
    assert plan.counts() == {"run": 2, "restore": 5, "skip": 0}
    # without fingerprints, the code is not looked at
    plan = stored.plan(d.workflow(stamp=stamp), params=A)
    assert plan.counts()["restore"] == 7


def test_a_record_older_than_cache_ttl(stored: Runner, store: Any) -> None:
    d = Daily()
    d.settings["other"] = {"cache_ttl": timedelta(hours=1)}
    saved_once(stored, d)
    age_records(store, "daily", ["other"], timedelta(hours=2))
    plan = stored.plan(d.workflow(), params=A)
    assert actions(plan)["other"] == ("run", False)
    assert reasons(plan)["other"] == "older than cache_ttl"


def test_a_fresh_run(stored: Runner) -> None:
    d = Daily()
    saved_once(stored, d)
    plan = stored.plan(d.workflow(), params=A, fresh=True)
    assert set(actions(plan).values()) == {("run", False)}
    assert set(reasons(plan).values()) == {"fresh run"}


def test_a_cache_key_is_decided_when_the_task_is_ready(stored: Runner) -> None:
    d = Daily()
    d.settings["publish"] = {"cache_key": lambda **kw: str(kw["stamp"])[:7]}
    saved_once(stored, d)
    plan = stored.plan(d.workflow(), params=B)
    assert actions(plan)["publish"] == ("run", True)
    assert plan.counts() == {"run": 5, "restore": 2, "skip": 0}


def test_tasks_outside_the_selection_are_not_selected(stored: Runner) -> None:
    d = Daily()
    saved_once(stored, d)
    plan = stored.plan(d.workflow(), params=B, targets=["rows"])
    assert actions(plan) == {
        "extract": ("run", False),
        "rows": ("run", True),
        "report": ("skip", False),
        "stamp": ("skip", False),
        "publish": ("skip", False),
        "config": ("skip", False),
        "other": ("skip", False),
    }
    assert {reasons(plan)[n] for n in ("report", "stamp", "publish", "config", "other")} == {
        "not selected"
    }
    assert plan.counts() == {"run": 2, "restore": 0, "skip": 5}


def test_upstream_taken_from_the_store_by_from_tasks_is_skipped(stored: Runner) -> None:
    d = Daily()
    saved_once(stored, d)
    plan = stored.plan(d.workflow(), params=A, from_tasks=["stamp"])
    for name in ("extract", "rows", "report", "config", "other"):
        assert plan[name].action == "skip", name
    assert plan["stamp"].action == "run"
    assert plan["publish"].action in ("run", "restore")


# -- errors, and nothing written -------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"params": {**A, "rows": 1}}, "'rows'"),
        ({"params": {**A, "nobody": 1}}, "'nobody'"),
        ({"params": {**A, "limit": {1}}}, "'limit'"),
        ({"targets": ["zz"]}, "'zz'"),
        ({"from_tasks": ["rows"]}, "'extract'"),
    ],
    ids=["like-a-task", "unused", "unserializable", "unknown-target", "missing-upstream"],
)
def test_a_plan_refuses_what_a_run_refuses(
    stored: Runner, tmp_path: Path, options: dict[str, Any], message: str
) -> None:
    with pytest.raises(WorkflowValidationError, match=message):
        stored.plan(Daily().workflow(), **{"params": A, **options})
    assert stored_state(tmp_path) == {}


# The plan loads a JSON store's records as a run does, refusing another workflow's names.
def test_a_plan_refuses_a_json_file_whose_task_names_another_workflow_holds(
    form: tuple[type, bool], backend: str, tmp_path: Path
) -> None:
    runner = Runner(dict(BUILT_IN)["json"](tmp_path), *form, backend)
    other = Workflow("other")
    other.add_task(Task("extract", lambda: 1))
    runner.run(other)
    with pytest.raises(StateStoreError, match=r"'extract'.*'other'.*'daily'") as ran:
        runner.run(Daily().workflow(), params=A)
    with pytest.raises(StateStoreError) as planned:
        runner.plan(Daily().workflow(), params=A)
    assert str(planned.value) == str(ran.value)


def test_a_plan_writes_nothing(stored: Runner, store: Any, tmp_path: Path) -> None:
    d = Daily()
    d.settings["other"] = {"cache_ttl": 3600}
    saved_once(stored, d)
    store.delete_task_state("stamp", workflow="daily")
    age_records(store, "daily", ["other"], timedelta(hours=2))
    before = stored_state(tmp_path)
    assert before
    for options in ({}, {"fresh": True}, {"targets": ["rows"]}, {"fingerprint_code": True}):
        stored.plan(d.workflow(), params=B, **options)
        assert stored_state(tmp_path) == before, options
    assert d.take() == set()


def test_a_plan_creates_no_store_file(stored: Runner, tmp_path: Path) -> None:
    stored.plan(Daily().workflow(), params=A)
    assert stored_state(tmp_path) == {}


def journaled(path: Path, keep_main: bool) -> None:
    """Leave a JSON store as a run killed before it folded its journal into the file
    does: its records in the journal, the file as it was (``keep_main``) or not yet
    written."""
    records = json.loads(path.read_text(encoding="utf-8"))
    journal = path.with_name(path.name + ".journal")
    journal.write_text(json.dumps({"put": records}) + "\n", encoding="utf-8")
    if not keep_main:
        path.unlink()


@pytest.mark.parametrize("keep_main", [False, True], ids=["journal-only", "file-and-journal"])
def test_a_plan_reads_a_json_journal_and_leaves_it_as_it_is(
    form: tuple[type, bool], backend: str, tmp_path: Path, keep_main: bool
) -> None:
    store = dict(BUILT_IN)["json"](tmp_path)
    runner = Runner(store, *form, backend)
    d = Daily()
    saved_once(runner, d)
    journaled(tmp_path / "state.json", keep_main)
    before = stored_state(tmp_path)
    plan = runner.plan(d.workflow(), params=A)
    assert stored_state(tmp_path) == before  # not folded: a plan writes nothing
    assert plan.counts() == {"run": 0, "restore": 7, "skip": 0}  # what the run does:
    log = EventLog()
    runner.run(d.workflow(), params=A, observer=log)
    assert d.take() == set()
    assert {e.task for e in log.of(TaskRestored)} == set(ALL)


@pytest.mark.anyio
async def test_an_awaitable_executor_plans_on_the_callers_loop(tmp_path: Path) -> None:
    d = Daily()
    store = dict(BUILT_IN)["json"](tmp_path)
    await AsyncExecutor(state_store=store).execute(d.workflow(), params=A)
    d.take()
    plan = await AsyncExecutor(state_store=store).plan(d.workflow(), params=B)
    assert plan.counts() == {"run": 5, "restore": 2, "skip": 0}
    assert d.take() == set()


def test_a_plan_prints_as_a_table(tmp_path: Path) -> None:
    d = Daily()
    store = dict(BUILT_IN)["sqlite"](tmp_path)
    SequentialExecutor(store).execute(d.workflow(), params=A)
    text = str(SequentialExecutor(store).plan(d.workflow(), params=B))
    assert "parameter `date` changed" in text
    for name in ALL:
        assert name in text
    assert "5 run" in text
    assert "2 restore" in text
