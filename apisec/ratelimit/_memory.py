"""The in-memory rate-limit store, the executable reference (its fast path is ``_kernels``).

Entries are ``(expires, *state)`` tuples: a key's state and until when it
matters. An exact sliding window's state is its log of admission times,
kept as one array of floats per key and changed in place under the key's
lock (``(expires, log, head)``): a hit moves past the expired prefix and
appends, so it costs the same at a limit of 10 or 10,000, in 8 bytes per
admission. The pure transitions of
:mod:`apisec.ratelimit._algorithms` stay the reference; the tests compare
this store against them.

Keys are swept a bounded slice at a time: every key sits once in a ring
(a ``deque``), and every few new keys the sweep looks at the next few keys
of the ring, drops those whose debt has cleared and puts the others back.
A new key therefore costs the same whatever the size of the store.
"""

from __future__ import annotations

import bisect
import heapq
import math
import threading
import time
from array import array
from collections import deque
from collections.abc import Sequence
from itertools import repeat
from typing import Any, TypeAlias

from apisec._clock import Clock, wall_clock
from apisec.audit import AuditEvent, emit
from apisec.errors import ConfigurationError
from apisec.ratelimit._algorithms import (
    Algorithm,
    Outcome,
    SlidingWindow,
    SlidingWindowRelease,
    State,
    _build_outcome,
    _up,
    peek_build_outcome,
    peek_of,
)

__all__ = ["MemoryStore"]

