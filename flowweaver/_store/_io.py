"""The I/O of the state stores, once in each form: ``AsyncX`` here beside its blocking ``X``.

The store modules are written once, in ``_async/``, and their blocking twins are generated
(``scripts/unasync.py`` strips ``await`` and the ``Async`` prefix). Everything that really
differs between the two forms lives here, so the generated code never asks "am I async?":

* :class:`AsyncFiles` reads and writes through aiofiles; :class:`Files` through ``open``.
* :class:`AsyncDatabase` and :class:`Database` (SQLite) live in ``_store_db``.
* :class:`AsyncFileLock` waits for the store's lock file with ``anyio.sleep``;
  :class:`FileLock` with ``time.sleep``. Both try the OS lock without blocking, so a
  waiting coroutine can be cancelled and never holds a thread.
* :func:`give_up_after` bounds every wait for another holder's lock, for a run that was
  interrupted and only has a few seconds left to save its last records.
* :class:`AsyncShield` keeps a cleanup step from being cancelled; :class:`Shield` does
  nothing (a blocking call cannot be cancelled halfway).

aiosqlite and aiofiles are bound to asyncio: they hand results back through asyncio
futures. Under trio the async forms do the blocking form's work in a worker thread
instead (``anyio.to_thread.run_sync`` with a limiter of their own, so a store's I/O never
waits behind the process-wide thread pool).

The file lock is ``flock`` on POSIX and ``msvcrt.locking`` on Windows, written here in a
few lines rather than taken from the ``filelock`` package: every acquisition opens its
own descriptor, so it excludes other threads of this process as well as other processes,
it can be released from any thread, and the non-blocking try lets the async form wait
with ``anyio.sleep`` under asyncio and trio alike. The OS drops the lock when its holder
dies, so a killed run never leaves a stale lock behind.
"""

from __future__ import annotations

import os
import secrets
import stat
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from types import SimpleNamespace
from typing import Any, NamedTuple, TypeVar

import anyio
import anyio.lowlevel
import anyio.to_thread

from ._api import StateStoreError
from ._records import os_error

T = TypeVar("T")

#: How long a store waits for another process or thread to release its lock file.
LOCK_TIMEOUT = 60.0
_FIRST_POLL = 0.001
_LAST_POLL = 0.05


# When waits for another holder's lock must end (time.monotonic()), None: no bound. A
# context variable, because the waits happen deep in the stores, in worker threads
# (anyio copies the caller's context into them) or inline on the loop thread.
_GIVE_UP_AT: ContextVar[float | None] = ContextVar("flowweaver_give_up_at", default=None)


@contextmanager
def give_up_after(seconds: float) -> Iterator[None]:
    """Within the block, a wait for the store's lock (the lock file, or SQLite's write
    lock) ends after at most ``seconds`` with the store's usual "locked" error.

    A thread cannot be interrupted, so an interrupted run cannot abandon a write that
    waits for another process: instead the wait itself gives up, and nothing of the batch
    is written (a batch is all or nothing).
    """
    token = _GIVE_UP_AT.set(time.monotonic() + seconds)
    try:
        yield
    finally:
        _GIVE_UP_AT.reset(token)


def wait_deadline(patience: float) -> float:
    """The ``time.monotonic()`` at which a wait for a lock that starts now must end:
    after ``patience`` s, or sooner inside :func:`give_up_after`."""
    deadline = time.monotonic() + patience
    give_up = _GIVE_UP_AT.get()
    return deadline if give_up is None else min(deadline, give_up)


def running_on_asyncio() -> bool:
    """True when the running async library is asyncio (False under trio)."""
    sniffio = sys.modules.get("sniffio")
    if sniffio is None:  # trio imports sniffio, so without it this is not trio
        return True
    try:
        return bool(sniffio.current_async_library() == "asyncio")
    except Exception:
        return False


class StoreThread:
    """Runs blocking calls on worker threads, one at a time, under a limiter of its own."""

    def __init__(self) -> None:
        self._limiter: anyio.CapacityLimiter | None = None

    async def run(self, func: Callable[..., T], *args: Any) -> T:
        # Made on first use, inside the run: a limiter belongs to one event loop.
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(1)
        return await anyio.to_thread.run_sync(func, *args, limiter=self._limiter)


# -- shielding -------------------------------------------------------------------------------


class AsyncShield:
    """``with AsyncShield():`` the block runs to its end even if the caller is cancelled."""

    def __enter__(self) -> None:
        self._scope = anyio.CancelScope(shield=True)
        self._scope.__enter__()

    def __exit__(self, *exc: Any) -> bool | None:
        return self._scope.__exit__(*exc)


