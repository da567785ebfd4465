"""Pagination parameters with signed, tamper-proof cursors, and response allowlists."""

from __future__ import annotations

import hashlib
import hmac
import json
import math
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from apisec import _b64
from apisec._clock import Clock, Duration, seconds, wall_clock
from apisec.errors import ClientError, ConfigurationError, ValidationError
from apisec.problems import FieldError

__all__ = ["InvalidCursor", "Page", "Paginator", "only"]

_MAX_CURSOR = 2048


class InvalidCursor(ClientError):
    """The cursor was forged, altered, expired or made for another paginator (400)."""

    slug = "invalid-cursor"
    title = "Invalid cursor"
    default_detail = "The pagination cursor is invalid or expired."


@attrs.frozen
class Page:
    """Validated pagination input: how many items, and where to start."""

    limit: int
    position: Mapping[str, Any] | None


class Paginator:
    """Caps ``limit`` and signs cursors with HMAC so clients cannot forge offsets.

    >>> pages = Paginator(b"k" * 32, default_limit=20, max_limit=100)
    >>> cursor = pages.cursor({"after_id": 41})
    >>> pages.parse(limit="50", cursor=cursor)
    Page(limit=50, position={'after_id': 41})
    """

    def __init__(
        self,
        secret: bytes,
        *,
        default_limit: int = 20,
        max_limit: int = 100,
        ttl: Duration | None = None,
        clock: Clock = wall_clock,
        purpose: str = "default",
    ) -> None:
        if not isinstance(secret, bytes) or len(secret) < 32:
            raise ConfigurationError("the cursor secret must be at least 32 bytes")
        if not 1 <= default_limit <= max_limit:
            raise ConfigurationError("need 1 <= default_limit <= max_limit")
        self._secret = hashlib.sha256(b"apisec-cursor:" + purpose.encode() + b":" + secret).digest()
        self.default_limit = default_limit
        self.max_limit = max_limit
        self._ttl = None if ttl is None else seconds(ttl, name="ttl")
        self._clock = clock

    def __repr__(self) -> str:
        return f"Paginator(default_limit={self.default_limit}, max_limit={self.max_limit})"

    def cursor(self, position: Mapping[str, Any]) -> str:
        """An opaque cursor for ``position`` (plain JSON, e.g. the last id seen)."""
        body: dict[str, Any] = {"p": dict(position)}
        if self._ttl is not None:
            body["e"] = math.floor(self._clock() + self._ttl)
        payload = json.dumps(body, separators=(",", ":"), sort_keys=True).encode()
        mac = hmac.digest(self._secret, payload, "sha256")[:16]
        return f"{_b64.encode(payload)}.{_b64.encode(mac)}"

    def _position(self, cursor: str) -> Mapping[str, Any]:
        if not isinstance(cursor, str) or len(cursor) > _MAX_CURSOR or cursor.count(".") != 1:
            raise InvalidCursor("malformed cursor")
        payload_text, mac_text = cursor.split(".")
        # Strict, canonical base64url, as in tokens: one cursor has one spelling.
        payload, mac = _b64.decode(payload_text), _b64.decode(mac_text)
        if payload is None or mac is None:
            raise InvalidCursor("malformed cursor")
        expected = hmac.digest(self._secret, payload, "sha256")[:16]
        if not hmac.compare_digest(mac, expected):
            raise InvalidCursor("cursor signature mismatch")
        body = json.loads(payload)
        expires = body.get("e")
        if expires is not None and self._clock() >= expires:
            raise InvalidCursor("cursor expired")
        position: Mapping[str, Any] = body["p"]
        return position

    def parse(self, limit: object = None, cursor: object = None) -> Page:
        """Validate ``limit`` (query text or int) and ``cursor`` from a request.

        Raises:
            ValidationError: ``limit`` is not an integer in 1..max_limit (422).
            InvalidCursor: the cursor is not one of ours (400).
        """
        if limit is None or limit == "":
            value = self.default_limit
        else:
            text = str(limit)
            if isinstance(limit, bool) or not text.isascii() or not text.isdigit() or len(text) > 6:
                raise ValidationError([FieldError("limit", "must be a positive integer", "type")])
            value = int(text)
            if not 1 <= value <= self.max_limit:
                raise ValidationError(
                    [FieldError("limit", f"must be between 1 and {self.max_limit}", "out_of_range")]
                )
        position = None if cursor in (None, "") else self._position(str(cursor))
        return Page(value, position)


def only(obj: Any, fields: Iterable[str]) -> dict[str, Any]:
    """The listed fields of ``obj`` (a mapping or an object) and nothing else.

    Responses built with ``only`` cannot leak a property added to a model
    later (OWASP API3, excessive data exposure).

    >>> only({"id": 1, "email": "a@x", "password_hash": "..."}, ["id", "email"])
    {'id': 1, 'email': 'a@x'}
    """
    names = [fields] if isinstance(fields, str) else list(fields)
    out: dict[str, Any] = {}
    for name in names:
        if isinstance(obj, Mapping):
            if name in obj:
                out[name] = obj[name]
        elif hasattr(obj, name) and not name.startswith("_"):
            out[name] = getattr(obj, name)
    return out
