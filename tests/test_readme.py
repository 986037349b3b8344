"""The README's Python examples run as written (in one namespace, in a scratch folder)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)


def test_the_readme_has_python_examples() -> None:
    assert len(python_blocks()) >= 3


def test_every_python_example_in_the_readme_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, Any] = {"__name__": "readme"}
    ran = 0
    for block in python_blocks():
        if "distributed" in block or "DaskExecutor" in block:
            continue  # needs a cluster: tests/test_dask*.py cover it
        exec(compile(block, "README.md", "exec"), namespace)
        ran += 1
    assert ran >= 3
    out = capsys.readouterr().out
    assert "{'processed': 'ALICE'}" in out
    assert "{'name': 'Alice'}" in out
