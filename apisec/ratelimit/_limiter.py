"""RateLimiter and AsyncRateLimiter: one logic, the store call is the only twin.

A decision through the store's ``evaluate`` is one flow (:mod:`apisec._flows`)
driven by either twin. Two fast paths skip parts of it (see
``docs/architecture.md``, "Where fast paths may live"):

* over the memory store (either twin: a memory store never blocks), a
  one-limit ``hit`` is one call of the store's kernel for its algorithm,
  and every other decision calls the store's ``evaluate`` without the flow;
* over any other store with ``evaluate_one`` (Redis), a one-limit ``hit``
  makes that one store call: the only code the twins repeat.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Generic, Literal, Protocol, TypeVar

from apisec._async import InPlace, has_async_method
from apisec._clock import Clock, wall_clock
from apisec._fastpath import tuple_builder
from apisec._flows import Flow, adrive, drive
from apisec.audit import AuditEvent, emit
from apisec.errors import ConfigurationError, StoreError
from apisec.ratelimit._algorithms import (
    Algorithm,
    Outcome,
    SlidingWindow,
    SlidingWindowRelease,
)
from apisec.ratelimit._decision import (
    Decision,
    RateLimitExceeded,
    ResetFormat,
    check_reset_format,
)
from apisec.ratelimit._kernels import Hit, memory_hit
from apisec.ratelimit._memory import MemoryStore
from apisec.ratelimit._store import (
    AsyncOneLimitStore,
    AsyncRateLimitStore,
    Evaluate,
    LimitRequest,
    OneLimitStore,
    RateLimitStore,
)

__all__ = [
    "AsyncRateLimiter",
    "AsyncTieredRateLimiter",
    "RateLimiter",
    "TieredRateLimiter",
]

OnStoreError = Literal["raise", "allow", "deny"]
_MAX_KEY = 200
#: Hashed keys live under this marker; a caller's literal key never starts with it.
_HASHED = "h:"
_KIND = {1: "f", 2: "s", 3: "t", 4: "l", 5: "c"}
_KEY_CACHE = 4096
#: LimitRequest(...) by keyword at the cost of a positional build (apisec._fastpath).
_build_request = tuple_builder(LimitRequest)


class _AllowedDecision(Protocol):
    """The same for an allowed hit (apisec._fastpath)."""

    def __call__(
        self,
        *,
        remaining: int,
        reset_after: float,
        queue_delay: float | None = None,
        decided_at: float | None = None,
    ) -> Decision: ...


class _OneDecision(Protocol):
    """A one-limit limiter's Decision builder: its limit's fields bound (apisec._fastpath)."""

    def __call__(
        self,
        *,
        allowed: bool,
        remaining: int,
        reset_after: float,
        retry_after: float | None,
        queue_delay: float | None,
        decided_at: float | None,
    ) -> Decision: ...


#: A store's ``evaluate_one``, bound (sync or async).
EvaluateOne = Callable[[str, Algorithm, int, "float | None"], Outcome]
AsyncEvaluateOne = Callable[[str, Algorithm, int, "float | None"], Awaitable[Outcome]]


def _algorithms(value: Algorithm | Sequence[Algorithm]) -> tuple[Algorithm, ...]:
    items = (value,) if isinstance(value, Algorithm) else tuple(value)
    if not items or not all(isinstance(a, Algorithm) for a in items):
        raise ConfigurationError("give an algorithm or a non-empty list of algorithms")
    names = [a.policy for a in items]
    if len(set(names)) != len(names):
        raise ConfigurationError("several limits need distinct policy names (name=...)")
    return items


class _LimiterCore:
    """Key building, decisions and failure handling, shared by both twins."""

    def __init__(
        self,
        algorithm: Algorithm | Sequence[Algorithm],
        *,
        prefix: str = "rl",
        clock: Clock | None = None,
        on_store_error: OnStoreError = "raise",
        reset_format: ResetFormat = "delta",
        store: object = None,
    ) -> None:
        self.algorithms = _algorithms(algorithm)
        if not isinstance(prefix, str) or not prefix or "{" in prefix or "}" in prefix:
            raise ConfigurationError("prefix must be a non-empty string without braces")
        if on_store_error not in ("raise", "allow", "deny"):
            raise ConfigurationError("on_store_error must be 'raise', 'allow' or 'deny'")
        self.prefix = prefix
        self.on_store_error = on_store_error
        self.reset_format = check_reset_format(reset_format)
        self._clock = clock
        # The absolute reset formats need the decision's time even when the store
        # keeps its own clock: the limiter's, else the store's, else the wall clock.
        self._stamp: Clock | None = None
        if self.reset_format != "delta" and clock is None:
            self._stamp = getattr(store, "clock", None) or wall_clock
        self._policies = tuple((a.policy, a.quota, a.window) for a in self.algorithms)
        self._key_cache: dict[str, list[str]] = {}
        # A store key is "<prefix>:{<key>}:<index><kind>": its parts around the key, made once.
        self._key_head = f"{prefix}:{{"
        self._key_tails = tuple(
            f"}}:{index}{_KIND[algorithm.lua_id]}"
            for index, algorithm in enumerate(self.algorithms)
        )
        first = self._algorithm = self.algorithms[0]
        self._one_policy = first.policy
        self._quota = min(a.quota for a in self.algorithms)
        # Made once, like structlog's _make_stamper: the fast path's Decision,
        # by keyword, with the fields that never change bound.
        self._one_decision: _OneDecision = tuple_builder(
            Decision,
            limit=first.quota,
            policy=first.policy,
            window=first.window,
            policies=self._policies,
            degraded=False,
            reset_format=self.reset_format,
        )
        # The same for an allowed hit, whose retry_after is None (the memory kernels').
        self._allowed_decision: _AllowedDecision = tuple_builder(
            Decision,
            allowed=True,
            retry_after=None,
            limit=first.quota,
            policy=first.policy,
            window=first.window,
            policies=self._policies,
            degraded=False,
            reset_format=self.reset_format,
        )
        # The memory store behind either twin (InPlace wraps it for the async one):
        # decisions skip the flow, and a one-limit hit is its kernel (apisec.ratelimit._kernels).
        inner = store.inner if isinstance(store, InPlace) else store
        self._memory = inner if type(inner) is MemoryStore else None
        self._fast: Hit | None = None
        if self._memory is not None:
            self._fast = memory_hit(self, self._memory)

    def _keys(self, key: str) -> list[str]:
        cached = self._key_cache.get(key) if type(key) is str else None
        if cached is not None:
            return cached
        keys = self._build_keys(key)
        if len(self._key_cache) >= _KEY_CACHE:
            self._key_cache.clear()  # bounded: a flood of distinct keys cannot grow it
        self._key_cache[key] = keys
        return keys

    def _build_keys(self, key: str) -> list[str]:
        if not isinstance(key, str) or not key:
            raise ConfigurationError("a rate-limit key must be a non-empty string")
        if (
            len(key) > _MAX_KEY
            or not key.isprintable()
            or key.startswith(_HASHED)
            or "{" in key
            or "}" in key
        ):
            # Long, unprintable or brace-carrying keys (a brace would break the
            # hash tag below) are hashed; so is any literal key that starts with
            # the marker, so a caller can never name a hashed key's budget.
            key = _HASHED + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
        # {key} is a Redis Cluster hash tag: every limit of one key shares a slot,
        # so a multi-limit decision stays one atomic script.
        # The algorithm kind is part of the name, so reconfiguring a limit never
        # meets a stored state of another shape.
        head = self._key_head + key
        return [head + tail for tail in self._key_tails]

    def _requests(self, key: str, cost: int) -> list[LimitRequest]:
        for algorithm in self.algorithms:
            algorithm.check_cost(cost)
        return [
            _build_request(key=store_key, algorithm=algorithm, cost=cost)
            for store_key, algorithm in zip(self._keys(key), self.algorithms, strict=True)
        ]

    def _release_requests(self, key: str, cost: int) -> list[LimitRequest]:
        """Requests that give back ``cost`` units taken by a hit (sliding windows only)."""
        releases = []
        for store_key, algorithm in zip(self._keys(key), self.algorithms, strict=True):
            if not isinstance(algorithm, SlidingWindow):
                raise ConfigurationError("only sliding-window limits can give units back")
            release = SlidingWindowRelease(algorithm)
            releases.append(LimitRequest(key=store_key, algorithm=release, cost=cost))
        return releases

    def _now(self) -> float | None:
        return None if self._clock is None else self._clock()

    def _decided_at(self, now: float | None) -> float | None:
        if now is None and self._stamp is not None:
            return self._stamp()
        return now

    def _decision(
        self, outcomes: list[Outcome], key: str, peek: bool, now: float | None
    ) -> Decision:
        if len(outcomes) == 1:
            index = 0
        elif all(o.allowed for o in outcomes):
            index = min(
                range(len(outcomes)),
                key=lambda i: (outcomes[i].remaining, -outcomes[i].reset_after),
            )
        else:
            denied = [i for i, o in enumerate(outcomes) if not o.allowed]
            index = max(denied, key=lambda i: outcomes[i].retry_after or 0.0)
        chosen = outcomes[index]
        algorithm = self.algorithms[index]
        allowed = all(o.allowed for o in outcomes)
        retry_after = None if allowed else max(o.retry_after or 0.0 for o in outcomes)
        decision = Decision(
            allowed=allowed,
            limit=algorithm.quota,
            remaining=chosen.remaining,
            reset_after=chosen.reset_after,
            retry_after=retry_after,
            policy=algorithm.policy,
            window=algorithm.window,
            policies=self._policies,
            queue_delay=chosen.queue_delay,
            reset_format=self.reset_format,
            decided_at=self._decided_at(now),
        )
        if not allowed and not peek:
            emit(AuditEvent.RATE_LIMIT_DENIED, principal=key, reason=algorithm.policy)
        return decision

    def _single_decision(self, outcome: Outcome, key: str, now: float | None) -> Decision:
        """The decision of a one-limit limiter, without the generic combination (the fast path).

        ``tests/test_ratelimit_reset_formats.py`` pins it field by field
        against the generic decision.
        """
        if now is None and self._stamp is not None:
            now = self._stamp()
        allowed = outcome.allowed
        decision = self._one_decision(
            allowed=allowed,
            remaining=outcome.remaining,
            reset_after=outcome.reset_after,
            retry_after=outcome.retry_after,
            queue_delay=outcome.queue_delay,
            decided_at=now,
        )
        if not allowed:
            emit(AuditEvent.RATE_LIMIT_DENIED, principal=key, reason=self._one_policy)
        return decision

    def _degraded(self, exc: StoreError, now: float | None) -> Decision:
        if self.on_store_error == "raise":
            raise exc
        algorithm = self.algorithms[0]
        allowed = self.on_store_error == "allow"
        emit(
            AuditEvent.STORE_FAILURE,
            reason=f"rate limiter failing {'open' if allowed else 'closed'}",
        )
        return Decision(
            allowed=allowed,
            limit=algorithm.quota,
            remaining=algorithm.quota if allowed else 0,
            reset_after=0.0,
            retry_after=None if allowed else 1.0,
            policy=algorithm.policy,
            window=algorithm.window,
            policies=self._policies,
            degraded=True,
            reset_format=self.reset_format,
            decided_at=self._decided_at(now),
        )

    def _memory_decision(self, memory: MemoryStore, key: str, cost: int, peek: bool) -> Decision:
        """:meth:`_evaluate_flow` on the memory store, written out (the memory fast path).

        The flow's generator and driver cost about a tenth of a memory
        decision; over a memory store (which never fails) the flow is one
        call. tests/test_ratelimit_fastpath.py pins it against the flow.
        """
        requests = self._requests(key, cost)
        now = self._now()
        return self._decision(memory.evaluate(requests, now, peek), key, peek, now)

    def _evaluate_flow(
        self, key: str, cost: int, peek: bool
    ) -> Flow[RateLimitStore, AsyncRateLimitStore, Decision]:
        """A decision through the store's ``evaluate``: every limit, all-or-nothing."""
        requests = self._requests(key, cost)
        now = self._now()
        try:
            outcomes: list[Outcome] = yield Evaluate(requests=requests, now=now, peek=peek)
        except StoreError as exc:
            return self._degraded(exc, now)
        return self._decision(outcomes, key, peek, now)

    def check(self, decision: Decision) -> Decision:
        """Raise :class:`RateLimitExceeded` for a denied decision; return it otherwise."""
        if not decision.allowed:
            raise RateLimitExceeded(decision)
        return decision


