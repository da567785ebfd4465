"""The apisec error tree.

Every error a caller can hit is an :class:`ApiSecError`. Each one knows the
HTTP status it stands for and renders itself as an RFC 9457 problem with
:meth:`ApiSecError.to_problem`, so adapters never have to guess::

    ApiSecError                      500  base of everything apisec raises
    ├── ConfigurationError           500  unsafe or invalid configuration (also a ValueError)
    ├── StoreError                   503  a backend (Redis, SQLite, ...) failed
    ├── MalformedProblem             502  a problem document received from elsewhere is unusable
    └── ClientError                  400  the request is at fault
        ├── AuthenticationError      401  missing or bad credentials
        ├── PermissionDenied         403  authenticated, but not allowed
        ├── NotFound                 404  no such resource (or not yours to know of)
        ├── PayloadTooLarge          413  body over the configured cap
        └── ValidationError          422  input failed validation (carries FieldErrors)

Feature modules hang their own errors under these (``InvalidToken`` under
``AuthenticationError``, ``RateLimitExceeded`` under ``ClientError``, ...).

Two texts travel with an error and never mix:

* the *message* (``str(err)``) is for the server's logs and may name the
  internal reason ("signature mismatch for kid k1");
* the *detail* is what a client may read. It defaults to a generic sentence
  per class and is never taken from the message. Problems of 5xx errors carry
  no detail and no extensions at all.

Neither ever contains a token, key, secret or password.

:mod:`apisec.problems` builds on this module; the one way back is
:meth:`ApiSecError.to_problem`, which imports it when called.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import attrs

if TYPE_CHECKING:
    from apisec.problems import Problem

__all__ = [
    "ApiSecError",
    "AuthenticationError",
    "ClientError",
    "ConfigurationError",
    "FieldError",
    "MalformedProblem",
    "NotFound",
    "PayloadTooLarge",
    "PermissionDenied",
    "StoreError",
    "ValidationError",
]


class ApiSecError(Exception):
    """Base of every error apisec raises.

    Args:
        message: the server-side reason, for logs. Never shown to clients.
        detail: a client-safe explanation; defaults to the class's
            ``default_detail``. Ignored for 5xx errors.
        extensions: extra client-safe problem members (e.g. ``retry_after``).
            Ignored for 5xx errors.
        headers: HTTP response headers that belong to this error
            (``WWW-Authenticate``, ``Retry-After``, ...).
    """

    status: ClassVar[int] = 500
    #: Suffix of the problem ``type`` URI when a type base is configured.
    slug: ClassVar[str] = "internal-error"
    #: Problem title when a type base is configured (the reason phrase otherwise).
    title: ClassVar[str | None] = None
    default_detail: ClassVar[str | None] = None

    def __init__(
        self,
        message: str = "",
        *,
        detail: str | None = None,
        extensions: Mapping[str, Any] | None = None,
        headers: Iterable[tuple[str, str]] = (),
    ) -> None:
        super().__init__(message or self.__class__.__name__)
        self.message = message or self.__class__.__name__
        self.detail = detail if detail is not None else self.default_detail
        self.extensions: Mapping[str, Any] = dict(extensions or {})
        self._headers = tuple(headers)

    @property
    def headers(self) -> list[tuple[str, str]]:
        """HTTP response headers that go with this error's response."""
        return list(self._headers)

    def to_problem(self, *, type_base: str | None = None, instance: str | None = None) -> Problem:
        """Render this error as an RFC 9457 problem for a client.

        Args:
            type_base: when given (e.g. ``"https://errors.example.com/"``) the
                problem ``type`` is ``type_base + slug`` and the title the
                class's own; otherwise ``type`` is ``about:blank`` and the
                title the HTTP reason phrase, as RFC 9457 section 4.2.1 asks.
            instance: a URI reference naming this occurrence.
        """
        from apisec.problems import Problem, reason_phrase  # noqa: PLC0415 - the one seam

        if type_base is None:
            type_, title = "about:blank", reason_phrase(self.status)
        else:
            type_, title = type_base + self.slug, self.title or reason_phrase(self.status)
        if self.status >= 500:
            return Problem(status=self.status, title=title, type=type_, instance=instance)
        return Problem(
            status=self.status,
            title=title,
            detail=self.detail,
            type=type_,
            instance=instance,
            extensions=self.extensions,
        )


