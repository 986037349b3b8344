"""The public surface: ``__all__`` is exactly what is exported, and everything is documented.

Also the reference's names, signatures, defaults and enum values, spelled as it spells them.
"""

from __future__ import annotations

import importlib.metadata
import inspect
import pathlib
import types
from enum import Enum
from typing import Any

import pytest

import flowweaver
import flowweaver.aio
from flowweaver import (
    AsyncExecutor,
    SequentialExecutor,
    Task,
    TaskStatus,
    ThreadedExecutor,
    Workflow,
    WorkflowStatus,
    task,
)

PUBLIC_MODULES = [flowweaver, flowweaver.aio]

REFERENCE_NAMES = {
    "Workflow",
    "Task",
    "task",
    "BaseExecutor",
    "SequentialExecutor",
    "ThreadedExecutor",
    "AsyncExecutor",
    "TaskStatus",
    "WorkflowStatus",
    "WorkflowExecutionError",
    "TaskExecutionError",
    "BaseStateStore",
    "JSONStateStore",
    "SQLiteStateStore",
}


def _exported(module: types.ModuleType) -> set[str]:
    """Public names bound in ``module``, submodules aside."""
    return {
        name
        for name, value in vars(module).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }


@pytest.mark.parametrize("module", PUBLIC_MODULES, ids=lambda m: m.__name__)
def test_all_matches_what_the_module_exports(module: types.ModuleType) -> None:
    declared = set(module.__all__)
    assert len(declared) == len(module.__all__), "duplicates in __all__"
    # Read first: a name imported on first use (the module's __getattr__) is bound then.
    for name in module.__all__:
        assert hasattr(module, name), name
    assert declared - {"__version__"} == _exported(module)


@pytest.mark.parametrize("module", PUBLIC_MODULES, ids=lambda m: m.__name__)
def test_all_is_sorted(module: types.ModuleType) -> None:
    assert list(module.__all__) == sorted(module.__all__)


def test_star_import_gives_exactly_all() -> None:
    namespace: dict[str, Any] = {}
    exec("from flowweaver import *", namespace)
    assert set(namespace) - {"__builtins__"} == set(flowweaver.__all__)


def _documented(obj: Any) -> bool:
    doc = inspect.getdoc(obj)
    return bool(doc and doc.strip())


def _own_doc(cls: type) -> str | None:
    doc = cls.__dict__.get("__doc__")
    # dataclasses write "Name(field: type, ...)" when a class has no docstring of its own
    if doc and doc.startswith(f"{cls.__name__}("):
        return None
    return doc


@pytest.mark.parametrize("module", PUBLIC_MODULES, ids=lambda m: m.__name__)
def test_every_public_name_is_documented(module: types.ModuleType) -> None:
    assert _documented(module)
    missing = []
    for name in module.__all__:
        if name == "__version__":
            continue
        obj = getattr(module, name)
        if inspect.isclass(obj):
            if not _own_doc(obj):
                missing.append(name)
                continue
            if issubclass(obj, Enum):
                continue
            for attr, value in vars(obj).items():
                if attr.startswith("_"):
                    continue
                if isinstance(value, (classmethod, staticmethod)):
                    value = value.__func__
                if (inspect.isfunction(value) or isinstance(value, property)) and not _documented(
                    value
                ):
                    missing.append(f"{name}.{attr}")
        elif not _documented(obj):
            missing.append(name)
    assert missing == []


def test_version_matches_the_installed_distribution() -> None:
    assert flowweaver.__version__ == "0.3.2"
    assert importlib.metadata.version("flowweaver") == flowweaver.__version__


def test_package_ships_py_typed() -> None:
    assert (pathlib.Path(flowweaver.__file__).parent / "py.typed").is_file()


def test_private_modules_start_with_an_underscore() -> None:
    package = pathlib.Path(flowweaver.__file__).parent
    # flowweaver.otel: the [otel] extra's one name, importable only with OpenTelemetry
    public = {"__init__.py", "aio.py", "otel.py"}
    for path in package.rglob("*.py"):
        relative = path.relative_to(package)
        if relative.name in public and len(relative.parts) == 1:
            continue
        assert any(part.startswith("_") for part in relative.parts), relative


def test_reference_names_are_exported() -> None:
    missing = REFERENCE_NAMES - set(flowweaver.__all__)
    assert missing == set()