class RateLimiter(_LimiterCore):
    """Rate limiting over a store; one or several limits checked all-or-nothing.

    Args:
        algorithm: one algorithm, or several (``[TokenBucket(10, 10, name="burst"),
            FixedWindow(1000, 3600, name="hourly")]``): a hit passes only if
            every limit allows it, and a denied hit consumes none of them.
        store: a :class:`RateLimitStore` (a :class:`MemoryStore` by default).
        prefix: key prefix in the store.
        clock: the time source; None lets the store use its own (the Redis
            server's clock for Redis stores, so skewed app servers agree).
        on_store_error: ``"raise"`` (``StoreError``), ``"allow"`` (fail open)
            or ``"deny"`` (fail closed); degraded decisions say so.
        reset_format: how ``X-RateLimit-Reset`` is written: ``"delta"``
            seconds (default), ``"epoch"`` seconds or ``"iso8601"`` UTC. The
            absolute formats count from the limiter's clock, else the store's
            ``clock`` attribute (``MemoryStore`` has one), else the wall clock.

    >>> from apisec.ratelimit import FixedWindow
    >>> from apisec.testing import FakeClock
    >>> limiter = RateLimiter(FixedWindow(2, 60), clock=FakeClock(0))
    >>> [limiter.hit("client-1").allowed for _ in range(3)]
    [True, True, False]
    """

    def __init__(
        self,
        algorithm: Algorithm | Sequence[Algorithm],
        store: RateLimitStore | None = None,
        prefix: str = "rl",
        clock: Clock | None = None,
        *,
        on_store_error: OnStoreError = "raise",
        reset_format: ResetFormat = "delta",
    ) -> None:
        store = MemoryStore() if store is None else store
        super().__init__(
            algorithm,
            prefix=prefix,
            clock=clock,
            on_store_error=on_store_error,
            reset_format=reset_format,
            store=store,
        )
        if has_async_method(store, "evaluate"):
            raise ConfigurationError("this store is async: use AsyncRateLimiter")
        self.store = store
        if self._fast is not None and type(self).hit is RateLimiter.hit:
            # The memory fast path, one call shorter: hit is the kernel itself
            # (unless a subclass has its own hit).
            self.hit = self._fast  # type: ignore[method-assign]
        self._one: EvaluateOne | None = (
            store.evaluate_one
            if len(self.algorithms) == 1 and isinstance(store, OneLimitStore)
            else None
        )

    def hit(self, key: str, cost: int = 1) -> Decision:
        """Spend ``cost`` units for ``key`` if every limit allows it."""
        fast = self._fast
        if fast is not None:  # the memory fast path (docs/architecture.md)
            return fast(key, cost)
        memory = self._memory
        if memory is not None:
            return self._memory_decision(memory, key, cost, False)
        one = self._one
        if one is None or type(cost) is not int or not 0 <= cost <= self._quota:
            return drive(self._evaluate_flow(key, cost, False), self.store)
        # The fast path: one limit, the store's evaluate_one (docs/architecture.md).
        keys = self._key_cache.get(key) if type(key) is str else None
        if keys is None:
            keys = self._keys(key)
        clock = self._clock
        now = None if clock is None else clock()
        try:
            outcome = one(keys[0], self._algorithm, cost, now)
        except StoreError as exc:
            return self._degraded(exc, now)
        return self._single_decision(outcome, key, now)

    def peek(self, key: str) -> Decision:
        """The decision a unit hit would get, without spending anything."""
        memory = self._memory
        if memory is not None:
            return self._memory_decision(memory, key, 1, True)
        return drive(self._evaluate_flow(key, 1, True), self.store)

    def reset(self, key: str) -> None:
        """Forget everything about ``key``."""
        self.store.clear(self._keys(key))

    def _release(self, key: str, cost: int = 1) -> None:
        """Give back ``cost`` units an earlier hit took (internal: the login guard's slots)."""
        self.store.evaluate(self._release_requests(key, cost), self._now(), False)


