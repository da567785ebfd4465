"""API key records (what stores keep) and new keys (what callers see once)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import attrs

from apisec.authz import InsufficientScope
from apisec.errors import AuthenticationError, ClientError

__all__ = ["ApiKeyNotFound", "ApiKeyRecord", "InsufficientScope", "InvalidApiKey", "NewApiKey"]

#: Fields a store's ``update`` may change.
MUTABLE_FIELDS = frozenset({"key_hash", "expires_at", "revoked_at", "last_used_at"})


def _scopes(value: Any) -> tuple[str, ...]:
    return tuple(sorted(set(value)))


@attrs.frozen
class ApiKeyRecord:
    """Everything known about one key except the key itself.

    ``hint`` (prefix plus the first four random characters) is safe to show
    in dashboards so people can tell their keys apart.
    """

    id: str
    prefix: str
    hint: str
    key_hash: str = attrs.field(repr=False)
    owner: str
    scopes: tuple[str, ...] = attrs.field(converter=_scopes)
    created_at: float
    expires_at: float | None = None
    revoked_at: float | None = None
    last_used_at: float | None = None
    metadata: Mapping[str, Any] = attrs.field(factory=dict)

    # Short names used by the design contract ("id, prefix, hash, owner, scopes,
    # created, expires, revoked").
    @property
    def hash(self) -> str:
        return self.key_hash

    @property
    def created(self) -> float:
        return self.created_at

    @property
    def expires(self) -> float | None:
        return self.expires_at

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    def is_active(self, now: float) -> bool:
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)

    def to_row(self) -> dict[str, Any]:
        """Flat, JSON-friendly fields for SQL rows and Redis hashes."""
        return {
            "id": self.id,
            "prefix": self.prefix,
            "hint": self.hint,
            "key_hash": self.key_hash,
            "owner": self.owner,
            "scopes": json.dumps(list(self.scopes)),
            "created_at": self.created_at,
            "expires_at": self.expires_at,
            "revoked_at": self.revoked_at,
            "last_used_at": self.last_used_at,
            "metadata": json.dumps(dict(self.metadata), sort_keys=True),
        }

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> ApiKeyRecord:
        def number(name: str) -> float | None:
            value = row.get(name)
            return None if value in (None, "", b"") else float(value)

        def text(name: str) -> str:
            value = row[name]
            return value.decode() if isinstance(value, bytes) else str(value)

        return cls(
            id=text("id"),
            prefix=text("prefix"),
            hint=text("hint"),
            key_hash=text("key_hash"),
            owner=text("owner"),
            scopes=json.loads(text("scopes")),
            created_at=float(text("created_at")),
            expires_at=number("expires_at"),
            revoked_at=number("revoked_at"),
            last_used_at=number("last_used_at"),
            metadata=json.loads(text("metadata")),
        )


@attrs.frozen
class NewApiKey:
    """A freshly created key: show ``plaintext`` to its owner once, store ``record``."""

    plaintext: str = attrs.field(repr=False)
    record: ApiKeyRecord


class InvalidApiKey(AuthenticationError):
    """Unknown, malformed, expired or revoked: the client always sees the same problem."""

    slug = "invalid-api-key"
    title = "Invalid API key"
    default_detail = "The API key is missing or invalid."


class ApiKeyNotFound(ClientError):
    """No key has this id (management operations)."""

    status = 404
    slug = "api-key-not-found"
    title = "API key not found"
    default_detail = "No such API key."
