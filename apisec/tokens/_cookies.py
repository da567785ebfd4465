"""Refresh tokens in a ``__Host-`` cookie: set, clear, and read back defensively."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Final

import attrs

from apisec._clock import Duration, seconds
from apisec.errors import ClientError, ConfigurationError

__all__ = ["DuplicateCookie", "RefreshCookie"]

_NAME = re.compile(r"__Host-[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,64}")
# RFC 6265 cookie-octet, which a refresh token's alphabet stays well inside.
_VALUE = re.compile(r"[\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]{1,4096}")
_MAX_COOKIE_HEADER: Final = 16384


class DuplicateCookie(ClientError):
    """The request carries the refresh cookie more than once (cookie tossing): 400."""

    slug = "duplicate-cookie"
    default_detail = "A cookie was sent more than once."


def _same_site(value: str) -> str:
    if value not in ("Strict", "Lax"):
        raise ConfigurationError('same_site must be "Strict" or "Lax" (never "None")')
    return value


@attrs.frozen(kw_only=True)
class RefreshCookie:
    """The refresh token as a ``__Host-`` cookie, the way browser clients should keep it.

    ``__Host-`` pins the cookie to this exact host over HTTPS with ``Path=/``
    (no subdomain can set or shadow it); ``HttpOnly`` keeps it from scripts
    (an XSS cannot read it); ``SameSite=Strict`` keeps other sites from
    sending it. ``Max-Age`` follows the refresh token's lifetime.

    >>> cookie = RefreshCookie(max_age=86400)
    >>> cookie.set("rt_abc.def")[1]
    '__Host-refresh=rt_abc.def; Max-Age=86400; Path=/; Secure; HttpOnly; SameSite=Strict'
    >>> cookie.read(["theme=dark; __Host-refresh=rt_abc.def"])
    'rt_abc.def'

    Args:
        name: the cookie name; must start with ``__Host-``.
        max_age: seconds (or ``timedelta``); use :meth:`for_service` to take
            the token service's ``refresh_ttl``.
        same_site: ``"Strict"`` (default) or ``"Lax"``.
    """

    name: str = "__Host-refresh"
    max_age: Duration = 14 * 86400
    same_site: str = attrs.field(default="Strict", converter=_same_site)
    _suffix: str = attrs.field(init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.name, str) or _NAME.fullmatch(self.name) is None:
            raise ConfigurationError("the cookie name must be a token starting with __Host-")
        age = math.ceil(seconds(self.max_age, name="max_age"))
        object.__setattr__(
            self, "_suffix", f"; Max-Age={age}; Path=/; Secure; HttpOnly; SameSite={self.same_site}"
        )

    @classmethod
    def for_service(cls, service: object, **options: str) -> RefreshCookie:
        """A cookie whose lifetime is the service's ``refresh_ttl``."""
        ttl = getattr(service, "refresh_ttl", None)
        if not isinstance(ttl, (int, float)):
            raise ConfigurationError("the service has no refresh_ttl")
        return cls(max_age=ttl, **options)

    def set(self, refresh_token: str) -> tuple[str, str]:
        """The ``Set-Cookie`` header that stores ``refresh_token``."""
        if not isinstance(refresh_token, str) or _VALUE.fullmatch(refresh_token) is None:
            raise ConfigurationError("a refresh token must be cookie-safe text")
        return ("Set-Cookie", f"{self.name}={refresh_token}{self._suffix}")

    def clear(self) -> tuple[str, str]:
        """The ``Set-Cookie`` header that deletes the cookie (logout, reuse detected)."""
        return (
            "Set-Cookie",
            f"{self.name}=; Max-Age=0; Path=/; Secure; HttpOnly; SameSite={self.same_site}",
        )

    def read(self, cookie_headers: Sequence[str]) -> str | None:
        """The refresh token from the request's ``Cookie`` field(s), or None.

        Raises :class:`DuplicateCookie` when the name occurs twice, so a
        planted copy can never be picked instead of the real one. Values
        that are not cookie-safe read as absent.
        """
        if isinstance(cookie_headers, str):
            cookie_headers = [cookie_headers]
        found: str | None = None
        seen = False
        total = 0
        for header in cookie_headers:
            total += len(header)
            if total > _MAX_COOKIE_HEADER:
                return None
            for pair in header.split(";"):
                name, sep, value = pair.strip(" \t").partition("=")
                if not sep or name != self.name:
                    continue
                if seen:
                    raise DuplicateCookie(f"cookie {self.name} sent twice")
                seen = True
                value = value.strip(" \t")
                if len(value) >= 2 and value[0] == value[-1] == '"':
                    value = value[1:-1]
                found = value if _VALUE.fullmatch(value) else None
        return found
