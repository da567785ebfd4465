"""The rate-limit algorithms as pure state transitions.

Each algorithm maps ``(state, now, cost)`` to an :class:`Outcome` and the
state to store. States are small tuples of floats (the exact sliding window
keeps a sorted tuple of admission times). Nothing here does I/O or reads a
clock; the memory store runs these functions under a lock, the Redis store
runs their Lua mirror in one script.
"""

from __future__ import annotations

import bisect
import math
from typing import ClassVar, NamedTuple

from apisec._fastpath import tuple_builder
from apisec.errors import ConfigurationError

__all__ = [
    "Algorithm",
    "FixedWindow",
    "LeakyBucket",
    "Outcome",
    "SlidingWindow",
    "SlidingWindowCounter",
    "TokenBucket",
]

State = tuple[float, ...]

#: Retry hints are rounded up to this resolution, so that "retry after r"
#: survives floating-point error: the same hit r seconds later is allowed.
_RESOLUTION = 1e-6


def _up(seconds: float) -> float:
    return math.ceil(seconds / _RESOLUTION - 1e-9) * _RESOLUTION if seconds > 0 else 0.0


class Outcome(NamedTuple):
    """One algorithm's answer for one key."""

    allowed: bool
    remaining: int
    #: Seconds until the quota is whole again.
    reset_after: float
    #: Seconds until the same hit would be allowed (None when allowed).
    retry_after: float | None
    #: Leaky bucket only: how long the request would wait in a constant-rate queue.
    queue_delay: float | None = None


#: Outcome(...) by keyword at the cost of a positional build (apisec._fastpath).
_build_outcome = tuple_builder(Outcome)


