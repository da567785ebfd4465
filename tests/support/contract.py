"""Re-running a store contract suite over another store.

A contract module (tests/test_ratelimit_properties.py, ...) defines a
parametrized ``store`` fixture, fixtures built on it (``service``) and tests
that take either. :func:`adopt` copies those tests, with the module's other
fixtures, helpers and marks, into a new namespace (a test module or class);
pytest collects them again there, where ``store`` is that namespace's own
fixture.
"""

from __future__ import annotations

import inspect
import types
from collections.abc import Callable, MutableMapping
from typing import Any


def _parameters(function: Callable[..., Any]) -> set[str]:
    try:
        return set(inspect.signature(function).parameters)
    except (TypeError, ValueError):
        return set()


def _is_fixture(value: object) -> bool:
    return type(value).__name__ == "FixtureFunctionDefinition" or hasattr(
        value, "_pytestfixturefunction"
    )


def store_users(contract: types.ModuleType) -> set[str]:
    """``store`` and the names of the module's fixtures that depend on it, transitively."""
    users = {"store"}
    fixtures = {n: v for n, v in vars(contract).items() if _is_fixture(v)}
    grew = True
    while grew:
        grew = False
        for name, fixture in fixtures.items():
            if name not in users and _parameters(fixture) & users:
                users.add(name)
                grew = True
    return users


def adopt(contract: types.ModuleType, namespace: MutableMapping[str, Any]) -> list[str]:
    """Copy ``contract``'s store tests and what they need into ``namespace``.

    Returns the adopted test names (functions and classes).
    """
    users = store_users(contract)
    adopted = []
    for name, value in vars(contract).items():
        if name.startswith("__") or name == "store" or name in namespace:
            continue
        if name.startswith("test_"):
            if callable(value) and _parameters(value) & users:
                namespace[name] = value
                adopted.append(name)
        elif name.startswith("Test") and isinstance(value, type):
            methods = [m for m in vars(value).values() if callable(m)]
            if any(_parameters(m) & users for m in methods):
                namespace[name] = value
                adopted.append(name)
        else:
            namespace[name] = value  # fixtures, helpers, pytestmark
    return adopted


def count_tests(namespace: MutableMapping[str, Any], adopted: list[str]) -> int:
    """How many test functions the adopted names hold (a class counts its methods)."""
    total = 0
    for name in adopted:
        value = namespace[name]
        if isinstance(value, type):
            total += sum(1 for member in vars(value) if member.startswith("test_"))
        else:
            total += 1
    return total
