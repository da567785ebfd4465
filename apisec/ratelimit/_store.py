"""The store protocol and the in-memory store.

A store answers :meth:`RateLimitStore.evaluate`: apply a list of limit
requests *atomically* and return one :class:`Outcome` each. Stores that can
run Python (memory, SQL, anything with a lock or a transaction) do it by
loading the states, calling :func:`apply_requests` and saving what it
returns; the Redis stores run the same algorithms as one Lua script.
"""

from __future__ import annotations

import heapq
import math
import threading
import time
from collections.abc import Sequence
from typing import NamedTuple, Protocol, runtime_checkable

import attrs

from apisec._clock import Clock, wall_clock
from apisec.audit import AuditEvent, emit
from apisec.errors import ConfigurationError
from apisec.ratelimit._algorithms import Algorithm, Outcome, State, _up, apply_requests

__all__ = ["AsyncRateLimitStore", "LimitRequest", "MemoryStore", "RateLimitStore"]


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


_STRIPES = 64
_STRIPE_MASK = _STRIPES - 1


class MemoryStore:
    """Process-local store: striped locks (no global lock), bounded, no background thread.

    A key holds *debt* while its state matters: until its quota is whole
    again, which is when its state expires; after that it is the same as a
    new key. Only keys without debt are ever evicted, so no flood of new keys
    can hand a limited key its quota back (or unlock a locked account). When
    the store is full of debtors it fails closed: a hit on a *new* key is
    denied, with ``retry_after`` saying when enough debts will have cleared,
    while known keys keep being served; a ``store.failure`` audit event says
    so. Give ``max_keys`` room for the distinct keys of one window at peak,
    or use Redis.

    Args:
        max_keys: memory bound (held to within a few concurrent writers).
        clock: the time source when the limiter passes none.
    """

    _SWEEP_EVERY = 8192

    def __init__(self, *, max_keys: int = 100_000, clock: Clock = wall_clock) -> None:
        if isinstance(max_keys, bool) or not isinstance(max_keys, int) or max_keys < 1:
            raise ConfigurationError("max_keys must be a positive int")
        self._max = max_keys
        # time.time itself when no clock is injected: one call less per decision.
        self._clock = time.time if clock is wall_clock else clock
        self._data: dict[str, tuple[State, float]] = {}
        self._locks = [threading.Lock() for _ in range(_STRIPES)]
        self._writes = 0
        # Full of debtors: new keys are refused until this time, then swept again.
        self._closed_until = -math.inf
        self._room_lock = threading.Lock()

    @property
    def clock(self) -> Clock:
        """The time source used when the limiter passes none."""
        return self._clock

    def __len__(self) -> int:
        return len(self._data)

    @staticmethod
    def _stripe(key: str) -> int:
        # str hashes are cached on the object, so this costs almost nothing.
        return hash(key) & _STRIPE_MASK

    def evaluate_one(self, key: str, algorithm: Algorithm, cost: int, now: float | None) -> Outcome:
        """:meth:`evaluate` for one request (same semantics, no lists): the hot path.

        Stores may offer this optional method; limiters with one limit use it.
        """
        if now is None:
            now = self._clock()
        data = self._data
        if len(data) >= self._max and key not in data and not self._room(now):
            return self._refused(now)
        fresh = False
        # _stripe() and _put() written out: this is the limiters' fast path.
        with self._locks[hash(key) & _STRIPE_MASK]:
            entry = data.get(key)
            state = entry[0] if entry is not None and entry[1] > now else None
            new_state, outcome = algorithm.evaluate(state, now, cost)
            if new_state is not None:
                fresh = entry is None
                data[key] = (new_state, now + outcome.reset_after)
        if fresh:
            self._grew(1, now)
        return outcome

    def _put(self, key: str, state: State, expires: float) -> int:
        """Write under the key's lock; 1 if the key is new, else 0."""
        data = self._data
        fresh = key not in data
        data[key] = (state, expires)
        return 1 if fresh else 0

    def _grew(self, new_keys: int, now: float) -> None:
        """Only new keys grow the dict: count them, and sweep now and then (outside any lock)."""
        self._writes += new_keys
        if self._writes >= self._SWEEP_EVERY:
            self._sweep(now)

    def evaluate(
        self, requests: Sequence[LimitRequest], now: float | None, peek: bool
    ) -> list[Outcome]:
        if now is None:
            now = self._clock()
        if (
            not peek
            and len(self._data) >= self._max
            and any(r.key not in self._data for r in requests)
            and not self._room(now)
        ):
            return [self._refused(now)] * len(requests)
        if len(requests) == 1:
            with self._locks[self._stripe(requests[0].key)]:
                outcomes, new_keys = self._apply(requests, now, peek)
        else:
            stripes = sorted({self._stripe(r.key) for r in requests})  # fixed order: no deadlock
            for index in stripes:
                self._locks[index].acquire()
            try:
                outcomes, new_keys = self._apply(requests, now, peek)
            finally:
                for index in reversed(stripes):
                    self._locks[index].release()
        if new_keys:
            self._grew(new_keys, now)
        return outcomes

    def _apply(
        self, requests: Sequence[LimitRequest], now: float, peek: bool
    ) -> tuple[list[Outcome], int]:
        data = self._data
        states: list[State | None] = []
        for request in requests:
            entry = data.get(request.key)
            states.append(entry[0] if entry is not None and entry[1] > now else None)
        new_states, outcomes = apply_requests(
            [r.algorithm for r in requests], states, now, [r.cost for r in requests], peek=peek
        )
        new_keys = 0
        for request, state, outcome in zip(requests, new_states, outcomes, strict=True):
            if state is not None:
                new_keys += self._put(request.key, state, now + outcome.reset_after)
        return outcomes, new_keys

    def _room(self, now: float) -> bool:
        """Whether a new key fits: keys without debt are swept; debtors never go."""
        if now < self._closed_until:
            return False
        with self._room_lock:
            if len(self._data) < self._max:
                return True  # another writer made room meanwhile
            if now < self._closed_until:
                return False
            self._sweep(now)
            if len(self._data) < self._max:
                return True
            # Only debtors left. Stay closed until at least 1% of them have
            # cleared, so the sweeps a flood causes stay rare.
            expiries = [expires for _, expires in list(self._data.values())]
            soonest = heapq.nsmallest(max(1, self._max // 100), expiries)
            self._closed_until = max(soonest[-1], now)
        emit(
            AuditEvent.STORE_FAILURE,
            reason="memory rate-limit store full of debtors: new keys refused",
            backend="memory",
            max_keys=self._max,
        )
        return False

    def _refused(self, now: float) -> Outcome:
        wait = max(self._closed_until - now, 1e-6)
        return Outcome(allowed=False, remaining=0, reset_after=wait, retry_after=_up(wait))

    def _sweep(self, now: float) -> None:
        """Evict the keys whose debt has cleared (expired states), and only those.

        Runs outside the evaluation locks and takes one stripe lock at a time,
        re-checking each entry under it, so a key written meanwhile survives.
        """
        self._writes = 0
        snapshot = list(self._data.items())
        for key, (_, expires) in snapshot:
            if expires <= now:
                with self._locks[self._stripe(key)]:
                    entry = self._data.get(key)
                    if entry is not None and entry[1] <= now:
                        del self._data[key]

    def clear(self, keys: Sequence[str]) -> None:
        for key in keys:
            with self._locks[self._stripe(key)]:
                self._data.pop(key, None)
