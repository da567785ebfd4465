"""TokenService and AsyncTokenService: one logic, two drivers.

Every operation that touches the store is written once as a flow
(:mod:`apisec._flows`) that yields typed store calls
(``Consume(family_id=..., token_hash=..., now=...)``) and receives their
results; :class:`TokenService` drives it with a sync store,
:class:`AsyncTokenService` with an async one. Verification needs no store
and is the same plain method on both.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import secrets
from collections.abc import Iterator, Mapping, Sequence
from datetime import timedelta
from typing import Any, TypeGuard, TypeVar

import attrs

from apisec import _b64
from apisec._async import InPlace, has_async_method
from apisec._clock import Clock, seconds, wall_clock
from apisec._flows import Flow, adrive, drive
from apisec.audit import AuditEvent, emit
from apisec.errors import ConfigurationError
from apisec.tokens import _jws
from apisec.tokens._errors import ExpiredToken, InvalidToken, RevokedToken, TokenReuseDetected
from apisec.tokens._keys import KeyRing, SigningKey, check_header
from apisec.tokens._stores import (
    Add,
    AsyncRefreshTokenStore,
    Consume,
    ConsumeResult,
    ConsumeStatus,
    Get,
    MemoryRefreshTokenStore,
    RefreshRecord,
    RefreshTokenStore,
    RevokeFamily,
    RevokeSubject,
)

__all__ = ["AccessToken", "AsyncTokenService", "Claims", "TokenPair", "TokenService"]

RESERVED_CLAIMS = frozenset({"iss", "sub", "aud", "exp", "nbf", "iat", "jti"})
ACCESS_TOKEN_TYPES = frozenset({"at+jwt", "application/at+jwt"})
DEFAULT_REFRESH_TTL = 14 * 24 * 3600
# rt2_<family secret>.<token secret>: 16 and 32 random bytes, base64url. The family id
# the store knows is derived from the family secret (_family_id), which every token of
# the family carries and nothing else does: naming a family proves holding one of its
# tokens, so a store can keep one token per family and call every other one a reuse.
_REFRESH_TOKEN = re.compile(r"rt2_([A-Za-z0-9_-]{22})\.([A-Za-z0-9_-]{43})")
# The format before families were derived: rt_<family id>.<secret>. Refused by name.
_RETIRED_REFRESH_TOKEN = re.compile(r"rt_[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}")
_MAX_SUBJECT = 256

T = TypeVar("T")
#: A flow over the refresh-token store (sync or async).
_StoreFlow = Flow[RefreshTokenStore, AsyncRefreshTokenStore, T]


@attrs.frozen
class TokenPair:
    """An access token and its refresh token; neither shows in ``repr``."""

    access_token: str = attrs.field(repr=False)
    refresh_token: str = attrs.field(repr=False)
    expires_in: int
    token_type: str = "Bearer"

    def to_dict(self) -> dict[str, Any]:
        """The OAuth 2.0 token response body (RFC 6749 section 5.1)."""
        return {
            "access_token": self.access_token,
            "token_type": self.token_type,
            "expires_in": self.expires_in,
            "refresh_token": self.refresh_token,
        }


@attrs.frozen
class AccessToken:
    """An access token issued alone, without a refresh token (hidden from ``repr``)."""

    access_token: str = attrs.field(repr=False)
    expires_in: int
    token_type: str = "Bearer"

    def to_dict(self) -> dict[str, Any]:
        """The OAuth 2.0 token response members (RFC 6749 section 5.1), no refresh token."""
        return {
            "access_token": self.access_token,
            "token_type": self.token_type,
            "expires_in": self.expires_in,
        }


class Claims(Mapping[str, Any]):
    """The verified claims of an access token, read-only.

    >>> claims = Claims({"sub": "user_1", "scope": "read write", "exp": 10})
    >>> claims["sub"], claims.subject, sorted(claims.scopes)
    ('user_1', 'user_1', ['read', 'write'])
    """

    __slots__ = ("_data",)

    def __init__(self, data: Mapping[str, Any]) -> None:
        self._data = dict(data)

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return f"Claims({self._data!r})"

    @property
    def subject(self) -> str:
        subject: str = self._data["sub"]
        return subject

    @property
    def expires_at(self) -> float:
        expires: float = self._data["exp"]
        return expires

    @property
    def scopes(self) -> frozenset[str]:
        """The space-separated ``scope`` claim (RFC 8693 / RFC 9068) as a set."""
        scope = self._data.get("scope")
        return frozenset(scope.split()) if isinstance(scope, str) else frozenset()


def _is_number(value: object) -> TypeGuard[float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def _family_id(family_secret: str) -> str:
    """The id a store files a family under: 128 bits of SHA-256 of its secret."""
    digest = hashlib.sha256(b"apisec refresh family\x00" + family_secret.encode("ascii"))
    return _b64.encode(digest.digest()[:16])


def _new_refresh_token(family_secret: str) -> str:
    return f"rt2_{family_secret}.{_b64.encode(secrets.token_bytes(32))}"


class _TokenCore:
    """Configuration, access tokens, verification and the store flows."""

    def __init__(
        self,
        keys: KeyRing | SigningKey,
        issuer: str,
        audience: str | Sequence[str],
        access_ttl: float | timedelta = 900,
        refresh_ttl: float | timedelta = DEFAULT_REFRESH_TTL,
        *,
        clock: Clock = wall_clock,
        leeway: float | timedelta = 0,
        max_token_bytes: int = _jws.DEFAULT_MAX_TOKEN_BYTES,
        required_claims: Sequence[str] = (),
        refresh_grace: float | timedelta = 0,
    ) -> None:
        if isinstance(keys, SigningKey):
            keys = KeyRing(keys)
        if not isinstance(keys, KeyRing):
            raise ConfigurationError("keys must be a KeyRing or a SigningKey")
        if not isinstance(issuer, str) or not issuer:
            raise ConfigurationError("issuer must be a non-empty string")
        audiences = (audience,) if isinstance(audience, str) else tuple(audience)
        if not audiences or not all(isinstance(a, str) and a for a in audiences):
            raise ConfigurationError("audience must be a non-empty string or list of strings")
        self.keys = keys
        self.issuer = issuer
        self.audience: str | list[str] = audience if isinstance(audience, str) else list(audiences)
        self._audiences = frozenset(audiences)
        self.access_ttl = seconds(access_ttl, name="access_ttl")
        self.refresh_ttl = seconds(refresh_ttl, name="refresh_ttl")
        if self.refresh_ttl < self.access_ttl:
            raise ConfigurationError("refresh_ttl must not be shorter than access_ttl")
        self.leeway = seconds(leeway, name="leeway", allow_zero=True)
        if self.leeway > 300:
            raise ConfigurationError("a leeway over 5 minutes hides real clock problems")
        self.refresh_grace = seconds(refresh_grace, name="refresh_grace", allow_zero=True)
        if self.refresh_grace > 60:
            raise ConfigurationError("refresh_grace is for immediate retries: at most 60 s")
        if isinstance(max_token_bytes, bool) or not isinstance(max_token_bytes, int):
            raise ConfigurationError("max_token_bytes must be an int")
        if not 512 <= max_token_bytes <= 64 * 1024:
            raise ConfigurationError("max_token_bytes must be within 512 and 65536")
        self.max_token_bytes = max_token_bytes
        self.required_claims = tuple(required_claims)
        self._clock = clock

    # --- access tokens -------------------------------------------------------------

    def _check_claims_in(self, subject: object, claims: Mapping[str, Any]) -> None:
        if not isinstance(subject, str) or not subject or len(subject) > _MAX_SUBJECT:
            raise ConfigurationError("subject must be a non-empty string of at most 256 characters")
        reserved = RESERVED_CLAIMS.intersection(claims)
        if reserved:
            raise ConfigurationError(f"claims {sorted(reserved)} are set by the token service")
        try:
            json.dumps(dict(claims), allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise ConfigurationError("claims must be plain JSON values") from exc

    def _access_token(self, subject: str, claims: Mapping[str, Any], now: float) -> str:
        key = self.keys.active
        header = {"alg": key.alg, "typ": "at+jwt", "kid": key.kid}
        issued = int(now)
        body = {
            **claims,
            "iss": self.issuer,
            "sub": subject,
            "aud": self.audience,
            "iat": issued,
            "exp": issued + math.ceil(self.access_ttl),
            "jti": _b64.encode(secrets.token_bytes(16)),
        }
        return _jws.serialize(header, _jws.dumps(body), key.sign)

    def issue_access_token(self, subject: str, **claims: Any) -> AccessToken:
        """An access token alone: no refresh token, nothing stored, no I/O.

        For grants that must not get a refresh token, such as client
        credentials (RFC 6749 section 4.4.3). Synchronous on both twins.
        """
        self._check_claims_in(subject, claims)
        token = self._access_token(subject, claims, self._clock())
        emit(AuditEvent.TOKEN_ISSUED, principal=subject, refresh=False)
        return AccessToken(access_token=token, expires_in=math.ceil(self.access_ttl))

    def verify(self, access_token: str) -> Claims:
        """Verify an access token; return its claims or raise ``InvalidToken``.

        Raises:
            ExpiredToken: ``exp`` is past (``exp == now`` included).
            InvalidToken: anything else — the message says what, for logs.
        """
        try:
            return self._verify(access_token)
        except InvalidToken as exc:
            emit(AuditEvent.AUTH_FAILURE, reason=exc.slug, cause=exc.message[:120])
            raise

    def _verify(self, token: str) -> Claims:
        compact = _jws.parse(token, self.max_token_bytes)
        header = compact.header
        typ = header.get("typ")
        if not isinstance(typ, str) or typ.lower() not in ACCESS_TOKEN_TYPES:
            raise InvalidToken("not an access token (typ must be at+jwt)")
        key = self.keys.get(header.get("kid"))
        if key is None:
            raise InvalidToken("token kid is missing or unknown")
        check_header(header, key)
        if not key.verify_signature(compact.signing_input, compact.signature):
            raise InvalidToken("signature does not verify")
        claims = _jws.parse_json_object(compact.payload, "claims")
        self._check_claims(claims)
        return Claims(claims)

    def _check_claims(self, claims: dict[str, Any]) -> None:  # noqa: PLR0912 - one rule each
        if claims.get("iss") != self.issuer:
            raise InvalidToken("wrong issuer")
        aud = claims.get("aud")
        if isinstance(aud, str):
            audiences = {aud}
        elif isinstance(aud, list) and aud and all(isinstance(a, str) for a in aud):
            audiences = set(aud)
        else:
            raise InvalidToken("missing or malformed audience")
        if self._audiences.isdisjoint(audiences):
            raise InvalidToken("wrong audience")
        sub = claims.get("sub")
        if not isinstance(sub, str) or not sub:
            raise InvalidToken("missing subject")
        if not isinstance(claims.get("jti"), str):
            raise InvalidToken("missing jti")
        now = self._clock()
        exp, iat, nbf = claims.get("exp"), claims.get("iat"), claims.get("nbf")
        if not _is_number(exp) or not _is_number(iat):
            raise InvalidToken("exp and iat must be numbers")
        if now >= exp + self.leeway:
            raise ExpiredToken("token expired")
        if iat > now + self.leeway:
            raise InvalidToken("token issued in the future")
        if nbf is not None and (not _is_number(nbf) or nbf > now + self.leeway):
            raise InvalidToken("token not yet valid")
        for name in self.required_claims:
            if name not in claims:
                raise InvalidToken(f"missing required claim {name}")

    # --- flows over the store ------------------------------------------------------

    def _pair(
        self,
        subject: str,
        claims: Mapping[str, Any],
        family_secret: str,
        now: float,
        *,
        rotated: bool = False,
    ) -> tuple[TokenPair, RefreshRecord]:
        refresh_token = _new_refresh_token(family_secret)
        record = RefreshRecord(
            token_hash=_hash(refresh_token),
            family_id=_family_id(family_secret),
            subject=subject,
            expires_at=now + self.refresh_ttl,
            claims=dict(claims),
            rotated=rotated,
        )
        pair = TokenPair(
            access_token=self._access_token(subject, claims, now),
            refresh_token=refresh_token,
            expires_in=math.ceil(self.access_ttl),
        )
        return pair, record

    def _issue_flow(self, subject: str, claims: Mapping[str, Any]) -> _StoreFlow[TokenPair]:
        self._check_claims_in(subject, claims)
        now = self._clock()
        pair, record = self._pair(subject, claims, _b64.encode(secrets.token_bytes(16)), now)
        yield Add(record)
        emit(AuditEvent.TOKEN_ISSUED, principal=subject)
        return pair

    @staticmethod
    def _parse_refresh(token: object) -> tuple[str, str, str]:
        """``(family secret, family id, token hash)`` of a well-formed refresh token."""
        if not isinstance(token, str):
            raise InvalidToken("refresh token is not a string")
        match = _REFRESH_TOKEN.fullmatch(token)
        if match is None:
            if _RETIRED_REFRESH_TOKEN.fullmatch(token):
                raise InvalidToken(
                    "refresh token in the retired rt_ format (apisec before 0.1.0): sign in again"
                )
            raise InvalidToken("malformed refresh token")
        family_secret = match.group(1)
        return family_secret, _family_id(family_secret), _hash(token)

    def _refresh_flow(self, refresh_token: str) -> _StoreFlow[TokenPair]:
        try:
            family_secret, family_id, token_hash = self._parse_refresh(refresh_token)
            now = self._clock()
            result: ConsumeResult = yield Consume(
                family_id=family_id, token_hash=token_hash, now=now
            )
            status = result.status
            if status is ConsumeStatus.REUSED:
                within_grace = (
                    self.refresh_grace > 0
                    and result.consumed_at is not None
                    and now - result.consumed_at <= self.refresh_grace
                )
                if not within_grace:
                    yield RevokeFamily(family_id)
                    emit(
                        AuditEvent.TOKEN_REUSE_DETECTED,
                        principal=result.subject,
                        reason="refresh_reuse",
                        action="family_revoked",
                    )
                    raise TokenReuseDetected("refresh token reused; its family is revoked")
            elif status is ConsumeStatus.UNKNOWN:
                raise InvalidToken("unknown refresh token")
            elif status is ConsumeStatus.EXPIRED:
                raise ExpiredToken("refresh token expired")
            elif status is ConsumeStatus.REVOKED:
                raise RevokedToken("refresh token revoked")
        except InvalidToken as exc:
            emit(AuditEvent.AUTH_FAILURE, reason=exc.slug, token_type="refresh")
            raise
        if result.subject is None:
            raise InvalidToken("the store returned no subject for a consumed token")
        pair, record = self._pair(result.subject, result.claims, family_secret, now, rotated=True)
        yield Add(record)
        emit(AuditEvent.TOKEN_REFRESHED, principal=result.subject)
        return pair

    def _revoke_flow(self, refresh_token: str) -> _StoreFlow[None]:
        _, family_id, token_hash = self._parse_refresh(refresh_token)
        record: RefreshRecord | None = yield Get(family_id=family_id, token_hash=token_hash)
        if record is None:
            return None  # unknown or expired: nothing to revoke (RFC 7009 section 2.2)
        yield RevokeFamily(family_id)
        emit(AuditEvent.TOKEN_REVOKED, principal=record.subject, scope="family")
        return None

    def _revoke_subject_flow(self, subject: str) -> _StoreFlow[None]:
        if not isinstance(subject, str) or not subject:
            raise ConfigurationError("subject must be a non-empty string")
        yield RevokeSubject(subject)
        emit(AuditEvent.TOKEN_REVOKED, principal=subject, scope="subject")
        return None


class TokenService(_TokenCore):
    """JWT access tokens with rotating, reuse-detecting refresh tokens.

    Args:
        keys: a :class:`KeyRing` (or one :class:`SigningKey`).
        issuer: the exact ``iss`` to put in and require.
        audience: the ``aud`` to put in; verification accepts tokens naming any of them.
        access_ttl: access-token lifetime (seconds or ``timedelta``), 15 minutes by default.
        refresh_ttl: refresh-token lifetime, renewed at each rotation; 14 days by default.
        store: a :class:`RefreshTokenStore` (in-memory by default).
        clock: the time source.
        leeway: tolerated clock skew for ``exp``, ``nbf`` and ``iat`` (at most 300 s).
        max_token_bytes: longer tokens are refused before any decoding.
        required_claims: further claims every access token must carry.
        refresh_grace: seconds during which a just-rotated refresh token may
            be presented again (a client's retry) without counting as reuse.
            Off (0) by default, as RFC 9700 recommends.
    """

    def __init__(
        self,
        keys: KeyRing | SigningKey,
        issuer: str,
        audience: str | Sequence[str],
        access_ttl: float | timedelta = 900,
        refresh_ttl: float | timedelta = DEFAULT_REFRESH_TTL,
        store: RefreshTokenStore | None = None,
        clock: Clock = wall_clock,
        leeway: float | timedelta = 0,
        *,
        max_token_bytes: int = _jws.DEFAULT_MAX_TOKEN_BYTES,
        required_claims: Sequence[str] = (),
        refresh_grace: float | timedelta = 0,
    ) -> None:
        super().__init__(
            keys,
            issuer,
            audience,
            access_ttl,
            refresh_ttl,
            clock=clock,
            leeway=leeway,
            max_token_bytes=max_token_bytes,
            required_claims=required_claims,
            refresh_grace=refresh_grace,
        )
        store = MemoryRefreshTokenStore(clock=clock) if store is None else store
        if has_async_method(store, "consume"):
            raise ConfigurationError("this store is async: use AsyncTokenService")
        self.store = store

    def issue(self, subject: str, **claims: Any) -> TokenPair:
        """A new token pair (a new refresh-token family) for ``subject``."""
        return drive(self._issue_flow(subject, claims), self.store)

    def refresh(self, refresh_token: str) -> TokenPair:
        """Rotate: consume ``refresh_token`` once and return a new pair in its family.

        Raises:
            TokenReuseDetected: the token was already used; its family is revoked.
            ExpiredToken, RevokedToken, InvalidToken: otherwise unusable.
        """
        return drive(self._refresh_flow(refresh_token), self.store)

    def revoke(self, refresh_token: str) -> None:
        """Revoke the family of ``refresh_token`` (a logout); unknown tokens are ignored."""
        drive(self._revoke_flow(refresh_token), self.store)

    def revoke_subject(self, subject: str) -> None:
        """Revoke every refresh-token family of ``subject``."""
        drive(self._revoke_subject_flow(subject), self.store)


class AsyncTokenService(_TokenCore):
    """The asyncio twin of :class:`TokenService` (``verify`` stays synchronous: no I/O)."""

    def __init__(
        self,
        keys: KeyRing | SigningKey,
        issuer: str,
        audience: str | Sequence[str],
        access_ttl: float | timedelta = 900,
        refresh_ttl: float | timedelta = DEFAULT_REFRESH_TTL,
        store: AsyncRefreshTokenStore | None = None,
        clock: Clock = wall_clock,
        leeway: float | timedelta = 0,
        *,
        max_token_bytes: int = _jws.DEFAULT_MAX_TOKEN_BYTES,
        required_claims: Sequence[str] = (),
        refresh_grace: float | timedelta = 0,
    ) -> None:
        super().__init__(
            keys,
            issuer,
            audience,
            access_ttl,
            refresh_ttl,
            clock=clock,
            leeway=leeway,
            max_token_bytes=max_token_bytes,
            required_claims=required_claims,
            refresh_grace=refresh_grace,
        )
        if store is None:
            store = InPlace(MemoryRefreshTokenStore(clock=clock))
        if not has_async_method(store, "consume"):
            raise ConfigurationError("this store is synchronous: use TokenService")
        self.store = store

    async def issue(self, subject: str, **claims: Any) -> TokenPair:
        """Same as :meth:`TokenService.issue`, awaiting the store."""
        return await adrive(self._issue_flow(subject, claims), self.store)

    async def refresh(self, refresh_token: str) -> TokenPair:
        """Same as :meth:`TokenService.refresh`, awaiting the store."""
        return await adrive(self._refresh_flow(refresh_token), self.store)

    async def revoke(self, refresh_token: str) -> None:
        """Same as :meth:`TokenService.revoke`, awaiting the store."""
        await adrive(self._revoke_flow(refresh_token), self.store)

    async def revoke_subject(self, subject: str) -> None:
        """Same as :meth:`TokenService.revoke_subject`, awaiting the store."""
        await adrive(self._revoke_subject_flow(subject), self.store)
