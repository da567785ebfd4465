"""Redis refresh-token stores (extra ``apisec[redis]``), sync and asyncio.

One hash per family, with the family id as a hash tag so a family lives on
one Redis Cluster slot::

    {prefix}{<family>}:f         hash  sub, claims, revoked, and the newest token:
                                       cur (sha256), exp, cat (used at); and the one
                                       it replaced: prev, pcat — TTL = the newest
                                       token's remaining lifetime
    {prefix}s:<sha256(subject)>  set   family ids — TTL = the longest family's

A family keeps only its newest token (see ``apisec.tokens._stores``): a
session is one hash however often it refreshes. A rotation is two round
trips: the consume script, then the add script pipelined with the subject
index (three on Redis Cluster, where the family and the index sit on two
slots and pipelines refuse scripts). Times are integer milliseconds from the token service's clock.
Every failure surfaces as ``StoreError``; nothing fails open.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import TYPE_CHECKING, Any

from redis.exceptions import NoScriptError

from apisec._clock import wall_clock
from apisec._redis import is_cluster, redis_errors
from apisec.tokens._stores import ConsumeResult, ConsumeStatus, RefreshRecord

if TYPE_CHECKING:
    import redis
    import redis.asyncio

__all__ = ["AsyncRedisRefreshTokenStore", "RedisRefreshTokenStore"]

DEFAULT_PREFIX = "apisec:rt:"

#: A script call to queue on a pipeline: the script, its keys, its arguments.
_Call = tuple[Any, list[str], list[Any]]

# KEYS: family. ARGV: token hash, exp_ms (service clock), subject, claims_json, ttl_ms,
# rotated ('1' or '0'). A new family, or its newest token: after a use, the spent token
# steps back to prev; an unspent one (a retry within the grace) is replaced. A rotation
# never re-creates a family gone meanwhile (expired or evicted, maybe revoked first).
# The family lives as long as its newest token (relative PEXPIRE: Redis and the
# service need not share a clock).
_ADD = """
if redis.call('EXISTS', KEYS[1]) == 0 then
  if ARGV[6] == '1' then return 0 end
  redis.call('HSET', KEYS[1], 'sub', ARGV[3], 'claims', ARGV[4], 'revoked', '0')
else
  local used = redis.call('HMGET', KEYS[1], 'cur', 'cat')
  if used[2] then
    redis.call('HSET', KEYS[1], 'prev', used[1], 'pcat', used[2])
  end
  redis.call('HDEL', KEYS[1], 'cat')