class AsyncRateLimiter(_LimiterCore):
    """The asyncio twin of :class:`RateLimiter` (same arguments, awaitable methods)."""

    def __init__(
        self,
        algorithm: Algorithm | Sequence[Algorithm],
        store: AsyncRateLimitStore | None = None,
        prefix: str = "rl",
        clock: Clock | None = None,
        *,
        on_store_error: OnStoreError = "raise",
        reset_format: ResetFormat = "delta",
    ) -> None:
        if store is None:
            store = InPlace(MemoryStore())
        super().__init__(
            algorithm,
            prefix=prefix,
            clock=clock,
            on_store_error=on_store_error,
            reset_format=reset_format,
            store=store,
        )
        if not has_async_method(store, "evaluate"):
            raise ConfigurationError("this store is synchronous: use RateLimiter")
        self.store = store
        self._one: AsyncEvaluateOne | None = (
            store.evaluate_one
            if len(self.algorithms) == 1 and isinstance(store, AsyncOneLimitStore)
            else None
        )

    async def hit(self, key: str, cost: int = 1) -> Decision:
        """Same as :meth:`RateLimiter.hit`, awaiting the store."""
        fast = self._fast
        if fast is not None:  # the memory fast path: a memory store never blocks
            return fast(key, cost)
        memory = self._memory
        if memory is not None:
            return self._memory_decision(memory, key, cost, False)
        one = self._one
        if one is None or type(cost) is not int or not 0 <= cost <= self._quota:
            return await adrive(self._evaluate_flow(key, cost, False), self.store)
        # The fast path: one limit, the store's evaluate_one (docs/architecture.md).
        keys = self._key_cache.get(key) if type(key) is str else None
        if keys is None:
            keys = self._keys(key)
        clock = self._clock
        now = None if clock is None else clock()
        try:
            outcome = await one(keys[0], self._algorithm, cost, now)
        except StoreError as exc:
            return self._degraded(exc, now)
        return self._single_decision(outcome, key, now)

    async def peek(self, key: str) -> Decision:
        """Same as :meth:`RateLimiter.peek`, awaiting the store."""
        memory = self._memory
        if memory is not None:
            return self._memory_decision(memory, key, 1, True)
        return await adrive(self._evaluate_flow(key, 1, True), self.store)

    async def reset(self, key: str) -> None:
        """Same as :meth:`RateLimiter.reset`, awaiting the store."""
        await self.store.clear(self._keys(key))

    async def _release(self, key: str, cost: int = 1) -> None:
        """Same as :meth:`RateLimiter._release`, awaiting the store."""
        await self.store.evaluate(self._release_requests(key, cost), self._now(), False)


