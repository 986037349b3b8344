"""Run parameters: ``execute(wf, params={...})`` injects each by parameter name, as an
upstream result is, into every sync or async task that takes it; bad parameters are refused
before anything runs. Every executor, blocking and awaited, asyncio and trio.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import anyio.lowlevel
import pytest

from flowweaver import (
    AsyncExecutor,
    JSONStateStore,
    PickleSerializer,
    SequentialExecutor,
    SQLiteStateStore,
    Task,
    ThreadedExecutor,
    Workflow,
    WorkflowValidationError,
)
from tests.helpers import EventLog
from tests.run_helpers import (
    Runner,
    store_files,
    stored_state,
)


def pipeline(calls: list[str]) -> Workflow:
    """``extract(date)`` -> ``transform(extract, limit)`` (async) -> ``load(transform,
    date, limit=5)``; ``calls`` logs each call with what it was given."""

    def extract(date: str) -> dict[str, Any]:
        calls.append(f"extract {date}")
        return {"date": date, "rows": 3}

    async def transform(extract: dict[str, Any], limit: int) -> str:
        await anyio.lowlevel.checkpoint()
        calls.append(f"transform {limit}")
        return f"{extract['date']}: {min(extract['rows'], limit)} rows"

    def load(transform: str, date: str, limit: int = 5) -> str:
        calls.append(f"load {date} {limit}")
        return f"{transform} loaded for {date} (limit {limit})"

    wf = Workflow("params")
    wf.add_task(Task("extract", extract))
    wf.add_task(Task("transform", transform), depends_on=["extract"])
    wf.add_task(Task("load", load), depends_on=["transform"])
    return wf


def results(wf: Workflow) -> dict[str, Any]:
    return {t.name: t.result for t in wf.tasks}


EXPECTED = {
    "extract": {"date": "2026-11-30", "rows": 3},
    "transform": "2026-11-30: 2 rows",
    "load": "2026-11-30: 2 rows loaded for 2026-11-30 (limit 2)",
}


def test_params_reach_sync_and_async_tasks_beside_upstream_results(
    form: tuple[type, bool], backend: str
) -> None:
    calls: list[str] = []
    wf = pipeline(calls)
    Runner(None, *form, backend).run(wf, params={"date": "2026-11-30", "limit": 2})
    assert results(wf) == EXPECTED
    assert sorted(calls) == ["extract 2026-11-30", "load 2026-11-30 2", "transform 2"]


def test_a_task_with_a_default_keeps_it_when_no_param_is_given(
    form: tuple[type, bool], backend: str
) -> None:
    calls: list[str] = []
    wf = Workflow("defaults")

    def scale(factor: int = 5) -> int:
        calls.append("scale")
        return factor * 2

    wf.add_task(Task("scale", scale))
    run = Runner(None, *form, backend).run
    run(wf)
    assert results(wf) == {"scale": 10}
    run(wf, params={})
    assert results(wf) == {"scale": 10}
    run(wf, params={"factor": 7})
    assert results(wf) == {"scale": 14}


def test_the_items_of_a_map_receive_the_params_they_take(
    form: tuple[type, bool], backend: str
) -> None:
    wf = Workflow("mapped")
    wf.add_task(Task("src", lambda: [1, 2, 3]))
    wf.add_task(Task("scaled", lambda src, factor: src * factor), map_over="src")
    Runner(None, *form, backend).run(wf, params={"factor": 10})
    assert results(wf)["scaled"] == [10, 20, 30]


@pytest.mark.parametrize("executor_cls", [SequentialExecutor, ThreadedExecutor, AsyncExecutor])
@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_workflow_execute_takes_params_for_every_executor(executor_cls: type, backend: str) -> None:
    calls: list[str] = []
    wf = pipeline(calls)
    wf.execute(executor_cls(backend=backend), params={"date": "2026-11-30", "limit": 2})
    assert results(wf) == EXPECTED


@pytest.mark.anyio
@pytest.mark.parametrize("executor_cls", [AsyncExecutor], ids=["AsyncExecutor"])
async def test_an_awaited_execute_takes_params_on_the_callers_loop(executor_cls: type) -> None:
    calls: list[str] = []
    wf = pipeline(calls)
    await executor_cls().execute(wf, params={"date": "2026-11-30", "limit": 2})
    assert results(wf) == EXPECTED


# -- refused before anything runs --------------------------------------------------------------

GOOD = {"date": "2026-11-30", "limit": 2}
BAD_PARAMS: list[tuple[str, Any, str]] = [
    # (id, params, a regex the message matches: it names the parameter)
    ("named-like-a-task", {**GOOD, "extract": 1}, r"'extract'.*task|task.*'extract'"),
    ("taken-by-no-task", {**GOOD, "dates": "x"}, r"'dates'"),
    ("not-a-mapping", [("date", "2026-11-30")], r"params"),
    ("a-name-not-a-str", {**GOOD, 1: "x"}, r"\bname 1\b|\b1\b.*str"),
]


@pytest.mark.parametrize(
    ("params", "names"), [(p, m) for _, p, m in BAD_PARAMS], ids=[i for i, _, _ in BAD_PARAMS]
)
def test_bad_params_are_refused_before_anything_runs(
    stored: Runner, tmp_path: Path, params: Any, names: str
) -> None:
    calls: list[str] = []
    log = EventLog()
    with pytest.raises(WorkflowValidationError) as info:
        stored.run(pipeline(calls), params=params, observer=log)
    assert re.search(names, str(info.value)), str(info.value)
    assert calls == []
    assert log.events == []  # not even RunStarted
    assert store_files(tmp_path) == {}  # nothing saved: no store file was even created


def test_a_param_the_store_cannot_keep_is_refused_naming_it(stored: Runner, tmp_path: Path) -> None:
    calls: list[str] = []
    log = EventLog()
    with pytest.raises(WorkflowValidationError, match=r"'limit'.*set") as info:
        stored.run(pipeline(calls), params={"date": "2026-11-30", "limit": {1, 2}}, observer=log)
    assert "'date'" not in str(info.value)
    assert calls == []
    assert log.events == []
    # known only once the store is open (its serializer decides): nothing is saved
    assert stored.store.list_all_tasks() == []


def test_a_store_that_saved_before_is_left_as_it_was_by_a_refused_param(
    tmp_path: Path,
) -> None:
    store = JSONStateStore(tmp_path / "state.json")
    calls: list[str] = []
    SequentialExecutor(store).execute(pipeline(calls), params=GOOD)
    before = stored_state(tmp_path)
    with pytest.raises(WorkflowValidationError, match="'limit'"):
        SequentialExecutor(store).execute(pipeline(calls), params={**GOOD, "limit": {2}})
    assert stored_state(tmp_path) == before


def test_without_a_store_any_value_is_a_param(tmp_path: Path) -> None:
    wf = Workflow("values")
    wf.add_task(Task("count", lambda tags: len(tags)))
    SequentialExecutor().execute(wf, params={"tags": {"a", "b"}})
    assert results(wf) == {"count": 2}


@pytest.mark.parametrize("store_cls", [JSONStateStore, SQLiteStateStore])
def test_a_store_with_pickle_keeps_what_pickle_can(tmp_path: Path, store_cls: type) -> None:
    store = store_cls(tmp_path / "state", serializer=PickleSerializer())
    wf = Workflow("values")
    wf.add_task(Task("count", lambda tags: len(tags)))
    SequentialExecutor(store).execute(wf, params={"tags": {"a", "b"}})
    assert results(wf) == {"count": 2}
