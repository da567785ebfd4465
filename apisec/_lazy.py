"""Module attributes loaded on first use (PEP 562).

Packages expose their Redis stores by name (``apisec.ratelimit.RedisStore``)
while ``import apisec.ratelimit`` itself never imports redis-py, and the
top-level ``apisec`` re-exports its main names without importing every
module up front.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any


def lazy_attributes(package: str, module: str, names: Iterable[str]) -> Callable[[str], object]:
    """A module ``__getattr__`` serving ``names`` from ``module`` when first asked for."""
    served = frozenset(names)

    def module_getattr(name: str) -> object:
        if name in served:
            return getattr(importlib.import_module(module), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return module_getattr


def lazy_exports(
    package: str, namespace: dict[str, Any], exports: Mapping[str, Iterable[str]]
) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for a package re-exporting names of its modules.

    ``exports`` maps a module to the names it provides. Each name is imported
    on first access and then kept in ``namespace`` (the package's globals), so
    later lookups are plain attribute reads.
    """
    home = {name: module for module, names in exports.items() for name in names}

    def module_getattr(name: str) -> object:
        module = home.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    def module_dir() -> list[str]:
        return sorted({*namespace, *home})

    return module_getattr, module_dir
