"""The memory fast path: a one-limit limiter's whole ``hit`` over a MemoryStore, per algorithm.

A hit through the general path makes about eight Python calls (the limiter,
the store, the transition, two result builders...), and over a memory store
those calls are most of its cost. A kernel is the same hit in one function,
specialized once, when the limiter is made, for its algorithm, its store and
its Decision: the caller's key mapped to the store key and its lock by a
small cache, the window start computed inline, the state read and written
under the lock, and the Decision built once with no Outcome in between.

Each kernel writes out the *allowed* branch of its algorithm's pure
transition (``_algorithms``), operation for operation, so the floats come
out the same and the stored state is the one the transition gives. The rest
goes to the reference: a denial (which writes nothing) asks the transition
itself for its outcome, and anything unusual — a cost to validate, a new key
in a full store, a state of another shape — takes the limiter's general path.
``tests/test_ratelimit_fastpath.py`` pins every kernel against the general
path, decision by decision and state by state, and
``benchmarks/bench_ratelimit.py`` measures them (docs/architecture.md, "Where
fast paths may live").
"""

from __future__ import annotations

import math
import threading
from array import array
from collections.abc import Callable
from itertools import repeat
from typing import TYPE_CHECKING, Any, Protocol

from apisec.audit import AuditEvent, emit
from apisec.ratelimit._algorithms import (
    Algorithm,
    FixedWindow,
    LeakyBucket,
    Outcome,
    SlidingWindow,
    SlidingWindowCounter,
    TokenBucket,
)
from apisec.ratelimit._decision import Decision
from apisec.ratelimit._memory import _STRIPE_MASK, Log, MemoryStore, _log_commit, _log_step

if TYPE_CHECKING:
    from apisec.ratelimit._limiter import _LimiterCore

__all__ = ["Hit", "memory_hit"]

#: Caller keys remembered with their store key and lock (cleared when full).
_PLACES = 4096


class Hit(Protocol):
    """A limiter's ``hit``."""

    def __call__(self, key: str, cost: int = 1) -> Decision: ...


def memory_hit(limiter: _LimiterCore, store: MemoryStore) -> Hit | None:
    """The kernel for ``limiter``'s one algorithm over ``store``, or None if there is none."""
    make = _KERNELS.get(type(limiter._algorithm))
    if make is None or len(limiter.algorithms) != 1 or type(store) is not MemoryStore:
        return None  # subclasses may change evaluate or a transition: keep to the general path
    return make(_Parts(limiter, store), limiter._algorithm)


