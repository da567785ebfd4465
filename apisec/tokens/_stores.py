"""Refresh-token store protocols and the in-memory reference store.

A store keeps, per refresh token, only the SHA-256 of the token and its
family; per family, the subject, the claims to carry into new access tokens
and whether it is revoked. Five operations, each atomic on its own:

* ``add(record)`` — remember a new token (creating its family if needed);
* ``get(family_id, token_hash)`` — read a token's record;
* ``consume(family_id, token_hash, now)`` — the one-time use: exactly one
  caller ever gets ``ConsumeStatus.OK`` for a token;
* ``revoke_family(family_id)``;
* ``revoke_subject(subject)`` — every family of a subject.
"""

from __future__ import annotations

import enum
import heapq
import threading
from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

import attrs

from apisec._clock import Clock, wall_clock
from apisec.errors import ConfigurationError

__all__ = [
    "AsyncRefreshTokenStore",
    "ConsumeResult",
    "ConsumeStatus",
    "MemoryRefreshTokenStore",
    "RefreshRecord",
    "RefreshTokenStore",
]


@attrs.frozen
class RefreshRecord:
    """What a store keeps about one refresh token (never the token itself)."""

    token_hash: str
    family_id: str
    subject: str
    expires_at: float
    #: Custom claims of the family, copied into every access token it issues.
    claims: Mapping[str, Any] = attrs.field(factory=dict)


class ConsumeStatus(enum.Enum):
    OK = "ok"
    UNKNOWN = "unknown"
    EXPIRED = "expired"
    REVOKED = "revoked"
    REUSED = "reused"


@attrs.frozen
class ConsumeResult:
    """The outcome of :meth:`RefreshTokenStore.consume`."""

    status: ConsumeStatus
    subject: str | None = None
    claims: Mapping[str, Any] = attrs.field(factory=dict)
    #: When the token was consumed, for REUSED results (grace handling).
    consumed_at: float | None = None


@runtime_checkable
class RefreshTokenStore(Protocol):
    """A synchronous refresh-token backend; see the module docstring."""

    def add(self, record: RefreshRecord) -> None: ...

    def get(self, family_id: str, token_hash: str) -> RefreshRecord | None: ...

    def consume(self, family_id: str, token_hash: str, now: float) -> ConsumeResult: ...

    def revoke_family(self, family_id: str) -> None: ...

    def revoke_subject(self, subject: str) -> None: ...


@runtime_checkable
class AsyncRefreshTokenStore(Protocol):
    """The asyncio twin of :class:`RefreshTokenStore`."""

    async def add(self, record: RefreshRecord) -> None: ...

    async def get(self, family_id: str, token_hash: str) -> RefreshRecord | None: ...

    async def consume(self, family_id: str, token_hash: str, now: float) -> ConsumeResult: ...

    async def revoke_family(self, family_id: str) -> None: ...

    async def revoke_subject(self, subject: str) -> None: ...


# The store calls the token flows yield (apisec._flows): one per protocol method.


@attrs.define
class Add:
    record: RefreshRecord

    def run(self, store: RefreshTokenStore) -> None:
        store.add(self.record)

    async def arun(self, store: AsyncRefreshTokenStore) -> None:
        await store.add(self.record)


@attrs.define
class Get:
    family_id: str
    token_hash: str

    def run(self, store: RefreshTokenStore) -> RefreshRecord | None:
        return store.get(self.family_id, self.token_hash)

    async def arun(self, store: AsyncRefreshTokenStore) -> RefreshRecord | None:
        return await store.get(self.family_id, self.token_hash)


@attrs.define
class Consume:
    family_id: str
    token_hash: str
    now: float

    def run(self, store: RefreshTokenStore) -> ConsumeResult:
        return store.consume(self.family_id, self.token_hash, self.now)

    async def arun(self, store: AsyncRefreshTokenStore) -> ConsumeResult:
        return await store.consume(self.family_id, self.token_hash, self.now)


@attrs.define
class RevokeFamily:
    family_id: str

    def run(self, store: RefreshTokenStore) -> None:
        store.revoke_family(self.family_id)

    async def arun(self, store: AsyncRefreshTokenStore) -> None:
        await store.revoke_family(self.family_id)


