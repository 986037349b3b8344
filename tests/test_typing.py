"""``@task`` keeps the decorated function's signature for type checkers.

mypy's API checks a small snippet: the revealed types must be the functions' own, and a
wrong argument must be an error. If the decorator returned ``Any`` (or lost the
parameters), both would change.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from mypy import api as mypy_api

# mypy's API takes seconds: not in the quick `-m "not slow"` run
pytestmark = pytest.mark.slow

SNIPPET = """
from flowweaver import Task, Workflow, task

@task
def add(x: int, y: int = 1) -> int:
    return x + y

@task(retries=2, timeout=30)
async def fetch(url: str) -> bytes:
    return b""

@task()
def bare() -> None:
    pass

reveal_type(add)
reveal_type(fetch)
reveal_type(bare)
reveal_type(add(2))
reveal_type(Workflow("w").add_task(add))
reveal_type(Task("t", add).status)

add("not an int")
_ = fetch(3)
"""


def test_task_decorator_keeps_signatures_for_mypy(tmp_path: Path) -> None:
    source = tmp_path / "snippet.py"
    source.write_text(textwrap.dedent(SNIPPET))
    stdout, stderr, _ = mypy_api.run(
        [
            str(source),
            "--strict",
            # only the snippet is judged, as for a user's code against an installed
            # flowweaver (`nox -s typecheck` judges the package): with an older dask, the
            # editable install's `from dask._expr import ...` would count against it
            "--follow-imports=silent",
            # the repo's pyproject.toml overrides modules this snippet never imports, which
            # mypy before 1.11 reports as unused sections on stderr
            "--no-warn-unused-configs",
            "--no-incremental",
            "--cache-dir",
            str(tmp_path / "cache"),
            "--no-error-summary",
            "--hide-error-context",
            "--show-error-codes",
        ]
    )
    assert stderr == ""
    # mypy before 1.11 spells builtin types in full ("builtins.int")
    stdout = stdout.replace("builtins.", "")
    lines = [line.split(": ", 1)[1] for line in stdout.splitlines() if ": " in line]
    assert 'note: Revealed type is "def (x: int, y: int =) -> int"' in lines
    assert 'note: Revealed type is "def (url: str) -> typing.Coroutine[Any, Any, bytes]"' in lines
    assert 'note: Revealed type is "def ()"' in lines
    assert 'note: Revealed type is "int"' in lines
    assert 'note: Revealed type is "flowweaver._task.Task"' in lines
    assert 'note: Revealed type is "flowweaver._status.TaskStatus"' in lines
    errors = [line for line in lines if line.startswith("error:")]
    assert errors == [
        'error: Argument 1 to "add" has incompatible type "str"; expected "int"  [arg-type]',
        'error: Argument 1 to "fetch" has incompatible type "int"; expected "str"  [arg-type]',
    ]
