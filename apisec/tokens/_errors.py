"""Token errors, all under :class:`InvalidToken` (an ``AuthenticationError``, 401)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from apisec.errors import AuthenticationError

__all__ = ["ExpiredToken", "InvalidToken", "RevokedToken", "TokenReuseDetected"]


class InvalidToken(AuthenticationError):
    """The token is not valid. The message says why, for logs; clients see one detail."""

    slug = "invalid-token"
    title = "Invalid token"
    default_detail = "The access token is invalid or expired."
    #: RFC 6750 error code for the WWW-Authenticate challenge.
    bearer_error = "invalid_token"

    def __init__(
        self,
        message: str = "",
        *,
        detail: str | None = None,
        extensions: Mapping[str, Any] | None = None,
        headers: Iterable[tuple[str, str]] | None = None,
    ) -> None:
        if headers is None:
            headers = [("WWW-Authenticate", f'Bearer error="{self.bearer_error}"')]
        super().__init__(message, detail=detail, extensions=extensions, headers=headers)


class ExpiredToken(InvalidToken):
    """The token's lifetime is over."""

    slug = "expired-token"


class RevokedToken(InvalidToken):
    """The token (or its whole family) was revoked."""

    slug = "revoked-token"


class TokenReuseDetected(RevokedToken):
    """An already-rotated refresh token came back: its family is now revoked."""

    slug = "token-reuse-detected"