class _Parts:
    """What every kernel takes from its limiter and its store, gathered once."""

    def __init__(self, limiter: _LimiterCore, store: MemoryStore) -> None:
        data, full, added, locks = store._data, store._max, store._added, store._locks
        self.data, self.quota, self.allowed = data, limiter._quota, limiter._allowed_decision
        # The limiter's clock, else the store's; a decision on the store's clock
        # carries its time only when the reset format needs it.
        self.tick = store._clock if limiter._clock is None else limiter._clock
        self.stamped = limiter._clock is not None or limiter._stamp is not None
        # The store key is built here, not through the limiter's key cache: this
        # cache of places already remembers it.
        keys, build, policy = limiter._build_keys, limiter._one_decision, limiter._one_policy
        allowed = limiter._allowed_decision
        places: dict[str, tuple[str, threading.Lock]] = {}
        self.places = places

        def place(key: str) -> tuple[str, threading.Lock]:
            store_key = keys(key)[0]  # validates the key, or raises ConfigurationError
            found = (store_key, locks[hash(store_key) & _STRIPE_MASK])
            if type(key) is str:
                if len(places) >= _PLACES:
                    places.clear()  # bounded: a flood of distinct keys cannot grow it
                places[key] = found
            return found

        self.place = place

        def general(key: str, cost: int) -> Decision:
            return limiter._memory_decision(store, key, cost, False)

        self.general = general

        def denied(key: str, outcome: Outcome, decided: float | None) -> Decision:
            decision = build(
                allowed=outcome.allowed,
                remaining=outcome.remaining,
                reset_after=outcome.reset_after,
                retry_after=outcome.retry_after,
                queue_delay=outcome.queue_delay,
                decided_at=decided,
            )
            emit(AuditEvent.RATE_LIMIT_DENIED, principal=key, reason=policy)
            return decision

        self.denied = denied
        algorithm = limiter._algorithm
        evaluate, logged = algorithm.evaluate, type(algorithm) is SlidingWindow

        def fresh(
            key: str,
            store_key: str,
            lock: threading.Lock,
            cost: int,
            now: float,
            decided: float | None,
        ) -> Decision:
            """A key the store does not hold: the transition from nothing (always allowed)."""
            if len(data) >= full:
                return general(key, cost)  # the store may have to make room, or refuse
            state, outcome = evaluate(None, now, cost)
            if not outcome.allowed:  # never from nothing at a cost within the quota
                return general(key, cost)
            values = state or ()
            entry = (
                (now + outcome.reset_after, array("d", values), 0)
                if logged
                else (now + outcome.reset_after, *values)
            )
            with lock:
                written = store_key in data  # another thread wrote it meanwhile
                if not written:
                    data[store_key] = entry
            if written:  # outside the lock: the general path takes it again
                return general(key, cost)
            added(store_key, now)
            return allowed(
                remaining=outcome.remaining,
                reset_after=outcome.reset_after,
                queue_delay=outcome.queue_delay,
                decided_at=decided,
            )

        self.fresh = fresh


# Every kernel starts the same way: a cost of 1 (the usual) passes on one
# identity test and any other goes through the full check; the caller's key
# is looked up with its store key and lock; the clock is read. A new key, a
# denial and anything unusual are handled once the lock is released.


def _fixed_window(parts: _Parts, algorithm: FixedWindow) -> Hit:
    data, get, places, place = parts.data, parts.data.get, parts.places, parts.place
    general, denied, fresh, allowed = parts.general, parts.denied, parts.fresh, parts.allowed
    tick, stamped, quota, one = parts.tick, parts.stamped, parts.quota, 1
    limit, window, evaluate = algorithm.limit, algorithm.window, algorithm.evaluate
    floor = math.floor

    def hit(key: str, cost: int = 1) -> Decision:
        if cost is not one and (type(cost) is not int or not 0 <= cost <= quota):
            return general(key, cost)
        try:
            store_key, lock = places[key] if type(key) is str else place(key)
        except KeyError:
            store_key, lock = place(key)
        now = tick()
        decided = now if stamped else None
        start = floor(now / window) * window
        lock.acquire()
        try:
            entry = get(store_key)
            if entry is not None:
                count = 0
                if entry[0] > now and entry[1] >= start:
                    start, count = entry[1], entry[2]
                if count + cost <= limit:
                    count += cost
                    reset_after = start + window - now
                    data[store_key] = (now + reset_after, start, count)
                    return allowed(
                        remaining=limit - count, reset_after=reset_after, decided_at=decided
                    )
        finally:
            lock.release()
        if entry is None:
            return fresh(key, store_key, lock, cost, now, decided)
        return denied(key, evaluate(entry[1:], now, cost)[1], decided)

    return hit


