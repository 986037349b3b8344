"""Real signals at random moments: the first Ctrl-C always stops a run, as itself.

Each round starts ``tests/signal_child.py`` (a run busy on threads, on the loop, in retry
waits, callbacks and an async observer), signals it at a random moment once its first task
started, and checks how it ended. Deterministic checks of the same paths are in
test_keyboard_interrupt.py.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests._cli_helpers import (
    LineReader,
    flowweaver_cmd,
    run_and_interrupt,
    waiting_workflow,
    write,
)
from tests.store_helpers import load_json

CHILD = str(Path(__file__).with_name("signal_child.py"))

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals"),
]


def signal_child(
    args: list[str], sig: int, delay: float, ready: str = "READY"
) -> tuple[int | None, str, str]:
    """Start ``python ARGS``, send ``sig`` ``delay`` s after a line contains ``ready``, and
    return the exit code (None when the first signal did not end it within 10 s; the
    child is killed then), stdout and stderr."""
    with subprocess.Popen(
        [sys.executable, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as proc:
        try:
            reader = LineReader(proc)
            reader.wait_for(ready)
            time.sleep(delay)
            proc.send_signal(sig)
            try:
                code: int | None = proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                code = None
                proc.kill()
                proc.wait(timeout=10)
            assert proc.stderr is not None
            return code, reader.rest(), proc.stderr.read()
        finally:
            if proc.poll() is None:
                proc.kill()


def _rounds(
    form: str, kind: str, backend: str, store: Path | None, rounds: int, seed: int
) -> list[str]:
    """Interrupt ``rounds`` runs at random moments; describe each one that went wrong."""
    rng = random.Random(seed)
    wrong = []
    for n in range(rounds):
        path = "-" if store is None else str(store.with_name(f"{store.stem}{n}.json"))
        delay = rng.choice([0.0, rng.uniform(0, 0.6)])
        code, out, err = signal_child([CHILD, form, kind, backend, path], signal.SIGINT, delay)
        if code is None:
            wrong.append(f"round {n} (delay {delay:.2f}): the first Ctrl-C was lost")
        elif (
            "RAISED KeyboardInterrupt CANCELLED" not in out
            or "ExceptionGroup" in err
            or code != -signal.SIGINT  # what Python does on an uncaught KeyboardInterrupt
        ):
            wrong.append(f"round {n} (delay {delay:.2f}): exit {code}, {err[-300:]!r}")
    return wrong


@pytest.mark.timeout(240)
@pytest.mark.parametrize("store", [False, True], ids=["no_store", "store"])
@pytest.mark.parametrize("form", ["blocking", "awaited"])
def test_ctrl_c_under_trio_is_always_a_bare_keyboard_interrupt(
    tmp_path: Path, form: str, store: bool
) -> None:
    wrong = _rounds(
        form, "concurrent", "trio", tmp_path / "state.json" if store else None, 12, seed=3
    )
    assert not wrong, "\n".join(wrong)


@pytest.mark.timeout(240)
@pytest.mark.parametrize("store", [False, True], ids=["no_store", "store"])
def test_the_first_ctrl_c_always_stops_a_blocking_threaded_run(tmp_path: Path, store: bool) -> None:
    wrong = _rounds(
        "blocking", "threaded", "asyncio", tmp_path / "state.json" if store else None, 12, seed=2
    )
    assert not wrong, "\n".join(wrong)


# Where the old code lost Ctrl-C: the kernel handed SIGINT to a worker thread, so the main
# thread slept on in select(). Here SIGINT can only go to the task's thread, every time.
ONLY_A_WORKER_TAKES_SIGINT = """
    import os, signal, sys, time
    from flowweaver import JSONStateStore, Task, ThreadedExecutor, Workflow

    def busy():
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
        os.write(1, b"RUNNING\\n")
        while True:
            time.sleep(0.02)

    wf = Workflow("worker_takes_it")
    wf.add_task(Task("busy", busy))
    store = JSONStateStore(sys.argv[1]) if sys.argv[1] != "-" else None
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        ThreadedExecutor(state_store=store).execute(wf)
    except KeyboardInterrupt:
        os.write(1, f"RAISED KeyboardInterrupt {wf.status.value}\\n".encode())
        raise