_STRIPES = 64
_STRIPE_MASK = _STRIPES - 1
#: What :meth:`MemoryStore.clear` leaves: expired for every reader, swept like any key.
_CLEARED: tuple[float] = (-math.inf,)
#: One request as the store reads it (a LimitRequest, or the same three values).
_Request = tuple[str, Algorithm, int]
#: An exact sliding window's log: admission times as C doubles (8 bytes each).
Log: TypeAlias = "array[float]"


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

    Keys whose debt has cleared are swept a few at a time as new keys come
    in (ever more rarely while no debt clears, back to every few keys as soon
    as one has), so a new key costs the same in a store of ten thousand keys
    or of millions.

    Args:
        max_keys: memory bound (held to within a few concurrent writers).
        clock: the time source when the limiter passes none.
    """

    #: Every _SWEEP_EVERY new keys, the sweep looks at the next _SWEEP_SLICE keys of
    #: the ring: two per new key, so expired keys are found about as fast as keys come.
    _SWEEP_EVERY = 16
    _SWEEP_SLICE = 32
    #: A slice that finds nothing to drop doubles the wait before the next, up to this
    #: many new keys: while no debt clears (long windows) new keys stop paying for it.
    _SWEEP_EVERY_MAX = 1024
    #: When the store is full, how many keys a new key may look at before a whole turn.
    _ROOM_SLICE = 256

    def __init__(self, *, max_keys: int = 100_000, clock: Clock = wall_clock) -> None:
        if isinstance(max_keys, bool) or not isinstance(max_keys, int) or max_keys < 1:
            raise ConfigurationError("max_keys must be a positive int")
        self._max = max_keys
        # time.time itself when no clock is injected: one call less per decision.
        self._clock = time.time if clock is wall_clock else clock
        self._data: dict[str, tuple[Any, ...]] = {}
        self._locks = [threading.Lock() for _ in range(_STRIPES)]
        # Every key of _data, once (the sweep's order); only the sweep deletes keys.
        self._ring: deque[str] = deque()
        self._new_keys = 0
        self._sweep_every = self._SWEEP_EVERY
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

    def evaluate(
        self, requests: Sequence[_Request], now: float | None, peek: bool
    ) -> list[Outcome]:
        if now is None:
            now = self._clock()
        data = self._data
        if (
            not peek
            and len(data) >= self._max
            and any(r[0] not in data for r in requests)
            and not self._room(now)
        ):
            return [self._refused(now)] * len(requests)
        stripes = sorted({self._stripe(r[0]) for r in requests})  # fixed order: no deadlock
        for index in stripes:
            self._locks[index].acquire()
        try:
            outcomes, new_keys = self._apply(requests, now, peek)
        finally:
            for index in reversed(stripes):
                self._locks[index].release()
        for key in new_keys:
            self._added(key, now)
        return outcomes

    def evaluate_one(self, key: str, algorithm: Algorithm, cost: int, now: float | None) -> Outcome:
        """:meth:`evaluate` for one request (same semantics, no lists)."""
        return self.evaluate(((key, algorithm, cost),), now, False)[0]

    def _apply(
        self, requests: Sequence[_Request], now: float, peek: bool
    ) -> tuple[list[Outcome], list[str]]:
        """All-or-nothing over the requests (``apply_requests``), logs changed in place."""
        data = self._data
        outcomes: list[Outcome] = []
        # (key, is_log, new state or (log, head), entries to drop from the log, entries to add)
        writes: list[tuple[str, bool, Any, int, int]] = []
        for key, algorithm, cost in requests:
            entry = data.get(key)
            if entry is not None and not entry[0] > now:
                entry = None
            if type(algorithm) in _LOGGED:
                found = _log_of(entry)
                log, head = (_NO_LOG, 0) if found is None else found
                if peek:
                    outcomes.append(_log_peek(algorithm, log, head, now))
                    continue
                outcome, drop, add = _log_step(algorithm, log, head, now, cost)
                writes.append((key, True, found, drop, add))
            else:
                state = _state_of(entry)
                if peek:
                    outcomes.append(peek_build_outcome(algorithm, state, now))
                    continue
                new_state, outcome = algorithm.evaluate(state, now, cost)
                writes.append((key, False, new_state, 0, 0))
            outcomes.append(outcome)
        if peek or not all(o.allowed for o in outcomes):
            return outcomes, []
        new_keys = []
        for (key, is_log, value, drop, add), outcome in zip(writes, outcomes, strict=True):
            if key not in data:
                new_keys.append(key)
            expires = now + outcome.reset_after
            if is_log:
                log, head = (array("d"), 0) if value is None else value
                data[key] = (expires, log, _log_commit(log, head, drop, add, now))
            else:
                data[key] = (expires, *value)  # allowed: every transition gave a state
        return outcomes, new_keys

    def _added(self, key: str, now: float) -> None:
        """A new key: into the ring, and now and then a slice of the sweep (outside any lock)."""
        self._ring.append(key)
        self._new_keys += 1
        if self._new_keys >= self._sweep_every:
            self._new_keys = 0
            if self._sweep(now, self._SWEEP_SLICE):
                self._sweep_every = self._SWEEP_EVERY
            else:
                self._sweep_every = min(2 * self._sweep_every, self._SWEEP_EVERY_MAX)

    def _sweep(self, now: float, count: int) -> int:
        """Look at the next ``count`` keys of the ring: evict those without debt, keep the rest.

        Runs outside the evaluation locks and takes one stripe lock per
        eviction, re-checking the entry under it, so a key written meanwhile
        survives. Debtors go back to the end of the ring. Returns how many
        keys left the ring.
        """
        ring, data, locks = self._ring, self._data, self._locks
        dropped = 0
        for _ in range(min(count, len(ring))):
            try:
                key = ring.popleft()
            except IndexError:  # another thread emptied it meanwhile
                return dropped
            entry = data.get(key)
            if entry is None:
                dropped += 1
                continue
            if entry[0] <= now:
                with locks[hash(key) & _STRIPE_MASK]:
                    entry = data.get(key)
                    if entry is not None and entry[0] <= now:
                        del data[key]
                        dropped += 1
                        continue
            ring.append(key)
        return dropped

    def _room(self, now: float) -> bool:
        """Whether a new key fits: keys without debt are swept; debtors never go."""
        if now < self._closed_until:
            return False
        with self._room_lock:
            if len(self._data) < self._max:
                return True  # another writer made room meanwhile
            if now < self._closed_until:
                return False
            self._sweep(now, self._ROOM_SLICE)
            if len(self._data) < self._max:
                return True
            self._sweep(now, len(self._ring))  # a whole turn: rare, see _closed_until
            if len(self._data) < self._max:
                return True
            # Only debtors left. Stay closed until at least 1% of them have
            # cleared, so the sweeps a flood causes stay rare.
            expiries = [entry[0] for entry in list(self._data.values())]
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

    def clear(self, keys: Sequence[str]) -> None:
        # Marked expired rather than deleted: the key keeps its one place in the
        # ring, and the sweep evicts it like any key without debt.
        for key in keys:
            with self._locks[self._stripe(key)]:
                if key in self._data:
                    self._data[key] = _CLEARED


# --- the exact sliding window's log, changed in place -----------------------------------
#
# A log is an array of admission times, sorted, of which the entries before
# ``head`` have left the window: dropping the expired prefix moves the head,
# and the array is compacted once the dropped part is as long as the rest (so
# each admission is moved at most once on average). Entries are
# ``(expires, log, head)``.

_LOGGED = (SlidingWindow, SlidingWindowRelease)
#: The log of a key without one (only ever read).
_NO_LOG: Log = array("d")


def _log_of(entry: tuple[Any, ...] | None) -> tuple[Log, int] | None:
    if entry is None:
        return None
    if len(entry) == 3 and type(entry[1]) is array:
        return entry[1], entry[2]
    return array("d", entry[1:]), 0  # a state written as a tuple (never by this store)


def _state_of(entry: tuple[Any, ...] | None) -> State | None:
    if entry is None:
        return None
    if len(entry) == 3 and type(entry[1]) is array:
        return tuple(entry[1][entry[2] :])
    state: State = entry[1:]
    return state


def _log_step(
    algorithm: Algorithm, log: Log, head: int, now: float, cost: int
) -> tuple[Outcome, int, int]:
    """``SlidingWindow.evaluate`` (or the release's) over a log, without changing it.

    Returns the outcome, and what committing it does: how many of the oldest
    entries go and how many ``now`` come in.
    """
    limit, window = algorithm.quota, algorithm.window
    floor = now - window
    size = len(log) - head
    # Entries at or before now - window have left the window.
    first = 0 if not size or log[head] > floor else bisect.bisect_right(log, floor, head) - head
    live = size - first
    if type(algorithm) is SlidingWindowRelease:
        drop = min(first + cost, size)
        left = size - drop
        reset = max(log[-1] + window - now, 0.0) if left else 0.0
        outcome = _build_outcome(
            allowed=True, remaining=limit - left, reset_after=reset, retry_after=None
        )
        return outcome, drop, 0
    if live + cost <= limit:
        newest = log[-1] if live else None
        if cost and (newest is None or newest <= now):
            newest = now
        reset = 0.0 if newest is None else max(newest + window - now, 0.0)
        outcome = _build_outcome(
            allowed=True, remaining=limit - live - cost, reset_after=reset, retry_after=None
        )
        return outcome, first, cost
    # The (excess)-th oldest live entry must leave before this hit fits.
    excess = live + cost - limit
    retry_after = log[head + first + excess - 1] + window - now
    reset_after = log[-1] + window - now
    outcome = _build_outcome(
        allowed=False,
        remaining=limit - live,
        reset_after=max(reset_after, 0.0),
        retry_after=_up(max(retry_after, 0.0)),
    )
    return outcome, 0, 0


def _log_commit(log: Log, head: int, drop: int, add: int, now: float) -> int:
    """Drop ``drop`` entries and add ``add`` times ``now``, in place; returns the new head."""
    head += drop
    if head and head * 2 >= len(log):
        del log[:head]
        head = 0
    if add:
        if len(log) == head or log[-1] <= now:  # the usual case: time moves forward
            log.extend(repeat(now, add))
        else:  # the clock stepped back: keep the log sorted
            position = bisect.bisect_right(log, now, head)
            for _ in range(add):
                log.insert(position, now)
    return head


def _log_peek(algorithm: Algorithm, log: Log, head: int, now: float) -> Outcome:
    """``peek_build_outcome`` over a log."""
    return peek_of(
        _log_step(algorithm, log, head, now, 0)[0], _log_step(algorithm, log, head, now, 1)[0]
    )
