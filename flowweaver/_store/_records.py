"""What both built-in stores share: timestamps, statuses, error text, folder checks.

No I/O beyond ``os.stat``-like checks, so the async and blocking forms use it alike.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .._errors import WorkflowValidationError, describe_exception
from .._status import TaskStatus
from ._api import StateStoreError, TaskRecord

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def to_utc(moment: datetime) -> datetime:
    """``moment`` in UTC; a naive datetime is taken as local time, as Python does."""
    return moment.astimezone(timezone.utc)


def format_timestamp(moment: datetime) -> str:
    """ISO 8601 in UTC with microseconds, so stored timestamps sort as text."""
    global _last
    # A run stamps a whole batch with one datetime object: format it once. One tuple,
    # replaced in one assignment, so threads never pair a moment with another's text.
    last = _last
    if last[0] is moment:
        return last[1]
    text = to_utc(moment).isoformat(timespec="microseconds")
    _last = (moment, text)
    return text


_last: tuple[datetime | None, str] = (None, "")


def parse_timestamp(value: object) -> datetime:
    """A timezone-aware UTC datetime from a datetime or an ISO 8601 string.

    :raises ValueError: for anything else.
    """
    if isinstance(value, datetime):
        return to_utc(value)
    if not isinstance(value, str):
        raise ValueError(f"a timestamp must be an ISO 8601 string, got {value!r}")
    # The records of one batch share one timestamp, and a resume of 10,000 records holds
    # about a hundred, read in name order, not batch by batch: each text is parsed once.
    moment = _parsed.get(value)
    if moment is not None:
        return moment
    text = value.strip()
    if text.endswith(("Z", "z")):  # Python 3.10's fromisoformat does not read "Z"
        text = text[:-1] + "+00:00"
    moment = to_utc(datetime.fromisoformat(text.replace(" ", "T", 1)))
    if len(_parsed) >= _PARSED_KEPT:
        _parsed.clear()  # bounded; threads racing here cost each other only a parse
    _parsed[value] = moment
    return moment


#: Timestamp texts parsed already, at most :data:`_PARSED_KEPT` of them.
_parsed: dict[str, datetime] = {}
_PARSED_KEPT = 4096


#: Each status by its text: a dict lookup, where calling ``TaskStatus(text)`` costs more
#: than the rest of reading a record's status (a resume reads one per saved task).
STATUS_OF_TEXT = {s.value: s for s in TaskStatus}


def to_status(value: object) -> TaskStatus:
    """A :class:`TaskStatus` from itself or its text (``"COMPLETED"``).

    :raises ValueError: for anything else.
    """
    if isinstance(value, TaskStatus):
        return value
    status = STATUS_OF_TEXT.get(value) if type(value) is str else None
    if status is not None:
        return status
    names = ", ".join(s.value for s in TaskStatus)
    raise ValueError(f"a status must be one of {names}, got {value!r}")


def error_text(error: object) -> str | None:
    """How a task's error is stored: ``"ValueError: bad"``, or ``None``."""
    if error is None:
        return None
    if isinstance(error, BaseException):
        return describe_exception(error)
    return str(error)


def check_argument_status(status: object) -> TaskStatus:
    """``to_status`` for an argument of a store method.

    :raises WorkflowValidationError: naming the bad value.
    """
    try:
        return to_status(status)
    except ValueError as exc:
        raise WorkflowValidationError(str(exc)) from None


def check_task_name(task_name: object) -> str:
    """:raises WorkflowValidationError: unless ``task_name`` is a non-empty str."""
    if not isinstance(task_name, str) or not task_name:
        raise WorkflowValidationError(f"a task name must be a non-empty string, got {task_name!r}")
    return task_name


def check_workflow(workflow: object) -> str | None:
    """:raises WorkflowValidationError: unless ``workflow`` is None or a non-empty str."""
    if workflow is not None and (not isinstance(workflow, str) or not workflow):
        raise WorkflowValidationError(
            f"workflow must be None (any workflow) or a workflow's name, got {workflow!r}"
        )
    return workflow


def store_path(value: object, label: str) -> Path:
    """``value`` as a :class:`Path`.

    :raises WorkflowValidationError: when it is not a non-empty path.
    """
    if isinstance(value, (str, os.PathLike)):
        text = os.fspath(value)
        if isinstance(text, str) and text:
            return Path(text)
    raise WorkflowValidationError(f"{label} must be a file path, got {value!r}")