"""


@pytest.mark.timeout(240)
@pytest.mark.parametrize("store", [False, True], ids=["no_store", "store"])
def test_ctrl_c_delivered_to_a_worker_thread_stops_the_run(tmp_path: Path, store: bool) -> None:
    script = tmp_path / "worker_takes_it.py"
    script.write_text(textwrap.dedent(ONLY_A_WORKER_TAKES_SIGINT))
    for n in range(6):
        path = str(tmp_path / f"state{n}.json") if store else "-"
        code, out, err = signal_child([str(script), path], signal.SIGINT, 0.05, "RUNNING")
        assert code is not None, f"round {n}: the first Ctrl-C was lost"
        assert "RAISED KeyboardInterrupt CANCELLED" in out, (code, out, err)


# -- SIGTERM ------------------------------------------------------------------------------------


def _done(out: str) -> set[str]:
    return {line.split()[1] for line in out.splitlines() if line.startswith("DONE ")}


@pytest.mark.timeout(240)
@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@pytest.mark.parametrize("kind", ["sequential", "threaded", "concurrent"])
def test_sigterm_flushes_the_store_ends_the_process_and_the_next_run_resumes(
    tmp_path: Path, kind: str, backend: str
) -> None:
    store = tmp_path / "state.json"
    args = [CHILD, "blocking", kind, backend, str(store)]
    code, out, err = signal_child(args, signal.SIGTERM, 0.3)
    # the default action of SIGTERM, once the run was cleaned up
    assert code == -signal.SIGTERM, (code, out, err)
    assert "RAISED" not in out  # the process ended inside execute, by the signal
    finished = _done(out)
    assert finished
    saved = {name for name, r in load_json(store).items() if r["status"] == "COMPLETED"}
    # every task whose callback ran had completed; the final flush saved every one
    assert finished <= saved

    Path(str(store) + ".go").touch()
    again = subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, timeout=60, check=False
    )
    assert again.returncode == 0, again.stderr
    assert "RETURNED COMPLETED" in again.stdout
    assert not (_done(again.stdout) & saved)  # restored, not run again


OWN_HANDLER = """
    import os, signal, sys, time
    from flowweaver import Task, ThreadedExecutor, Workflow

    def own(signum, frame):
        os.write(1, b"OWN HANDLER\\n")

    signal.signal(signal.SIGTERM, own)

    def busy():
        os.write(1, b"RUNNING\\n")
        time.sleep(60)

    wf = Workflow("own_handler")
    wf.add_task(Task("busy", busy))
    try:
        ThreadedExecutor(backend=sys.argv[1]).execute(wf)
    except SystemExit as exc:
        same = signal.getsignal(signal.SIGTERM) is own
        os.write(1, f"RAISED SystemExit {exc.code} {wf.status.value} restored={same}\\n".encode())
        raise
"""


@pytest.mark.timeout(120)
@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_sigterm_calls_the_programs_own_handler_after_the_cleanup(
    tmp_path: Path, backend: str
) -> None:
    script = tmp_path / "own_handler.py"
    script.write_text(textwrap.dedent(OWN_HANDLER))
    code, out, err = signal_child([str(script), backend], signal.SIGTERM, 0.1, "RUNNING")
    assert code == 143, (out, err)
    assert out.count("OWN HANDLER") == 1
    assert "RAISED SystemExit 143 CANCELLED restored=True" in out


SLOW_COMMAND = waiting_workflow("terminated")


@pytest.mark.timeout(120)
@pytest.mark.parametrize("executor", ["sequential", "threaded", "async"])
def test_flowweaver_run_exits_143_on_sigterm_with_its_summary(
    tmp_path: Path, executor: str
) -> None:
    write(tmp_path, "slow.py", SLOW_COMMAND)
    code, out = run_and_interrupt(
        ["run", "slow.py", "--executor", executor], tmp_path, "second is running", signal.SIGTERM
    )
    assert code == 143, out
    assert "terminated: CANCELLED (terminated) after" in out
    assert "1 completed, 0 failed, 0 skipped, 1 not finished." in out
    assert "Completed tasks are saved in .flowweaver/state.db" in out

    (tmp_path / "go").touch()
    resumed = flowweaver_cmd("run", "slow.py", "--executor", executor, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "restored   first" in resumed.stdout
