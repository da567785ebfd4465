"""ApiKeyService and AsyncApiKeyService: the key lifecycle, written once as flows."""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import timedelta
from typing import Any, TypeVar

from apisec import authz
from apisec._async import InPlace, has_async_method
from apisec._clock import Clock, Duration, seconds, wall_clock
from apisec._flows import Flow, adrive, drive
from apisec.apikeys._format import (
    MAX_KEY_LENGTH,
    RANDOM_CHARS,
    check_prefix,
    generate_key_text,
    split_key,
)
from apisec.apikeys._hashing import Peppers, current_hasher, hash_api_key, hash_versions, same_hash
from apisec.apikeys._records import (
    ApiKeyNotFound,
    ApiKeyRecord,
    InvalidApiKey,
    NewApiKey,
)
from apisec.apikeys._stores import (
    Add,
    ApiKeyStore,
    AsyncApiKeyStore,
    Find,
    Get,
    ListByOwner,
    MemoryApiKeyStore,
    Update,
)
from apisec.audit import AuditEvent, emit
from apisec.errors import ConfigurationError

__all__ = ["ApiKeyService", "AsyncApiKeyService", "require_scopes"]

#: ``last_used_at`` is written at most this often per key, so authenticating stays a read.
TOUCH_INTERVAL = 60.0
_MAX_OWNER = 256

T = TypeVar("T")
#: A flow over the API key store (sync or async).
_StoreFlow = Flow[ApiKeyStore, AsyncApiKeyStore, T]


def require_scopes(record: ApiKeyRecord, *scopes: str) -> ApiKeyRecord:
    """Return ``record`` if it holds every scope, else raise ``InsufficientScope`` (403).

    :func:`apisec.authz.require_scopes` does the same for any credential.
    """
    authz.require_scopes(record, *scopes)
    return record


def _pepper(value: bytes | Peppers | None) -> Peppers | None:
    if value is None or isinstance(value, Peppers):
        return value
    if isinstance(value, bytes):
        hash_api_key("probe", value)  # validates the length
        return Peppers({"default": value}, current="default")
    raise ConfigurationError("pepper must be bytes, Peppers or None")


