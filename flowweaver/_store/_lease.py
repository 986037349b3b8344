"""The run lease: one run of a given workflow on a given store at a time.

Two runs of one workflow on one store would run the same tasks twice and leave the store
a mix of both. A run of a built-in store therefore holds an OS lock (``flock``, or
``msvcrt.locking`` on Windows; see ``_store_io``) on a sidecar file for its whole
duration: ``<store file>.lease-<hash of the workflow name>``, beside the store. The OS drops
the lock when its holder dies, so a killed run never leaves a stale lease (no heartbeats);
every acquisition opens its own descriptor, so two Workflow objects of one name in one
process exclude each other too; and each workflow has its own file, so different workflows
on one store never wait for each other. The holder writes its pid, host and start time
into the file, for the error message of the run that finds it taken. The files stay in
place, which is harmless.

A user's own store (``BaseStateStore`` with the five methods) is not leased: FlowWeaver
does not know where, or what, it is.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import socket
import time
from datetime import datetime, timezone
from pathlib import Path

import anyio

from ._api import WorkflowLockedError
from ._io import _release, _try_lock
from ._records import os_error

_POLL = 0.05


def lease_path(store: Path, workflow: str) -> Path:
    """The lease file of ``workflow`` on the store file ``store`` (its real path, so that
    every spelling of one file shares one lease)."""
    digest = hashlib.sha256(workflow.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    real = Path(os.path.realpath(store))
    return real.with_name(f"{real.name}.lease-{digest}")


def lease_held(store: Path, workflow: str) -> bool:
    """Whether a run of ``workflow`` holds its lease on ``store`` now (True when that
    cannot be told, for example a lease file this process may not open).

    Tried without waiting; a lease found free is let go at once.
    """
    try:
        fd = os.open(lease_path(store, workflow), os.O_RDWR)
    except FileNotFoundError:
        return False  # no run of this workflow ever took it
    except OSError:
        return True
    if _try_lock(fd):
        _release(fd)
        return False
    os.close(fd)
    return True


class Lease:
    """The lease of one run; :meth:`acquire` it before anything runs, :meth:`release`
    it (always) when the run has closed its store."""

    def __init__(self, store: Path, workflow: str) -> None:
        self._store = store
        self._workflow = workflow
        self._path = lease_path(store, workflow)
        self._fd: int | None = None

    async def acquire(self, wait: float | None) -> None:
        """Take the lease, waiting up to ``wait`` seconds (None: as long as it takes) for
        a run that holds it. The wait can be cancelled.

        :raises WorkflowLockedError: naming the holder, when it is still held after
            ``wait`` seconds (at once for 0).
        :raises StateStoreError: when the lease file cannot be made.
        """
        try:
            fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as exc:
            raise os_error(self._path, exc, "lock") from None
        try:
            deadline = time.monotonic() + (math.inf if wait is None else wait)
            while not _try_lock(fd):
                if time.monotonic() >= deadline:
                    raise self._locked(wait)
                await anyio.sleep(_POLL)
            self._note_holder(fd)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd

    def release(self) -> None:
        """Let the lease go (the OS would at the process's exit anyway)."""
        fd, self._fd = self._fd, None
        if fd is not None:
            _release(fd)

    def _note_holder(self, fd: int) -> None:
        holder = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "since": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        data = json.dumps(holder).encode()
        try:
            # After byte 0: on Windows the lock itself covers that byte.
            os.ftruncate(fd, 1)
            os.lseek(fd, 1, os.SEEK_SET)
            os.write(fd, data)
        except OSError:
            pass  # only the error message of a second run would lack the details

    def _locked(self, wait: float | None) -> WorkflowLockedError:
        holder: dict[str, object] = {}
        try:
            with open(self._path, "rb") as f:
                f.seek(1)
                holder = json.loads(f.read() or b"{}")
        except (OSError, ValueError):
            pass
        return WorkflowLockedError(
            self._workflow,
            str(self._store),
            holder.get("pid"),
            holder.get("host"),
            holder.get("since"),
            wait,
        )
