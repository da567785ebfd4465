"""Run in a separate process: hammer one Redis key and count admissions."""

from __future__ import annotations

from collections.abc import Callable

import redis

from apisec.ratelimit import (
    Algorithm,
    FixedWindow,
    LeakyBucket,
    RateLimiter,
    SlidingWindow,
    SlidingWindowCounter,
    TokenBucket,
)
from apisec.ratelimit.redis import RedisStore
from apisec.testing import FakeClock

ALGORITHMS: dict[str, Callable[[], Algorithm]] = {
    "fixed": lambda: FixedWindow(100, 3600),
    "sliding": lambda: SlidingWindow(100, 3600),
    "token": lambda: TokenBucket(100, 1e-9),
    "leaky": lambda: LeakyBucket(100, 1e-9),
    "counter": lambda: SlidingWindowCounter(100, 3600),
}


def hammer(port: int, kind: str, key: str, attempts: int, start: float) -> int:
    client = redis.Redis(host="127.0.0.1", port=port)
    # A frozen clock: no window rolls over and no bucket refills during the race.
    limiter = RateLimiter(ALGORITHMS[kind](), RedisStore(client), clock=FakeClock(start))
    admitted = sum(limiter.hit(key).allowed for _ in range(attempts))
    client.close()
    return admitted