def check_folder(path: Path) -> None:
    """Fail clearly when the store file cannot be made in its folder.

    The folder is never created: a typo in a path should not scatter folders around.

    :raises StateStoreError: when the folder is missing, is not a folder, cannot be
        written to, or ``path`` is itself a folder or another non-regular file (a FIFO).
    """
    folder = path.parent
    if not folder.exists():
        raise StateStoreError(
            f"cannot open the state store {str(path)!r}: its folder {str(folder)!r} does not "
            "exist; create the folder first or choose another path"
        )
    if not folder.is_dir():
        raise StateStoreError(
            f"cannot open the state store {str(path)!r}: {str(folder)!r} is not a folder"
        )
    try:
        mode = os.stat(path).st_mode
    except OSError:
        mode = None  # no file yet (it is made), or an error the open itself will report
    if mode is not None and stat.S_ISDIR(mode):
        raise StateStoreError(
            f"cannot open the state store {str(path)!r}: it is a folder; give a file path"
        )
    if mode is not None and not stat.S_ISREG(mode):
        # Reading a FIFO would wait forever for a writer.
        raise StateStoreError(
            f"cannot open the state store {str(path)!r}: it is not a regular file (a FIFO, "
            "a socket or a device); give the path of a store file"
        )
    if not os.access(folder, os.W_OK | os.X_OK):
        raise StateStoreError(
            f"cannot open the state store {str(path)!r}: no permission to write in its folder "
            f"{str(folder)!r}; fix the folder's permissions or choose another path"
        )


def file_id(path: Path) -> tuple[int, int] | None:
    """The (device, inode) that ``path`` names now; None when nothing is there."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return (st.st_dev, st.st_ino)


def store_vanished(path: Path, deleted: bool) -> StateStoreError:
    """The error for a store file deleted or replaced while a run was using it."""
    what = "deleted" if deleted else "replaced by another file"
    return StateStoreError(
        f"the state store {str(path)!r} was {what} while this run was using it, so the "
        "records this run saved are no longer in it and nothing more is saved there; the "
        "tasks whose records were lost run again next time. Leave a store's file alone "
        "while a run uses it"
    )


def check_same_file(path: Path, opened: tuple[int, int] | None) -> None:
    """One ``stat``: fail when ``path`` no longer names the file that was ``opened``.

    :raises StateStoreError: naming the path and saying what happened.
    """
    now = file_id(path)
    if now != opened:
        raise store_vanished(path, now is None)


def os_error(path: Path, exc: OSError, doing: str) -> StateStoreError:
    """A :class:`StateStoreError` for an ``OSError`` met while ``doing`` something."""
    hint = "check the path, the folder's permissions and the free disk space"
    if isinstance(exc, PermissionError):
        hint = "fix the permissions of the file and its folder, or choose another path"
    elif isinstance(exc, FileNotFoundError):
        hint = "check that the folder exists (it is never created for you)"
    return StateStoreError(
        f"cannot {doing} the state store {str(path)!r}: {type(exc).__name__}: {exc}; {hint}"
    )


def public_state(record: TaskRecord) -> dict[str, Any]:
    """The dict ``load_task_state`` returns: the record as the JSON file spells it."""
    return {
        "status": record.status.value,
        "result": record.result,
        "error": record.error,
        "timestamp": format_timestamp(record.timestamp),
        "workflow": record.workflow,
        "version": record.version,
        "fingerprint": record.fingerprint,
        "token": record.token,
        "inputs": record.inputs,
        # only when captured: the reference's keys stay as they were otherwise
        **({"logs": record.logs} if record.logs is not None else {}),
    }


def record_from_state(task_name: str, state: object, source: str) -> TaskRecord:
    """A :class:`TaskRecord` from the dict a user's ``load_task_state`` returned.

    Accepts ``status`` as a :class:`TaskStatus` or its text and ``timestamp`` as a
    datetime or an ISO 8601 string (missing: the Unix epoch, i.e. unknown); the extra
    keys (``workflow``, ``version``...) are kept when they are strings.

    :raises StateStoreError: naming ``source`` and the task, for anything else.
    """
    if not isinstance(state, Mapping):
        raise StateStoreError(
            f"{source}.load_task_state({task_name!r}) returned {state!r}; it must return None "
            "or a dict with 'status', 'result', 'error' and 'timestamp'"
        )
    try:
        status = to_status(state.get("status"))
        stamp = state.get("timestamp")
        timestamp = _EPOCH if stamp is None else parse_timestamp(stamp)
    except ValueError as exc:
        raise StateStoreError(
            f"{source}.load_task_state({task_name!r}) returned a dict the engine cannot use: {exc}"
        ) from None
    inputs = state.get("inputs")

    def text(key: str) -> str | None:
        value = state.get(key)
        return value if isinstance(value, str) else None

    return TaskRecord(
        task_name=task_name,
        status=status,
        result=state.get("result"),
        error=error_text(state.get("error")),
        timestamp=timestamp,
        workflow=text("workflow"),
        version=text("version"),
        fingerprint=text("fingerprint"),
        token=text("token"),
        inputs=inputs if isinstance(inputs, str) else None,
    )