class ConfigurationError(ApiSecError, ValueError):
    """The configuration is invalid or unsafe; raised when it is built."""

    status = 500
    slug = "configuration-error"


class StoreError(ApiSecError):
    """A storage backend failed; always raised ``from`` the backend's exception."""

    status = 503
    slug = "store-unavailable"
    title = "Storage backend unavailable"


@attrs.frozen
class FieldError:
    """One failing input field: where, what is wrong, and a stable code.

    ``field`` is a dotted path (``"items.0.name"``), ``message`` a sentence
    for humans, ``code`` a machine-readable reason (``"too_long"``).
    Also exported by :mod:`apisec.problems`.
    """

    field: str = attrs.field(validator=attrs.validators.instance_of(str))
    message: str = attrs.field(validator=attrs.validators.instance_of(str))
    code: str = attrs.field(validator=attrs.validators.instance_of(str))

    @classmethod
    def coerce(cls, value: FieldError | Mapping[str, str]) -> FieldError:
        """Accept a ``FieldError`` or a mapping with its three keys."""
        if isinstance(value, FieldError):
            return value
        if not isinstance(value, Mapping):
            raise ConfigurationError("a field error must be a FieldError or a mapping")
        try:
            return cls(field=value["field"], message=value["message"], code=value["code"])
        except KeyError as exc:
            raise ConfigurationError(f"field error mapping lacks {exc.args[0]!r}") from None
        except TypeError as exc:
            raise ConfigurationError("field error members must be strings") from exc

    def to_dict(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message, "code": self.code}


class MalformedProblem(ApiSecError, ValueError):
    """A problem document received from elsewhere could not be used at all."""

    status = 502
    slug = "malformed-problem"


class ClientError(ApiSecError):
    """The request is at fault (4xx)."""

    status = 400
    slug = "bad-request"
    title = "Bad request"
    default_detail = "The request could not be processed."


class AuthenticationError(ClientError):
    """Credentials are missing or not valid."""

    status = 401
    slug = "unauthenticated"
    title = "Authentication required"
    default_detail = "Valid credentials are required."


class PermissionDenied(ClientError):
    """The caller is authenticated but may not do this."""

    status = 403
    slug = "forbidden"
    title = "Forbidden"
    default_detail = "You do not have permission to perform this action."


class NotFound(ClientError):
    """The resource does not exist, or the caller may not learn that it does."""

    status = 404
    slug = "not-found"
    title = "Not found"
    default_detail = "The requested resource was not found."


class PayloadTooLarge(ClientError):
    """The request body is larger than allowed."""

    status = 413
    slug = "payload-too-large"
    title = "Payload too large"
    default_detail = "The request body is too large."


class ValidationError(ClientError):
    """Input failed validation; carries every failing field at once.

    The fields travel as data: in ``errors`` and in the ``errors`` extension
    of its 422 problem (the one :func:`apisec.problems.validation_problem` builds).
    """

    status = 422
    slug = "validation-failed"
    title = "Validation failed"
    default_detail = "The request contains invalid fields."

    def __init__(self, errors: Iterable[FieldError | Mapping[str, str]], message: str = "") -> None:
        self.errors: tuple[FieldError, ...] = tuple(FieldError.coerce(e) for e in errors)
        if not self.errors:
            raise ConfigurationError("ValidationError needs at least one field error")
        super().__init__(
            message or f"{len(self.errors)} invalid field(s)",
            extensions={"errors": [e.to_dict() for e in self.errors]},
        )
