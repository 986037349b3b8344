"""The API reference's examples that need no state store, run as written.

Each test body is the reference's code block; the only changes are network calls replaced
by local functions (marked ``# local stand-in``) and asserts added after the example.
The stores' examples belong to the state store issue. The reference's multi-stage
pipeline lives in ``examples/etl_pipeline.py`` (without its store) and runs here too.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_workflow_constructor_example() -> None:
    from flowweaver import Workflow

    workflow = Workflow(name="data_pipeline", description="ETL pipeline for customer data")

    assert workflow.name == "data_pipeline"


def _add_task_example() -> Any:
    from flowweaver import Task, Workflow, task

    workflow = Workflow("example")

    # Method 1: Task object
    def fetch_data():  # type: ignore[no-untyped-def]
        return {"count": 100}

    workflow.add_task(Task("fetch", fetch_data), depends_on=[])

    # Method 2: @task decorator
    @task(retries=2)
    def process_data(fetch=None):  # type: ignore[no-untyped-def]
        return {"processed": fetch["count"] * 2}

    workflow.add_task(process_data, depends_on=["fetch"])
    return workflow


def test_add_task_execute_get_task_and_properties_examples(
    capsys: pytest.CaptureFixture[str],
) -> None:
    workflow = _add_task_example()

    from flowweaver import SequentialExecutor

    executor = SequentialExecutor()
    workflow.execute(executor)

    task = workflow.get_task("fetch")
    print(task.result)  # Access task result

    print(f"Workflow: {workflow.name}")
    print(f"Tasks: {len(workflow.tasks)}")
    print(f"Status: {workflow.status}")

    workflow.clear_results()  # Free memory after workflow completes

    out = capsys.readouterr().out.splitlines()
    assert out == [
        "{'count': 100}",
        "Workflow: example",
        "Tasks: 2",
        "Status: WorkflowStatus.COMPLETED",
    ]
    assert workflow.get_task("process_data").result is None  # cleared
    assert workflow.get_task("process_data").status.value == "COMPLETED"


def test_add_task_example_passes_fetch_result_by_name() -> None:
    from flowweaver import SequentialExecutor

    workflow = _add_task_example()
    SequentialExecutor().execute(workflow)
    assert workflow.get_task("process_data").result == {"processed": 200}


def test_task_constructor_and_execute_examples(capsys: pytest.CaptureFixture[str]) -> None:
    from flowweaver import Task

    logged: list[Any] = []

    def log_result(t):  # type: ignore[no-untyped-def]  # local stand-in
        logged.append((t.name, t.result))

    def fetch_api():  # type: ignore[no-untyped-def]
        """Fetch data from API"""
        return {"data": [1, 2, 3]}  # local stand-in for requests.get(...).json()

    task = Task(
        name="api_fetch",
        func=fetch_api,
        retries=3,  # Retry 3 times on failure
        timeout=30,  # Max 30 seconds
        callbacks=[log_result],  # Call log_result after completion
    )

    # Usually handled by executor, but can call directly:
    result = task.execute(context={"upstream_task": {"data": 100}})

    from flowweaver import TaskStatus

    task.execute()

    if task.status == TaskStatus.COMPLETED:
        print(f"Result: {task.result}")
    elif task.status == TaskStatus.FAILED:
        print(f"Error: {task.error}")

    assert result == {"data": [1, 2, 3]}
    assert capsys.readouterr().out == "Result: {'data': [1, 2, 3]}\n"
    assert logged == [("api_fetch", {"data": [1, 2, 3]})] * 2


def test_task_decorator_example() -> None:
    from flowweaver import Workflow, task

    # Define decorated function
    @task(retries=2, timeout=30)
    def fetch_user(user_id: int):  # type: ignore[no-untyped-def]
        """Fetch user from database"""
        # This is a regular Python function
        return {"id": user_id, "name": f"User {user_id}"}

    # Unit test (decorator preserves callability)
    result = fetch_user(123)
    assert result["name"] == "User 123"  # ✓ Works!

    # Use in workflow
    workflow = Workflow("user_pipeline")
    workflow.add_task(fetch_user)  # Works with decorated functions

    assert workflow.get_task("fetch_user").retries == 2


def test_xcom_example(capsys: pytest.CaptureFixture[str]) -> None:
    from flowweaver import SequentialExecutor, Workflow, task

    @task()
    def fetch_data():  # type: ignore[no-untyped-def]
        return {"user_id": 1, "name": "Alice"}

    @task()
    def process_data(fetch_data=None):  # type: ignore[no-untyped-def]  # Receives result of fetch_data
        # fetch_data contains: {"user_id": 1, "name": "Alice"}
        return {"processed": fetch_data["name"].upper()}

    workflow = Workflow("example")
    workflow.add_task(fetch_data)
    workflow.add_task(process_data, depends_on=["fetch_data"])

    executor = SequentialExecutor()
    executor.execute(workflow)

    print(workflow.get_task("process_data").result)
    # Output: {"processed": "ALICE"}

    assert capsys.readouterr().out == "{'processed': 'ALICE'}\n"


def test_threaded_executor_example_without_its_store() -> None:
    # as in the reference, with the JSONStateStore left out (stores come later)
    from flowweaver import Task, ThreadedExecutor, Workflow

    workflow = Workflow("parallel_io")

    def fetch_url(url):  # type: ignore[no-untyped-def]
        return len(url)  # local stand-in for len(requests.get(url).text)

    for i in range(10):
        workflow.add_task(Task(f"fetch_{i}", lambda u=f"https://example.com/{i}": fetch_url(u)))

    # Use thread pool for concurrent I/O
    executor = ThreadedExecutor(max_workers=8)

    executor.execute(workflow)

    assert [workflow.get_task(f"fetch_{i}").result for i in range(10)] == [21] * 10


def test_sequential_executor_example_without_its_store() -> None:
    from flowweaver import SequentialExecutor, Task, Workflow

    workflow = Workflow("sequential_example")
    workflow.add_task(Task("step_1", lambda: 10))
    workflow.add_task(Task("step_2", lambda: 20), depends_on=["step_1"])

    executor = SequentialExecutor()

    executor.execute(workflow)

    assert workflow.get_task("step_2").result == 20


def test_async_executor_example() -> None:
    import asyncio

    from flowweaver import AsyncExecutor, Task, Workflow

    workflows: list[Any] = []  # added to look at the result

    async def main():  # type: ignore[no-untyped-def]
        workflow = Workflow("async_example")

        async def async_task():  # type: ignore[no-untyped-def]
            await asyncio.sleep(1)
            return "result"

        workflow.add_task(Task("async_1", async_task))

        executor = AsyncExecutor(max_concurrent=50)
        await executor.execute(workflow)
        workflows.append(workflow)

    asyncio.run(main())

    assert workflows[0].get_task("async_1").result == "result"


def test_task_status_example(capsys: pytest.CaptureFixture[str]) -> None:
    from flowweaver import Task, TaskStatus

    task = Task("example", lambda: 42)
    task.execute()

    if task.status == TaskStatus.COMPLETED:
        print(f"✓ Success: {task.result}")
    elif task.status == TaskStatus.FAILED:
        print(f"✗ Failed: {task.error}")

    assert capsys.readouterr().out == "✓ Success: 42\n"


def test_workflow_execution_error_example(capsys: pytest.CaptureFixture[str]) -> None:
    from flowweaver import SequentialExecutor, Task, Workflow, WorkflowExecutionError

    workflow = Workflow("example")
    workflow.add_task(Task("fail", lambda: 1 / 0))  # Division by zero

    executor = SequentialExecutor()
    try:
        executor.execute(workflow)
    except WorkflowExecutionError as e:
        print(f"Workflow failed: {e}")
        print(f"Failed task: {e.failed_task}")

    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("Workflow failed: ")
    assert "division by zero" in out[0]
    assert out[1] == "Failed task: fail"


def test_task_execution_error_example(capsys: pytest.CaptureFixture[str]) -> None:
    from flowweaver import Task, TaskExecutionError

    def bad_task():  # type: ignore[no-untyped-def]
        raise ValueError("Intentional error")

    task = Task("bad", bad_task)
    try:
        task.execute()
    except TaskExecutionError as e:
        print(f"Task failed: {e}")
        print(f"Original error: {e.__cause__}")

    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("Task failed: ")
    assert "'bad'" in out[0]
    assert out[1] == "Original error: Intentional error"


@pytest.mark.slow
def test_multi_stage_pipeline_example_script_runs() -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "etl_pipeline.py")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    out = proc.stdout.splitlines()
    assert out[0] == "Loading 2 users to warehouse"
    assert "✓ load_to_warehouse: {'rows_loaded': 2}" in out
    assert len([line for line in out if line.startswith("✓")]) == 4
