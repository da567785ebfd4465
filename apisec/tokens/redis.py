"""Redis refresh-token stores (extra ``apisec[redis]``), sync and asyncio.

Layout, with the family id as a hash tag so one family lives on one Redis
Cluster slot and the consume script stays atomic there::

    {prefix}{<family>}:t:<sha256>   hash  state (a|c), exp, cat  — TTL = remaining lifetime
    {prefix}{<family>}:f            hash  sub, claims, revoked  — TTL = longest token's
    {prefix}s:<sha256(subject)>     set   family ids            — TTL = longest family's

Times are stored in integer milliseconds from the token service's clock.
Every failure surfaces as ``StoreError``; nothing fails open.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import TYPE_CHECKING, Any

from apisec._clock import wall_clock
from apisec._redis import redis_errors
from apisec.tokens._stores import ConsumeResult, ConsumeStatus, RefreshRecord

if TYPE_CHECKING:
    import redis
    import redis.asyncio

__all__ = ["AsyncRedisRefreshTokenStore", "RedisRefreshTokenStore"]

DEFAULT_PREFIX = "apisec:rt:"

# KEYS: token, family. ARGV: exp_ms (service clock), subject, claims_json, ttl_ms.
# Expiry is relative (PEXPIRE), so Redis and the service need not share a clock.
_ADD = """
local ttl = tonumber(ARGV[4])
redis.call('HSET', KEYS[1], 'state', 'a', 'exp', ARGV[1])
redis.call('PEXPIRE', KEYS[1], ttl)
if redis.call('EXISTS', KEYS[2]) == 0 then
  redis.call('HSET', KEYS[2], 'sub', ARGV[2], 'claims', ARGV[3], 'revoked', '0')
end
if redis.call('PTTL', KEYS[2]) < ttl then
  redis.call('PEXPIRE', KEYS[2], ttl)
end
return 1
"""

# KEYS: subject set. ARGV: family id, ttl_ms.
_INDEX = """
redis.call('SADD', KEYS[1], ARGV[1])
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 1
"""

# KEYS: token, family. ARGV: now_ms. The one-time use, atomically.
_CONSUME = """
local t = redis.call('HMGET', KEYS[1], 'state', 'exp', 'cat')
if not t[1] then return {'unknown'} end
local f = redis.call('HMGET', KEYS[2], 'sub', 'claims', 'revoked')
if not f[1] or f[3] == '1' then return {'revoked', f[1] or ''} end
if tonumber(t[2]) <= tonumber(ARGV[1]) then return {'expired', f[1]} end
if t[1] == 'c' then return {'reused', f[1], f[2], t[3]} end
redis.call('HSET', KEYS[1], 'state', 'c', 'cat', ARGV[1])
return {'ok', f[1], f[2]}
"""

# KEYS: family. Revokes only an existing family (never creates one).
_REVOKE = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('HSET', KEYS[1], 'revoked', '1')
end
return 1
"""