def _token_bucket(parts: _Parts, algorithm: TokenBucket) -> Hit:
    data, get, places, place = parts.data, parts.data.get, parts.places, parts.place
    general, denied, fresh, allowed = parts.general, parts.denied, parts.fresh, parts.allowed
    tick, stamped, quota, one = parts.tick, parts.stamped, parts.quota, 1
    capacity, rate, evaluate, floor = (
        algorithm.capacity,
        algorithm.refill_rate,
        algorithm.evaluate,
        math.floor,
    )
    whole = float(capacity)  # exact (a validated capacity is a float's value): float arithmetic

    def hit(key: str, cost: int = 1) -> Decision:
        if cost is not one and (type(cost) is not int or not 0 <= cost <= quota):
            return general(key, cost)
        try:
            store_key, lock = places[key] if type(key) is str else place(key)
        except KeyError:
            store_key, lock = place(key)
        now = tick()
        decided = now if stamped else None
        lock.acquire()
        try:
            entry = get(store_key)
            if entry is not None:
                if entry[0] > now:
                    # min(capacity, tokens + max(elapsed, 0.0) * rate), written out.
                    elapsed = now - entry[2]
                    tokens = entry[1] + (0.0 if elapsed < 0.0 else elapsed) * rate
                    if not tokens < whole:
                        tokens = whole
                else:
                    tokens = whole
                if tokens >= cost:
                    tokens -= cost
                    reset_after = (whole - tokens) / rate
                    data[store_key] = (now + reset_after, tokens, now)
                    return allowed(
                        remaining=floor(tokens), reset_after=reset_after, decided_at=decided
                    )
        finally:
            lock.release()
        if entry is None:
            return fresh(key, store_key, lock, cost, now, decided)
        return denied(key, evaluate(entry[1:], now, cost)[1], decided)

    return hit


def _leaky_bucket(parts: _Parts, algorithm: LeakyBucket) -> Hit:
    data, get, places, place = parts.data, parts.data.get, parts.places, parts.place
    general, denied, fresh, allowed = parts.general, parts.denied, parts.fresh, parts.allowed
    tick, stamped, quota, one = parts.tick, parts.stamped, parts.quota, 1
    capacity, rate, evaluate, floor = (
        algorithm.capacity,
        algorithm.leak_rate,
        algorithm.evaluate,
        math.floor,
    )
    whole = float(capacity)  # exact (a validated capacity is a float's value): float arithmetic

    def hit(key: str, cost: int = 1) -> Decision:
        if cost is not one and (type(cost) is not int or not 0 <= cost <= quota):
            return general(key, cost)
        try:
            store_key, lock = places[key] if type(key) is str else place(key)
        except KeyError:
            store_key, lock = place(key)
        now = tick()
        decided = now if stamped else None
        lock.acquire()
        try:
            entry = get(store_key)
            if entry is not None:
                level = 0.0
                if entry[0] > now:
                    # max(level - max(elapsed, 0.0) * rate, 0.0), written out.
                    elapsed = now - entry[2]
                    level = entry[1] - (0.0 if elapsed < 0.0 else elapsed) * rate
                    if level < 0.0:  # noqa: PLR1730 - max() would be a call
                        level = 0.0
                if level + cost <= whole:
                    delay = level / rate
                    level += cost
                    reset_after = level / rate
                    data[store_key] = (now + reset_after, level, now)
                    return allowed(
                        remaining=floor(whole - level),
                        reset_after=reset_after,
                        queue_delay=delay,
                        decided_at=decided,
                    )
        finally:
            lock.release()
        if entry is None:
            return fresh(key, store_key, lock, cost, now, decided)
        return denied(key, evaluate(entry[1:], now, cost)[1], decided)

    return hit


