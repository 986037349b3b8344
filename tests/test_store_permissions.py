"""A store in a folder without write permission fails clearly, in both forms, both stores.

Root ignores permission bits, so as root the check runs in a child process stripped of
that power (``setpriv`` drops CAP_DAC_OVERRIDE); otherwise it runs here.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

CHECK = r"""
import sys, anyio
from datetime import datetime, timezone
from flowweaver import JSONStateStore, SQLiteStateStore, StateStoreError, TaskStatus
from flowweaver import aio
from flowweaver._store._sessions import open_session

folder = sys.argv[1]
now = datetime.now(timezone.utc)
failures = []

def expect_error(label, call):
    try:
        call()
    except StateStoreError as exc:
        if "permission" not in str(exc) or folder not in str(exc):
            failures.append(f"{label}: unclear message: {exc}")
    else:
        failures.append(f"{label}: no error")

async def via_session(store):
    session = await open_session(store)
    try:
        await session.load("wf", ["a"])
    finally:
        await session.aclose()

for cls, name in ((JSONStateStore, "s.json"), (SQLiteStateStore, "s.db")):
    store = cls(f"{folder}/{name}")
    expect_error(f"{cls.__name__}.save_task_state",
                 lambda: store.save_task_state("a", TaskStatus.COMPLETED, 1, None, now))
    expect_error(f"{cls.__name__}.list_all_tasks", store.list_all_tasks)
for cls, name in ((aio.JSONStateStore, "s.json"), (aio.SQLiteStateStore, "s.db")):
    for backend in ("asyncio", "trio"):
        store = cls(f"{folder}/{name}")
        expect_error(f"aio.{cls.__name__} on {backend}",
                     lambda: anyio.run(store.list_all_tasks, backend=backend))
        expect_error(f"aio.{cls.__name__} session on {backend}",
                     lambda: anyio.run(via_session, store, backend=backend))
print("\n".join(failures) or "ok")
"""


@pytest.mark.slow
def test_a_folder_without_write_permission_is_a_clear_error(tmp_path: Path) -> None:
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    command = [sys.executable, "-c", CHECK, str(folder)]
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root without setpriv: permission bits cannot be tested")
        command = [setpriv, "--bounding-set", "-dac_override,-dac_read_search", *command]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    finally:
        folder.chmod(0o755)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
    assert list(folder.iterdir()) == []