def _ms(seconds: float) -> int:
    return math.ceil(seconds * 1000)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class _Keys:
    """Key names and script arguments shared by the sync and async stores."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def token(self, family_id: str, token_hash: str) -> str:
        return f"{self.prefix}{{{family_id}}}:t:{token_hash}"

    def family(self, family_id: str) -> str:
        return f"{self.prefix}{{{family_id}}}:f"

    def subject(self, subject: str) -> str:
        return f"{self.prefix}s:{hashlib.sha256(subject.encode()).hexdigest()}"

    @staticmethod
    def ttl_ms(record: RefreshRecord, now: float) -> int:
        return max(1, _ms(record.expires_at - now))

    def add_args(self, record: RefreshRecord, now: float) -> list[Any]:
        claims = json.dumps(dict(record.claims), separators=(",", ":"))
        return [_ms(record.expires_at), record.subject, claims, self.ttl_ms(record, now)]

    @staticmethod
    def consume_result(reply: list[Any]) -> ConsumeResult:
        status = ConsumeStatus(_text(reply[0]))
        subject = _text(reply[1]) if len(reply) > 1 and reply[1] else None
        claims = json.loads(_text(reply[2])) if len(reply) > 2 and reply[2] else {}
        consumed_at = int(_text(reply[3])) / 1000 if len(reply) > 3 and reply[3] else None
        return ConsumeResult(status=status, subject=subject, claims=claims, consumed_at=consumed_at)

    @staticmethod
    def record(
        family_id: str, token_hash: str, token: list[Any], family: list[Any]
    ) -> RefreshRecord | None:
        if not token[0] or not family[0]:
            return None
        return RefreshRecord(
            token_hash=token_hash,
            family_id=family_id,
            subject=_text(family[0]),
            expires_at=int(_text(token[0])) / 1000,
            claims=json.loads(_text(family[1])) if family[1] else {},
        )


class RedisRefreshTokenStore:
    """Refresh tokens in Redis (or Redis Cluster), shared by every process.

    Args:
        client: a ``redis.Redis`` or ``redis.cluster.RedisCluster`` client.
        prefix: key prefix.
        clock: the clock whose "now" is used for key expiry bookkeeping;
            pass the token service's.
    """

    def __init__(
        self, client: redis.Redis, *, prefix: str = DEFAULT_PREFIX, clock: Any = None
    ) -> None:
        self._client = client
        self._keys = _Keys(prefix)
        self._clock = clock or wall_clock
        self._add = client.register_script(_ADD)
        self._consume = client.register_script(_CONSUME)
        self._revoke = client.register_script(_REVOKE)
        self._index = client.register_script(_INDEX)

    def add(self, record: RefreshRecord) -> None:
        keys = self._keys
        now = self._clock()
        subject_key = keys.subject(record.subject)
        with redis_errors("refresh token add"):
            self._add(
                keys=[
                    keys.token(record.family_id, record.token_hash),
                    keys.family(record.family_id),
                ],
                args=keys.add_args(record, now),
            )
            self._index(keys=[subject_key], args=[record.family_id, keys.ttl_ms(record, now)])

    def get(self, family_id: str, token_hash: str) -> RefreshRecord | None:
        keys = self._keys
        with redis_errors("refresh token get"):
            token = self._client.hmget(keys.token(family_id, token_hash), ["exp"])
            family = self._client.hmget(keys.family(family_id), ["sub", "claims"])
        return keys.record(family_id, token_hash, token, family)

    def consume(self, family_id: str, token_hash: str, now: float) -> ConsumeResult:
        keys = self._keys
        with redis_errors("refresh token consume"):
            reply = self._consume(
                keys=[keys.token(family_id, token_hash), keys.family(family_id)], args=[_ms(now)]
            )
        return keys.consume_result(reply)

    def revoke_family(self, family_id: str) -> None:
        with redis_errors("refresh family revoke"):
            self._revoke(keys=[self._keys.family(family_id)])

    def revoke_subject(self, subject: str) -> None:
        with redis_errors("refresh subject revoke"):
            families = self._client.smembers(self._keys.subject(subject))
            for family_id in families:
                self._revoke(keys=[self._keys.family(_text(family_id))])


class AsyncRedisRefreshTokenStore:
    """The ``redis.asyncio`` twin of :class:`RedisRefreshTokenStore`."""

    def __init__(
        self, client: redis.asyncio.Redis, *, prefix: str = DEFAULT_PREFIX, clock: Any = None
    ) -> None:
        self._client = client
        self._keys = _Keys(prefix)
        self._clock = clock or wall_clock
        self._add = client.register_script(_ADD)
        self._consume = client.register_script(_CONSUME)
        self._revoke = client.register_script(_REVOKE)
        self._index = client.register_script(_INDEX)

    async def add(self, record: RefreshRecord) -> None:
        keys = self._keys
        now = self._clock()
        subject_key = keys.subject(record.subject)
        with redis_errors("refresh token add"):
            await self._add(
                keys=[
                    keys.token(record.family_id, record.token_hash),
                    keys.family(record.family_id),
                ],
                args=keys.add_args(record, now),
            )
            await self._index(keys=[subject_key], args=[record.family_id, keys.ttl_ms(record, now)])

    async def get(self, family_id: str, token_hash: str) -> RefreshRecord | None:
        keys = self._keys
        with redis_errors("refresh token get"):
            token = await self._client.hmget(keys.token(family_id, token_hash), ["exp"])
            family = await self._client.hmget(keys.family(family_id), ["sub", "claims"])
        return keys.record(family_id, token_hash, token, family)

    async def consume(self, family_id: str, token_hash: str, now: float) -> ConsumeResult:
        keys = self._keys
        with redis_errors("refresh token consume"):
            reply = await self._consume(
                keys=[keys.token(family_id, token_hash), keys.family(family_id)], args=[_ms(now)]
            )
        return keys.consume_result(reply)

    async def revoke_family(self, family_id: str) -> None:
        with redis_errors("refresh family revoke"):
            await self._revoke(keys=[self._keys.family(family_id)])

    async def revoke_subject(self, subject: str) -> None:
        with redis_errors("refresh subject revoke"):
            families = await self._client.smembers(self._keys.subject(subject))
            for family_id in families:
                await self._revoke(keys=[self._keys.family(_text(family_id))])