def _sliding_window_counter(parts: _Parts, algorithm: SlidingWindowCounter) -> Hit:
    data, get, places, place = parts.data, parts.data.get, parts.places, parts.place
    general, denied, fresh, allowed = parts.general, parts.denied, parts.fresh, parts.allowed
    tick, stamped, quota, one = parts.tick, parts.stamped, parts.quota, 1
    limit, window, evaluate = algorithm.limit, algorithm.window, algorithm.evaluate
    floor = math.floor
    # Exact (a validated limit is a float's value, doubling is exact): float arithmetic.
    whole, windows = float(limit), 2 * window

    def hit(key: str, cost: int = 1) -> Decision:
        if cost is not one and (type(cost) is not int or not 0 <= cost <= quota):
            return general(key, cost)
        try:
            store_key, lock = places[key] if type(key) is str else place(key)
        except KeyError:
            store_key, lock = place(key)
        now = tick()
        decided = now if stamped else None
        start = floor(now / window) * window
        lock.acquire()
        try:
            entry = get(store_key)
            if entry is not None:
                current = previous = 0.0
                if entry[0] > now:
                    stored = entry[1]
                    if stored >= start:
                        start, current, previous = stored, entry[2], entry[3]
                    elif stored == start - window:
                        previous = entry[2]
                # max(now - start, 0.0), written out.
                elapsed = now - start
                weighted = previous * ((window - (0.0 if elapsed < 0.0 else elapsed)) / window)
                if weighted + current + cost <= whole:
                    current += cost
                    remaining = floor(whole - (weighted + current))
                    # SlidingWindowCounter._keep, written out.
                    if current:
                        reset_after = start + windows - now
                    elif previous:
                        reset_after = start + window - now
                    else:
                        reset_after = 0.0
                    data[store_key] = (now + reset_after, start, current, previous)
                    return allowed(remaining=remaining, reset_after=reset_after, decided_at=decided)
        finally:
            lock.release()
        if entry is None:
            return fresh(key, store_key, lock, cost, now, decided)
        return denied(key, evaluate(entry[1:], now, cost)[1], decided)

    return hit


def _sliding_window(parts: _Parts, algorithm: SlidingWindow) -> Hit:
    data, get, places, place = parts.data, parts.data.get, parts.places, parts.place
    general, denied, fresh, allowed = parts.general, parts.denied, parts.fresh, parts.allowed
    tick, stamped, quota, one = parts.tick, parts.stamped, parts.quota, 1
    limit, window = algorithm.limit, algorithm.window

    def hit(key: str, cost: int = 1) -> Decision:  # noqa: PLR0912 - one function: the fast path
        if cost is not one and (type(cost) is not int or not 0 <= cost <= quota):
            return general(key, cost)
        try:
            store_key, lock = places[key] if type(key) is str else place(key)
        except KeyError:
            store_key, lock = place(key)
        now = tick()
        decided = now if stamped else None
        refused = None
        lock.acquire()
        try:
            entry = get(store_key)
            if entry is not None:
                log: Log | None
                if not entry[0] > now:
                    log, head = array("d", repeat(now, cost)), 0  # expired: a new log
                elif type(entry[1]) is array:
                    log, head = entry[1], entry[2]
                    floor, size = now - window, len(log)
                    # Allowed when at least `over` of the oldest entries have left the window.
                    over = size - head + cost - limit
                    if over > 0 and log[head + over - 1] > floor:
                        refused, _, _ = _log_step(algorithm, log, head, now, cost)
                        log = None
                    else:
                        while head < size and log[head] <= floor:
                            head += 1
                        if cost == 1 and (size == head or log[-1] <= now):
                            if head and head * 2 >= size:  # _log_commit's compaction
                                del log[:head]
                                head = 0
                            log.append(now)
                        else:
                            head = _log_commit(log, head, 0, cost, now)
                else:
                    log = None  # not a log (never written so by this store)
                if log is not None:
                    # max(log[-1] + window - now, 0.0), written out.
                    size = len(log)
                    reset_after = log[-1] + window - now if size > head else 0.0
                    if reset_after < 0.0:  # noqa: PLR1730 - max() would be a call
                        reset_after = 0.0
                    data[store_key] = (now + reset_after, log, head)
                    return allowed(
                        remaining=limit - size + head, reset_after=reset_after, decided_at=decided
                    )
        finally:
            lock.release()
        if entry is None:
            return fresh(key, store_key, lock, cost, now, decided)
        if refused is not None:
            return denied(key, refused, decided)
        return general(key, cost)

    return hit


_KERNELS: dict[type[Algorithm], Callable[[_Parts, Any], Hit]] = {
    FixedWindow: _fixed_window,
    TokenBucket: _token_bucket,
    LeakyBucket: _leaky_bucket,
    SlidingWindowCounter: _sliding_window_counter,
    SlidingWindow: _sliding_window,
}
