"""Refresh-token store protocols and the in-memory reference store.

A store keeps, per refresh token, only the SHA-256 of the token and its
family; per family, the subject, the claims to carry into new access tokens
and whether it is revoked. Five operations, each atomic on its own:

* ``add(record)`` — remember a new token: a new family's first, or the
  newest of its family (after a rotation, or a retry within the grace;
  ``record.rotated``), which never re-creates a family that is gone;
* ``get(family_id, token_hash)`` — read a token's record;
* ``consume(family_id, token_hash, now)`` — the one-time use: exactly one
  caller ever gets ``ConsumeStatus.OK`` for a token;
* ``revoke_family(family_id)``;
* ``revoke_subject(subject)`` — every family of a subject.

A family id is derived from a secret that every token of the family carries
and nothing else does (see ``apisec.tokens._service``), so a token naming a
family is a token of that family, or a copy of one. A store may therefore
keep just the family's newest token (O(1) per family, as the memory and
Redis stores do): any other token of a live family is a spent one, and
``consume`` answers ``REUSED``; ``get`` answers for any token of the family.
A store that keeps every token until it expires (as the one in
``docs/stores.md``) is just as correct, only larger.
"""

from __future__ import annotations

import enum
import heapq
import hmac
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
    #: The newest token of an existing family (a rotation or a grace retry), not a new
    #: family's first: a store must not create the family if it is gone by then (revoked
    #: and dropped, or expired, while the rotation was in flight).
    rotated: bool = False


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
class _Family:
    """One family, in constant space: its newest token and the one that token replaced."""

    subject: str
    claims: Mapping[str, Any]
    #: The hash of the family's newest token, its expiry (the family's), and its use.
    current: str
    expires_at: float
    consumed_at: float | None = None
    #: The token the newest one replaced, and when it was used (for refresh_grace).
    previous: str | None = None
    previous_consumed_at: float | None = None
    revoked: bool = False
    #: The sequence number of the family's live entry in the expiry heap.
    seq: int = 0


class MemoryRefreshTokenStore:
    """The in-process reference store: thread-safe, bounded, one entry per family.

    Each family keeps only its newest token (and the one before, for
    ``refresh_grace``): a session costs the same however often it refreshes,
    and a replayed spent token is recognised as long as its family lives.

    Past ``max_tokens`` families, an add drops expired families first, then
    revoked ones, then those closest to expiry, each in O(log n). A dropped
    family takes all of its tokens with it, its newest included: they are
    unknown from then on, so eviction never brings a revoked or spent token
    back to life (a flood of logins can end other sessions early, never
    revive one). A family is dropped once its newest token has expired, so
    spent tokens are not kept past their session.

    Args:
        clock: the time source used to drop expired families.
        max_tokens: memory bound, in families (each holds one live token).
    """

    def __init__(self, *, clock: Clock = wall_clock, max_tokens: int = 100_000) -> None:
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
            raise ConfigurationError("max_tokens must be a positive int")
        self._clock = clock
        self._max = max_tokens
        self._families: dict[str, _Family] = {}
        self._subjects: dict[str, set[str]] = {}
        # (expires_at, seq, family id) for every add: the expiry order, so dropping the
        # family closest to expiry costs O(log n) at the bound instead of a scan. An
        # entry whose seq is not its family's any more is stale and skipped.
        self._expiry: list[tuple[float, int, str]] = []
        self._seq = 0
        # Revoked families, oldest revocation first: dropped before live ones at the bound.
        self._revoked: dict[str, None] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._families)

    def add(self, record: RefreshRecord) -> None:
        with self._lock:
            family = self._families.get(record.family_id)
            if family is None:
                if record.rotated:  # dropped while its rotation was in flight: stays gone
                    return
                family = _Family(
                    subject=record.subject,
                    claims=dict(record.claims),
                    current=record.token_hash,
                    expires_at=record.expires_at,
                )
                self._families[record.family_id] = family
                self._subjects.setdefault(record.subject, set()).add(record.family_id)
            else:
                if family.consumed_at is not None:  # a rotation: the spent token steps back
                    family.previous = family.current
                    family.previous_consumed_at = family.consumed_at
                # Otherwise a retry within the grace: its token replaces the unspent one.
                family.current = record.token_hash
                family.expires_at = record.expires_at
                family.consumed_at = None
            self._seq += 1
            family.seq = self._seq
            heapq.heappush(self._expiry, (record.expires_at, self._seq, record.family_id))
            self._trim(self._clock())

    def get(self, family_id: str, token_hash: str) -> RefreshRecord | None:
        with self._lock:
            family = self._families.get(family_id)
            if family is None:
                return None
            return RefreshRecord(
                token_hash=token_hash,
                family_id=family_id,
                subject=family.subject,
                expires_at=family.expires_at,
                claims=family.claims,
            )

    def consume(self, family_id: str, token_hash: str, now: float) -> ConsumeResult:
        with self._lock:
            family = self._families.get(family_id)
            if family is None:
                return ConsumeResult(status=ConsumeStatus.UNKNOWN)
            if family.revoked:
                return ConsumeResult(status=ConsumeStatus.REVOKED, subject=family.subject)
            if family.expires_at <= now:  # its newest token is over: so is the family
                return ConsumeResult(status=ConsumeStatus.EXPIRED, subject=family.subject)
            consumed_at: float | None = None
            if hmac.compare_digest(token_hash, family.current):
                if family.consumed_at is None:
                    family.consumed_at = now
                    return ConsumeResult(
                        status=ConsumeStatus.OK, subject=family.subject, claims=family.claims
                    )
                consumed_at = family.consumed_at
            elif family.previous is not None and hmac.compare_digest(token_hash, family.previous):
                consumed_at = family.previous_consumed_at
            # Any other token of the family is an older spent one (or a copy of one).
            return ConsumeResult(
                status=ConsumeStatus.REUSED,
                subject=family.subject,
                claims=family.claims,
                consumed_at=consumed_at,
            )

    def revoke_family(self, family_id: str) -> None:
        with self._lock:
            family = self._families.get(family_id)
            if family is not None:
                family.revoked = True
                self._revoked[family_id] = None

    def revoke_subject(self, subject: str) -> None:
        with self._lock:
            for family_id in self._subjects.get(subject, ()):
                family = self._families.get(family_id)
                if family is not None:
                    family.revoked = True
                    self._revoked[family_id] = None

    def _trim(self, now: float) -> None:
        """Drop expired families; past the bound, revoked ones, then the closest to expiry."""
        expiry, families, revoked = self._expiry, self._families, self._revoked
        while expiry and (expiry[0][0] <= now or len(families) > self._max):
            if expiry[0][0] > now and revoked:  # over the bound: a revoked family goes first
                family_id = next(iter(revoked))
                self._drop(family_id, families[family_id])
                continue
            _, seq, family_id = heapq.heappop(expiry)
            family = families.get(family_id)
            if family is not None and family.seq == seq:
                self._drop(family_id, family)
        if len(expiry) > 2 * len(families) + 1024:
            # Every rotation leaves a stale entry behind: rebuild from the live ones
            # (O(n), after more than n adds).
            self._expiry = [(f.expires_at, f.seq, i) for i, f in families.items()]
            heapq.heapify(self._expiry)

    def _drop(self, family_id: str, family: _Family) -> None:
        del self._families[family_id]
        self._revoked.pop(family_id, None)
        members = self._subjects.get(family.subject)
        if members is not None:
            members.discard(family_id)
            if not members:
                del self._subjects[family.subject]
