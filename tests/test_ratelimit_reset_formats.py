"""X-RateLimit-Reset as delta seconds, epoch seconds or ISO 8601 UTC, on every store."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

import pytest
import redis
import redis.asyncio
from hypothesis import given
from hypothesis import strategies as st

from apisec import ConfigurationError, StoreError
from apisec.ratelimit import (
    AsyncRateLimiter,
    AsyncTieredRateLimiter,
    Decision,
    FixedWindow,
    LeakyBucket,
    LimitRequest,
    MemoryStore,
    Outcome,
    RateLimiter,
    RateLimitExceeded,
    SlidingWindow,
    TieredRateLimiter,
    TokenBucket,
)
from apisec.ratelimit.redis import AsyncRedisStore, RedisStore
from apisec.testing import FakeClock

# 2025-01-15T10:30:30Z: the fixed 60 s window resets at 10:31:00Z, the guidance's example.
NOW = datetime(2025, 1, 15, 10, 30, 30, tzinfo=timezone.utc).timestamp()
EXPECTED_RESET = {"delta": "30", "epoch": str(int(NOW) + 30), "iso8601": "2025-01-15T10:31:00Z"}


def _fields(decision: Decision) -> dict[str, str]:
    return dict(decision.headers)


class _EvaluateOnly:
    """A custom store without the one-limit shortcut: decisions take the generic path."""

    def __init__(self, inner: MemoryStore) -> None:
        self.inner = inner

    def evaluate(
        self, requests: Sequence[LimitRequest], now: float | None, peek: bool
    ) -> list[Outcome]:
        return self.inner.evaluate(requests, now, peek)

    def clear(self, keys: Sequence[str]) -> None:
        self.inner.clear(keys)


class _BrokenStore:
    """A store whose backend is always down."""

    def evaluate(
        self, requests: Sequence[LimitRequest], now: float | None, peek: bool
    ) -> list[Outcome]:
        raise StoreError("down")

    def clear(self, keys: Sequence[str]) -> None:
        raise StoreError("down")


class TestEachFormatOnEachStore:
    @pytest.mark.parametrize("reset_format", ["delta", "epoch", "iso8601"])
    def test_memory_store(self, reset_format: Any) -> None:
        """With a fake clock, X-RateLimit-Reset reads 30 s, its epoch second, or 10:31:00Z."""
        limiter = RateLimiter(FixedWindow(5, 60), clock=FakeClock(NOW), reset_format=reset_format)
        headers = _fields(limiter.hit("client"))
        assert headers["X-RateLimit-Reset"] == EXPECTED_RESET[reset_format]
        assert headers["RateLimit"] == '"5-per-60s";r=4;t=30'

    @pytest.mark.parametrize("reset_format", ["delta", "epoch", "iso8601"])
    def test_memory_store_with_its_own_clock(self, reset_format: Any) -> None:
        """A limiter without a clock stamps its decisions with the memory store's clock."""
        store = MemoryStore(clock=FakeClock(NOW))
        limiter = RateLimiter(FixedWindow(5, 60), store, reset_format=reset_format)
        decision = limiter.hit("client")
        assert _fields(decision)["X-RateLimit-Reset"] == EXPECTED_RESET[reset_format]
        if reset_format != "delta":
            assert decision.decided_at == NOW

    @pytest.mark.redis
    @pytest.mark.parametrize("reset_format", ["delta", "epoch", "iso8601"])
    def test_redis_store(self, redis_client: redis.Redis, reset_format: Any) -> None:
        """The Redis store gives the same reset in each format as the memory store."""
        limiter = RateLimiter(
            FixedWindow(5, 60),
            RedisStore(redis_client),
            clock=FakeClock(NOW),
            reset_format=reset_format,
        )
        headers = _fields(limiter.hit("client"))
        assert headers["X-RateLimit-Reset"] == EXPECTED_RESET[reset_format]
        assert headers["X-RateLimit-Remaining"] == "4"

    @pytest.mark.redis
    @pytest.mark.parametrize("reset_format", ["delta", "epoch", "iso8601"])
    async def test_async_redis_store(
        self, async_redis_client: redis.asyncio.Redis, reset_format: Any
    ) -> None:
        """The asyncio limiter over AsyncRedisStore writes the reset in the chosen format."""
        limiter = AsyncRateLimiter(
            FixedWindow(5, 60),
            AsyncRedisStore(async_redis_client),
            clock=FakeClock(NOW),
            reset_format=reset_format,
        )
        headers = _fields(await limiter.hit("client"))
        assert headers["X-RateLimit-Reset"] == EXPECTED_RESET[reset_format]
        peeked = _fields(await limiter.peek("client"))
        assert peeked["X-RateLimit-Reset"] == EXPECTED_RESET[reset_format]

    @pytest.mark.redis
    def test_redis_server_clock_with_wall_clock_stamp(self, redis_client: redis.Redis) -> None:
        """Without any clock, Redis decides on its own time and the stamp is the wall clock."""
        import time

        limiter = RateLimiter(FixedWindow(5, 60), RedisStore(redis_client), reset_format="epoch")
        before = time.time()
        decision = limiter.hit("client")
        after = time.time()
        assert decision.decided_at is not None and before <= decision.decided_at <= after
        reset = int(_fields(decision)["X-RateLimit-Reset"])
        assert before + decision.reset_after <= reset <= after + decision.reset_after + 1

    @pytest.mark.parametrize("reset_format", ["delta", "epoch", "iso8601"])
    async def test_async_memory_store(self, reset_format: Any) -> None:
        """The asyncio limiter's default memory store uses the limiter's clock for the stamp."""
        limiter = AsyncRateLimiter(
            FixedWindow(5, 60), clock=FakeClock(NOW), reset_format=reset_format
        )
        headers = _fields(await limiter.hit("client"))
        assert headers["X-RateLimit-Reset"] == EXPECTED_RESET[reset_format]


