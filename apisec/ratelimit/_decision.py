"""Decision: what a limiter answered, and the response headers that say so."""

from __future__ import annotations

import math
import time
from datetime import datetime, timezone
from typing import Literal, NamedTuple

from apisec.errors import ClientError, ConfigurationError

__all__ = ["Decision", "RateLimitExceeded"]

#: How ``X-RateLimit-Reset`` says when the quota is whole again: seconds from
#: now (``"delta"``, the default), Unix epoch seconds (``"epoch"``, as GitHub
#: sends it) or an ISO 8601 UTC instant (``"iso8601"``, ``2025-01-15T10:31:00Z``).
ResetFormat = Literal["delta", "epoch", "iso8601"]
RESET_FORMATS: tuple[ResetFormat, ...] = ("delta", "epoch", "iso8601")


def check_reset_format(value: object) -> ResetFormat:
    for known in RESET_FORMATS:
        if value == known and isinstance(value, str):
            return known
    raise ConfigurationError(f"reset_format must be one of {', '.join(RESET_FORMATS)}")


#: ``RateLimit-Policy`` values by policies: a limiter's never change (cleared when full).
_POLICY_HEADERS: dict[tuple[tuple[str, int, float], ...], str] = {}
_POLICY_CACHE = 256


def _policy_header(policies: tuple[tuple[str, int, float], ...]) -> str:
    value = ", ".join(
        f'"{name}";q={quota};w={math.ceil(window)}' for name, quota, window in policies
    )
    if len(_POLICY_HEADERS) >= _POLICY_CACHE:
        _POLICY_HEADERS.clear()
    _POLICY_HEADERS[policies] = value
    return value


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
        reset_format: how ``X-RateLimit-Reset`` is written (see :data:`ResetFormat`).
        decided_at: epoch seconds when the decision was made (the limiter's
            clock), the base of the absolute reset formats; None when unknown.
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
    reset_format: ResetFormat = "delta"
    decided_at: float | None = None

    @property
    def headers(self) -> list[tuple[str, str]]:
        """``X-RateLimit-*``, ``Retry-After`` (when denied) and the IETF ``RateLimit`` fields.

        ``X-RateLimit-Reset`` follows :attr:`reset_format`; ``Retry-After``
        (RFC 9110) and the ``RateLimit`` field's ``t`` are delta seconds always.
        """
        remaining = max(self.remaining, 0)
        reset = math.ceil(self.reset_after)
        headers = [
            ("X-RateLimit-Limit", str(self.limit)),
            ("X-RateLimit-Remaining", str(remaining)),
            (
                "X-RateLimit-Reset",
                str(reset) if self.reset_format == "delta" else self._absolute_reset(),
            ),
        ]
        if not self.allowed and self.retry_after is not None:
            headers.append(("Retry-After", str(math.ceil(self.retry_after))))
        headers.append(("RateLimit", f'"{self.policy}";r={remaining};t={reset}'))
        policies = self.policies or ((self.policy, self.limit, self.window),)
        policy = _POLICY_HEADERS.get(policies)
        if policy is None:
            policy = _policy_header(policies)
        headers.append(("RateLimit-Policy", policy))
        return headers

    def _absolute_reset(self) -> str:
        """The reset instant in the absolute format, rounded up to the second.

        A decision built without ``decided_at`` falls back to the wall clock.
        """
        base = time.time() if self.decided_at is None else self.decided_at
        instant = math.ceil(base + max(self.reset_after, 0.0))
        if self.reset_format == "iso8601":
            return datetime.fromtimestamp(instant, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        return str(instant)


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