def _positive(value: object, name: str, *, integer: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigurationError(f"{name} must be a number")
    if integer and not float(value).is_integer():
        raise ConfigurationError(f"{name} must be a whole number")
    if not math.isfinite(value) or value <= 0:
        raise ConfigurationError(f"{name} must be positive and finite, got {value!r}")
    return float(value)


def _policy_name(name: object) -> str | None:
    if name is None:
        return None
    if not isinstance(name, str) or not name or not name.isascii() or '"' in name or "\\" in name:
        raise ConfigurationError("a policy name is a non-empty ASCII string without quotes")
    return name


class Algorithm:
    """Base of the algorithms: validated configuration plus pure transitions."""

    #: Identifier shared with the Lua implementation.
    lua_id: ClassVar[int]
    name: str | None
    #: The quota (``q``) and window (``w``) advertised in ``RateLimit-Policy``.
    quota: int
    window: float

    def evaluate(self, state: State | None, now: float, cost: int) -> tuple[State | None, Outcome]:
        """The outcome of spending ``cost`` now, and the state if it is spent.

        When a state is returned, ``outcome.reset_after`` is also how long the
        store must keep it: after that it is equivalent to a fresh start.
        """
        raise NotImplementedError  # pragma: no cover

    def lua_params(self) -> tuple[float, float]:
        raise NotImplementedError  # pragma: no cover

    _lua_args: tuple[bytes, bytes, bytes] | None = None

    def lua_arguments(self) -> tuple[bytes, bytes, bytes]:
        """Script id and parameters, encoded once (an algorithm never changes)."""
        if self._lua_args is None:
            p1, p2 = self.lua_params()
            self._lua_args = (str(self.lua_id).encode(), repr(p1).encode(), repr(p2).encode())
        return self._lua_args

    def check_cost(self, cost: int) -> None:
        if isinstance(cost, bool) or not isinstance(cost, int) or cost < 0:
            raise ConfigurationError("cost must be a non-negative int")
        if cost > self.quota:
            raise ConfigurationError(
                f"cost {cost} exceeds the quota {self.quota}: such a hit could never pass"
            )

    @property
    def policy(self) -> str:
        return self.name or f"{self.quota}-per-{self.window:g}s"


class _Windowed(Algorithm):
    """Shared configuration of the window algorithms: ``limit`` units per ``window`` seconds."""

    def __init__(self, limit: int, window: float, *, name: str | None = None) -> None:
        self.limit = int(_positive(limit, "limit", integer=True))
        self.window = _positive(window, "window")
        self.quota = self.limit
        self.name = _policy_name(name)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(limit={self.limit}, window={self.window:g})"

    def lua_params(self) -> tuple[float, float]:
        return float(self.limit), self.window


class _Bucket(Algorithm):
    """Shared configuration of the buckets: ``capacity`` units and a rate per second."""

    _rate_name: ClassVar[str]
    capacity: int
    _rate: float

    def _setup(self, capacity: int, rate: float, name: str | None) -> float:
        self.capacity = int(_positive(capacity, "capacity", integer=True))
        self._rate = _positive(rate, self._rate_name)
        self.quota = self.capacity
        self.window = self.capacity / self._rate
        self.name = _policy_name(name)
        return self._rate

    def __repr__(self) -> str:
        return f"{type(self).__name__}(capacity={self.capacity}, {self._rate_name}={self._rate:g})"

    def lua_params(self) -> tuple[float, float]:
        return float(self.capacity), self._rate


class FixedWindow(_Windowed):
    """At most ``limit`` units per window, windows aligned to the epoch.

    >>> FixedWindow(100, 60).evaluate(None, 30.0, 1)[1]
    Outcome(allowed=True, remaining=99, reset_after=30.0, retry_after=None, queue_delay=None)
    """

    lua_id = 1

    def evaluate(self, state: State | None, now: float, cost: int) -> tuple[State | None, Outcome]:
        start = math.floor(now / self.window) * self.window
        count: float = 0  # counted in ints, as the memory kernel counts
        if state is not None and state[0] >= start:
            # A stored window newer than now (the clock stepped back) is still
            # the current one: a step back never hands out a fresh quota.
            start, count = state[0], state[1]
        reset_after = start + self.window - now
        if count + cost <= self.limit:
            count += cost
            return (start, count), _build_outcome(
                allowed=True,
                remaining=int(self.limit - count),
                reset_after=reset_after,
                retry_after=None,
            )
        return None, _build_outcome(
            allowed=False,
            remaining=int(self.limit - count),
            reset_after=reset_after,
            retry_after=_up(reset_after),
        )


class SlidingWindow(_Windowed):
    """Exact sliding window: never more than ``limit`` units in any ``window`` seconds.

    Keeps one timestamp per admitted unit (memory grows with ``limit``).
    """

    lua_id = 2

    def evaluate(self, state: State | None, now: float, cost: int) -> tuple[State | None, Outcome]:
        log = state or ()
        # Entries at or before now - window have left the window.
        first = bisect.bisect_right(log, now - self.window)
        live = log[first:] if first else log
        if len(live) + cost <= self.limit:
            if cost:
                if not live or live[-1] <= now:  # the usual case: time moves forward
                    live = live + (now,) * cost
                else:
                    position = bisect.bisect_right(live, now)
                    live = (*live[:position], *([now] * cost), *live[position:])
            remaining = self.limit - len(live)
            reset_after = live[-1] + self.window - now if live else 0.0
            return live, _build_outcome(
                allowed=True,
                remaining=remaining,
                reset_after=max(reset_after, 0.0),
                retry_after=None,
            )
        # The (excess)-th oldest entry must leave before this hit fits.
        excess = len(live) + cost - self.limit
        retry_after = live[excess - 1] + self.window - now
        reset_after = live[-1] + self.window - now
        return None, _build_outcome(
            allowed=False,
            remaining=self.limit - len(live),
            reset_after=max(reset_after, 0.0),
            retry_after=_up(max(retry_after, 0.0)),
        )


class SlidingWindowRelease(Algorithm):
    """Give back ``cost`` units of a :class:`SlidingWindow` taken earlier (internal).

    Removes the oldest admissions still in the window: the log that remains
    is never younger than the exact one, so a give-back never opens room
    earlier than forgetting the very admission would. Stores run it like any
    algorithm, under the sliding window's own key.
    """

    lua_id = 6

    def __init__(self, sliding: SlidingWindow) -> None:
        self.limit, self.window, self.quota = sliding.limit, sliding.window, sliding.quota
        self.name = sliding.name

    def lua_params(self) -> tuple[float, float]:
        return float(self.limit), self.window

    def evaluate(self, state: State | None, now: float, cost: int) -> tuple[State | None, Outcome]:
        log = state or ()
        live = log[bisect.bisect_right(log, now - self.window) + cost :]
        reset_after = max(live[-1] + self.window - now, 0.0) if live else 0.0
        return live, _build_outcome(
            allowed=True,
            remaining=self.limit - len(live),
            reset_after=reset_after,
            retry_after=None,
        )


class TokenBucket(_Bucket):
    """A bucket of ``capacity`` tokens refilled at ``refill_rate`` per second.

    Allows bursts up to ``capacity``; over any interval ``T`` at most
    ``capacity + refill_rate * T`` units pass.
    """

    lua_id = 3

    _rate_name = "refill_rate"

    def __init__(self, capacity: int, refill_rate: float, *, name: str | None = None) -> None:
        self.refill_rate = self._setup(capacity, refill_rate, name)

    def evaluate(self, state: State | None, now: float, cost: int) -> tuple[State | None, Outcome]:
        if state is None:
            tokens = float(self.capacity)
        else:
            tokens = min(self.capacity, state[0] + max(now - state[1], 0.0) * self.refill_rate)
        if tokens >= cost:
            tokens -= cost
            reset_after = (self.capacity - tokens) / self.refill_rate
            return (tokens, now), _build_outcome(
                allowed=True,
                remaining=math.floor(tokens),
                reset_after=reset_after,
                retry_after=None,
            )
        retry_after = _up((cost - tokens) / self.refill_rate)
        reset_after = (self.capacity - tokens) / self.refill_rate
        return None, _build_outcome(
            allowed=False,
            remaining=math.floor(tokens),
            reset_after=reset_after,
            retry_after=retry_after,
        )


class LeakyBucket(_Bucket):
    """The leaky bucket as a meter: ``capacity`` units draining at ``leak_rate`` per second.

    A request that fits is admitted; its :attr:`Outcome.queue_delay` says
    how long it would wait in a queue drained at ``leak_rate``, for callers
    who shape traffic rather than reject it.
    """

    lua_id = 4

    _rate_name = "leak_rate"

    def __init__(self, capacity: int, leak_rate: float, *, name: str | None = None) -> None:
        self.leak_rate = self._setup(capacity, leak_rate, name)

    def evaluate(self, state: State | None, now: float, cost: int) -> tuple[State | None, Outcome]:
        level = (
            0.0 if state is None else max(state[0] - max(now - state[1], 0.0) * self.leak_rate, 0.0)
        )
        delay = level / self.leak_rate
        if level + cost <= self.capacity:
            level += cost
            remaining = math.floor(self.capacity - level)
            return (level, now), _build_outcome(
                allowed=True,
                remaining=remaining,
                reset_after=level / self.leak_rate,
                retry_after=None,
                queue_delay=delay,
            )
        retry_after = _up((level + cost - self.capacity) / self.leak_rate)
        remaining = math.floor(self.capacity - level)
        return None, _build_outcome(
            allowed=False,
            remaining=remaining,
            reset_after=level / self.leak_rate,
            retry_after=retry_after,
            queue_delay=delay,
        )


class SlidingWindowCounter(_Windowed):
    """Approximate sliding window in constant memory (two counters).

    The previous window's count is weighted by how much of it still overlaps
    the sliding window. Per aligned window at most ``limit`` pass; across a
    boundary the estimate can let a little more through than the exact
    :class:`SlidingWindow` (never more than twice ``limit`` in any interval of
    ``window`` seconds), in exchange for O(1) state.
    """

    lua_id = 5

    def evaluate(self, state: State | None, now: float, cost: int) -> tuple[State | None, Outcome]:
        window = self.window
        start = math.floor(now / window) * window
        current = previous = 0.0
        if state is not None:
            if state[0] >= start:
                # A stored window newer than now (the clock stepped back) stays current.
                start, current, previous = state[0], state[1], state[2]
            elif state[0] == start - window:
                previous = state[1]
        elapsed = max(now - start, 0.0)
        weight = (window - elapsed) / window
        estimate = previous * weight + current
        if estimate + cost <= self.limit:
            current += cost
            remaining = math.floor(self.limit - (previous * weight + current))
            reset_after = self._keep(start, now, current, previous)
            return (start, current, previous), _build_outcome(
                allowed=True, remaining=remaining, reset_after=reset_after, retry_after=None
            )
        retry_after = self._retry_after(start, now, current, previous, cost)
        reset_after = self._keep(start, now, current, previous)
        remaining = max(math.floor(self.limit - estimate), 0)
        return None, _build_outcome(
            allowed=False,
            remaining=remaining,
            reset_after=reset_after,
            retry_after=_up(retry_after),
        )

    def _keep(self, start: float, now: float, current: float, previous: float) -> float:
        """Until when the counts still weigh: this window's count decays over the next one."""
        if current:
            return start + 2 * self.window - now
        if previous:
            return start + self.window - now
        return 0.0

    def _retry_after(
        self, start: float, now: float, current: float, previous: float, cost: int
    ) -> float:
        window = self.window
        room = self.limit - cost - current
        if room >= 0 and previous > 0:
            # Still in this window: wait until the previous count has decayed enough.
            wait = (start + window - now) - room * window / previous
            if wait < start + window - now:
                return max(wait, 0.0)
        # In the next window this window's count becomes the decaying one.
        next_start = start + window - now
        if current + cost <= self.limit:
            return next_start
        return next_start + window - (self.limit - cost) * window / current


def peek_build_outcome(algorithm: Algorithm, state: State | None, now: float) -> Outcome:
    """What a unit hit would get now, with the remaining quota as it stands."""
    return peek_of(algorithm.evaluate(state, now, 0)[1], algorithm.evaluate(state, now, 1)[1])


def peek_of(current: Outcome, unit: Outcome) -> Outcome:
    """A peek from a zero-cost step (``current``) and a unit one: allowed as a hit, quota as is."""
    return _build_outcome(
        allowed=unit.allowed,
        remaining=current.remaining,
        reset_after=current.reset_after,
        retry_after=unit.retry_after,
        queue_delay=current.queue_delay,
    )


def apply_requests(
    algorithms: list[Algorithm],
    states: list[State | None],
    now: float,
    costs: list[int],
    *,
    peek: bool = False,
) -> tuple[list[State | None], list[Outcome]]:
    """Evaluate several limits all-or-nothing: the one function every store runs.

    Returns the states to write (None: leave that key unchanged) and the
    outcomes. When any limit denies, or for a peek, nothing is written, so a
    request refused by one limit never consumes another.
    """
    if peek:
        outcomes = [peek_build_outcome(a, s, now) for a, s in zip(algorithms, states, strict=True)]
        return [None] * len(outcomes), outcomes
    results = [a.evaluate(s, now, c) for a, s, c in zip(algorithms, states, costs, strict=True)]
    outcomes = [outcome for _, outcome in results]
    if not all(o.allowed for o in outcomes):
        return [None] * len(outcomes), outcomes
    return [state for state, _ in results], outcomes
