"""What a function is, read once: is it a coroutine function, which keywords it takes.

Used by tasks (which upstream results a function receives), callbacks and observers. Pure
introspection, no FlowWeaver types, so every part of the package can import it.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from types import CodeType, FunctionType
from typing import Any


def is_async_callable(func: Callable[..., Any]) -> bool:
    """True when calling ``func`` returns a coroutine (also through partials and __call__)."""
    if type(func) is FunctionType:
        # The common case, read straight from the code flags: thousands of tasks per run.
        if func.__code__.co_flags & inspect.CO_COROUTINE:
            return True
        # inspect.markcoroutinefunction (3.12+) leaves a marker in the function's __dict__
        return bool(func.__dict__) and inspect.iscoroutinefunction(func)
    while isinstance(func, functools.partial):
        func = func.func
    if inspect.iscoroutinefunction(func):
        return True
    call = getattr(func, "__call__", None)  # noqa: B004 - a callable object's own method
    return call is not None and inspect.iscoroutinefunction(call)


def accepted_keywords(func: Callable[..., Any]) -> tuple[frozenset[str], bool]:
    """The parameter names ``func`` takes by keyword, and whether it takes ``**kwargs``.

    A function whose signature cannot be read (some builtins) is given nothing.
    """
    if type(func) is FunctionType:
        return _keywords_of_code(func.__code__)
    try:
        sig = inspect.signature(func)
    except (TypeError, ValueError):
        return frozenset(), False
    names = set()
    var_kw = False
    for p in sig.parameters.values():
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
            names.add(p.name)
        elif p.kind is p.VAR_KEYWORD:
            var_kw = True
    return frozenset(names), var_kw


# Cached by code object, so the many lambdas or closures made from one def share an
# entry; bounded, so code made on the fly cannot pile up.
@functools.lru_cache(maxsize=4096)
def _keywords_of_code(code: CodeType) -> tuple[frozenset[str], bool]:
    first = code.co_posonlyargcount
    end = code.co_argcount + code.co_kwonlyargcount
    return frozenset(code.co_varnames[first:end]), bool(code.co_flags & inspect.CO_VARKEYWORDS)
