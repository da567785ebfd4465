"""JWT access tokens, rotating refresh tokens with reuse detection, key rings.

>>> from apisec.testing import FakeClock
>>> service = TokenService(SigningKey.generate("ES256"), issuer="https://auth.example.com",
...                        audience="https://api.example.com", clock=FakeClock())
>>> pair = service.issue("user_42", scope="read")
>>> service.verify(pair.access_token)["sub"]
'user_42'
>>> new_pair = service.refresh(pair.refresh_token)   # rotation: the old one is now spent
>>> service.refresh(pair.refresh_token)              # replayed: the family is revoked
Traceback (most recent call last):
...
apisec.tokens._errors.TokenReuseDetected: refresh token reused; its family is revoked

Redis stores live in :mod:`apisec.tokens.redis`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from apisec._lazy import lazy_attributes
from apisec.tokens._cookies import DuplicateCookie, RefreshCookie
from apisec.tokens._errors import ExpiredToken, InvalidToken, RevokedToken, TokenReuseDetected
from apisec.tokens._keys import KeyRing, SigningKey, jwk_thumbprint
from apisec.tokens._service import (
    AccessToken,
    AsyncTokenService,
    Claims,
    TokenPair,
    TokenService,
)
from apisec.tokens._stores import (
    AsyncRefreshTokenStore,
    ConsumeResult,
    ConsumeStatus,
    MemoryRefreshTokenStore,
    RefreshRecord,
    RefreshTokenStore,
)

if TYPE_CHECKING:
    from apisec.tokens.redis import AsyncRedisRefreshTokenStore, RedisRefreshTokenStore

__all__ = [
    "AccessToken",
    "AsyncRedisRefreshTokenStore",
    "AsyncRefreshTokenStore",
    "AsyncTokenService",
    "Claims",
    "ConsumeResult",
    "ConsumeStatus",
    "DuplicateCookie",
    "ExpiredToken",
    "InvalidToken",
    "KeyRing",
    "MemoryRefreshTokenStore",
    "RedisRefreshTokenStore",
    "RefreshCookie",
    "RefreshRecord",
    "RefreshTokenStore",
    "RevokedToken",
    "SigningKey",
    "TokenPair",
    "TokenReuseDetected",
    "TokenService",
    "jwk_thumbprint",
]


# The Redis stores import redis-py, so they load on first use only.
__getattr__ = lazy_attributes(
    __name__, "apisec.tokens.redis", ["AsyncRedisRefreshTokenStore", "RedisRefreshTokenStore"]
)
