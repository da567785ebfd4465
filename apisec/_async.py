"""What the sync/async twins share: telling async from sync, and the memory stores' async face.

Every twin asks the same two questions, always through these helpers:

* is this callable (a store's method, a resolver, a ``verify``) async?
  :func:`is_async_callable`, :func:`has_async_method`;
* is this value awaitable (:func:`is_awaitable`), and if a callable that
  may be either gave it, await it (:func:`resolved`).

:class:`InPlace` is the async face of a store that never blocks (the memory
stores), so every ``Async*`` twin can default to memory like its sync twin.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeGuard, TypeVar

__all__ = ["InPlace", "has_async_method", "is_async_callable", "is_awaitable", "resolved"]

S = TypeVar("S")
T = TypeVar("T")


def is_async_callable(fn: object) -> TypeGuard[Callable[..., Awaitable[Any]]]:
    """Whether calling ``fn`` gives an awaitable (a coroutine function or async ``__call__``)."""
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004 - callable objects with an async __call__
    )


def has_async_method(obj: object, name: str) -> bool:
    """Whether ``obj.<name>`` is async: how twins tell async stores and services from sync ones."""
    return is_async_callable(getattr(obj, name, None))


def is_awaitable(value: object) -> TypeGuard[Awaitable[Any]]:
    """Whether ``value`` can be awaited (a coroutine, a future, an ``__await__`` object)."""
    return inspect.isawaitable(value)


async def resolved(value: T | Awaitable[T]) -> T:
    """``value`` itself, or what it gives when awaited."""
    if inspect.isawaitable(value):
        return await value
    return value


class InPlace(Generic[S]):
    """The async face of a store whose calls never block: awaiting a method runs it in place.

    Methods of the wrapped store become coroutine functions with the same
    arguments; other attributes (such as a memory store's ``clock``) pass
    through unchanged. Only for stores that do no I/O — the memory stores.

    >>> import asyncio
    >>> from apisec.ratelimit import MemoryStore
    >>> store = InPlace(MemoryStore())
    >>> asyncio.run(store.clear(["k"])) is None
    True
    """

    def __init__(self, inner: S) -> None:
        self.inner = inner

    def __repr__(self) -> str:
        return f"InPlace({self.inner!r})"

    def __getattr__(self, name: str) -> Any:
        if name == "inner" or name.startswith("_"):
            raise AttributeError(name)
        attr = getattr(self.inner, name)
        if not inspect.ismethod(attr) or attr.__self__ is not self.inner:
            return attr  # data, or a callable held as data (a clock)
        call = _in_place(attr)
        self.__dict__[name] = call  # later lookups find it directly
        return call


def _in_place(method: Callable[..., T]) -> Callable[..., Awaitable[T]]:
    async def call(*args: Any, **kwargs: Any) -> T:
        return method(*args, **kwargs)

    call.__name__ = call.__qualname__ = method.__name__
    call.__doc__ = method.__doc__
    return call
