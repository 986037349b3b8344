"""Ctrl-C while another process holds the store's lock ends the run within seconds
(issue 9, item 1).

A run's gate tasks finish once a *holder* process has taken the store's lock
(``BEGIN IMMEDIATE`` on the SQLite database, ``flock`` on the JSON store's lock file), so
their records cannot be saved and the run waits for the store. Ctrl-C then used to wait
out SQLite's 30 s busy timeout or the lock file's 60 s. Now the last save gets a few
seconds, the log names the records that were not saved, and the interrupt goes on.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from flowweaver import JSONStateStore, SQLiteStateStore, ThreadedExecutor
from tests._cli_helpers import COMMAND, run_and_interrupt

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals and flock"),
]

WORKFLOW = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from flowweaver import Task, Workflow

    LOCKED = Path(__file__).with_name("locked")
    GATES = [f"gate{k}" for k in range(3)]

    def gate():
        print("gate started", flush=True)
        while not LOCKED.exists():  # the holder has the store's lock from now on
            time.sleep(0.01)
        return 1

    def after(**upstream):  # never starts: its gates are never durable
        return 2

    workflow = Workflow("locked")
    for name in GATES:
        workflow.add_task(Task(name, gate))
    workflow.add_task(Task("after", after), depends_on=GATES)

    if __name__ == "__main__":
        import logging
        logging.basicConfig()  # the library logs to "flowweaver" and prints nothing
        from flowweaver import JSONStateStore, SQLiteStateStore
        from flowweaver import SequentialExecutor, ThreadedExecutor
        store_path, executor = sys.argv[1:3]
        store = (JSONStateStore if store_path.endswith(".json") else SQLiteStateStore)(
            store_path
        )
        cls = {"sequential": SequentialExecutor, "threaded": ThreadedExecutor}[executor]
        cls(state_store=store).execute(workflow)
    """
)

HOLDER = textwrap.dedent(
    """
    import fcntl, os, sqlite3, sys, time
    store_path, locked = sys.argv[1:3]
    if store_path.endswith(".json"):
        fd = os.open(store_path + ".lock", os.O_RDWR | os.O_CREAT)
        fcntl.flock(fd, fcntl.LOCK_EX)
    else:
        db = sqlite3.connect(store_path, isolation_level=None)
        db.execute("BEGIN IMMEDIATE")
    open(locked, "w").close()
    time.sleep(120)
    """
)

# Ctrl-C must be honoured within about 5 s; this leaves room for a loaded machine.
PROMPT = 8.0


def interrupt_while_locked(
    tmp_path: Path, store: Path, args: list[str], command: list[str]
) -> tuple[int, str, float]:
    """Start the run, have the holder take the lock once a gate runs, press Ctrl-C, and
    return the run's exit code, its output (stdout and stderr) and how long it took
    to end after Ctrl-C."""
    (tmp_path / "wf.py").write_text(WORKFLOW)
    (tmp_path / "holder.py").write_text(HOLDER)
    holders: list[subprocess.Popen[bytes]] = []
    pressed = [0.0]

    def take_the_lock() -> None:
        holder = subprocess.Popen(
            [sys.executable, str(tmp_path / "holder.py"), str(store), str(tmp_path / "locked")]
        )
        holders.append(holder)
        deadline = time.monotonic() + 30
        while not (tmp_path / "locked").exists():
            assert holder.poll() is None, "the holder failed"
            assert time.monotonic() < deadline, "the holder took no lock"
            time.sleep(0.01)
        time.sleep(1.0)  # the gates finish; their batch now waits for the lock
        pressed[0] = time.monotonic()

    try:
        code, out = run_and_interrupt(
            args, tmp_path, "gate started", command=command, before=take_the_lock
        )
        return code, out, time.monotonic() - pressed[0]
    finally:
        for holder in holders:
            holder.kill()
            holder.wait(timeout=30)