@attrs.define
class RevokeSubject:
    subject: str

    def run(self, store: RefreshTokenStore) -> None:
        store.revoke_subject(self.subject)

    async def arun(self, store: AsyncRefreshTokenStore) -> None:
        await store.revoke_subject(self.subject)


@attrs.define
class _Entry:
    record: RefreshRecord
    consumed_at: float | None = None


@attrs.define
class _Family:
    subject: str
    claims: Mapping[str, Any]
    revoked: bool = False
    tokens: set[str] = attrs.field(factory=set)


class MemoryRefreshTokenStore:
    """The in-process reference store: thread-safe, bounded, purges expired entries.

    Args:
        clock: the time source used to purge expired entries.
        max_tokens: memory bound; past it, expired entries go first, then
            those closest to expiry (an evicted token is simply unknown).
    """

    _PURGE_EVERY = 1024

    def __init__(self, *, clock: Clock = wall_clock, max_tokens: int = 100_000) -> None:
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
            raise ConfigurationError("max_tokens must be a positive int")
        self._clock = clock
        self._max = max_tokens
        self._tokens: dict[str, _Entry] = {}
        self._families: dict[str, _Family] = {}
        self._subjects: dict[str, set[str]] = {}
        self._lock = threading.Lock()
        self._adds = 0

    def __len__(self) -> int:
        return len(self._tokens)

    def add(self, record: RefreshRecord) -> None:
        with self._lock:
            family = self._families.get(record.family_id)
            if family is None:
                family = _Family(record.subject, dict(record.claims))
                self._families[record.family_id] = family
                self._subjects.setdefault(record.subject, set()).add(record.family_id)
            family.tokens.add(record.token_hash)
            self._tokens[record.token_hash] = _Entry(record)
            self._adds += 1
            if self._adds % self._PURGE_EVERY == 0 or len(self._tokens) > self._max:
                self._purge(self._clock())

    def get(self, family_id: str, token_hash: str) -> RefreshRecord | None:
        with self._lock:
            entry = self._tokens.get(token_hash)
            if entry is None or entry.record.family_id != family_id:
                return None
            return entry.record

    def consume(self, family_id: str, token_hash: str, now: float) -> ConsumeResult:
        with self._lock:
            entry = self._tokens.get(token_hash)
            if entry is None or entry.record.family_id != family_id:
                return ConsumeResult(status=ConsumeStatus.UNKNOWN)
            family = self._families.get(family_id)
            record = entry.record
            if family is None or family.revoked:
                return ConsumeResult(status=ConsumeStatus.REVOKED, subject=record.subject)
            if record.expires_at <= now:
                return ConsumeResult(status=ConsumeStatus.EXPIRED, subject=record.subject)
            if entry.consumed_at is not None:
                return ConsumeResult(
                    status=ConsumeStatus.REUSED,
                    subject=record.subject,
                    claims=family.claims,
                    consumed_at=entry.consumed_at,
                )
            entry.consumed_at = now
            return ConsumeResult(
                status=ConsumeStatus.OK, subject=record.subject, claims=family.claims
            )

    def revoke_family(self, family_id: str) -> None:
        with self._lock:
            family = self._families.get(family_id)
            if family is not None:
                family.revoked = True

    def revoke_subject(self, subject: str) -> None:
        with self._lock:
            for family_id in self._subjects.get(subject, ()):
                family = self._families.get(family_id)
                if family is not None:
                    family.revoked = True

    def _purge(self, now: float) -> None:
        expired = [h for h, e in self._tokens.items() if e.record.expires_at <= now]
        for token_hash in expired:
            self._drop(token_hash)
        excess = len(self._tokens) - self._max
        if excess > 0:
            oldest = heapq.nsmallest(
                excess, self._tokens.items(), key=lambda item: item[1].record.expires_at
            )
            for token_hash, _ in oldest:
                self._drop(token_hash)

    def _drop(self, token_hash: str) -> None:
        entry = self._tokens.pop(token_hash)
        family_id = entry.record.family_id
        family = self._families.get(family_id)
        if family is None:
            return
        family.tokens.discard(token_hash)
        if not family.tokens:
            del self._families[family_id]
            members = self._subjects.get(family.subject)
            if members is not None:
                members.discard(family_id)
                if not members:
                    del self._subjects[family.subject]
