"""FlowWeaver's exceptions: one family, the attributes the reference names, clear messages."""

from __future__ import annotations

import pytest

from flowweaver import (
    CycleError,
    FlowWeaverError,
    TaskExecutionError,
    TaskTimeoutError,
    WorkflowExecutionError,
    WorkflowValidationError,
)


def test_every_error_is_a_flowweaver_error() -> None:
    for cls in (
        CycleError,
        TaskExecutionError,
        TaskTimeoutError,
        WorkflowExecutionError,
        WorkflowValidationError,
    ):
        assert issubclass(cls, FlowWeaverError)
    assert issubclass(FlowWeaverError, Exception)


def test_validation_errors_are_value_errors_and_timeouts_are_timeout_errors() -> None:
    assert issubclass(WorkflowValidationError, ValueError)
    assert issubclass(CycleError, WorkflowValidationError)
    assert issubclass(TaskTimeoutError, TimeoutError)


def test_cycle_error_shows_the_cycle() -> None:
    err = CycleError(["a", "b", "c", "a"])
    assert err.cycle == ["a", "b", "c", "a"]
    assert "a -> b -> c -> a" in str(err)


def test_task_execution_error_names_task_attempts_and_cause() -> None:
    cause = KeyError("k")
    err = TaskExecutionError("load", 3, cause)
    assert (err.task_name, err.attempts) == ("load", 3)
    assert str(err) == "task 'load' failed after 3 attempts: KeyError: 'k'"
    assert "after 1 attempt:" in str(TaskExecutionError("x", 1, cause))


def test_task_timeout_error_names_task_and_limit() -> None:
    err = TaskTimeoutError("slow", 2.5)
    assert (err.task_name, err.timeout) == ("slow", 2.5)
    assert str(err) == "task 'slow' timed out after 2.5 s"


def test_workflow_execution_error_lists_failures_in_order() -> None:
    first = ValueError("one")
    second = RuntimeError("two")
    err = WorkflowExecutionError("wf", {"b": first, "a": second}, ["c", "d"])
    assert err.workflow_name == "wf"
    assert err.failed_task == "b"
    assert err.failed_tasks == ["b", "a"]
    assert err.errors == {"b": first, "a": second}
    assert err.skipped_tasks == ["c", "d"]
    message = str(err)
    assert "workflow 'wf' failed: task 'b' raised ValueError: one" in message
    assert "also failed: a" in message
    assert "skipped: 2" in message


def test_workflow_execution_error_needs_a_failure() -> None:
    with pytest.raises(ValueError, match="at least one failed task"):
        WorkflowExecutionError("wf", {})
