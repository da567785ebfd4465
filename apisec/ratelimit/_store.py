"""The store protocols (the memory store is in ``_memory``).

A store answers :meth:`RateLimitStore.evaluate`: apply a list of limit
requests *atomically* and return one :class:`Outcome` each. Stores that can
run Python (SQL, anything with a lock or a transaction) do it by loading the
states, calling :func:`apply_requests` and saving what it returns; the
memory store runs the same transitions with its sliding-window logs changed
in place, and the Redis stores run them as one Lua script.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple, Protocol, runtime_checkable

import attrs

from apisec.ratelimit._algorithms import Algorithm, Outcome

__all__ = ["AsyncRateLimitStore", "LimitRequest", "RateLimitStore"]


class LimitRequest(NamedTuple):
    """One limit to check: the store key, its algorithm, and the units to spend."""

    key: str
    algorithm: Algorithm
    cost: int


@runtime_checkable
class RateLimitStore(Protocol):
    """What a rate-limit backend implements.

    ``evaluate`` must be atomic over all of ``requests``: load their states,
    run :func:`apply_requests`, write back the non-None states, each kept for
    its outcome's ``reset_after`` seconds, as one step. ``now`` is None when
    the store should use its own clock.
    """

    def evaluate(
        self, requests: Sequence[LimitRequest], now: float | None, peek: bool
    ) -> list[Outcome]: ...

    def clear(self, keys: Sequence[str]) -> None: ...


@runtime_checkable
class AsyncRateLimitStore(Protocol):
    """The asyncio twin of :class:`RateLimitStore`."""

    async def evaluate(
        self, requests: Sequence[LimitRequest], now: float | None, peek: bool
    ) -> list[Outcome]: ...

    async def clear(self, keys: Sequence[str]) -> None: ...


@runtime_checkable
class OneLimitStore(Protocol):
    """A store's optional one-limit shortcut, used by limiters with a single limit.

    ``evaluate_one(key, algorithm, cost, now)`` is :meth:`RateLimitStore.evaluate`
    for one request, without the lists (the memory and Redis stores offer it).
    """

    def evaluate_one(
        self, key: str, algorithm: Algorithm, cost: int, now: float | None
    ) -> Outcome: ...


@runtime_checkable
class AsyncOneLimitStore(Protocol):
    """The asyncio twin of :class:`OneLimitStore`."""

    async def evaluate_one(
        self, key: str, algorithm: Algorithm, cost: int, now: float | None
    ) -> Outcome: ...


@attrs.define
class Evaluate:
    """The store call the limiter's flow yields (apisec._flows)."""

    requests: Sequence[LimitRequest]
    now: float | None
    peek: bool

    def run(self, store: RateLimitStore) -> list[Outcome]:
        return store.evaluate(self.requests, self.now, self.peek)

    async def arun(self, store: AsyncRateLimitStore) -> list[Outcome]:
        return await store.evaluate(self.requests, self.now, self.peek)
