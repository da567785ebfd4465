"""Security audit events, through the stdlib logger ``apisec.audit``.

Every apisec module reports what a security team wants to see —
authentication failures, key usage, refresh-token reuse, rate-limit denials,
webhook failures — with :func:`emit`. Records carry structured ``extra``
fields (``event``, ``principal``, ``client``, ``reason``, ``details``) that a
JSON formatter can ship as they are::

    >>> emit(AuditEvent.AUTH_FAILURE, principal="user_42", client="203.0.113.9",
    ...      reason="expired")

Nothing secret can reach a record: every value is cleaned before the record
is built. Strings are cut to 200 characters, control characters escaped (no
forged log lines), and anything shaped like a credential — a JWT, an
``Authorization`` value, a long random-looking string such as an API key or
webhook secret — is replaced by ``[REDACTED]``; so is every detail whose
*name* says it is secret (``password``, ``token``, ``secret``...). Values
that are not plain scalars are logged by type name only, never by ``repr``.

:class:`RedactingFilter` applies the same scrubbing to any other logger's
records.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import re
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Final

from apisec.errors import ConfigurationError

__all__ = [
    "AUDIT_LOGGER_NAME",
    "REDACTED",
    "AuditEvent",
    "RedactingFilter",
    "audit_context",
    "emit",
    "redact",
]

AUDIT_LOGGER_NAME: Final = "apisec.audit"
REDACTED: Final = "[REDACTED]"
_MAX_TEXT = 200

logger = logging.getLogger(AUDIT_LOGGER_NAME)


class AuditEvent(str, enum.Enum):
    """Names of the security events apisec emits."""

    AUTH_SUCCESS = "auth.success"
    AUTH_FAILURE = "auth.failure"
    PERMISSION_DENIED = "authz.denied"
    TOKEN_ISSUED = "token.issued"
    TOKEN_REFRESHED = "token.refreshed"
    TOKEN_REVOKED = "token.revoked"
    TOKEN_REUSE_DETECTED = "token.reuse_detected"
    API_KEY_CREATED = "apikey.created"
    API_KEY_USED = "apikey.used"
    API_KEY_REVOKED = "apikey.revoked"
    API_KEY_ROTATED = "apikey.rotated"
    RATE_LIMIT_DENIED = "ratelimit.denied"
    WEBHOOK_FAILURE = "webhook.failure"
    CORS_REJECTED = "cors.rejected"
    SSRF_BLOCKED = "ssrf.blocked"
    LOGIN_FAILURE = "login.failure"
    LOGIN_LOCKED = "login.locked"
    STORE_FAILURE = "store.failure"
    OAUTH_TOKEN_DENIED = "oauth.token_denied"
    OAUTH_CALLBACK_REJECTED = "oauth.callback_rejected"

    def __str__(self) -> str:
        return self.value


_ERROR_EVENTS = frozenset({AuditEvent.TOKEN_REUSE_DETECTED, AuditEvent.STORE_FAILURE})
_INFO_EVENTS = frozenset(
    {
        AuditEvent.AUTH_SUCCESS,
        AuditEvent.TOKEN_ISSUED,
        AuditEvent.TOKEN_REFRESHED,
        AuditEvent.TOKEN_REVOKED,
        AuditEvent.API_KEY_CREATED,
        AuditEvent.API_KEY_USED,
        AuditEvent.API_KEY_REVOKED,
        AuditEvent.API_KEY_ROTATED,
    }
)
_CUSTOM_EVENT = re.compile(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+")

# Detail names that announce a secret. Identifiers and hints about a secret
# (key_id, token_type, key_hint) are not secret and stay readable.
_SECRET_NAME_PARTS = (
    "password",
    "passphrase",
    "secret",
    "token",
    "authorization",
    "cookie",
    "apikey",
    "private",
    "signature",
    "credential",
    "pepper",
    "jwt",
    "bearer",
    "plaintext",
)
_SECRET_NAME_WORDS = frozenset({"pass", "pwd", "pin", "otp", "key", "auth"})
_HARMLESS_NAME_SUFFIX = re.compile(r"_(id|hint|type|kind|count|prefix|alg)$", re.IGNORECASE)

_SECRET_SHAPES = re.compile(
    r"""
      eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_.-]*        # JWS / JWE compact serialization
    | \b(?:bearer|basic|digest|token)\s+\S+    # an Authorization header value
    | [A-Za-z0-9+/=_-]{32,}                     # long random-looking material
    """,
    re.IGNORECASE | re.VERBOSE,
)
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _shape_redactor(match: re.Match[str]) -> str:
    text = match.group(0)
    return text if _UUID.fullmatch(text) else REDACTED


def redact(text: str) -> str:
    """Replace credential-shaped parts of ``text`` and escape control characters.

    >>> redact("token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln for user 7")
    '[REDACTED] for user 7'
    """
    text = _SECRET_SHAPES.sub(_shape_redactor, text)
    return _CONTROL.sub(lambda m: m.group(0).encode("unicode_escape").decode("ascii"), text)


Scalar = str | int | float | bool | None


def _clean(value: object) -> Scalar:
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, enum.Enum):
        return _clean(value.value)
    if isinstance(value, str):
        if len(value) > _MAX_TEXT:
            value = value[:_MAX_TEXT] + "…"
        return redact(value)
    # Never repr an unknown object: it may hold a secret.
    return f"<{type(value).__name__}>"


def _is_secret_name(name: str) -> bool:
    if _HARMLESS_NAME_SUFFIX.search(name):
        return False
    lowered = name.lower()
    squashed = re.sub(r"[^a-z0-9]", "", lowered)
    if any(part in squashed for part in _SECRET_NAME_PARTS):
        return True
    return not _SECRET_NAME_WORDS.isdisjoint(re.split(r"[^a-z0-9]+", lowered))


def _clean_detail(name: str, value: object) -> Scalar:
    return REDACTED if _is_secret_name(name) else _clean(value)


_LEVELS = {
    **{e.value: logging.ERROR for e in _ERROR_EVENTS},
    **{e.value: logging.INFO for e in _INFO_EVENTS},
}


# (client, principal) of the request being handled, set by the adapters.
_CONTEXT: ContextVar[tuple[object, object]] = ContextVar("apisec_audit", default=(None, None))


@contextlib.contextmanager
def audit_context(*, client: object = None, principal: object = None) -> Iterator[None]:
    """Fill in ``client`` and ``principal`` of every event emitted inside the block.

    The adapters wrap each request in it, so an event raised deep in the core
    (a bad API key, a denied hit) still says who and where from. Explicit
    arguments to :func:`emit` win; nested blocks keep what they do not set.

    >>> with audit_context(client="203.0.113.9"):
    ...     emit(AuditEvent.AUTH_FAILURE, reason="expired")  # client filled in
    """
    outer_client, outer_principal = _CONTEXT.get()
    token = _CONTEXT.set(
        (
            outer_client if client is None else client,
            outer_principal if principal is None else principal,
        )
    )
    try:
        yield
    finally:
        _CONTEXT.reset(token)


def emit(
    event: AuditEvent | str,
    *,
    principal: object = None,
    client: object = None,
    reason: object = None,
    level: int | None = None,
    **details: object,
) -> None:
    """Record one security event on the ``apisec.audit`` logger.

    Args:
        event: an :class:`AuditEvent`, or a custom dotted lower-case name
            such as ``"billing.refund_denied"``.
        principal: who (a user id, API key id, token subject) — never a secret.
        client: where from (the client address as the adapter resolved it).
        reason: a short machine-readable cause (``"expired"``, ``"unknown_kid"``).
        level: override the event's default level (failures WARNING, token
            reuse and store failures ERROR, routine usage INFO).
        details: further scalar fields; secret-named ones are redacted.
    """
    if not isinstance(event, AuditEvent) and (
        not isinstance(event, str) or _CUSTOM_EVENT.fullmatch(event) is None
    ):
        raise ConfigurationError(f"audit event names are dotted lower-case words, got {event!r}")
    name: str = event._value_ if isinstance(event, AuditEvent) else event
    record_level = _LEVELS.get(name, logging.WARNING) if level is None else level
    if not logger.isEnabledFor(record_level):
        return
    if principal is None or client is None:
        context_client, context_principal = _CONTEXT.get()
        principal = context_principal if principal is None else principal
        client = context_client if client is None else client
    fields = {
        "event": name,
        "principal": _clean(principal),
        "client": _clean(client),
        "reason": _clean(reason),
        "details": {str(k): _clean_detail(str(k), v) for k, v in details.items()},
    }
    logger.log(
        record_level,
        "%s principal=%s client=%s reason=%s",
        name,
        fields["principal"],
        fields["client"],
        fields["reason"],
        extra=fields,
    )


class RedactingFilter(logging.Filter):
    """A logging filter that scrubs credential-shaped text from any record.

    >>> handler = logging.StreamHandler()
    >>> handler.addFilter(RedactingFilter())
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a broken format string: keep the template only
            message = str(record.msg)
        record.msg = redact(message)
        record.args = None
        return True