L = TypeVar("L")


class _TieredCore(Generic[L]):
    """One limiter per tier over one shared store, shared by both twins."""

    def __init__(
        self,
        tiers: Mapping[str, Algorithm | Sequence[Algorithm]],
        prefix: str,
        make: Callable[[Algorithm | Sequence[Algorithm], str], L],
    ) -> None:
        if not tiers:
            raise ConfigurationError("give at least one tier")
        limiters: dict[str, L] = {}
        for tier, algorithms in tiers.items():
            if not isinstance(tier, str) or not tier or "{" in tier or "}" in tier or ":" in tier:
                raise ConfigurationError(f"invalid tier name {tier!r}")
            limiters[tier] = make(algorithms, f"{prefix}:{tier}")
        self.limiters: dict[str, L] = limiters

    def limiter(self, tier: str) -> L:
        """The limiter of ``tier`` (``ConfigurationError`` for an unknown tier)."""
        try:
            return self.limiters[tier]
        except KeyError:
            raise ConfigurationError(f"unknown tier {tier!r}") from None


class TieredRateLimiter(_TieredCore[RateLimiter]):
    """Different limits per plan: ``hit(key, tier="pro")``.

    >>> from apisec.ratelimit import FixedWindow
    >>> tiers = TieredRateLimiter({"free": FixedWindow(100, 3600),
    ...                            "pro": FixedWindow(10_000, 3600)})
    >>> tiers.hit("acct_1", tier="pro").limit
    10000
    """

    def __init__(
        self,
        tiers: Mapping[str, Algorithm | Sequence[Algorithm]],
        store: RateLimitStore | None = None,
        prefix: str = "rl",
        clock: Clock | None = None,
        *,
        on_store_error: OnStoreError = "raise",
        reset_format: ResetFormat = "delta",
    ) -> None:
        shared = MemoryStore() if store is None else store
        super().__init__(
            tiers,
            prefix,
            lambda algorithms, tier_prefix: RateLimiter(
                algorithms,
                shared,
                tier_prefix,
                clock,
                on_store_error=on_store_error,
                reset_format=reset_format,
            ),
        )

    def hit(self, key: str, tier: str, cost: int = 1) -> Decision:
        """:meth:`RateLimiter.hit` with the limits of ``tier``."""
        return self.limiter(tier).hit(key, cost)

    def peek(self, key: str, tier: str) -> Decision:
        """:meth:`RateLimiter.peek` with the limits of ``tier``."""
        return self.limiter(tier).peek(key)


class AsyncTieredRateLimiter(_TieredCore[AsyncRateLimiter]):
    """The asyncio twin of :class:`TieredRateLimiter`."""

    def __init__(
        self,
        tiers: Mapping[str, Algorithm | Sequence[Algorithm]],
        store: AsyncRateLimitStore | None = None,
        prefix: str = "rl",
        clock: Clock | None = None,
        *,
        on_store_error: OnStoreError = "raise",
        reset_format: ResetFormat = "delta",
    ) -> None:
        shared: AsyncRateLimitStore = InPlace(MemoryStore()) if store is None else store
        super().__init__(
            tiers,
            prefix,
            lambda algorithms, tier_prefix: AsyncRateLimiter(
                algorithms,
                shared,
                tier_prefix,
                clock,
                on_store_error=on_store_error,
                reset_format=reset_format,
            ),
        )

    async def hit(self, key: str, tier: str, cost: int = 1) -> Decision:
        """Same as :meth:`TieredRateLimiter.hit`, awaiting the store."""
        return await self.limiter(tier).hit(key, cost)

    async def peek(self, key: str, tier: str) -> Decision:
        """Same as :meth:`TieredRateLimiter.peek`, awaiting the store."""
        return await self.limiter(tier).peek(key)
