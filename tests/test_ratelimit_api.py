"""Rate-limit API: headers, the 429 problem, configuration errors, tiers, failure modes."""

from __future__ import annotations

import math
from typing import Any

import pytest

from apisec import ConfigurationError
from apisec.ratelimit import (
    AsyncRateLimiter,
    Decision,
    FixedWindow,
    LeakyBucket,
    MemoryStore,
    RateLimiter,
    RateLimitExceeded,
    SlidingWindow,
    TieredRateLimiter,
    TokenBucket,
)
from apisec.testing import FakeClock


def test_headers_when_allowed_and_denied() -> None:
    """Allowed decisions carry X-RateLimit-* and IETF fields; denied ones add Retry-After."""
    limiter = RateLimiter(FixedWindow(2, 60, name="per-minute"), clock=FakeClock(30.0))
    allowed = dict(limiter.hit("k").headers)
    assert allowed == {
        "X-RateLimit-Limit": "2",
        "X-RateLimit-Remaining": "1",
        "X-RateLimit-Reset": "30",
        "RateLimit": '"per-minute";r=1;t=30',
        "RateLimit-Policy": '"per-minute";q=2;w=60',
    }
    limiter.hit("k")
    denied = limiter.hit("k")
    headers = dict(denied.headers)
    assert headers["Retry-After"] == "30"
    assert headers["X-RateLimit-Remaining"] == "0"


def test_retry_after_header_rounds_up() -> None:
    """Retry-After is integer seconds rounded up, so it is never too early."""
    clock = FakeClock(0.0)
    limiter = RateLimiter(TokenBucket(1, 0.4), clock=clock)
    limiter.hit("k")
    denied = limiter.hit("k")
    assert denied.retry_after == pytest.approx(2.5)
    assert dict(denied.headers)["Retry-After"] == "3"


def test_default_policy_names_describe_the_limit() -> None:
    """Without a name, the policy reads like '100-per-60s'."""
    assert RateLimiter(FixedWindow(100, 60)).hit("k").policy == "100-per-60s"


def test_rate_limit_exceeded_problem() -> None:
    """RateLimitExceeded is a 429 problem with the decision's headers and retry hint."""
    limiter = RateLimiter(FixedWindow(1, 10), clock=FakeClock(0.0))
    limiter.hit("k")
    with pytest.raises(RateLimitExceeded) as caught:
        limiter.check(limiter.hit("k"))
    err = caught.value
    assert err.status == 429
    body = err.to_problem().to_dict()
    assert body["status"] == 429 and body["retry_after"] == 10 and body["limit"] == 1
    assert ("Retry-After", "10") in err.headers
    assert limiter.check(limiter.peek("other")).allowed


@pytest.mark.parametrize(
    "build",
    [
        lambda: FixedWindow(0, 60),
        lambda: FixedWindow(-1, 60),
        lambda: FixedWindow(5, 0),
        lambda: FixedWindow(1.5, 60),  # type: ignore[arg-type]
        lambda: SlidingWindow(5, -1),
        lambda: TokenBucket(0, 1),
        lambda: TokenBucket(5, 0),
        lambda: LeakyBucket(5, float("inf")),
        lambda: LeakyBucket(True, 1),
        lambda: FixedWindow(5, 60, name='quo"te'),
        lambda: FixedWindow(5, 60, name=""),
    ],
)
def test_bad_algorithm_configuration(build: Any) -> None:
    """Zero, negative, fractional or infinite limits, windows and rates are refused."""
    with pytest.raises(ConfigurationError):
        build()


@pytest.mark.parametrize("cost", [6, -1, 1.5, True])
def test_bad_costs(cost: Any) -> None:
    """A cost above the quota (it could never pass), negative or non-int is refused."""
    limiter = RateLimiter(TokenBucket(5, 1))
    with pytest.raises(ConfigurationError):
        limiter.hit("k", cost)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"algorithm": []},
        {"algorithm": ["x"]},
        {"prefix": "a{b}"},
        {"prefix": ""},
        {"on_store_error": "ignore"},
        {"algorithm": [FixedWindow(1, 1), FixedWindow(2, 2, name="1-per-1s")]},
    ],
)
def test_bad_limiter_configuration(kwargs: dict[str, Any]) -> None:
    """Empty or non-algorithm lists, braces in prefixes, unknown modes, duplicate names."""
    args = {"algorithm": FixedWindow(1, 1), **kwargs}
    with pytest.raises(ConfigurationError):
        RateLimiter(**args)


