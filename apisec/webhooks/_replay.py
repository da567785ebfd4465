"""Replay guards: remember accepted deliveries for as long as they could be replayed."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Protocol, runtime_checkable

from apisec._clock import Clock, wall_clock
from apisec.errors import ConfigurationError

__all__ = ["AsyncReplayGuard", "MemoryReplayGuard", "ReplayGuard"]


@runtime_checkable
class ReplayGuard(Protocol):
    """Remembers delivery keys; a custom backend implements this one method."""

    def first_seen(self, key: str, ttl: float) -> bool:
        """Record ``key`` for ``ttl`` seconds; True if it was not already recorded.

        Must be atomic: of two concurrent calls with one key, one returns True.
        """
        ...


@runtime_checkable
class AsyncReplayGuard(Protocol):
    """The asyncio twin of :class:`ReplayGuard`."""

    async def first_seen(self, key: str, ttl: float) -> bool:
        """Record ``key`` for ``ttl`` seconds; True if it was not already recorded."""
        ...


class MemoryReplayGuard:
    """A process-local replay guard (one process only; use Redis across processes).

    Args:
        clock: the time source.
        max_entries: memory bound; past it the entries closest to expiry go first.
    """

    def __init__(self, *, clock: Clock = wall_clock, max_entries: int = 100_000) -> None:
        if isinstance(max_entries, bool) or not isinstance(max_entries, int) or max_entries < 1:
            raise ConfigurationError("max_entries must be a positive int")
        self._clock = clock
        self._max = max_entries
        self._expiry: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._expiry)

    def first_seen(self, key: str, ttl: float) -> bool:
        now = self._clock()
        with self._lock:
            self._purge(now)
            expires = self._expiry.get(key)
            if expires is not None and expires > now:
                return False
            self._expiry[key] = now + ttl
            self._expiry.move_to_end(key)
            while len(self._expiry) > self._max:
                self._expiry.popitem(last=False)
            return True

    def _purge(self, now: float) -> None:
        # Entries are appended in time order with one ttl per verifier, so the
        # oldest sit at the front; stop at the first live one.
        while self._expiry:
            key, expires = next(iter(self._expiry.items()))
            if expires > now:
                break
            del self._expiry[key]
