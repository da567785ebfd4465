"""Redis-backed replay guards (extra ``apisec[redis]``), sync and asyncio.

Usage: ``WebhookVerifier(secret, replay_guard=RedisReplayGuard(redis.Redis(...)))``.
Keys are set with ``SET NX PX``, so every process sharing the Redis sees one
answer per delivery.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from apisec._redis import redis_errors

if TYPE_CHECKING:
    import redis
    import redis.asyncio

__all__ = ["AsyncRedisReplayGuard", "RedisReplayGuard"]


def _ttl_ms(ttl: float) -> int:
    return max(1, math.ceil(ttl * 1000))


class RedisReplayGuard:
    """Replay guard shared by every process that uses the same Redis (``SET NX PX``)."""

    def __init__(self, client: redis.Redis, *, prefix: str = "apisec:webhook:seen:") -> None:
        self._client = client
        self._prefix = prefix

    def first_seen(self, key: str, ttl: float) -> bool:
        with redis_errors("webhook replay check"):
            return bool(self._client.set(self._prefix + key, b"1", nx=True, px=_ttl_ms(ttl)))


class AsyncRedisReplayGuard:
    """The ``redis.asyncio`` twin of :class:`RedisReplayGuard`."""

    def __init__(
        self, client: redis.asyncio.Redis, *, prefix: str = "apisec:webhook:seen:"
    ) -> None:
        self._client = client
        self._prefix = prefix

    async def first_seen(self, key: str, ttl: float) -> bool:
        with redis_errors("webhook replay check"):
            return bool(await self._client.set(self._prefix + key, b"1", nx=True, px=_ttl_ms(ttl)))
