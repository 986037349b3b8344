"""The task options: one list, with each option's default and its check.

:class:`TaskSettings` is the one place an option is declared. ``Task(...)`` and ``@task``
build one (``@task`` keeps it on ``func.__flowweaver__``), a :class:`~flowweaver.Task`
copies its fields onto plain attributes (read on the engine's hot path), and every other
part of the package reads those. The TypedDicts below only tell type checkers which
keywords ``Task`` and ``@task`` take; a test checks that they name the same options.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING, Any, Literal, TypedDict

from ._errors import WorkflowValidationError
from ._outcomes import TRIGGER_RULES

if TYPE_CHECKING:
    from datetime import timedelta

    from ._task import Task

Callback = Callable[["Task"], Any]
TriggerRule = Literal["all_success", "all_done", "none_failed", "one_failed", "one_success"]
ItemFailure = Literal["fail", "skip"]
MapKey = Callable[[Any], str]
CacheKey = Callable[..., str]
RetryOn = type[BaseException] | tuple[type[BaseException], ...]
RetryIf = Callable[[BaseException], bool]
Isolation = Literal["process", "thread"]


class TaskOptions(TypedDict, total=False):
    """The keyword-only options of ``Task(name, func, retries, timeout, callbacks, ...)``."""

    retry_delay: float
    retry_backoff: float
    retry_jitter: float
    version: str | None
    max_retry_delay: float
    trigger: TriggerRule
    map_over: str | None
    map_key: MapKey | None
    max_concurrent: int | None
    on_item_failure: ItemFailure
    cache_ttl: float | timedelta | None
    cache_key: CacheKey | None
    retry_on: RetryOn | None
    retry_if: RetryIf | None
    tags: list[str] | tuple[str, ...]
    isolation: Isolation | None


class DecoratorOptions(TaskOptions, total=False):
    """The options of ``@task(...)``: all of them, by keyword."""

    name: str | None
    retries: int
    timeout: float | None
    callbacks: list[Callback] | None


@dataclass(frozen=True, slots=True)
class TaskSettings:
    """Every task option with its default; checked when made.

    :raises WorkflowValidationError: for a bad value, naming the task and the option.
    """

    name: str | None = None
    retries: int = 0
    timeout: float | None = None
    callbacks: tuple[Callback, ...] = ()
    retry_delay: float = 0.0
    retry_backoff: float = 2.0
    retry_jitter: float = 0.0
    version: str | None = None
    # A backoff grows fast (2**10 s is 17 minutes): each wait is capped, by default at 5 min.
    max_retry_delay: float = 300.0
    trigger: TriggerRule = "all_success"
    # A map: one item per element of the upstream task map_over's result (see Task).
    map_over: str | None = None
    map_key: MapKey | None = None
    max_concurrent: int | None = None
    on_item_failure: ItemFailure = "fail"
    # Input-aware resume: a saved result older than cache_ttl seconds is stale; cache_key
    # (called with the task's keyword arguments) replaces the hash of its inputs.
    cache_ttl: float | timedelta | None = None
    cache_key: CacheKey | None = None
    # Retry only some errors: of these classes (retry_on) and/or those retry_if accepts.
    retry_on: RetryOn | None = None
    retry_if: RetryIf | None = None
    # Resource control: the tags an executor's limits and rate_limits count, and where the
    # function runs (None: where the executor runs functions of its kind).
    tags: tuple[str, ...] = ()
    isolation: Isolation | None = None

    def __post_init__(self) -> None:
        self.check(self.name or "<unnamed>")

    @classmethod
    def make(cls, task_name: str | None, options: dict[str, Any]) -> TaskSettings:
        """Settings from keyword options, with a FlowWeaver error for an unknown one."""
        unknown = sorted(set(options) - _NAMES)
        if unknown:
            where = f"task {task_name!r}" if task_name else "@task"
            raise WorkflowValidationError(
                f"{where}: unknown option {unknown[0]!r}; the options are "
                + ", ".join(sorted(_NAMES - {"name"}))
            )
        callbacks = options.get("callbacks")
        if callbacks is not None:
            if isinstance(callbacks, (str, bytes)) or not hasattr(callbacks, "__iter__"):
                where = f"task {task_name!r}: " if task_name else ""
                raise WorkflowValidationError(
                    f"{where}callbacks must be a list of callables, got {callbacks!r}"
                )
            options = {**options, "callbacks": tuple(callbacks)}
        elif "callbacks" in options:
            options = {**options, "callbacks": ()}
        tags = options.get("tags")
        if tags is not None:
            where = f"task {task_name!r}: " if task_name else ""
            if isinstance(tags, (str, bytes)) or not hasattr(tags, "__iter__"):
                raise WorkflowValidationError(
                    f"{where}tags must be a list of tag names, got {tags!r}; "
                    f"write tags=[{tags!r}] for one tag"
                )
            unique = tuple(dict.fromkeys(tags))
            if unique != tags:
                options = {**options, "tags": unique}
        return cls(**options)

    def named(self, name: str) -> TaskSettings:
        """The same settings for the task ``name`` (checked again, naming it)."""
        return self if self.name == name else replace(self, name=name)

    def check(self, task: str) -> None:
        """Raise :class:`WorkflowValidationError` naming ``task`` for any bad setting."""
        where = f"task {task!r}"
        retries = self.retries
        if isinstance(retries, bool) or not isinstance(retries, int):
            raise WorkflowValidationError(
                f"{where}: retries must be a whole number, got {retries!r}"
            )
        if retries < 0:
            raise WorkflowValidationError(
                f"{where}: retries must be 0 or more, got {retries}; use 0 for a single attempt"
            )
        timeout = self.timeout
        if timeout is not None:
            if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
                raise WorkflowValidationError(
                    f"{where}: timeout must be a number of seconds or None, got {timeout!r}"
                )
            if not timeout > 0 or math.isnan(timeout):
                raise WorkflowValidationError(
                    f"{where}: timeout must be more than 0 seconds, got {timeout!r}; "
                    "use None for no timeout"
                )
        for cb in self.callbacks:
            if not callable(cb):
                raise WorkflowValidationError(
                    f"{where}: every callback must be callable, got {cb!r}"
                )
        for label in ("retry_delay", "retry_jitter"):
            value = getattr(self, label)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
                raise WorkflowValidationError(f"{where}: {label} must be 0 or more, got {value!r}")
        if self.retry_jitter > 1:
            raise WorkflowValidationError(
                f"{where}: retry_jitter is a fraction of the delay from 0 to 1, "
                f"got {self.retry_jitter!r}"
            )
        backoff = self.retry_backoff
        if isinstance(backoff, bool) or not isinstance(backoff, (int, float)) or not backoff >= 1:
            raise WorkflowValidationError(
                f"{where}: retry_backoff must be 1 (constant delay) or more, got {backoff!r}"
            )
        # An infinite delay or backoff would make a failing task wait forever.
        for label in ("retry_delay", "retry_backoff", "max_retry_delay"):
            value = getattr(self, label)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise WorkflowValidationError(
                    f"{where}: {label} must be a number of seconds, got {value!r}"
                )
            if not math.isfinite(value):
                raise WorkflowValidationError(
                    f"{where}: {label} must be a finite number, got {value!r}; cap the wait "
                    "between retries with max_retry_delay (seconds)"
                )
        if not self.max_retry_delay > 0:
            raise WorkflowValidationError(
                f"{where}: max_retry_delay must be more than 0 seconds, "
                f"got {self.max_retry_delay!r}"
            )
        if self.version is not None and not isinstance(self.version, str):
            raise WorkflowValidationError(
                f"{where}: version must be a string, got {self.version!r}"
            )
        if self.trigger not in TRIGGER_RULES:
            raise WorkflowValidationError(
                f"{where}: trigger must be one of {', '.join(map(repr, TRIGGER_RULES))}, "
                f"got {self.trigger!r}"
            )
        self._check_map(where)
        self._check_cache(where)
        self._check_retry_conditions(where)
        self._check_resources(where)

    def _check_resources(self, where: str) -> None:
        tags = self.tags
        if not isinstance(tags, tuple):
            raise WorkflowValidationError(
                f"{where}: tags must be a list of tag names, got {tags!r}"
            )
        for tag in tags:
            if not isinstance(tag, str) or not tag:
                raise WorkflowValidationError(
                    f"{where}: every tag must be a non-empty str, got {tag!r}"
                )
        if self.isolation not in (None, "process", "thread"):
            raise WorkflowValidationError(
                f"{where}: isolation must be 'process', 'thread' or None (where the "
                f"executor runs it), got {self.isolation!r}"
            )

    def _check_retry_conditions(self, where: str) -> None:
        on = self.retry_on
        if on is not None:
            classes = on if isinstance(on, tuple) else (on,)
            if not classes or not all(
                isinstance(c, type) and issubclass(c, BaseException) for c in classes
            ):
                raise WorkflowValidationError(
                    f"{where}: retry_on must be an exception class or a tuple of them, "
                    f"got {on!r}; e.g. retry_on=(TimeoutError, ConnectionError)"
                )
        if self.retry_if is not None and not callable(self.retry_if):
            raise WorkflowValidationError(
                f"{where}: retry_if must be a function of the exception returning True to "
                f"retry, got {self.retry_if!r}"
            )

    def _check_cache(self, where: str) -> None:
        ttl = self.cache_ttl
        if ttl is not None:
            from datetime import timedelta  # here: only a cache_ttl needs it (import time)

            seconds = ttl.total_seconds() if isinstance(ttl, timedelta) else ttl
            if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
                raise WorkflowValidationError(
                    f"{where}: cache_ttl must be a number of seconds or a timedelta, got {ttl!r}"
                )
            if not (seconds > 0 and math.isfinite(seconds)):
                raise WorkflowValidationError(
                    f"{where}: cache_ttl must be more than 0 seconds and finite, got {ttl!r}; "
                    "use None for a saved result that never expires"
                )
        if self.cache_key is not None and not callable(self.cache_key):
            raise WorkflowValidationError(
                f"{where}: cache_key must be a function of the task's keyword arguments "
                f"returning a str, got {self.cache_key!r}"
            )
        if self.cache_key is not None and self.map_over is not None:
            raise WorkflowValidationError(
                f"{where}: cache_key applies to a task, not to the items of a map (each item "
                "is matched by its element's hash); put the key on a task of its own"
            )

    def _check_map(self, where: str) -> None:
        over = self.map_over
        if over is not None and (not isinstance(over, str) or not over):
            raise WorkflowValidationError(
                f"{where}: map_over must be the name of an upstream task, got {over!r}"
            )
        if over is not None and over == self.name:
            raise WorkflowValidationError(f"{where}: a task cannot map over itself")
        if over is not None and self.trigger in ("one_failed", "one_success"):
            # Such a rule could start the task before the result it maps over exists.
            raise WorkflowValidationError(
                f"{where}: a mapped task needs the result it maps over, so its trigger "
                f"cannot be {self.trigger!r}; use 'all_success', 'all_done' or "
                "'none_failed', or put the rule on a task between them"
            )
        if self.map_key is not None and not callable(self.map_key):
            raise WorkflowValidationError(
                f"{where}: map_key must be a function of one element returning a str, "
                f"got {self.map_key!r}"
            )
        limit = self.max_concurrent
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)):
            raise WorkflowValidationError(
                f"{where}: max_concurrent must be a whole number or None, got {limit!r}"
            )
        if limit is not None and limit < 1:
            raise WorkflowValidationError(
                f"{where}: max_concurrent must be 1 or more, got {limit}; use None for no "
                "bound beyond the executor's own"
            )
        if self.on_item_failure not in ("fail", "skip"):
            raise WorkflowValidationError(
                f"{where}: on_item_failure must be 'fail' or 'skip', got {self.on_item_failure!r}"
            )
        if over is None:
            for label, default in (
                ("map_key", None),
                ("max_concurrent", None),
                ("on_item_failure", "fail"),
            ):
                if getattr(self, label) != default:
                    raise WorkflowValidationError(
                        f"{where}: {label} applies to the items of a map; give the task "
                        "map_over='<upstream task>' too"
                    )


_NAMES = frozenset(f.name for f in fields(TaskSettings))

#: The options a Task copies onto its own attributes (``name`` is the task's own).
OPTIONS: tuple[str, ...] = tuple(f.name for f in fields(TaskSettings) if f.name != "name")

DEFAULTS = TaskSettings()


def keyword_parameters(names: tuple[str, ...]) -> list[inspect.Parameter]:
    """Keyword-only parameters for these options, with their defaults and annotations,
    for the runtime signatures of ``Task`` and ``@task`` (``help()``, IDEs, notebooks)."""
    by_name = {f.name: f for f in fields(TaskSettings)}
    out = []
    for name in names:
        default = getattr(DEFAULTS, name)
        annotation = by_name[name].type
        if name == "callbacks":  # taken as a list, kept as a tuple
            default, annotation = None, "list[Callback] | None"
        out.append(
            inspect.Parameter(
                name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation
            )
        )
    return out
