"""Module attributes loaded on first use (PEP 562), for the optional Redis stores.

Packages expose their Redis stores by name (``apisec.ratelimit.RedisStore``)
while ``import apisec.ratelimit`` itself never imports redis-py.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable


def lazy_attributes(package: str, module: str, names: Iterable[str]) -> Callable[[str], object]:
    """A module ``__getattr__`` serving ``names`` from ``module`` when first asked for."""
    served = frozenset(names)

    def module_getattr(name: str) -> object:
        if name in served:
            return getattr(importlib.import_module(module), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return module_getattr
