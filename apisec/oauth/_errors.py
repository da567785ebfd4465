"""OAuth errors: what an authorization server answered, and callbacks we refuse."""

from __future__ import annotations

from typing import ClassVar

from apisec.errors import ClientError

__all__ = ["AuthorizationError", "InvalidCallback", "OAuthError", "TokenRequestError"]


class OAuthError(ClientError):
    """Base of the OAuth errors; ``error`` is the RFC 6749 error code.

    ``error_description`` and ``error_uri`` come from the other party: they
    are kept for logs and never copied into the problem a client sees.
    """

    slug = "oauth-error"
    title = "OAuth error"
    default_detail = "The OAuth exchange failed."
    default_error: ClassVar[str] = "invalid_request"

    def __init__(
        self,
        message: str = "",
        *,
        error: str | None = None,
        error_description: str | None = None,
        error_uri: str | None = None,
    ) -> None:
        self.error = error or self.default_error
        self.error_description = error_description
        self.error_uri = error_uri
        super().__init__(message or self.error, extensions={"error": self.error})


class AuthorizationError(OAuthError):
    """The authorization server answered the authorization request with an error.

    ``error`` is its code (``access_denied``, ``invalid_scope``...). The
    callback's ``state`` (and ``iss``, when checked) matched, so the answer is
    from the server the request went to.
    """

    slug = "oauth-authorization-error"
    title = "Authorization failed"
    default_detail = "The authorization server did not grant access."
    default_error = "server_error"


class InvalidCallback(OAuthError):
    """A callback we refuse before using it: forged, replayed, stale or malformed.

    ``reason`` says why, for logs: ``no_pending_authorization``,
    ``malformed_session``, ``malformed``, ``missing_state``, ``state_mismatch``,
    ``expired``, ``missing_issuer``, ``issuer_mismatch``, ``missing_code``.
    """

    slug = "oauth-invalid-callback"
    title = "Invalid authorization callback"
    default_detail = "The authorization response is not valid for this session."

    def __init__(self, reason: str, message: str = "") -> None:
        self.reason = reason
        super().__init__(message or f"authorization callback refused: {reason}")


class TokenRequestError(OAuthError):
    """The token endpoint refused a request, or answered something unusable (502).

    ``error`` is the server's code (``invalid_grant``...), or
    ``invalid_response`` when the answer itself was malformed;
    ``http_status`` is the status it answered with.
    """

    status = 502
    slug = "oauth-token-request-failed"
    title = "Token request failed"
    default_error = "invalid_response"

    def __init__(
        self,
        message: str = "",
        *,
        error: str | None = None,
        error_description: str | None = None,
        error_uri: str | None = None,
        http_status: int | None = None,
    ) -> None:
        self.http_status = http_status
        super().__init__(
            message, error=error, error_description=error_description, error_uri=error_uri
        )
