"""The library logs to ``logging.getLogger("flowweaver")`` and prints nothing itself."""

from __future__ import annotations

import logging

import pytest

from flowweaver import (
    ConcurrentExecutor,
    SequentialExecutor,
    Task,
    ThreadedExecutor,
    Workflow,
    WorkflowExecutionError,
)
from tests.helpers import Flaky


def _noisy_workflow() -> Workflow:
    def broken_callback(t: Task) -> None:
        raise RuntimeError("callback broke")

    wf = Workflow("noisy")
    wf.add_task(Task("flaky", Flaky(failures=1), retries=1, callbacks=[broken_callback]))
    wf.add_task(Task("bad", Flaky(failures=5)))
    wf.add_task(Task("after", lambda: None), depends_on=["bad"])
    return wf


@pytest.mark.parametrize("executor_cls", [SequentialExecutor, ThreadedExecutor, ConcurrentExecutor])
def test_run_prints_nothing_and_logs_retries_failures_and_callback_errors(
    executor_cls: type,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    wf = _noisy_workflow()
    with caplog.at_level(logging.DEBUG, logger="flowweaver"), pytest.raises(WorkflowExecutionError):
        executor_cls().execute(wf)
    out, err = capfd.readouterr()
    assert (out, err) == ("", "")
    ours = [r for r in caplog.records if r.name.startswith("flowweaver")]
    assert {r.name for r in ours} == {"flowweaver"}
    messages = [(r.levelno, r.getMessage()) for r in ours]
    assert any(
        level == logging.WARNING and "'flaky'" in m and "retrying" in m for level, m in messages
    )
    assert any(level == logging.ERROR and "'bad' failed" in m for level, m in messages)
    assert any(level == logging.ERROR and "callback" in m for level, m in messages)


def test_unconfigured_logging_writes_nothing_to_stderr(capfd: pytest.CaptureFixture[str]) -> None:
    # without the library's NullHandler, Python's last-resort handler would print warnings
    logger = logging.getLogger("flowweaver")
    root = logging.getLogger()
    saved = root.handlers[:], logger.propagate
    root.handlers.clear()
    logger.propagate = False
    try:
        with pytest.raises(WorkflowExecutionError):
            SequentialExecutor().execute(_noisy_workflow())
    finally:
        root.handlers[:] = saved[0]
        logger.propagate = saved[1]
    assert capfd.readouterr() == ("", "")