def check_store_usable(store: Path) -> None:
    """The store opens, and a run (now nobody holds the lock) completes and saves."""
    sys.path.insert(0, str(store.parent))
    try:
        namespace: dict[str, object] = {"__file__": str(store.parent / "wf.py")}
        exec(compile(WORKFLOW, "wf.py", "exec"), namespace)
    finally:
        sys.path.remove(str(store.parent))
    workflow = namespace["workflow"]
    cls = JSONStateStore if store.suffix == ".json" else SQLiteStateStore
    ThreadedExecutor(state_store=cls(store)).execute(workflow)  # type: ignore[arg-type]
    assert sorted(cls(store).list_all_tasks("locked")) == ["after", "gate0", "gate1", "gate2"]


def check_unsaved_logged(out: str, store: Path) -> None:
    """The log line names the gates whose records were queued and not saved (a gate
    whose outcome the interrupted run never settled has no record to name)."""
    line = next((x for x in out.splitlines() if "could not save the last task states" in x), "")
    assert line, out
    named = {name for name in ("gate0", "gate1", "gate2") if repr(name) in line}
    assert named, line
    cls = JSONStateStore if store.suffix == ".json" else SQLiteStateStore
    assert not named & set(cls(store).list_all_tasks("locked")), line


@pytest.mark.timeout(120)
@pytest.mark.parametrize("executor", ["sequential", "threaded"])
@pytest.mark.parametrize("suffix", [".json", ".db"])
def test_ctrl_c_while_another_process_holds_the_lock_ends_the_run_promptly(
    tmp_path: Path, suffix: str, executor: str
) -> None:
    store = tmp_path / f"state{suffix}"
    code, out, took = interrupt_while_locked(
        tmp_path, store, ["wf.py", str(store), executor], [sys.executable]
    )
    assert took < PROMPT, f"Ctrl-C took {took:.1f} s: {out}"
    assert code in (-signal.SIGINT, 130), out
    assert "KeyboardInterrupt" in out, out
    check_unsaved_logged(out, store)
    check_store_usable(store)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("suffix", [".json", ".db"])
def test_flowweaver_run_exits_130_promptly_while_another_process_holds_the_lock(
    tmp_path: Path, suffix: str
) -> None:
    store = tmp_path / f"state{suffix}"
    code, out, took = interrupt_while_locked(
        tmp_path, store, ["run", "wf.py", "--store", str(store)], COMMAND
    )
    assert took < PROMPT, f"Ctrl-C took {took:.1f} s: {out}"
    assert code == 130, out  # (the command shows no library log lines)
    check_store_usable(store)


@pytest.mark.timeout(120)
@pytest.mark.parametrize(("suffix", "executor"), [(".json", "sequential"), (".db", "threaded")])
def test_ctrl_c_while_the_store_is_locked_before_the_run_starts_ends_it_promptly(
    tmp_path: Path, suffix: str, executor: str
) -> None:
    """A blocking run opens its store on its own thread (no thread round trips): while
    another process holds the lock, opening it waits, and Ctrl-C must end that wait too."""
    store = tmp_path / f"state{suffix}"
    (tmp_path / "wf.py").write_text(WORKFLOW)
    (tmp_path / "holder.py").write_text(HOLDER)
    if suffix == ".db":
        SQLiteStateStore(store).list_all_tasks()  # the holder's lock needs the file
    holder = subprocess.Popen(
        [sys.executable, str(tmp_path / "holder.py"), str(store), str(tmp_path / "locked")]
    )
    try:
        deadline = time.monotonic() + 30
        while not (tmp_path / "locked").exists():
            assert holder.poll() is None, "the holder failed"
            assert time.monotonic() < deadline, "the holder took no lock"
            time.sleep(0.01)
        with subprocess.Popen(
            [sys.executable, "wf.py", str(store), executor],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        ) as run:
            time.sleep(2.0)  # imported, and waiting for the store
            assert run.poll() is None, run.communicate()[0]
            pressed = time.monotonic()
            run.send_signal(signal.SIGINT)
            try:
                out, _ = run.communicate(timeout=30)
            finally:
                if run.poll() is None:
                    run.kill()
            took = time.monotonic() - pressed
    finally:
        holder.kill()
        holder.wait(timeout=30)
    assert took < PROMPT, f"Ctrl-C took {took:.1f} s: {out}"
    assert run.returncode in (-signal.SIGINT, 130, 1), out
    assert "KeyboardInterrupt" in out, out
    assert "gate started" not in out, out
