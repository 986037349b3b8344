"""Driving the ``flowweaver`` command as a user would: a subprocess in a scratch folder (or,
for the many small cases of an option, click's runner in this process)."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from click.testing import Result

COMMAND = [sys.executable, "-m", "flowweaver"]


def command_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The test's environment, minus what would change the command's output.

    PYTHONUNBUFFERED goes too: progress lines must reach a pipe as they happen because
    the command flushes them, not because the environment happens to say so.
    """
    dropped = ("FORCE_COLOR", "TTY_COMPATIBLE", "PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE")
    env = {k: v for k, v in os.environ.items() if k not in dropped}
    env["COLUMNS"] = "120"
    env.update(extra or {})
    return env


def flowweaver_cmd(
    *args: str | Path,
    cwd: Path,
    env: dict[str, str] | None = None,
    input: str | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m flowweaver ARGS`` in ``cwd`` and wait for it."""
    return subprocess.run(
        [*COMMAND, *map(str, args)],
        cwd=cwd,
        env=command_env(env),
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def write(folder: Path, name: str, source: str) -> Path:
    """Write a workflow file (``source`` is dedented) and return its path."""
    path = folder / name
    path.write_text(textwrap.dedent(source), encoding="utf-8")
    return path


class LineReader:
    """Reads a running process's stdout on a thread, so a test can wait for a line."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._thread = threading.Thread(target=self._read, args=(proc,), daemon=True)
        self._thread.start()

    def _read(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            self._queue.put(line)
        self._queue.put(None)

    def wait_for(self, text: str, timeout: float = 30) -> str:
        """The first line (from now on) containing ``text``; fails after ``timeout`` s."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no line with {text!r} in {timeout} s: {self.lines}")
            try:
                line = self._queue.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                raise AssertionError(f"output ended without {text!r}: {self.lines}")
            self.lines.append(line)
            if text in line:
                return line

    def rest(self) -> str:
        """Everything after the lines read so far, once the process has closed stdout."""
        while True:
            line = self._queue.get(timeout=30)
            if line is None:
                break
            self.lines.append(line)
        return "".join(self.lines)


def run_and_interrupt(
    args: list[str],
    cwd: Path,
    when: str,
    sig: int = signal.SIGINT,
    *,
    command: Sequence[str] = COMMAND,
    before: Callable[[], None] | None = None,
) -> tuple[int, str]:
    """Start ``flowweaver ARGS`` (or ``command ARGS``), press Ctrl-C (or send ``sig``) once
    a line contains ``when`` (and ``before()`` has returned), and return the exit code and
    everything it printed (stdout and stderr together)."""
    with subprocess.Popen(
        [*command, *args],
        cwd=cwd,
        env=command_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ) as proc:
        try:
            reader = LineReader(proc)
            reader.wait_for(when)
            if before is not None:
                before()
            proc.send_signal(sig)
            code = proc.wait(timeout=30)
            return code, reader.rest()
        finally:
            if proc.poll() is None:
                proc.kill()


def waiting_workflow(name: str) -> str:
    """A workflow file: ``first`` returns 1; ``second`` prints "second is running" and
    waits until a file ``go`` appears beside the workflow file (a run to interrupt in
    the middle of a task, then resume)."""
    return f"""
    import pathlib, time
    from flowweaver import Workflow, task

    HERE = pathlib.Path(__file__).parent

    @task()
    def first():
        return 1

    @task()
    def second(first):
        print("second is running", flush=True)
        while not (HERE / "go").exists():
            time.sleep(0.02)
        return first + 1

    workflow = Workflow({name!r})
    workflow.add_task(first)
    workflow.add_task(second, depends_on=["first"])
"""


class InProcess:
    """Calls the ``flowweaver`` command in this process (click's runner), from ``folder``.

    Quicker than a subprocess, so the many small cases of an option can each have a test;
    the command's stdout is not a terminal here, so its output is the plain one. The test
    makes ``folder`` its working directory (``monkeypatch.chdir``: relative store paths
    are opened lazily, so they must mean the same folder after the command returns); the
    workflow files the command imports are forgotten again by :meth:`forget`.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def __call__(self, *args: str | Path) -> Result:
        from click.testing import CliRunner

        from flowweaver._cli._app import cli

        assert Path.cwd().resolve() == self.folder.resolve(), "monkeypatch.chdir(folder) first"
        return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)

    def forget(self) -> None:
        """Drop the modules imported from the folder, and the folder from sys.path."""
        folder = str(self.folder.resolve())
        for name, module in list(sys.modules.items()):
            if str(getattr(module, "__file__", "") or "").startswith(folder):
                del sys.modules[name]
        while folder in sys.path:
            sys.path.remove(folder)
