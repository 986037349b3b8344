"""A map over files: one item per file, saved item by item, so a run resumes file by file.

``list_files`` lists a folder; ``process_file`` maps over that list (``map_over``), one
item per file named after it (``map_key``: ``process_file[notes_07.txt]``), at most four at
once (``max_concurrent``); ``summary`` adds up the items' results. Every item's result is
saved in the state store as it completes:

    flowweaver run examples/map_files.py        # processes every file
    flowweaver run examples/map_files.py        # again: everything restored, nothing runs
    touch /tmp/flowweaver-map-files/new.txt     # (the sample folder; see below)
    flowweaver run examples/map_files.py        # processes new.txt only
    # kill -9 a run in the middle: the next run processes only the files not yet saved

The folder is ``python examples/map_files.py DIR``'s ``DIR``, else ``$MAP_FILES_DIR``, else
a sample folder of text files it creates under the temporary directory. ``python
examples/map_files.py`` uses the command's default store, ``.flowweaver/state.db`` (SQLite).
``$MAP_FILES_DELAY`` (seconds, default 0.05) is how long each file takes, to leave time
for a Ctrl-C or a kill -9.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from flowweaver import SQLiteStateStore, Task, ThreadedExecutor, Workflow

SAMPLE = Path(tempfile.gettempdir()) / "flowweaver-map-files"


def folder() -> Path:
    """The folder to process: the command line's, ``$MAP_FILES_DIR``, or the sample."""
    if __name__ == "__main__" and len(sys.argv) > 1:
        return Path(sys.argv[1])
    if os.environ.get("MAP_FILES_DIR"):
        return Path(os.environ["MAP_FILES_DIR"])
    if not SAMPLE.is_dir():
        SAMPLE.mkdir(exist_ok=True)  # two first runs at once both get here
        for n in range(20):
            words = " ".join(f"word{w}" for w in range(n + 1))
            (SAMPLE / f"notes_{n:02d}.txt").write_text(f"{words}\n" * (n % 5 + 1))
    return SAMPLE


def listing(where: Path) -> list[dict[str, Any]]:
    """The folder's files, each with its size and modification time: an element whose
    hash changes when its file does, so a changed file is processed again."""
    return [
        {"path": str(p), "name": p.name, "size": p.stat().st_size, "mtime": p.stat().st_mtime_ns}
        for p in sorted(where.iterdir())
        if p.is_file()
    ]


def process_file(list_files: dict[str, Any]) -> dict[str, Any]:
    """One item: count one file's lines and words."""
    print(f"processing {list_files['name']}", flush=True)
    time.sleep(float(os.environ.get("MAP_FILES_DELAY", "0.05")))
    text = Path(list_files["path"]).read_text(encoding="utf-8", errors="replace")
    return {"name": list_files["name"], "lines": text.count("\n"), "words": len(text.split())}


def summary(process_file: list[dict[str, Any]]) -> str:
    lines = sum(r["lines"] for r in process_file)
    words = sum(r["words"] for r in process_file)
    text = f"{len(process_file)} files, {lines} lines, {words} words"
    print(text)
    return text


def build(where: Path) -> Workflow:
    files = listing(where)
    # list_files must run again when the folder changes (a restored listing would hide a
    # new file): its version is a hash of the listing, taken when the workflow is built.
    version = hashlib.sha256(json.dumps(files).encode()).hexdigest()[:16]
    wf = Workflow("map_files", description=f"count the words of the files in {where}")
    wf.add_task(Task("list_files", lambda: listing(where), version=version))
    wf.add_task(
        Task("process_file", process_file),
        map_over="list_files",
        map_key=lambda f: f["name"],
        max_concurrent=4,
    )
    wf.add_task(Task("summary", summary), depends_on=["process_file"])
    return wf


workflow = build(folder().resolve())

if __name__ == "__main__":
    Path(".flowweaver").mkdir(exist_ok=True)
    store = SQLiteStateStore(".flowweaver/state.db")
    ThreadedExecutor(max_workers=8, state_store=store).execute(workflow)
    done = workflow.get_task("process_file")
    assert done is not None
    ran = sum(1 for item in done.items if item.attempts)
    print(f"{ran} of {len(done.result)} files processed in this run, the rest restored")
