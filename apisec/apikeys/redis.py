"""Redis API key stores (extra ``apisec[redis]``), sync and asyncio.

Layout: ``{prefix}k:<id>`` is a hash of the record's fields, ``{prefix}h:<key
hash>`` maps a key hash to its id, ``{prefix}o:<sha256(owner)>`` is the set of
an owner's ids. Only key hashes are stored; records never expire on their
own (revoked and expired keys stay listable). Failures become ``StoreError``.

``find`` (every authentication) is one round trip: a script reads the id and
then the record. On Redis Cluster the two keys sit on different slots, which
a script may not span, so a cluster client makes the two reads separately.
An ``update`` that keeps the key hash (a touch, a revocation) is one script
on the record's key.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from apisec._redis import is_cluster, redis_errors
from apisec.apikeys._records import ApiKeyRecord
from apisec.apikeys._stores import check_changes
from apisec.errors import StoreError

if TYPE_CHECKING:
    import redis
    import redis.asyncio

__all__ = ["AsyncRedisApiKeyStore", "RedisApiKeyStore"]

DEFAULT_PREFIX = "apisec:ak:"


def _encode(row: Mapping[str, Any]) -> Any:  # redis-py types want an invariant key type
    return {name: "" if value is None else value for name, value in row.items()}


def _decode(raw: Mapping[Any, Any]) -> ApiKeyRecord | None:
    if not raw:
        return None
    row = {(k.decode() if isinstance(k, bytes) else k): v for k, v in raw.items()}
    return ApiKeyRecord.from_row(row)


def _decode_flat(raw: list[Any] | None) -> ApiKeyRecord | None:
    """A record from the find script's reply: HGETALL's flat name, value list."""
    if not raw:
        return None
    return _decode(dict(zip(raw[::2], raw[1::2], strict=True)))


# KEYS: the key hash's index. ARGV: the record keys' prefix. The id, then its record,
# in one round trip. The record's key is computed here, not passed: a single server
# allows it; Redis Cluster does not (see _one_trip).
_FIND = """
local id = redis.call('GET', KEYS[1])
if not id then return false end
return redis.call('HGETALL', ARGV[1] .. id)
"""


# KEYS: a record. ARGV: field, value pairs. Changes an existing record's fields and
# returns the whole record, in one round trip (a touch of last_used_at, a revocation).
_UPDATE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
redis.call('HSET', KEYS[1], unpack(ARGV))
return redis.call('HGETALL', KEYS[1])
"""


def _fields(changes: Mapping[str, Any]) -> list[Any]:
    return [item for pair in _encode(changes).items() for item in pair]


class _Names:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def record(self, key_id: str) -> str:
        return f"{self.prefix}k:{key_id}"

    def hash(self, key_hash: str) -> str:
        return f"{self.prefix}h:{key_hash}"

    def owner(self, owner: str) -> str:
        return f"{self.prefix}o:{hashlib.sha256(owner.encode()).hexdigest()}"


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisApiKeyStore:
    """API keys in Redis, shared by every process."""

    def __init__(self, client: redis.Redis, *, prefix: str = DEFAULT_PREFIX) -> None:
        self._client = client
        self._names = _Names(prefix)
        self._one_trip = not is_cluster(client)
        self._find = client.register_script(_FIND)
        self._update = client.register_script(_UPDATE)

    def add(self, record: ApiKeyRecord) -> None:
        names = self._names
        with redis_errors("api key add"):
            if not self._client.set(names.hash(record.key_hash), record.id, nx=True):
                raise StoreError("duplicate API key hash")
            self._client.hset(names.record(record.id), mapping=_encode(record.to_row()))
            self._client.sadd(names.owner(record.owner), record.id)

    def get(self, key_id: str) -> ApiKeyRecord | None:
        with redis_errors("api key get"):
            return _decode(self._client.hgetall(self._names.record(key_id)))

    def find(self, key_hash: str) -> ApiKeyRecord | None:
        with redis_errors("api key find"):
            if self._one_trip:
                reply = self._find(keys=[self._names.hash(key_hash)], args=[self._names.record("")])
                return _decode_flat(reply)
            key_id = self._client.get(self._names.hash(key_hash))
            if key_id is None:
                return None
            return _decode(self._client.hgetall(self._names.record(_text(key_id))))

    def update(self, key_id: str, changes: Mapping[str, Any]) -> ApiKeyRecord | None:
        check_changes(changes)
        names = self._names
        with redis_errors("api key update"):
            record_key = names.record(key_id)
            if changes and "key_hash" not in changes:
                return _decode_flat(self._update(keys=[record_key], args=_fields(changes)))
            old_hash = self._client.hget(record_key, "key_hash")
            if old_hash is None:
                return None
            new_hash = changes.get("key_hash")
            if new_hash is not None:
                self._client.set(names.hash(new_hash), key_id)
            if changes:
                self._client.hset(record_key, mapping=_encode(changes))
            if new_hash is not None and new_hash != _text(old_hash):
                self._client.delete(names.hash(_text(old_hash)))
            return _decode(self._client.hgetall(record_key))

    def list(self, owner: str) -> list[ApiKeyRecord]:
        with redis_errors("api key list"):
            ids = sorted(_text(i) for i in self._client.smembers(self._names.owner(owner)))
            records = [_decode(self._client.hgetall(self._names.record(i))) for i in ids]
        return sorted((r for r in records if r is not None), key=lambda r: (r.created_at, r.id))