class TestWhatStaysDelta:
    @pytest.mark.parametrize("reset_format", ["epoch", "iso8601"])
    def test_retry_after_and_ietf_fields_stay_delta(self, reset_format: Any) -> None:
        """Retry-After and RateLimit's t stay delta seconds whatever the reset format."""
        clock = FakeClock(NOW)
        limiter = RateLimiter(FixedWindow(1, 60), clock=clock, reset_format=reset_format)
        limiter.hit("client")
        denied = _fields(limiter.hit("client"))
        assert denied["Retry-After"] == "30"
        assert denied["RateLimit"] == '"1-per-60s";r=0;t=30'
        assert denied["RateLimit-Policy"] == '"1-per-60s";q=1;w=60'
        assert denied["X-RateLimit-Reset"] == EXPECTED_RESET[reset_format]

    def test_the_clock_moves_the_absolute_reset_only_at_the_window_edge(self) -> None:
        """Within one window the epoch reset stays put while the delta counts down."""
        clock = FakeClock(NOW)
        delta = RateLimiter(FixedWindow(10, 60), clock=clock)
        epoch = RateLimiter(FixedWindow(10, 60), clock=clock, reset_format="epoch")
        clock.advance(20)
        assert _fields(delta.hit("k"))["X-RateLimit-Reset"] == "10"
        assert _fields(epoch.hit("k"))["X-RateLimit-Reset"] == str(int(NOW) + 30)
        clock.advance(15)  # 10:31:05, in the next window
        assert _fields(epoch.hit("k"))["X-RateLimit-Reset"] == str(int(NOW) + 90)

    def test_fractional_instants_round_up(self) -> None:
        """An instant between two seconds is written as the later one: never too early."""
        clock = FakeClock(NOW + 0.25)
        limiter = RateLimiter(TokenBucket(4, 2), clock=clock, reset_format="iso8601")
        decision = limiter.hit("k")  # one token to refill at 2/s: 0.5 s
        assert decision.reset_after == 0.5
        assert _fields(decision)["X-RateLimit-Reset"] == "2025-01-15T10:30:31Z"
        assert _fields(decision)["RateLimit"].endswith(";t=1")


class TestEveryDecisionCarriesTheFormat:
    def test_multi_limit_and_peek(self) -> None:
        """The generic path (several limits) and peek() write the chosen format too."""
        limiter = RateLimiter(
            [FixedWindow(10, 60, name="minute"), SlidingWindow(100, 3600, name="hour")],
            clock=FakeClock(NOW),
            reset_format="iso8601",
        )
        assert _fields(limiter.hit("k"))["X-RateLimit-Reset"] == "2025-01-15T10:31:00Z"
        peeked = limiter.peek("k")
        assert peeked.reset_format == "iso8601" and peeked.decided_at == NOW

    def test_degraded_decisions(self) -> None:
        """A fail-open decision after a store failure keeps the format and the stamp."""
        limiter = RateLimiter(
            FixedWindow(10, 60),
            _BrokenStore(),
            clock=FakeClock(NOW),
            on_store_error="allow",
            reset_format="epoch",
        )
        decision = limiter.hit("k")
        assert decision.degraded and decision.reset_format == "epoch"
        assert _fields(decision)["X-RateLimit-Reset"] == str(int(NOW))

    def test_tiers_and_the_429_error(self) -> None:
        """Tiered limiters pass the format on, and RateLimitExceeded carries those headers."""
        tiers = TieredRateLimiter(
            {"free": FixedWindow(1, 60)}, clock=FakeClock(NOW), reset_format="epoch"
        )
        tiers.hit("acct", tier="free")
        with pytest.raises(RateLimitExceeded) as caught:
            tiers.limiter("free").check(tiers.hit("acct", tier="free"))
        headers = dict(caught.value.headers)
        assert headers["X-RateLimit-Reset"] == str(int(NOW) + 30)
        assert headers["Retry-After"] == "30"

    async def test_async_tiers(self) -> None:
        """The asyncio tiers pass the format on as well."""
        tiers = AsyncTieredRateLimiter(
            {"pro": FixedWindow(5, 60)}, clock=FakeClock(NOW), reset_format="iso8601"
        )
        decision = await tiers.hit("acct", tier="pro")
        assert _fields(decision)["X-RateLimit-Reset"] == "2025-01-15T10:31:00Z"

    def test_a_hand_built_decision_without_stamp_uses_the_wall_clock(self) -> None:
        """A Decision built by hand with an absolute format and no decided_at reads the time."""
        import time

        before = time.time()
        decision = Decision(
            allowed=True,
            limit=1,
            remaining=1,
            reset_after=10.0,
            retry_after=None,
            policy="p",
            window=10.0,
            reset_format="epoch",
        )
        reset = int(_fields(decision)["X-RateLimit-Reset"])
        assert before + 10 <= reset <= time.time() + 11

    def test_headers_stay_a_read_only_attribute(self) -> None:
        """Decision.headers is a property: assigning to it fails."""
        decision = RateLimiter(FixedWindow(1, 60), reset_format="epoch").hit("k")
        assert isinstance(decision.headers, list)
        with pytest.raises(AttributeError):
            decision.headers = []  # type: ignore[misc]


