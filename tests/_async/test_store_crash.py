"""Crash safety: a writer killed (SIGKILL) at random moments never loses a returned batch.

A child process (``tests/store_child.py``) saves batches in a loop through
``open_session``, as a run does, printing each batch once ``save`` returned; it is killed
at a random moment, several times over, mid-append, mid-compaction or mid-commit. Each
time the store must open, and hold every batch the child printed.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from flowweaver.aio import JSONStateStore, SQLiteStateStore
from tests.store_helpers import load_json, run_and_kill

# subprocesses and signals: not in the quick `-m "not slow"` run
pytestmark = pytest.mark.slow

KILLS = 4


@pytest.mark.anyio
@pytest.mark.parametrize("durability", ["normal", "fsync"])
@pytest.mark.parametrize("store_cls", [JSONStateStore, SQLiteStateStore])
async def test_a_killed_writer_never_loses_a_batch_whose_save_returned(
    store_cls: type, durability: str, tmp_path: Path, anyio_backend: str
) -> None:
    if durability == "fsync" and anyio_backend == "trio":
        pytest.skip("fsync differs from normal in the store only: one backend is enough")
    # "ordered" saves as "normal" does (it changes when the engine starts dependents:
    # tests/test_crash_resume.py kills runs under each setting).
    path = tmp_path / ("state.json" if store_cls is JSONStateStore else "state.db")
    rng = random.Random(f"{store_cls.__name__}-{anyio_backend}-{durability}")
    durable: set[int] = set()
    start = 0
    for _ in range(KILLS):
        # the child's blocking wait is the point here, not the event loop
        acked = run_and_kill(store_cls, path, anyio_backend, start, rng, durability)
        durable.update(acked)
        store = store_cls(path)
        records = await store.list_records(workflow="wf")
        names = {r.task_name for r in records}
        missing = [n for n in sorted(durable) if f"t{n}-0" not in names or f"t{n}-9" not in names]
        assert not missing, f"batches whose save returned are gone: {missing}"
        if store_cls is JSONStateStore:
            load_json(path)  # the main file is always whole JSON
        start = max(acked, default=start) + 1
    assert len(durable) >= KILLS
