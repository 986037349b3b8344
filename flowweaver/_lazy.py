"""Public names imported on first use (PEP 562), so that a package import stays cheap.

``lazy_names`` gives a module the module-level ``__getattr__`` and ``__dir__`` for names
that live in modules it does not import up front. The first read of such a name imports
its module and binds that module's names in the first one, so every later read is a plain
attribute read, and ``vars(module)`` then holds them like eagerly imported names.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from importlib import import_module
from typing import Any


def lazy_names(
    name: str,
    namespace: dict[str, Any],
    modules: Mapping[str, Iterable[str | tuple[str, str]]],
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for the module ``name``, whose globals are ``namespace``.

    :param modules: module (relative to the module's package) -> its names: a name, or a pair
        (public name, name in the module) for a name exported under another one.
    """
    pairs = {
        module: [(n, n) if isinstance(n, str) else n for n in names]
        for module, names in modules.items()
    }
    where = {public: module for module, names in pairs.items() for public, _ in names}

    def __getattr__(attr: str) -> Any:
        module = where.get(attr)
        if module is None:
            raise AttributeError(f"module {name!r} has no attribute {attr!r}")
        source = import_module(module, namespace["__package__"])
        for public, own in pairs[module]:  # one import binds them all
            namespace[public] = getattr(source, own)
        return namespace[attr]

    def __dir__() -> list[str]:
        return sorted({*namespace, *where})

    return __getattr__, __dir__
