"""The JSON store's file format and its in-memory copy; no I/O here.

Theory of operation. The store is a main file in the reference's format (a JSON object
keyed by task name; each record has ``status``, ``result``, ``error`` and ``timestamp``,
plus the keys ``workflow``, ``version``, ``fingerprint``, ``token`` and ``inputs``, and
``logs``, a list of lines, only in a record of a run with ``capture_logs``: files written
before it existed read as they are, records without it as they were) and a
*journal* beside it (``<file>.journal``), one JSON line per durable change:

* ``{"put": {task_name: record, ...}}``: a batch of records, written by one ``save``;
* ``{"delete": [task_name, ...]}`` and ``{"clear": true}``.

The state is the main file with the journal's lines applied in order. A run appends one
line per batch, so saving costs O(batch), not O(file); once the journal outgrows the main
file (and when a run ends) it is *compacted*: the whole state is written to the main file
by atomic replace and the journal is removed. Replaying a journal on the main file it was
compacted into changes nothing, so a crash between the two steps is harmless. A crash
mid-append leaves a torn last line without its newline; it never returned as durable, so
it is dropped. Every reader and writer holds the store's lock file and first brings this
copy up to date from what is on disk (:meth:`JSONState.stale` says when to re-read).

Results: with the default :class:`~flowweaver.JSONSerializer` the ``result`` key holds the
JSON value itself. With another serializer it holds the serializer's output, its text
as is (``"result_encoding": "text"``) or its bytes in base64 (``"base64"``), so a store
read with the wrong serializer fails clearly instead of restoring garbage.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .._status import TaskStatus
from ._api import StateStoreError, TaskRecord
from ._io import Identity
from ._records import format_timestamp, parse_timestamp, to_status
from ._serializers import JSONSerializer, Serializer, encode, encode_json_copy

Raw = dict[str, Any]
_TEXT_KEYS = ("workflow", "version", "fingerprint", "token")
_STATUS_VALUES = frozenset(s.value for s in TaskStatus)
#: Compaction waits at least until the journal is this big, so small stores are not
#: rewritten on every batch.
COMPACT_MIN_BYTES = 64 * 1024


class JSONState:
    """The store's records as last read from disk, and how to tell that disk changed.

    :param path: the main file (named in every error).
    :param serializer: how results are encoded and decoded.
    """

    def __init__(self, path: Path, serializer: Serializer) -> None:
        self.path = path
        self.journal = path.with_name(path.name + ".journal")
        self.serializer = serializer
        #: Results are kept as plain JSON values: ``encode`` gives a copy of the value.
        self.plain_json = isinstance(serializer, JSONSerializer)
        self.records: dict[str, Raw] = {}
        self._rendered: dict[str, tuple[Raw, str]] = {}  # name -> (record, its pretty text)
        self.main: Identity | None = None
        self.journal_file: tuple[int, int] | None = None  # (device, inode)
        self.journal_size = 0
        # The journal's whole identity when last read or appended to: a journal that still
        # has it is the very file (an inode number alone may be reused by a new journal).
        self.journal_seen: Identity | None = None
        self._known = False  # False until the first read, and after a failed one

    # -- keeping up with the disk -------------------------------------------------------------

    def stale(self, main: Identity | None, journal: Identity | None) -> bool:
        """True when the main file changed since it was read, or the journal was replaced
        or cut (a compaction elsewhere): then both must be read again from the start."""
        if not self._known or main != self.main:
            return True
        if journal is None:
            return self.journal_file is not None
        if self.journal_file is None:
            return self.journal_size != 0
        return (journal.device, journal.inode) != self.journal_file or (
            journal.size < self.journal_size
        )

    def read_main(self, data: bytes | None, main: Identity | None) -> None:
        """Replace the copy with the main file's content (None: no file yet).

        :raises StateStoreError: when it is not JSON or not the store's format; the
            file is left as it is.
        """
        self._known = False
        self.records = {} if data is None else _parse_main(self.path, data)
        self.main = main
        self.journal_file = None
        self.journal_size = 0
        self.journal_seen = None
        self._known = True

    def read_journal(self, data: bytes, journal: Identity) -> int:
        """Apply the journal's bytes that follow :attr:`journal_size`.

        :returns: the size the journal should have: any torn last line is not counted,
            and the caller cuts it off (it was never reported durable).
        :raises StateStoreError: for a damaged complete line.
        """
        self._known = False
        end = data.rfind(b"\n") + 1
        start = self.journal_size
        for number, line in enumerate(data[:end].splitlines(), 1):
            if line.strip():
                self._apply_line(line, number, start)
        self.journal_file = (journal.device, journal.inode)
        self.journal_size = start + end
        self.journal_seen = journal
        self._known = True
        return self.journal_size

    def appended(self, journal: Identity) -> None:
        """Our own line is durable in ``journal``."""
        self.journal_file = (journal.device, journal.inode)
        self.journal_size = journal.size
        self.journal_seen = journal

    def compacted(self, main: Identity) -> None:
        """The main file now holds everything and the journal is gone."""
        self.main = main
        self.journal_file = None
        self.journal_size = 0
        self.journal_seen = None

    def should_compact(self) -> bool:
        """True once the journal outgrows the main file (amortised O(1) per record)."""
        main_size = self.main.size if self.main is not None else 0
        return self.journal_size > max(main_size, COMPACT_MIN_BYTES)

    def _apply_line(self, line: bytes, number: int, start: int) -> None:
        where = f"line {number} after byte {start}" if start else f"line {number}"
        try:
            op = json.loads(line)
            if not isinstance(op, dict):
                raise ValueError("not a JSON object")
            if "put" in op:
                puts = op["put"]
                if not isinstance(puts, dict):
                    raise ValueError("'put' is not an object")
                for name, raw in puts.items():
                    _check_record(name, raw)
                self.records.update(puts)
            elif "delete" in op:
                for name in op["delete"]:
                    self.records.pop(name, None)
            elif op.get("clear") is True:
                self.records.clear()
            else:
                raise ValueError("unknown operation")
        except (ValueError, TypeError) as exc:
            raise StateStoreError(
                f"the journal {str(self.journal)!r} of the state store {str(self.path)!r} is "
                f"damaged at {where}: {exc}; it was left as it is: move both files away to "
                "start a new store"
            ) from None

    # -- changes ------------------------------------------------------------------------------

    def forget(self) -> None:
        """Distrust the copy (a write failed halfway): the next access reads the disk."""
        self._known = False

    def put(self, raws: Mapping[str, Raw]) -> bytes:
        """Apply a batch of records; returns its journal line.

        :raises StateStoreError: for a task name that UTF-8 cannot hold.
        """
        for name in raws:
            if not name.isascii():
                try:
                    name.encode("utf-8")
                except UnicodeEncodeError:
                    raise StateStoreError(
                        f"the state store {str(self.path)!r} cannot save task {name!r}: its "
                        "name has a lone surrogate, which a UTF-8 file cannot hold"
                    ) from None
        self.records.update(raws)
        return _line({"put": raws})

    def delete(self, names: Sequence[str]) -> bytes:
        """Remove records; returns the journal line."""
        for name in names:
            self.records.pop(name, None)
        return _line({"delete": list(names)})

    def render(self, pretty: bool) -> bytes:
        """The whole state as the main file's bytes.

        Pretty, it has the reference's layout: one line per task name and per key, each
        value (a result too) compact on its key's line. Each record is rendered by the C
        encoder and kept until the record changes, so compacting a big store costs a join,
        not a re-encoding of every record (``json.dumps(indent=...)`` runs in Python).
        """
        if not pretty:
            return (_COMPACT.encode(self.records) + "\n").encode("utf-8")
        cache = self._rendered
        parts = []
        for name, raw in self.records.items():
            cached = cache.get(name)
            if cached is None or cached[0] is not raw:
                cached = (raw, _pretty_record(name, raw))
                cache[name] = cached
            parts.append(cached[1])
        if len(cache) > 2 * len(self.records) + 64:
            # forget records deleted since (names a cleared store no longer has)
            self._rendered = {n: c for n, c in cache.items() if n in self.records}
        if not parts:
            return b"{}\n"
        return ("{\n" + ",\n".join(parts) + "\n}\n").encode("utf-8")

    # -- records ------------------------------------------------------------------------------

    def names(self, workflow: str | None) -> list[str]:
        """The task names saved, of one workflow (or all)."""
        return [n for n, raw in self.records.items() if _owned(raw, workflow)]

    def get(self, name: str, workflow: str | None) -> TaskRecord | None:
        """The record of ``name`` (of ``workflow``, unless None), results decoded."""
        raw = self.records.get(name)
        if raw is None or not _owned(raw, workflow):
            return None
        return self.decode(name, raw)

    def all(self, workflow: str | None) -> list[TaskRecord]:
        """Every record (of one workflow), oldest first."""
        found = [self.decode(n, raw) for n, raw in self.records.items() if _owned(raw, workflow)]
        found.sort(key=lambda r: (r.timestamp, r.task_name))
        return found

    def workflows(self) -> list[str]:
        """The names of the workflows with records here."""
        return sorted({raw["workflow"] for raw in self.records.values() if raw.get("workflow")})

    def check_owner(self, workflow: str, names: Iterable[str]) -> None:
        """Refuse to let ``workflow`` restore or overwrite another workflow's records.

        The file is keyed by task name alone (the reference's format), so two workflows
        with a task of the same name cannot share it. Records without a workflow (written
        by the reference's five methods) belong to nobody and may be taken over.

        :raises StateStoreError: naming the task and both workflows.
        """
        for name in names:
            raw = self.records.get(name)
            owner = None if raw is None else raw.get("workflow")
            if owner is not None and owner != workflow:
                raise StateStoreError(
                    f"the state store {str(self.path)!r} holds task {name!r} of workflow "
                    f"{owner!r}, and workflow {workflow!r} has a task of the same name; a "
                    "JSON store is keyed by task name alone, so the two would overwrite each "
                    "other: rename one of the tasks, give each workflow its own JSON file, or "
                    "use an SQLiteStateStore (keyed by workflow and task name)"
                )

    def load(
        self, workflow: str, names: Iterable[str], prefixes: Sequence[str] = ()
    ) -> dict[str, TaskRecord]:
        """What a run of ``workflow`` restores from: its records and ownerless ones, under
        ``names`` and under every name that starts with one of ``prefixes``.

        :raises StateStoreError: when such a name belongs to another workflow. For a
            prefix (a mapped task's items) that is any item of another workflow's task of
            the same name, although this run's items are not known yet: the two would
            overwrite each other as soon as a key is shared.
        """
        names = list(names)
        if prefixes:
            starts = tuple(prefixes)
            names.extend(n for n in self.records if n.startswith(starts))
        self.check_owner(workflow, names)
        found = {}
        for name in names:
            raw = self.records.get(name)
            if raw is not None:
                found[name] = self.decode(name, raw)
        return found

    def encode(self, task_name: str, value: Any) -> Any:
        """The stored form of a result (see the module docstring).

        :raises StateSerializationError: naming the task and the type.
        """
        if self.plain_json:
            return encode_json_copy(task_name, value)
        return encode(self.serializer, task_name, value)

    def raw(self, record: TaskRecord, workflow: str | None) -> Raw:
        """A record as the file spells it; ``record.result`` is what :meth:`encode` gave."""
        raw: Raw = {
            "status": record.status.value,
            "result": record.result,
            "error": record.error,
            "timestamp": format_timestamp(record.timestamp),
            "workflow": workflow,
            "version": record.version,
            "fingerprint": record.fingerprint,
            "token": record.token,
            "inputs": record.inputs,
        }
        if record.logs is not None:
            raw["logs"] = record.logs
        result = record.result
        if not self.plain_json and result is not None:
            if isinstance(result, bytes):
                raw["result"] = base64.b64encode(result).decode("ascii")
                raw["result_encoding"] = "base64"
            else:
                raw["result_encoding"] = "text"
        return raw

    def decode(self, name: str, raw: Raw) -> TaskRecord:
        """A :class:`TaskRecord` from a checked record, its result decoded afresh."""
        inputs = raw.get("inputs")
        return TaskRecord(
            task_name=name,
            status=TaskStatus(raw["status"]),
            result=self._result(name, raw),
            error=raw.get("error"),
            timestamp=parse_timestamp(raw["timestamp"]),
            workflow=raw.get("workflow"),
            version=raw.get("version"),
            fingerprint=raw.get("fingerprint"),
            token=raw.get("token"),
            inputs=inputs,
            logs=_copy(raw.get("logs")),
        )

    def _result(self, name: str, raw: Raw) -> Any:
        value = raw.get("result")
        encoding = raw.get("result_encoding")
        if self.plain_json:
            if encoding is not None:
                why = f"it was written with another serializer ({encoding} encoding)"
                raise self._wrong_serializer(name, why)
            # a copy: the caller may change it, and this one is written out again later
            return None if value is None else json.loads(json.dumps(value))
        if value is None:
            return None
        try:
            if encoding == "base64":
                return self.serializer.loads(base64.b64decode(value))
            if encoding == "text":
                return self.serializer.loads(value)
        except Exception as exc:
            raise self._wrong_serializer(name, f"{type(exc).__name__}: {exc}") from exc
        raise self._wrong_serializer(name, "it was written as plain JSON (JSONSerializer)")

    def _wrong_serializer(self, name: str, why: str) -> StateStoreError:
        return StateStoreError(
            f"the state store {str(self.path)!r} cannot decode the result of task {name!r} "
            f"with {self.serializer!r}: {why}; open it with the serializer that wrote it"
        )


def _copy(logs: list[str] | None) -> list[str] | None:
    # the caller may change it; the copy here is written out again later
    return None if logs is None else list(logs)


def _owned(raw: Raw, workflow: str | None) -> bool:
    return workflow is None or raw.get("workflow") == workflow


_COMPACT = json.JSONEncoder(ensure_ascii=False)
_VALUE = json.JSONEncoder(ensure_ascii=False, separators=(", ", ": "))
_string = json.encoder.encode_basestring  # C, keeps non-ASCII as it is
_KEY_LINES: dict[str, str] = {}  # key -> '    "key": '


def _pretty_record(name: str, raw: Raw) -> str:
    """``  "name": {`` then one ``    "key": value`` line per key, then ``  }``.

    Most values are strings or null: those skip the encoder object's Python layer.
    """
    lines = []
    for key, value in raw.items():
        head = _KEY_LINES.get(key)
        if head is None:
            head = _KEY_LINES[key] = f"    {_string(key)}: "
        kind = type(value)
        if value is None:
            lines.append(head + "null")
        elif kind is str:
            lines.append(head + _string(value))
        elif kind is int:
            lines.append(head + int.__repr__(value))
        else:
            lines.append(head + _VALUE.encode(value))
    body = ",\n".join(lines)
    return f"  {_string(name)}: {{\n{body}\n  }}"


def _line(op: Mapping[str, Any]) -> bytes:
    # ASCII: a line never holds a raw newline, and a torn line cannot end mid-character.
    return (json.dumps(op, separators=(",", ":")) + "\n").encode("ascii")


def _parse_main(path: Path, data: bytes) -> dict[str, Raw]:
    try:
        records = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        what = "is empty" if not data.strip() else f"is not valid JSON ({exc})"
        raise StateStoreError(
            f"the state store {str(path)!r} {what}; it was left as it is: repair it, move "
            "it away to start a new store, or choose another store_path"
        ) from None
    if not isinstance(records, dict):
        raise _bad_shape(path, f"it holds a JSON {type(records).__name__}, not an object")
    for name, raw in records.items():
        try:
            _check_record(name, raw)
        except ValueError as exc:
            raise _bad_shape(path, str(exc)) from None
    return records


def _bad_shape(path: Path, why: str) -> StateStoreError:
    return StateStoreError(
        f"the state store {str(path)!r} is not a FlowWeaver state file: {why}. A state file "
        'is a JSON object keyed by task name, each value like {"status": "COMPLETED", '
        '"result": ..., "error": null, "timestamp": "2024-01-15T10:30:00"}; it was left as '
        "it is: fix it, move it away, or choose another store_path"
    )


def _check_record(name: object, raw: object) -> None:
    """:raises ValueError: saying what is wrong with one record."""
    if not isinstance(raw, dict):
        raise ValueError(f"the record of task {name!r} is a {type(raw).__name__}, not an object")
    status = raw.get("status")
    if status not in _STATUS_VALUES:
        raise ValueError(f"the record of task {name!r} has no valid status (got {status!r})")
    to_status(status)
    try:
        parse_timestamp(raw.get("timestamp"))
    except ValueError:
        raise ValueError(
            f"the record of task {name!r} has no valid ISO 8601 timestamp "
            f"(got {raw.get('timestamp')!r})"
        ) from None
    for key in _TEXT_KEYS:
        if raw.get(key) is not None and not isinstance(raw[key], str):
            raise ValueError(f"the record of task {name!r} has a {key!r} that is not a string")
    error = raw.get("error")
    if error is not None and not isinstance(error, str):
        raise ValueError(f"the record of task {name!r} has an 'error' that is not a string")
    inputs = raw.get("inputs")
    if inputs is not None and not isinstance(inputs, str):
        raise ValueError(f"the record of task {name!r} has 'inputs' that are not a string")
    logs = raw.get("logs")
    if logs is not None and (
        not isinstance(logs, list) or not all(isinstance(line, str) for line in logs)
    ):
        raise ValueError(f"the record of task {name!r} has 'logs' that are not a list of strings")