class _ApiKeyCore:
    def __init__(
        self,
        *,
        clock: Clock = wall_clock,
        pepper: bytes | Peppers | None = None,
        default_prefix: str = "sk_live",
    ) -> None:
        # time.time itself when no clock is injected: one call less per authentication.
        self._clock = time.time if clock is wall_clock else clock
        self._pepper = _pepper(pepper)
        self._current_hash = current_hasher(self._pepper)
        self.default_prefix = check_prefix(default_prefix)
        self._lookup_first = False
        self._find_in_memory: Callable[[str], ApiKeyRecord | None] | None = None

    def _use_store(self, store: object) -> None:
        """Choose the order of authentication's steps for ``store``.

        A memory store answers a lookup for less than parsing the key costs,
        so the key is hashed and looked up first and its checksum is parsed
        only to label a miss (``malformed`` or ``unknown``). Any other store
        may sit across a network: the checksum comes first there, so garbage
        never costs a round trip.
        """
        inner = store.inner if isinstance(store, InPlace) else store
        if type(inner) is MemoryApiKeyStore:
            self._lookup_first = True
            self._find_in_memory = inner.lookup

    def _authenticated_in_memory(self, key: object) -> ApiKeyRecord | None:
        """The fast path of ``authenticate`` (docs/architecture.md): the common case only.

        Over a memory store, a key whose current hash is stored, active and
        touched less than ``TOUCH_INTERVAL`` ago is the whole answer: there is
        nothing to audit and nothing to write. Anything else (a miss, an
        expired, revoked or older-pepper record, a touch that is due, a store
        that is not in memory) returns None and takes the general flow, which
        decides it from scratch. This skips the flow driver and the checksum
        parse, which together cost several times the hash and the lookup.
        ``tests/test_apikeys_service.py::TestFastPathIsPinned`` pins it.
        """
        find = self._find_in_memory
        if find is None or type(key) is not str or len(key) > MAX_KEY_LENGTH:
            return None
        key_hash = self._current_hash(key)
        record = find(key_hash)
        if (
            record is None
            or record.revoked_at is not None
            or record.last_used_at is None
            or not hmac.compare_digest(record.key_hash, key_hash)
        ):
            return None
        now = self._clock()
        expires_at = record.expires_at
        if (expires_at is None or expires_at > now) and now - record.last_used_at < TOUCH_INTERVAL:
            return record
        return None

    # --- flows ---------------------------------------------------------------------

    def _create_flow(
        self,
        owner: str,
        scopes: Iterable[str],
        expires_in: Duration | None,
        prefix: str | None,
        metadata: Mapping[str, Any] | None,
        expires_at: float | None = None,
    ) -> _StoreFlow[NewApiKey]:
        if not isinstance(owner, str) or not owner or len(owner) > _MAX_OWNER:
            raise ConfigurationError("owner must be a non-empty string of at most 256 characters")
        scope_list = [scopes] if isinstance(scopes, str) else list(scopes)
        if not all(isinstance(s, str) and s and " " not in s for s in scope_list):
            raise ConfigurationError("scopes are non-empty strings without spaces")
        prefix = check_prefix(prefix or self.default_prefix)
        now = self._clock()
        if expires_in is not None:
            expires_at = now + seconds(expires_in, name="expires_in")
        plaintext = generate_key_text(prefix)
        random_part = plaintext[len(prefix) + 1 :][:RANDOM_CHARS]
        record = ApiKeyRecord(
            id="key_" + secrets.token_hex(12),
            prefix=prefix,
            hint=f"{prefix}_{random_part[:4]}",
            key_hash=hash_api_key(plaintext, self._pepper),
            owner=owner,
            scopes=scope_list,
            created_at=now,
            expires_at=expires_at,
            metadata=dict(metadata or {}),
        )
        yield Add(record)
        emit(AuditEvent.API_KEY_CREATED, principal=record.id, owner=owner)
        return NewApiKey(plaintext=plaintext, record=record)

    def _authenticate_flow(self, key: object) -> _StoreFlow[ApiKeyRecord]:
        now = self._clock()
        reason = None
        record: ApiKeyRecord | None = None
        hashes: list[str] = []
        if (
            not isinstance(key, str)
            or len(key) > MAX_KEY_LENGTH
            or (not self._lookup_first and split_key(key) is None)
        ):
            reason = "malformed"
        else:
            hashes = hash_versions(key, self._pepper)
            for key_hash in hashes:
                record = yield Find(key_hash)
                if record is not None and same_hash(record.key_hash, key_hash):
                    break
                record = None
            if record is None:
                # Looked up before it was parsed (see _use_store): the checksum labels the miss.
                reason = "malformed" if self._lookup_first and split_key(key) is None else "unknown"
            elif record.revoked_at is not None:
                reason = "revoked"
            elif record.expires_at is not None and record.expires_at <= now:
                reason = "expired"
        if reason is not None or record is None:
            emit(AuditEvent.AUTH_FAILURE, reason=f"api_key_{reason}",
                 principal=None if record is None else record.id)  # fmt: skip
            raise InvalidApiKey(f"API key rejected: {reason}")
        changes: dict[str, Any] = {}
        if record.key_hash != hashes[0]:
            changes["key_hash"] = hashes[0]  # made with an older pepper: upgrade it
        if record.last_used_at is None or now - record.last_used_at >= TOUCH_INTERVAL:
            changes["last_used_at"] = now
        if changes:
            updated: ApiKeyRecord | None = yield Update(key_id=record.id, changes=changes)
            if updated is not None:
                record = updated
            # Usage is reported with the throttled touch: once a minute per key at most.
            emit(AuditEvent.API_KEY_USED, principal=record.id)
        return record

    def _revoke_flow(self, key_id: str) -> _StoreFlow[ApiKeyRecord]:
        changes = {"revoked_at": self._clock()}
        record: ApiKeyRecord | None = yield Update(key_id=key_id, changes=changes)
        if record is None:
            raise ApiKeyNotFound(f"no API key {key_id!r}")
        emit(AuditEvent.API_KEY_REVOKED, principal=key_id)
        return record

    def _rotate_flow(self, key_id: str, grace: Duration) -> _StoreFlow[NewApiKey]:
        grace_seconds = seconds(grace, name="grace", allow_zero=True)
        old: ApiKeyRecord | None = yield Get(key_id)
        now = self._clock()
        if old is None:
            raise ApiKeyNotFound(f"no API key {key_id!r}")
        if not old.is_active(now):
            raise ConfigurationError("only an active key can be rotated")
        new = yield from self._create_flow(
            old.owner, old.scopes, None, old.prefix, old.metadata, expires_at=old.expires_at
        )
        cutoff = now + grace_seconds
        if old.expires_at is None or old.expires_at > cutoff:
            yield Update(key_id=key_id, changes={"expires_at": cutoff})
        emit(AuditEvent.API_KEY_ROTATED, principal=key_id, replacement=new.record.id)
        return new

    def _list_flow(self, owner: str) -> _StoreFlow[list[ApiKeyRecord]]:
        records: list[ApiKeyRecord] = yield ListByOwner(owner)
        return records


