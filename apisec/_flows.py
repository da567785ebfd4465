"""Sync and async drivers for flows written once as generators.

A flow yields store calls as tuples, ``("consume", family_id, token_hash, now)``,
and receives each call's result; it returns its own result. :func:`drive`
runs it against a synchronous store, :func:`adrive` against an async one, so
the logic of a multi-step operation exists exactly once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Generator
from typing import Any, TypeVar

T = TypeVar("T")
StoreCall = tuple[Any, ...]
Flow = Generator[StoreCall, Any, T]


def drive(flow: Flow[T], store: object) -> T:
    try:
        call = next(flow)
        while True:
            method: Callable[..., Any] = getattr(store, call[0])
            call = flow.send(method(*call[1:]))
    except StopIteration as stop:
        result: T = stop.value
        return result


async def adrive(flow: Flow[T], store: object) -> T:
    try:
        call = next(flow)
        while True:
            method: Callable[..., Awaitable[Any]] = getattr(store, call[0])
            call = flow.send(await method(*call[1:]))
    except StopIteration as stop:
        result: T = stop.value
        return result
