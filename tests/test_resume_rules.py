"""Resume with trigger rules and skips on purpose, under every store.

A task that raised ``Skip`` is restored like a completed one (its record is SKIPPED with
a token) and decided again when an upstream task runs again; a task skipped by a rule is
saved as SKIPPED with its reason and runs next time if it may.
"""

from __future__ import annotations

from typing import Any

import pytest

from flowweaver import (
    SKIPPED,
    SequentialExecutor,
    Skip,
    Task,
    TaskRestored,
    TaskStatus,
    ThreadedExecutor,
    Workflow,
    WorkflowExecutionError,
)
from tests.helpers import EventLog
from tests.test_store_resume import STORES

# The reference's five methods (a user's store) keep neither versions nor the token that
# tells a skip on purpose from one by a rule: there the task is simply asked again.
OUR_STORES = [(name, make) for name, make in STORES if not name.startswith("user")]


@pytest.fixture(params=OUR_STORES, ids=[name for name, _ in OUR_STORES])
def store(request: pytest.FixtureRequest, tmp_path: Any) -> Any:
    return request.param[1](tmp_path)


def branch(calls: list[str], source_version: str = "1", fail: bool = False) -> Workflow:
    def source() -> int:
        calls.append("source")
        return int(source_version)  # a new version returns a new value

    def check(source: int) -> None:
        calls.append("check")
        raise Skip("no new data")

    def load(check: Any) -> str:
        calls.append("load")
        return "loaded"

    def publish(check: Any) -> str:
        calls.append("publish")
        if fail:
            raise ValueError("offline")
        return "published" if check is SKIPPED else "?"

    wf = Workflow("branch")
    wf.add_task(Task("source", source, version=source_version))
    wf.add_task(Task("check", check), depends_on=["source"])
    wf.add_task(Task("load", load), depends_on=["check"])
    wf.add_task(Task("publish", publish, trigger="none_failed"), depends_on=["check"])
    return wf


@pytest.mark.parametrize("executor_cls", [SequentialExecutor, ThreadedExecutor])
def test_a_skip_on_purpose_is_restored_and_decided_again_when_upstream_runs_again(
    store: Any, executor_cls: type
) -> None:
    calls: list[str] = []
    with pytest.raises(WorkflowExecutionError):
        executor_cls(state_store=store).execute(branch(calls, fail=True))
    assert calls == ["source", "check", "publish"]

    calls.clear()
    log = EventLog()
    wf = branch(calls)
    executor_cls(state_store=store, observer=log).execute(wf)
    assert calls == ["publish"]  # the skip stands: check is not asked again
    assert {e.task for e in log.of(TaskRestored)} == {"source", "check"}
    statuses = {t.name: t.status for t in wf.tasks}
    assert statuses == {
        "source": TaskStatus.COMPLETED,
        "check": TaskStatus.SKIPPED,
        "load": TaskStatus.SKIPPED,
        "publish": TaskStatus.COMPLETED,
    }

    calls.clear()
    executor_cls(state_store=store).execute(branch(calls))
    assert calls == []

    calls.clear()
    executor_cls(state_store=store).execute(branch(calls, source_version="2"))
    # check is decided again, and skips again: publish receives what it was saved with
    # (SKIPPED, from the same check), so it stands (early cut-off).
    assert calls == ["source", "check"]


def test_skips_are_saved_with_their_reasons(tmp_path: Any) -> None:
    from flowweaver import JSONStateStore

    store = JSONStateStore(str(tmp_path / "state.json"))
    calls: list[str] = []
    SequentialExecutor(state_store=store).execute(branch(calls))
    check = store.load_task_state("check")
    load = store.load_task_state("load")
    assert check is not None
    assert load is not None
    assert (check["status"], check["error"]) == ("SKIPPED", "no new data")
    assert check["token"] is not None  # on purpose: restorable
    assert (load["status"], load["error"]) == ("SKIPPED", "upstream task 'check' was skipped")
    assert load["token"] is None  # decided by a rule: decided again next time
