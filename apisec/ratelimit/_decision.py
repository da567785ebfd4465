"""Decision: what a limiter answered, and the response headers that say so."""

from __future__ import annotations

import math
from typing import NamedTuple

from apisec.errors import ClientError

__all__ = ["Decision", "RateLimitExceeded"]


class Decision(NamedTuple):
    """The answer for one hit (or peek).

    Attributes:
        allowed: the hit was admitted (and consumed).
        limit: the quota of the reported policy.
        remaining: units left in it.
        reset_after: seconds until that quota is whole again.
        retry_after: seconds after which the same hit is allowed (None when allowed).
        policy: the reported policy's name (the most constraining one).
        window: the reported policy's window in seconds.
        policies: ``(name, quota, window)`` of every policy checked.
        queue_delay: leaky bucket only: wait in a constant-rate queue.
        degraded: the store failed and the limiter's failure mode decided.
    """

    allowed: bool
    limit: int
    remaining: int
    reset_after: float
    retry_after: float | None
    policy: str
    window: float
    policies: tuple[tuple[str, int, float], ...] = ()
    queue_delay: float | None = None
    degraded: bool = False

    @property
    def headers(self) -> list[tuple[str, str]]:
        """``X-RateLimit-*``, ``Retry-After`` (when denied) and the IETF ``RateLimit`` fields."""
        remaining = max(self.remaining, 0)
        reset = math.ceil(self.reset_after)
        headers = [
            ("X-RateLimit-Limit", str(self.limit)),
            ("X-RateLimit-Remaining", str(remaining)),
            ("X-RateLimit-Reset", str(reset)),
        ]
        if not self.allowed and self.retry_after is not None:
            headers.append(("Retry-After", str(math.ceil(self.retry_after))))
        headers.append(("RateLimit", f'"{self.policy}";r={remaining};t={reset}'))
        policies = self.policies or ((self.policy, self.limit, self.window),)
        headers.append(
            (
                "RateLimit-Policy",
                ", ".join(
                    f'"{name}";q={quota};w={math.ceil(window)}' for name, quota, window in policies
                ),
            )
        )
        return headers


class RateLimitExceeded(ClientError):
    """A hit was denied: a 429 problem carrying the decision's headers."""

    status = 429
    slug = "rate-limited"
    title = "Too many requests"
    default_detail = "The rate limit was exceeded; retry later."

    def __init__(self, decision: Decision, message: str = "") -> None:
        retry = math.ceil(decision.retry_after) if decision.retry_after is not None else None
        super().__init__(
            message or f"rate limit {decision.policy!r} exceeded",
            extensions={"policy": decision.policy, "limit": decision.limit, "retry_after": retry},
            headers=decision.headers,
        )
        self.decision = decision