end
redis.call('HSET', KEYS[1], 'cur', ARGV[1], 'exp', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
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

# KEYS: family. ARGV: token hash, now_ms. The one-time use, atomically; any token of
# the family but its unspent newest one is a reused one.
_CONSUME = """
local f = redis.call('HMGET', KEYS[1], 'sub', 'claims', 'revoked', 'exp', 'cur', 'cat', 'prev',
                     'pcat')
if not f[1] then return {'unknown'} end
if f[3] == '1' then return {'revoked', f[1]} end
if tonumber(f[4]) <= tonumber(ARGV[2]) then return {'expired', f[1]} end
if f[5] == ARGV[1] then
  if f[6] then return {'reused', f[1], f[2], f[6]} end
  redis.call('HSET', KEYS[1], 'cat', ARGV[2])
  return {'ok', f[1], f[2]}
end
if f[7] == ARGV[1] then return {'reused', f[1], f[2], f[8]} end
return {'reused', f[1], f[2]}
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

    def family(self, family_id: str) -> str:
        return f"{self.prefix}{{{family_id}}}:f"

    def subject(self, subject: str) -> str:
        return f"{self.prefix}s:{hashlib.sha256(subject.encode()).hexdigest()}"

    @staticmethod
    def ttl_ms(record: RefreshRecord, now: float) -> int:
        return max(1, _ms(record.expires_at - now))

    def add_args(self, record: RefreshRecord, now: float) -> list[Any]:
        claims = json.dumps(dict(record.claims), separators=(",", ":"))
        return [
            record.token_hash,
            _ms(record.expires_at),
            record.subject,
            claims,
            self.ttl_ms(record, now),
            "1" if record.rotated else "0",
        ]

    def add_calls(self, record: RefreshRecord, now: float, add: Any, index: Any) -> list[_Call]:
        """The add script on the family and the index script on the subject's set."""
        ttl = self.ttl_ms(record, now)
        return [
            (add, [self.family(record.family_id)], self.add_args(record, now)),
            (index, [self.subject(record.subject)], [record.family_id, ttl]),
        ]

    @staticmethod
    def consume_result(reply: list[Any]) -> ConsumeResult:
        status = ConsumeStatus(_text(reply[0]))
        subject = _text(reply[1]) if len(reply) > 1 and reply[1] else None
        claims = json.loads(_text(reply[2])) if len(reply) > 2 and reply[2] else {}
        consumed_at = int(_text(reply[3])) / 1000 if len(reply) > 3 and reply[3] else None
        return ConsumeResult(status=status, subject=subject, claims=claims, consumed_at=consumed_at)

    @staticmethod
    def record(family_id: str, token_hash: str, family: list[Any]) -> RefreshRecord | None:
        if not family[0] or not family[2]:
            return None
        return RefreshRecord(
            token_hash=token_hash,
            family_id=family_id,
            subject=_text(family[0]),
            expires_at=int(_text(family[2])) / 1000,
            claims=json.loads(_text(family[1])) if family[1] else {},
        )


class _StoreCore:
    """The client, key names and scripts both twins hold."""

    def __init__(self, client: Any, prefix: str, clock: Any) -> None:
        self._client = client
        self._keys = _Keys(prefix)
        self._clock = clock or wall_clock
        self._cluster = is_cluster(client)
        self._add = client.register_script(_ADD)
        self._consume = client.register_script(_CONSUME)
        self._revoke = client.register_script(_REVOKE)
        self._index = client.register_script(_INDEX)


class RedisRefreshTokenStore(_StoreCore):
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
        super().__init__(client, prefix, clock)

    def add(self, record: RefreshRecord) -> None:
        calls = self._keys.add_calls(record, self._clock(), self._add, self._index)
        with redis_errors("refresh token add"):
            self._run(calls)

    def _run(self, calls: list[_Call]) -> None:
        """Run script calls in one round trip (each on its own on a cluster).

        EVALSHA is queued by hand: a Script object on a pipeline would add a
        round trip (SCRIPT EXISTS) to every execute. After NOSCRIPT (a
        restarted or flushed server) the scripts are loaded and the calls run
        once more: every script here may run twice.
        """
        if self._cluster:  # keys on several slots, and pipelines refuse EVALSHA
            for script, keys, args in calls:
                script(keys=keys, args=args)
            return
        for attempt in (1, 2):
            pipe = self._client.pipeline(transaction=False)
            for script, keys, args in calls:
                pipe.evalsha(script.sha, len(keys), *keys, *args)
            try:
                pipe.execute()
            except NoScriptError:
                if attempt == 2:
                    raise
                for script in {call[0] for call in calls}:
                    script.sha = self._client.script_load(script.script)
            else:
                return

    def get(self, family_id: str, token_hash: str) -> RefreshRecord | None:
        keys = self._keys
        with redis_errors("refresh token get"):
            family = self._client.hmget(keys.family(family_id), ["sub", "claims", "exp"])
        return keys.record(family_id, token_hash, family)

    def consume(self, family_id: str, token_hash: str, now: float) -> ConsumeResult:
        keys = self._keys
        with redis_errors("refresh token consume"):
            reply = self._consume(keys=[keys.family(family_id)], args=[token_hash, _ms(now)])
        return keys.consume_result(reply)

    def revoke_family(self, family_id: str) -> None:
        with redis_errors("refresh family revoke"):
            self._revoke(keys=[self._keys.family(family_id)])

    def revoke_subject(self, subject: str) -> None:
        with redis_errors("refresh subject revoke"):
            families = self._client.smembers(self._keys.subject(subject))
            self._run([(self._revoke, [self._keys.family(_text(f))], []) for f in families])


class AsyncRedisRefreshTokenStore(_StoreCore):
    """The ``redis.asyncio`` twin of :class:`RedisRefreshTokenStore`."""

    def __init__(
        self, client: redis.asyncio.Redis, *, prefix: str = DEFAULT_PREFIX, clock: Any = None
    ) -> None:
        super().__init__(client, prefix, clock)

    async def add(self, record: RefreshRecord) -> None:
        calls = self._keys.add_calls(record, self._clock(), self._add, self._index)
        with redis_errors("refresh token add"):
            await self._run(calls)

    async def _run(self, calls: list[_Call]) -> None:
        """Same as :meth:`RedisRefreshTokenStore._run`, awaited."""
        if self._cluster:
            for script, keys, args in calls:
                await script(keys=keys, args=args)
            return
        for attempt in (1, 2):
            pipe = self._client.pipeline(transaction=False)
            for script, keys, args in calls:
                pipe.evalsha(script.sha, len(keys), *keys, *args)
            try:
                await pipe.execute()
            except NoScriptError:
                if attempt == 2:
                    raise
                for script in {call[0] for call in calls}:
                    script.sha = await self._client.script_load(script.script)
            else:
                return

    async def get(self, family_id: str, token_hash: str) -> RefreshRecord | None:
        keys = self._keys
        with redis_errors("refresh token get"):
            family = await self._client.hmget(keys.family(family_id), ["sub", "claims", "exp"])
        return keys.record(family_id, token_hash, family)

    async def consume(self, family_id: str, token_hash: str, now: float) -> ConsumeResult:
        keys = self._keys
        with redis_errors("refresh token consume"):
            reply = await self._consume(keys=[keys.family(family_id)], args=[token_hash, _ms(now)])
        return keys.consume_result(reply)

    async def revoke_family(self, family_id: str) -> None:
        with redis_errors("refresh family revoke"):
            await self._revoke(keys=[self._keys.family(family_id)])

    async def revoke_subject(self, subject: str) -> None:
        with redis_errors("refresh subject revoke"):
            families = await self._client.smembers(self._keys.subject(subject))
            await self._run([(self._revoke, [self._keys.family(_text(f))], []) for f in families])
