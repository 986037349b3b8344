"""``cache_ttl`` (a saved result older than it is stale) and ``cache_key`` (a saved result
stands while the key it was saved under is the one its task's arguments give now) under
every executor form, both built-in stores, asyncio and trio.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from flowweaver import (
    SequentialExecutor,
    Task,
    TaskStatus,
    Workflow,
    WorkflowExecutionError,
)
from tests.helpers import EventLog
from tests.run_helpers import BUILT_IN, Runner, age_records
from tests.test_input_resume import A, Daily, restored, results


@pytest.fixture
def store(stored: Runner) -> Any:
    return stored.store


# -- cache_ttl -------------------------------------------------------------------------------


@pytest.mark.parametrize("ttl", [3600, 3600.0, timedelta(hours=1)], ids=["int", "float", "td"])
def test_a_record_older_than_cache_ttl_is_stale(stored: Runner, store: Any, ttl: Any) -> None:
    d = Daily()
    d.settings["extract"] = {"cache_ttl": ttl}
    d.settings["other"] = {"cache_ttl": ttl}
    stored.run(d.workflow(), params=A)
    d.take()
    age_records(store, "daily", ["extract", "other"], timedelta(minutes=30))
    stored.run(d.workflow(), params=A)
    assert d.take() == set()  # younger than the ttl: they stand
    age_records(store, "daily", ["extract", "other"], timedelta(minutes=31))
    log = EventLog()
    stored.run(d.workflow(), params=A, observer=log)
    # both are over an hour old now; extract returned what it did: its dependents stand
    assert d.take() == {"extract", "other"}
    assert restored(log) == {"rows", "report", "stamp", "publish", "config"}
    stored.run(d.workflow(), params=A)
    assert d.take() == set()  # saved anew


def test_a_record_without_cache_ttl_never_expires_by_age(stored: Runner, store: Any) -> None:
    d = Daily()
    stored.run(d.workflow(), params=A)
    d.take()
    age_records(store, "daily", ["extract", "other"], timedelta(days=20))
    stored.run(d.workflow(), params=A)
    assert d.take() == set()


def test_a_tiny_cache_ttl_expires_while_the_test_waits(tmp_path: Path) -> None:
    store = dict(BUILT_IN)["sqlite"](tmp_path)
    d = Daily()
    d.settings["other"] = {"cache_ttl": 0.05}
    SequentialExecutor(store).execute(d.workflow(), params=A)
    d.take()
    time.sleep(0.2)
    SequentialExecutor(store).execute(d.workflow(), params=A)
    assert d.take() == {"other"}


# -- cache_key -------------------------------------------------------------------------------


def month(**kwargs: Any) -> str:
    return str(kwargs["stamp"])[:7]


def test_a_cache_key_restores_while_the_key_is_the_same(stored: Runner) -> None:
    d = Daily()
    d.settings["publish"] = {"cache_key": month}
    stored.run(d.workflow(), params={"date": "2026-11-01", "limit": 1})
    d.take()
    log = EventLog()
    wf = d.workflow()
    stored.run(wf, params={"date": "2026-11-30", "limit": 1}, observer=log)
    # stamp's result changed, but publish's key (the month) did not
    assert d.take() == {"extract", "rows", "stamp"}
    assert "publish" in restored(log)
    assert results(wf)["publish"] == "published 2026-11-01"
    wf = d.workflow()
    stored.run(wf, params={"date": "2026-12-01", "limit": 1})
    assert d.take() == {"extract", "rows", "stamp", "publish"}
    assert results(wf)["publish"] == "published 2026-12-01"


def test_a_cache_key_is_called_with_the_tasks_keyword_arguments(stored: Runner) -> None:
    seen: list[dict[str, Any]] = []

    def key(**kwargs: Any) -> str:
        seen.append(kwargs)
        return "k"

    wf = Workflow("keyed")
    wf.add_task(Task("up", lambda: 2))
    wf.add_task(Task("use", lambda up, factor: up * factor, cache_key=key), depends_on=["up"])
    stored.run(wf, params={"factor": 3})
    assert seen
    assert all(kw == {"up": 2, "factor": 3} for kw in seen)


@pytest.mark.parametrize(
    "key",
    [lambda **kw: 1 / 0, lambda **kw: 42],
    ids=["raises", "not-a-str"],
)
def test_a_bad_cache_key_fails_its_task_naming_it(stored: Runner, key: Callable[..., Any]) -> None:
    d = Daily()
    d.settings["publish"] = {"cache_key": key}
    wf = d.workflow()
    with pytest.raises(WorkflowExecutionError) as info:
        stored.run(wf, params=A)
    assert info.value.failed_tasks == ["publish"]
    assert "cache_key" in f"{info.value} {info.value.errors['publish']}"
    assert {t.name for t in wf.tasks if t.status is TaskStatus.COMPLETED} == {
        "extract",
        "rows",
        "report",
        "stamp",
        "config",
        "other",
    }
