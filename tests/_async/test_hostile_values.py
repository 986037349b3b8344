"""Whatever a task returns or raises fails that task alone, never the run.

An exception whose ``__str__`` raises, a result JSON cannot hold because Python will not
even write it out (an int of more than 4,300 digits), a result whose ``__eq__`` or
``__class__`` raises: the task is ``FAILED`` with a clear error, independent tasks
complete, and the run raises :class:`WorkflowExecutionError` as for any failure.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from flowweaver import (
    StateSerializationError,
    Task,
    TaskStatus,
    Workflow,
    WorkflowExecutionError,
    WorkflowStatus,
)
from flowweaver.aio import JSONStateStore, SQLiteStateStore
from tests.helpers import async_raising, final_statuses


class Unprintable(Exception):
    """An exception that cannot be turned into text at all."""

    def __str__(self) -> str:
        raise RuntimeError("no str for you")

    def __repr__(self) -> str:
        raise RuntimeError("no repr either")


class NotAStr(Exception):
    def __str__(self) -> Any:
        return 42  # str() raises TypeError


class Incomparable(dict):  # type: ignore[type-arg]
    """JSON writes it as a dict; comparing it with the copy read back raises."""

    def __eq__(self, other: object) -> bool:
        raise RuntimeError("no comparing")

    def __ne__(self, other: object) -> bool:
        raise RuntimeError("no comparing")

    __hash__ = None  # type: ignore[assignment]


class Faceless:
    """A result that cannot say what class it is."""

    @property  # type: ignore[misc]
    def __class__(self) -> type:
        raise RuntimeError("no class")

    def __repr__(self) -> str:
        raise RuntimeError("no repr")

    def __bool__(self) -> bool:
        raise RuntimeError("no bool")


def _raise(exc: BaseException) -> Any:
    def raising() -> None:
        raise exc

    return raising


def _store(kind: str | None, tmp_path: Path) -> Any:
    if kind == "json":
        return JSONStateStore(tmp_path / "state.json")
    if kind == "sqlite":
        return SQLiteStateStore(tmp_path / "state.db")
    return None


STORES = [None, "json", "sqlite"]


def _workflow(bad: Any) -> Workflow:
    wf = Workflow("hostile")
    wf.add_task(Task("bad", bad))
    wf.add_task(Task("after_bad", lambda bad: bad), depends_on=["bad"])
    wf.add_task(Task("other", lambda: "fine"))
    wf.add_task(Task("after_other", lambda other: other + "!"), depends_on=["other"])
    return wf


async def _run_expecting_failure(executor: Any, wf: Workflow) -> WorkflowExecutionError:
    with pytest.raises(WorkflowExecutionError) as info:
        await executor.execute(wf)
    assert final_statuses(wf) == {
        "bad": TaskStatus.FAILED,
        "after_bad": TaskStatus.SKIPPED,
        "other": TaskStatus.COMPLETED,
        "after_other": TaskStatus.COMPLETED,
    }
    assert wf.get_task("after_other").result == "fine!"  # type: ignore[union-attr]
    assert wf.status is WorkflowStatus.FAILED
    assert info.value.failed_tasks == ["bad"]
    return info.value


@pytest.mark.anyio
@pytest.mark.parametrize("store_kind", STORES)
@pytest.mark.parametrize(
    ("exc", "note"),
    [
        (Unprintable(), "Unprintable (its message could not be read: RuntimeError)"),
        (NotAStr(), "NotAStr (its message could not be read: TypeError)"),
    ],
    ids=["str_raises", "str_not_a_str"],
)
async def test_an_exception_that_cannot_be_printed_fails_its_task_alone(
    make_executor: Any, store_kind: str | None, tmp_path: Path, exc: Exception, note: str
) -> None:
    store = _store(store_kind, tmp_path)
    err = await _run_expecting_failure(make_executor(state_store=store), _workflow(_raise(exc)))
    assert err.errors["bad"] is exc
    assert note in str(err)
    assert note in str(err.__cause__)
    if store is not None:
        saved = await store.load_task_state("bad")
        assert saved["status"] == "FAILED"
        assert note in saved["error"]


@pytest.mark.anyio
async def test_an_async_task_raising_an_unprintable_exception_fails_alone(
    make_executor: Any, tmp_path: Path
) -> None:
    store = JSONStateStore(tmp_path / "state.json")
    wf = _workflow(async_raising(Unprintable()))
    err = await _run_expecting_failure(make_executor(state_store=store), wf)
    assert "its message could not be read" in str(err)


@pytest.mark.anyio
@pytest.mark.parametrize("store_kind", ["json", "sqlite"])
@pytest.mark.parametrize(
    ("make", "why"),
    [
        (lambda: 10**5000, "Exceeds the limit"),
        (lambda: {"rows": [10**5000]}, "Exceeds the limit"),
        (lambda: Incomparable(a=1), "no comparing"),
        (Faceless, "RuntimeError"),
    ],
    ids=["huge_int", "nested_huge_int", "eq_raises", "class_raises"],
)
async def test_a_result_the_store_cannot_take_fails_its_task_alone(
    make_executor: Any, store_kind: str, tmp_path: Path, make: Any, why: str
) -> None:
    store = _store(store_kind, tmp_path)
    err = await _run_expecting_failure(make_executor(state_store=store), _workflow(make))
    cause = err.errors["bad"]
    assert isinstance(cause, StateSerializationError)
    assert "'bad'" in str(cause)
    assert why in str(cause)
    assert (await store.load_task_state("other"))["status"] == "COMPLETED"


@pytest.mark.anyio
@pytest.mark.parametrize(
    "make", [lambda: 10**5000, lambda: Incomparable(a=1), Faceless], ids=["int", "eq", "class"]
)
async def test_without_a_store_any_result_completes(make_executor: Any, make: Any) -> None:
    value = make()
    wf = Workflow("hostile")
    wf.add_task(Task("odd", lambda: value))
    wf.add_task(Task("other", lambda: 1))
    await make_executor().execute(wf)
    assert wf.status is WorkflowStatus.COMPLETED
    assert wf.get_task("odd").result is value  # type: ignore[union-attr]
