"""Rate limiting: four algorithms over one store protocol, memory and Redis stores.

>>> from apisec.testing import FakeClock
>>> limiter = RateLimiter(TokenBucket(capacity=2, refill_rate=1), clock=FakeClock(0))
>>> limiter.hit("user_1").allowed, limiter.hit("user_1").allowed
(True, True)
>>> denied = limiter.hit("user_1")
>>> denied.allowed, denied.retry_after
(False, 1.0)
>>> dict(denied.headers)["Retry-After"]
'1'

Redis stores live in :mod:`apisec.ratelimit.redis`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from apisec._lazy import lazy_attributes
from apisec.ratelimit._algorithms import (
    Algorithm,
    FixedWindow,
    LeakyBucket,
    Outcome,
    SlidingWindow,
    SlidingWindowCounter,
    TokenBucket,
    apply_requests,
)
from apisec.ratelimit._decision import Decision, RateLimitExceeded, ResetFormat
from apisec.ratelimit._limiter import (
    AsyncRateLimiter,
    AsyncTieredRateLimiter,
    RateLimiter,
    TieredRateLimiter,
)
from apisec.ratelimit._memory import MemoryStore
from apisec.ratelimit._store import AsyncRateLimitStore, LimitRequest, RateLimitStore

if TYPE_CHECKING:
    from apisec.ratelimit.redis import AsyncRedisStore, RedisStore

__all__ = [
    "Algorithm",
    "AsyncRateLimitStore",
    "AsyncRateLimiter",
    "AsyncRedisStore",
    "AsyncTieredRateLimiter",
    "Decision",
    "FixedWindow",
    "LeakyBucket",
    "LimitRequest",
    "MemoryStore",
    "Outcome",
    "RateLimitExceeded",
    "RateLimitStore",
    "RateLimiter",
    "RedisStore",
    "ResetFormat",
    "SlidingWindow",
    "SlidingWindowCounter",
    "TieredRateLimiter",
    "TokenBucket",
    "apply_requests",
]


# The Redis stores import redis-py, so they load on first use only.
__getattr__ = lazy_attributes(__name__, "apisec.ratelimit.redis", ["AsyncRedisStore", "RedisStore"])