def test_aio_has_the_awaitable_executors_and_stores() -> None:
    expected = {"AsyncExecutor", "SequentialExecutor", "ThreadedExecutor"}
    assert expected <= set(flowweaver.aio.__all__)
    # every awaitable name has a blocking namesake (or is the same class)
    assert set(flowweaver.aio.__all__) <= set(flowweaver.__all__)


def _params(obj: Any) -> list[tuple[str, Any]]:
    return [
        (p.name, p.default)
        for p in inspect.signature(obj).parameters.values()
        if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD and p.name != "self"
    ]


def test_reference_signatures_and_defaults() -> None:
    empty = inspect.Parameter.empty
    assert _params(Workflow) == [("name", empty), ("description", None)]
    assert _params(Workflow.add_task) == [("task_or_func", empty), ("depends_on", None)]
    assert _params(Workflow.execute) == [("executor", empty)]
    assert _params(Workflow.get_task) == [("name", empty)]
    assert _params(Workflow.clear_results) == []
    assert _params(Task) == [
        ("name", empty),
        ("func", empty),
        ("retries", 0),
        ("timeout", None),
        ("callbacks", None),
    ]
    assert _params(Task.execute) == [("context", None)]
    assert _params(SequentialExecutor) == [("state_store", None)]
    assert _params(ThreadedExecutor) == [("max_workers", 4), ("state_store", None)]
    assert _params(AsyncExecutor) == [("max_concurrent", 50), ("state_store", None)]
    assert _params(flowweaver.JSONStateStore) == [("store_path", empty), ("pretty_print", True)]
    assert _params(flowweaver.SQLiteStateStore) == [
        ("db_path", empty),
        ("enable_gc", True),
        ("gc_days", 30),
    ]
    decorator = inspect.signature(task).parameters
    for name, default in (("name", None), ("retries", 0), ("timeout", None), ("callbacks", None)):
        assert decorator[name].default == default


def test_reference_properties_exist() -> None:
    wf = Workflow("p", "d")
    for attr in ("name", "description", "tasks", "status"):
        assert hasattr(wf, attr)
    t = Task("t", lambda: None)
    for attr in ("name", "status", "result", "error", "retries"):
        assert hasattr(t, attr)
    assert hasattr(SequentialExecutor(), "state_store")


def test_status_enums_have_the_reference_values() -> None:
    assert {s.name: s.value for s in TaskStatus} == {
        "PENDING": "PENDING",
        "RUNNING": "RUNNING",
        "COMPLETED": "COMPLETED",
        "FAILED": "FAILED",
        "RETRYING": "RETRYING",
        "SKIPPED": "SKIPPED",
    }
    # the reference's four, then CANCELLED (a run stopped before its end; issue 9)
    assert [s.value for s in WorkflowStatus] == [
        "IDLE",
        "RUNNING",
        "COMPLETED",
        "FAILED",
        "CANCELLED",
    ]


def test_event_classes_form_one_family() -> None:
    from flowweaver import (
        RunEvent,
        RunFinished,
        RunStarted,
        TaskCancelled,
        TaskCompleted,
        TaskEvent,
        TaskFailed,
        TaskRecomputed,
        TaskRestored,
        TaskRetrying,
        TaskSkipped,
        TaskStarted,
    )

    for cls in (RunStarted, RunFinished, TaskEvent):
        assert issubclass(cls, RunEvent)
    for cls in (
        TaskStarted,
        TaskRetrying,
        TaskCompleted,
        TaskFailed,
        TaskSkipped,
        TaskRestored,
        TaskCancelled,
        TaskRecomputed,
    ):
        assert issubclass(cls, TaskEvent)
    event = TaskRestored("wf", 1.0, "t")
    assert (event.workflow, event.timestamp, event.task) == ("wf", 1.0, "t")
    with pytest.raises(AttributeError):
        event.task = "other"  # type: ignore[misc]


def test_library_logs_to_a_null_handler_by_default() -> None:
    import logging

    handlers = logging.getLogger("flowweaver").handlers
    assert any(isinstance(h, logging.NullHandler) for h in handlers)


def test_workflow_locked_error_is_a_state_store_error() -> None:
    assert issubclass(flowweaver.WorkflowLockedError, flowweaver.StateStoreError)
    assert "WorkflowLockedError" in flowweaver.__all__


def test_the_otel_module_exports_only_the_tracing_observer() -> None:
    import flowweaver.otel

    assert flowweaver.otel.__all__ == ["TracingObserver"]
