"""A child process for the store tests: saves batches through ``open_session``, as a run.

    python tests/store_child.py MODULE:CLASS PATH BACKEND WORKFLOW PREFIX START COUNT

Saves COUNT batches (forever when COUNT is 0) of ``BATCH`` records named
``{PREFIX}{n}-{i}``, three batches per session, printing ``n`` once ``save`` returned for
batch ``n``. The crash tests kill it at random moments and check that every printed batch
is in the store; the concurrency tests run several at once on one file.

``FW_DURABILITY`` is the store's ``durability`` (default ``normal``).
``FW_COMPACT_MIN_BYTES`` lowers the JSON store's compaction threshold so that a short
run compacts often (and gets killed while compacting, too).
"""

from __future__ import annotations

import importlib
import os
import sys
from datetime import datetime, timezone

import anyio

import flowweaver._store._json_format
from flowweaver import TaskRecord, TaskStatus
from flowweaver._store._sessions import open_session

BATCH = 10
PER_SESSION = 3


async def main(spec: str, path: str, workflow: str, prefix: str, start: int, count: int) -> None:
    module, _, name = spec.partition(":")
    durability = os.environ.get("FW_DURABILITY", "normal")
    store = getattr(importlib.import_module(module), name)(path, durability=durability)
    n = start
    while count == 0 or n < start + count:
        session = await open_session(store)
        try:
            for _ in range(PER_SESSION):
                if count and n >= start + count:
                    break
                records = []
                for i in range(BATCH):
                    task = f"{prefix}{n}-{i}"
                    value = {"n": n, "i": i, "pad": "x" * 100}
                    records.append(
                        TaskRecord(
                            task,
                            TaskStatus.COMPLETED,
                            session.encode(task, value),
                            None,
                            datetime.now(timezone.utc),
                            workflow=workflow,
                            token=f"{task}@{os.getpid()}",
                        )
                    )
                await session.save(workflow, records)
                print(n, flush=True)
                n += 1
        finally:
            await session.aclose()


if __name__ == "__main__":
    spec, path, backend, workflow, prefix, start, count = sys.argv[1:8]
    if "FW_COMPACT_MIN_BYTES" in os.environ:
        flowweaver._store._json_format.COMPACT_MIN_BYTES = int(os.environ["FW_COMPACT_MIN_BYTES"])
    anyio.run(main, spec, path, workflow, prefix, int(start), int(count), backend=backend)