class Shield:
    """The blocking twin of :class:`AsyncShield`: a blocking call is never cancelled."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: Any) -> None:
        return None


# -- the lock file ---------------------------------------------------------------------------

if sys.platform == "win32":
    import msvcrt

    def _try_lock(fd: int) -> bool:
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

    def _unlock(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)


def lock_path(store: Path) -> Path:
    """The lock file of a store file: beside it, named after it."""
    return store.with_name(store.name + ".lock")


def _open_lock(store: Path) -> int:
    try:
        return os.open(lock_path(store), os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as exc:
        raise os_error(store, exc, "lock") from None


def _timed_out(store: Path, began: float) -> StateStoreError:
    waited = time.monotonic() - began
    return StateStoreError(
        f"the state store {str(store)!r} stayed locked for {waited:.3g} s (lock file "
        f"{str(lock_path(store))!r}); another process or thread is holding it: wait for it "
        "to finish or stop it"
    )


def _release(fd: int) -> None:
    try:
        _unlock(fd)
    finally:
        os.close(fd)


class AsyncFileLock:
    """``async with AsyncFileLock(store):`` holds the store's lock file.

    Waiting for the lock can be cancelled; once it is held, the block is shielded from
    cancellation, so a write that has started always finishes before the lock is let go.

    :raises StateStoreError: when the lock file cannot be made, or after ``timeout`` s.
    """

    def __init__(self, store: Path, timeout: float = LOCK_TIMEOUT) -> None:
        self._store = store
        self._timeout = timeout

    async def __aenter__(self) -> None:
        fd = _open_lock(self._store)
        try:
            began = time.monotonic()
            deadline = wait_deadline(self._timeout)
            delay = _FIRST_POLL
            while not _try_lock(fd):
                if time.monotonic() >= deadline:
                    raise _timed_out(self._store, began)
                await anyio.sleep(delay)
                delay = min(delay * 2, _LAST_POLL)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        self._scope = anyio.CancelScope(shield=True)
        self._scope.__enter__()

    async def __aexit__(self, *exc: Any) -> None:
        try:
            self._scope.__exit__(*exc)
        finally:
            _release(self._fd)


def check_cancelled_in_worker() -> None:
    """In a worker thread of a run, raise its cancellation if it was cancelled, so that a
    blocking store waiting for the lock gives up with the run."""
    try:
        import anyio.from_thread

        anyio.from_thread.check_cancelled()
    except RuntimeError:
        pass  # not in an anyio worker thread: a plain blocking call


class FileLock:
    """``with FileLock(store):`` holds the store's lock file (blocking form).

    In a worker thread of an anyio run (a blocking store's session), waiting for the lock
    ends with the run's cancellation; once the lock is held, the block runs to its end.

    :raises StateStoreError: when the lock file cannot be made, or after ``timeout`` s.
    """

    def __init__(self, store: Path, timeout: float = LOCK_TIMEOUT) -> None:
        self._store = store
        self._timeout = timeout

    def __enter__(self) -> None:
        fd = _open_lock(self._store)
        try:
            began = time.monotonic()
            deadline = wait_deadline(self._timeout)
            delay = _FIRST_POLL
            while not _try_lock(fd):
                if time.monotonic() >= deadline:
                    raise _timed_out(self._store, began)
                check_cancelled_in_worker()
                time.sleep(delay)
                delay = min(delay * 2, _LAST_POLL)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd

    def __exit__(self, *exc: Any) -> None:
        _release(self._fd)


# -- files -----------------------------------------------------------------------------------


class Identity(NamedTuple):
    """Enough of a file's ``stat`` to tell that it changed or was replaced."""

    device: int
    inode: int
    size: int
    mtime_ns: int


def _identity(st: os.stat_result) -> Identity:
    return Identity(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def _fsync(fd: int) -> None:
    os.fsync(fd)  # looked up at call time, so tests can count the calls


def _fsync_dir(folder: Path) -> None:
    """Make a rename or a new file in ``folder`` durable (POSIX; Windows cannot)."""
    if sys.platform == "win32":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        _fsync(fd)
    finally:
        os.close(fd)


def _temp_path(path: Path) -> Path:
    return path.with_name(f"{path.name}.{secrets.token_hex(6)}.tmp")


def _stale_temps(path: Path) -> list[Path]:
    """Temp files a crashed writer left beside ``path`` (only called under the lock)."""
    prefix, suffix = path.name + ".", ".tmp"
    found = []
    try:
        names = os.listdir(path.parent)
    except OSError:
        return []
    for name in names:
        middle = name[len(prefix) : -len(suffix)]
        if name.startswith(prefix) and name.endswith(suffix) and len(middle) == 12:
            found.append(path.with_name(name))
    return found


def _keep_mode(temp: Path, path: Path) -> None:
    """Give the new file the old one's permissions (a rename would replace them)."""
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        return
    os.chmod(temp, mode)


def _remove(path: Path) -> None:
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


class Files:
    """Whole-file reads, durable appends and atomic replaces (blocking form)."""

    def identity(self, path: Path) -> Identity | None:
        """The file's :class:`Identity`, or None when it does not exist."""
        try:
            return _identity(os.stat(path))
        except FileNotFoundError:
            return None

    def read(self, path: Path, offset: int = 0) -> bytes | None:
        """The file's bytes from ``offset`` on, or None when it does not exist."""
        try:
            with open(path, "rb") as f:
                if offset:
                    f.seek(offset)
                return f.read()
        except FileNotFoundError:
            return None

    def append(self, path: Path, data: bytes, sync: bool = True) -> Identity:
        """Append ``data`` with one ``write``: once it returns the data survives the
        process being killed. With ``sync``, fsync it too (and the folder, when the file
        is new), so that it survives a power loss."""
        with open(path, "ab") as f:
            new = f.tell() == 0
            f.write(data)
            f.flush()
            if sync:
                _fsync(f.fileno())
            result = _identity(os.fstat(f.fileno()))
        if new and sync:
            _fsync_dir(path.parent)
        return result

    def replace(self, path: Path, data: bytes) -> Identity:
        """Write ``data`` to a temp file beside ``path``, fsync, rename it over ``path``
        and fsync the folder: a crash leaves the old file or the new one, never a mix."""
        for stale in _stale_temps(path):
            _remove(stale)
        temp = _temp_path(path)
        try:
            with open(temp, "xb") as f:
                f.write(data)
                f.flush()
                _fsync(f.fileno())
            _keep_mode(temp, path)
            os.replace(temp, path)
        except BaseException:
            _remove(temp)
            raise
        _fsync_dir(path.parent)
        return _identity(os.stat(path))

    def remove(self, path: Path) -> None:
        """Delete the file if it exists."""
        _remove(path)

    def truncate(self, path: Path, size: int) -> None:
        """Cut the file to ``size`` bytes, durably (drops a torn last line)."""
        with open(path, "r+b") as f:
            f.truncate(size)
            f.flush()
            _fsync(f.fileno())


_AIO: SimpleNamespace | None = None


def _aio() -> SimpleNamespace:
    """aiofiles and the helpers it wraps, made on first use: importing aiofiles costs
    about 30 ms, which ``import flowweaver`` should not pay for the async stores alone."""
    global _AIO
    if _AIO is None:
        import aiofiles
        import aiofiles.os

        wrap = aiofiles.os.wrap
        _AIO = SimpleNamespace(
            open=aiofiles.open,
            stat=aiofiles.os.stat,
            replace=aiofiles.os.replace,
            fsync=wrap(_fsync),
            fsync_dir=wrap(_fsync_dir),
            fstat=wrap(os.fstat),
            stale_temps=wrap(_stale_temps),
            keep_mode=wrap(_keep_mode),
            remove=wrap(_remove),
        )
    return _AIO


class AsyncFiles:
    """The async form of :class:`Files`: aiofiles on asyncio, worker threads on trio."""

    def __init__(self) -> None:
        self._blocking = Files()
        self._worker = StoreThread()

    async def identity(self, path: Path) -> Identity | None:
        """The file's :class:`Identity`, or None when it does not exist."""
        if not running_on_asyncio():
            return await self._worker.run(self._blocking.identity, path)
        try:
            return _identity(await _aio().stat(path))
        except FileNotFoundError:
            return None

    async def read(self, path: Path, offset: int = 0) -> bytes | None:
        """The file's bytes from ``offset`` on, or None when it does not exist."""
        if not running_on_asyncio():
            return await self._worker.run(self._blocking.read, path, offset)
        try:
            async with _aio().open(path, "rb") as f:
                if offset:
                    await f.seek(offset)
                data: bytes = await f.read()
                return data
        except FileNotFoundError:
            return None

    async def append(self, path: Path, data: bytes, sync: bool = True) -> Identity:
        """Append ``data``, as :meth:`Files.append`."""
        if not running_on_asyncio():
            return await self._worker.run(self._blocking.append, path, data, sync)
        async with _aio().open(path, "ab") as f:
            new = await f.tell() == 0
            await f.write(data)
            await f.flush()
            if sync:
                await _aio().fsync(f.fileno())
            result = _identity(await _aio().fstat(f.fileno()))
        if new and sync:
            await _aio().fsync_dir(path.parent)
        return result

    async def replace(self, path: Path, data: bytes) -> Identity:
        """Atomic replace, as :meth:`Files.replace`."""
        if not running_on_asyncio():
            return await self._worker.run(self._blocking.replace, path, data)
        for stale in await _aio().stale_temps(path):
            await _aio().remove(stale)
        temp = _temp_path(path)
        try:
            async with _aio().open(temp, "xb") as f:
                await f.write(data)
                await f.flush()
                await _aio().fsync(f.fileno())
            await _aio().keep_mode(temp, path)
            await _aio().replace(temp, path)
        except BaseException:
            with AsyncShield():
                await _aio().remove(temp)
            raise
        await _aio().fsync_dir(path.parent)
        return _identity(await _aio().stat(path))

    async def remove(self, path: Path) -> None:
        """Delete the file if it exists."""
        if not running_on_asyncio():
            return await self._worker.run(self._blocking.remove, path)
        await _aio().remove(path)

    async def truncate(self, path: Path, size: int) -> None:
        """Cut the file to ``size`` bytes, durably."""
        if not running_on_asyncio():
            return await self._worker.run(self._blocking.truncate, path, size)
        async with _aio().open(path, "r+b") as f:
            await f.truncate(size)
            await f.flush()
            await _aio().fsync(f.fileno())