class AsyncRedisApiKeyStore:
    """The ``redis.asyncio`` twin of :class:`RedisApiKeyStore`."""

    def __init__(self, client: redis.asyncio.Redis, *, prefix: str = DEFAULT_PREFIX) -> None:
        self._client = client
        self._names = _Names(prefix)
        self._one_trip = not is_cluster(client)
        self._find = client.register_script(_FIND)
        self._update = client.register_script(_UPDATE)

    async def add(self, record: ApiKeyRecord) -> None:
        names = self._names
        with redis_errors("api key add"):
            if not await self._client.set(names.hash(record.key_hash), record.id, nx=True):
                raise StoreError("duplicate API key hash")
            await self._client.hset(names.record(record.id), mapping=_encode(record.to_row()))
            await self._client.sadd(names.owner(record.owner), record.id)

    async def get(self, key_id: str) -> ApiKeyRecord | None:
        with redis_errors("api key get"):
            return _decode(await self._client.hgetall(self._names.record(key_id)))

    async def find(self, key_hash: str) -> ApiKeyRecord | None:
        with redis_errors("api key find"):
            if self._one_trip:
                names = self._names
                reply = await self._find(keys=[names.hash(key_hash)], args=[names.record("")])
                return _decode_flat(reply)
            key_id = await self._client.get(self._names.hash(key_hash))
            if key_id is None:
                return None
            return _decode(await self._client.hgetall(self._names.record(_text(key_id))))

    async def update(self, key_id: str, changes: Mapping[str, Any]) -> ApiKeyRecord | None:
        check_changes(changes)
        names = self._names
        with redis_errors("api key update"):
            record_key = names.record(key_id)
            if changes and "key_hash" not in changes:
                return _decode_flat(await self._update(keys=[record_key], args=_fields(changes)))
            old_hash = await self._client.hget(record_key, "key_hash")
            if old_hash is None:
                return None
            new_hash = changes.get("key_hash")
            if new_hash is not None:
                await self._client.set(names.hash(new_hash), key_id)
            if changes:
                await self._client.hset(record_key, mapping=_encode(changes))
            if new_hash is not None and new_hash != _text(old_hash):
                await self._client.delete(names.hash(_text(old_hash)))
            return _decode(await self._client.hgetall(record_key))

    async def list(self, owner: str) -> list[ApiKeyRecord]:
        with redis_errors("api key list"):
            ids = sorted(_text(i) for i in await self._client.smembers(self._names.owner(owner)))
            records = [_decode(await self._client.hgetall(self._names.record(i))) for i in ids]
        return sorted((r for r in records if r is not None), key=lambda r: (r.created_at, r.id))
