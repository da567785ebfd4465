"""API keys: prefixed keys with an offline checksum, hashed storage, rotation, scopes.

>>> from apisec.apikeys import ApiKeyService, is_well_formed, require_scopes
>>> keys = ApiKeyService()
>>> new = keys.create("acct_42", scopes=["orders:read"], prefix="sk_test")
>>> new.plaintext.startswith("sk_test_") and is_well_formed(new.plaintext)
True
>>> record = keys.authenticate(new.plaintext)
>>> require_scopes(record, "orders:read").owner
'acct_42'

Redis stores live in :mod:`apisec.apikeys.redis`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from apisec._lazy import lazy_attributes
from apisec.apikeys._format import is_well_formed, key_pattern
from apisec.apikeys._hashing import Peppers, hash_api_key
from apisec.apikeys._records import (
    ApiKeyNotFound,
    ApiKeyRecord,
    InsufficientScope,
    InvalidApiKey,
    NewApiKey,
)
from apisec.apikeys._service import ApiKeyService, AsyncApiKeyService, require_scopes
from apisec.apikeys._stores import (
    ApiKeyStore,
    AsyncApiKeyStore,
    AsyncSQLiteApiKeyStore,
    MemoryApiKeyStore,
    SQLiteApiKeyStore,
)


def generate_api_key(
    prefix: str = "sk_live", owner: str = "unassigned", **options: object
) -> NewApiKey:
    """A new key and its storable record, without a service or store.

    >>> new = generate_api_key("rk_live")
    >>> new.record.prefix, new.record.key_hash.startswith("sha256$")
    ('rk_live', True)
    """
    return ApiKeyService(default_prefix=prefix).create(owner, **options)  # type: ignore[arg-type]


if TYPE_CHECKING:
    from apisec.apikeys.redis import AsyncRedisApiKeyStore, RedisApiKeyStore

__all__ = [
    "ApiKeyNotFound",
    "ApiKeyRecord",
    "ApiKeyService",
    "ApiKeyStore",
    "AsyncApiKeyService",
    "AsyncApiKeyStore",
    "AsyncRedisApiKeyStore",
    "AsyncSQLiteApiKeyStore",
    "InsufficientScope",
    "InvalidApiKey",
    "MemoryApiKeyStore",
    "NewApiKey",
    "Peppers",
    "RedisApiKeyStore",
    "SQLiteApiKeyStore",
    "generate_api_key",
    "hash_api_key",
    "is_well_formed",
    "key_pattern",
    "require_scopes",
]


# The Redis stores import redis-py, so they load on first use only.
__getattr__ = lazy_attributes(
    __name__, "apisec.apikeys.redis", ["AsyncRedisApiKeyStore", "RedisApiKeyStore"]
)