class ApiKeyService(_ApiKeyCore):
    """Create, authenticate, revoke, rotate and list API keys.

    Args:
        store: an :class:`ApiKeyStore` (in memory by default).
        clock: the time source.
        pepper: optional secret (bytes, or :class:`Peppers` to rotate them)
            mixed into every stored hash.
        default_prefix: the prefix of new keys (``"sk_live"``).

    >>> service = ApiKeyService()
    >>> new = service.create("acct_1", scopes=["orders:read"])
    >>> service.authenticate(new.plaintext).owner
    'acct_1'
    """

    def __init__(
        self,
        store: ApiKeyStore | None = None,
        clock: Clock = wall_clock,
        *,
        pepper: bytes | Peppers | None = None,
        default_prefix: str = "sk_live",
    ) -> None:
        super().__init__(clock=clock, pepper=pepper, default_prefix=default_prefix)
        store = MemoryApiKeyStore() if store is None else store
        if has_async_method(store, "find"):
            raise ConfigurationError("this store is async: use AsyncApiKeyService")
        self.store = store
        self._use_store(store)

    def create(
        self,
        owner: str,
        scopes: Iterable[str] = (),
        expires_in: float | timedelta | None = None,
        prefix: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> NewApiKey:
        """A new key; its ``plaintext`` is shown once and never stored."""
        return drive(self._create_flow(owner, scopes, expires_in, prefix, metadata), self.store)

    def authenticate(self, key: str) -> ApiKeyRecord:
        """The record of a valid key, or :class:`InvalidApiKey` (one generic client problem)."""
        record = self._authenticated_in_memory(key)
        if record is not None:
            return record
        return drive(self._authenticate_flow(key), self.store)

    def revoke(self, key_id: str) -> ApiKeyRecord:
        """Revoke a key at once; raises :class:`ApiKeyNotFound` for an unknown id."""
        return drive(self._revoke_flow(key_id), self.store)

    def rotate(self, key_id: str, grace: float | timedelta = 3600) -> NewApiKey:
        """A replacement key; the old one keeps working for ``grace`` seconds, then expires."""
        return drive(self._rotate_flow(key_id, grace), self.store)

    def list(self, owner: str) -> list[ApiKeyRecord]:
        """Every key record of ``owner`` (revoked and expired ones included)."""
        return drive(self._list_flow(owner), self.store)


class AsyncApiKeyService(_ApiKeyCore):
    """The asyncio twin of :class:`ApiKeyService` (same arguments; in memory by default)."""

    def __init__(
        self,
        store: AsyncApiKeyStore | None = None,
        clock: Clock = wall_clock,
        *,
        pepper: bytes | Peppers | None = None,
        default_prefix: str = "sk_live",
    ) -> None:
        super().__init__(clock=clock, pepper=pepper, default_prefix=default_prefix)
        if store is None:
            store = InPlace(MemoryApiKeyStore())
        if not has_async_method(store, "find"):
            raise ConfigurationError("this store is synchronous: use ApiKeyService")
        self.store = store
        self._use_store(store)

    async def create(
        self,
        owner: str,
        scopes: Iterable[str] = (),
        expires_in: float | timedelta | None = None,
        prefix: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> NewApiKey:
        """Same as :meth:`ApiKeyService.create`, awaiting the store."""
        return await adrive(
            self._create_flow(owner, scopes, expires_in, prefix, metadata), self.store
        )

    async def authenticate(self, key: str) -> ApiKeyRecord:
        """Same as :meth:`ApiKeyService.authenticate`, awaiting the store."""
        record = self._authenticated_in_memory(key)
        if record is not None:
            return record
        return await adrive(self._authenticate_flow(key), self.store)

    async def revoke(self, key_id: str) -> ApiKeyRecord:
        """Same as :meth:`ApiKeyService.revoke`, awaiting the store."""
        return await adrive(self._revoke_flow(key_id), self.store)

    async def rotate(self, key_id: str, grace: float | timedelta = 3600) -> NewApiKey:
        """Same as :meth:`ApiKeyService.rotate`, awaiting the store."""
        return await adrive(self._rotate_flow(key_id, grace), self.store)

    async def list(self, owner: str) -> list[ApiKeyRecord]:
        """Same as :meth:`ApiKeyService.list`, awaiting the store."""
        return await adrive(self._list_flow(owner), self.store)