class TestFastPathIsPinned:
    @pytest.mark.parametrize(
        "algorithm",
        [FixedWindow(2, 60), SlidingWindow(2, 60), TokenBucket(2, 1), LeakyBucket(2, 1)],
        ids=["fixed", "sliding", "token", "leaky"],
    )
    @pytest.mark.parametrize("reset_format", ["delta", "iso8601"])
    def test_positional_decision_equals_the_generic_one(
        self, algorithm: Any, reset_format: Any
    ) -> None:
        """The positional one-limit fast path builds field for field the generic decision."""
        fast = RateLimiter(algorithm, clock=FakeClock(NOW), reset_format=reset_format)
        generic = RateLimiter(
            algorithm,
            _EvaluateOnly(MemoryStore()),
            clock=FakeClock(NOW),
            reset_format=reset_format,
        )
        assert fast._one is not None and generic._one is None
        for _ in range(3):  # allowed, allowed, denied
            a, b = fast.hit("k"), generic.hit("k")
            assert a._asdict() == b._asdict()
            assert len(a) == len(Decision._fields)
        assert a.reset_format == reset_format and a.decided_at == NOW and not a.allowed

    def test_field_order_is_pinned(self) -> None:
        """The new fields come last, so positional builders elsewhere keep their meaning."""
        assert Decision._fields == (
            "allowed",
            "limit",
            "remaining",
            "reset_after",
            "retry_after",
            "policy",
            "window",
            "policies",
            "queue_delay",
            "degraded",
            "reset_format",
            "decided_at",
        )


class TestConfiguration:
    @pytest.mark.parametrize("bad", ["", "ISO8601", "seconds", "http-date", None, 1])
    def test_unknown_formats_are_refused(self, bad: Any) -> None:
        """An unknown reset format is a ConfigurationError at construction."""
        with pytest.raises(ConfigurationError):
            RateLimiter(FixedWindow(1, 60), reset_format=bad)
        with pytest.raises(ConfigurationError):
            AsyncRateLimiter(FixedWindow(1, 60), reset_format=bad)

    def test_default_is_delta(self) -> None:
        """Without the setting the reset stays delta seconds, as before."""
        decision = RateLimiter(FixedWindow(1, 60), clock=FakeClock(NOW)).hit("k")
        assert decision.reset_format == "delta"
        assert _fields(decision)["X-RateLimit-Reset"] == "30"


@given(
    decided_at=st.floats(min_value=0, max_value=4_000_000_000, allow_nan=False),
    reset_after=st.floats(min_value=0, max_value=10_000_000, allow_nan=False),
)
def test_absolute_resets_are_the_rounded_up_instant(decided_at: float, reset_after: float) -> None:
    """Epoch and ISO resets name the same second, the first at or after the true instant."""
    common: dict[str, Any] = {
        "allowed": True,
        "limit": 1,
        "remaining": 1,
        "reset_after": reset_after,
        "retry_after": None,
        "policy": "p",
        "window": 1.0,
        "decided_at": decided_at,
    }
    epoch = int(_fields(Decision(**common, reset_format="epoch"))["X-RateLimit-Reset"])
    iso = _fields(Decision(**common, reset_format="iso8601"))["X-RateLimit-Reset"]
    instant = decided_at + reset_after
    assert epoch - 1 < instant <= epoch
    parsed = datetime.strptime(iso, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    assert parsed.timestamp() == epoch