@pytest.mark.parametrize("key", ["", None, 5])
def test_bad_keys(key: Any) -> None:
    """Keys must be non-empty strings."""
    with pytest.raises(ConfigurationError):
        RateLimiter(FixedWindow(1, 1)).hit(key)


def test_long_and_odd_keys_are_hashed_not_rejected() -> None:
    """Very long or unprintable keys (client-controlled) are hashed into the store key."""
    store = MemoryStore()
    limiter = RateLimiter(FixedWindow(1, 60), store, clock=FakeClock(0))
    assert limiter.hit("x" * 10_000).allowed
    assert not limiter.hit("x" * 10_000).allowed
    assert limiter.hit("line\nbreak").allowed
    assert all(len(k) < 100 for k in store._data)


def test_sync_and_async_stores_do_not_mix() -> None:
    """An async store in a sync limiter (or the reverse) is a ConfigurationError."""
    from apisec._async import InPlace

    with pytest.raises(ConfigurationError, match="AsyncRateLimiter"):
        RateLimiter(FixedWindow(1, 1), InPlace(MemoryStore()))
    with pytest.raises(ConfigurationError, match="RateLimiter"):
        AsyncRateLimiter(FixedWindow(1, 1), MemoryStore())  # type: ignore[arg-type]


def test_tiers() -> None:
    """Each tier has its own limits and its own counters."""
    clock = FakeClock(0)
    tiers = TieredRateLimiter(
        {"free": FixedWindow(1, 60), "pro": [FixedWindow(3, 60)]}, clock=clock
    )
    assert tiers.hit("acct", "free").allowed
    assert not tiers.hit("acct", "free").allowed
    assert tiers.hit("acct", "pro").remaining == 2
    assert tiers.peek("acct", "pro").remaining == 2
    with pytest.raises(ConfigurationError):
        tiers.hit("acct", "enterprise")
    with pytest.raises(ConfigurationError):
        TieredRateLimiter({})
    with pytest.raises(ConfigurationError):
        TieredRateLimiter({"a:b": FixedWindow(1, 1)})


def test_decision_is_immutable() -> None:
    """Decisions are values."""
    decision = RateLimiter(FixedWindow(1, 1)).hit("k")
    assert isinstance(decision, Decision)
    with pytest.raises(AttributeError):
        decision.allowed = False  # type: ignore[misc]


def test_denials_are_audited(audit_records: list[Any]) -> None:
    """A denial emits ratelimit.denied with the key as principal and the policy as reason."""
    limiter = RateLimiter(FixedWindow(1, 60, name="login"), clock=FakeClock(0))
    limiter.hit("203.0.113.7")
    limiter.hit("203.0.113.7")
    record = audit_records[-1]
    assert record.event == "ratelimit.denied"
    assert record.principal == "203.0.113.7"
    assert record.reason == "login"


def test_sliding_window_keeps_its_log_sorted_when_the_clock_steps_back() -> None:
    """A clock stepping backwards inserts admissions in order; the bound still holds."""
    algorithm = SlidingWindow(3, 10)
    state, _ = algorithm.evaluate(None, 100.0, 1)
    state, _ = algorithm.evaluate(state, 104.0, 1)
    state, outcome = algorithm.evaluate(state, 102.0, 1)  # the clock went back 2 s
    assert state == (100.0, 102.0, 104.0)
    assert outcome.remaining == 0
    _, denied = algorithm.evaluate(state, 103.0, 1)
    assert not denied.allowed
    assert denied.retry_after == pytest.approx(7.0)  # the entry at 100 leaves at 110


class TestPolicyHeader:
    def test_each_limiter_keeps_its_own_policy_header(self) -> None:
        """Remembered RateLimit-Policy values never cross limiters, however many there are."""
        from apisec.ratelimit import _decision

        for quota in range(1, 600):
            limiter = RateLimiter([FixedWindow(quota, 60), TokenBucket(quota + 1, 2, name="b")])
            bucket_window = math.ceil(limiter.algorithms[1].window)
            expected = f'"{quota}-per-60s";q={quota};w=60, "b";q={quota + 1};w={bucket_window}'
            for _ in range(2):
                assert dict(limiter.hit("k").headers)["RateLimit-Policy"] == expected
        assert len(_decision._POLICY_HEADERS) <= _decision._POLICY_CACHE

    def test_a_decision_without_policies_reports_its_own(self) -> None:
        """A Decision built by hand (no policies) reports its own policy, cached or not."""
        for limit in (5, 6, 5):
            decision = Decision(True, limit, 1, 1.0, None, "p", 30.5)
            assert dict(decision.headers)["RateLimit-Policy"] == f'"p";q={limit};w=31'
