"""Security audit events, through the stdlib logger ``apisec.audit``.

Every apisec module reports what a security team wants to see —
authentication failures, key usage, refresh-token reuse, rate-limit denials,
webhook failures — with :func:`emit`. Records carry structured ``extra``
fields (``event``, ``principal``, ``client``, ``reason``, ``details``) that a
JSON formatter can ship as they are::

    >>> emit(AuditEvent.AUTH_FAILURE, principal="user_42", client="203.0.113.9",
    ...      reason="expired")

Nothing secret can reach a record: every value is cleaned before the record
is built. Anything shaped like a credential — a JWT, an ``Authorization``
value, a long random-looking string such as an API key or webhook secret —
is replaced by ``[REDACTED]``, control characters are escaped (no forged log
lines), and only then are strings cut to 200 characters, so a credential
never survives in part. Every detail whose *name* sounds secret
(``password``, ``pw``, ``session``, ``code_verifier``, ``mfa_code``...) is
redacted whatever its value; detail names are cleaned like values. Values
that are not plain scalars are logged by type name only, never by ``repr``.

Each event has a level (failures WARNING, token reuse and store failures
ERROR, routine usage INFO); :func:`set_event_level` changes it for the
whole process, e.g. to keep a flood of ``ratelimit.denied`` out of the
WARNING stream. The ``apisec`` logger has a ``NullHandler``: nothing is
printed unless the application configures logging.

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
    "event_level",
    "redact",
    "set_event_level",
]

AUDIT_LOGGER_NAME: Final = "apisec.audit"
REDACTED: Final = "[REDACTED]"
_MAX_TEXT = 200
#: Longer strings are cut here *before* redaction (bounding its cost); the
#: partial word at the cut is dropped, so no credential is left half-seen.
_MAX_SCAN = 1024
_MAX_NAME = 64

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

# Detail names that announce a secret. A name is secret when, lower-cased and
# stripped of separators, it contains one of _SECRET_NAME_PARTS, or when one of
# its words (split at _ - . spaces and camelCase) is in _SECRET_NAME_WORDS.
# Identifiers and hints about a secret (key_id, token_type, key_hint) stay
# readable; a session's id never does: it is the credential itself.
_SECRET_NAME_PARTS = (
    "password",
    "passwd",
    "passphrase",
    "secret",
    "token",
    "authorization",
    "cookie",
    "session",
    "sessid",
    "apikey",
    "privatekey",
    "private",
    "signature",
    "credential",
    "pepper",
    "jwt",
    "bearer",
    "plaintext",
    "verifier",
    "assertion",
    "refresh",
    "csrf",
    "xsrf",
    "mfa",
    "totp",
    "hotp",
    "otp",
    "hmac",
    "cvv",
    "cvc",
)
_SECRET_NAME_WORDS = frozenset(
    {"pass", "pwd", "pw", "pin", "key", "auth", "code", "sid", "sig", "mac", "seed", "creds"}
)
_HARMLESS_LAST_WORDS = frozenset({"id", "hint", "type", "kind", "count", "prefix", "alg"})
_NEVER_HARMLESS = ("session", "sessid", "cookie", "csrf", "xsrf")
# "status_code" and friends name a public code, not a secret one.
_PUBLIC_CODES = frozenset(
    {"status", "error", "http", "response", "reason", "exit", "country", "currency", "language"}
)
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_NAME_SPLIT = re.compile(r"[^a-z0-9]+")

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


def _clean_text(text: str, limit: int = _MAX_TEXT) -> str:
    """Redact, then cut: a credential at the cut is gone before it could be halved."""
    if len(text) > _MAX_SCAN:
        cut = text[:_MAX_SCAN]
        if not cut[-1].isspace() and not text[_MAX_SCAN].isspace():
            # Drop the word the cut runs through (rsplit, not a regex: linear time).
            parts = cut.rsplit(None, 1)
            cut = parts[0] if len(parts) == 2 else ""
        text = cut + " …"
    text = redact(text)
    return text if len(text) <= limit else text[:limit] + "…"


def _clean(value: object) -> Scalar:
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, enum.Enum):
        return _clean(value.value)
    if isinstance(value, str):
        return _clean_text(value)
    # Never repr an unknown object: it may hold a secret.
    return f"<{type(value).__name__}>"


def _is_secret_name(name: str) -> bool:
    words = [w for w in _NAME_SPLIT.split(_CAMEL.sub("_", name).lower()) if w]
    squashed = "".join(words)
    if (
        words
        and words[-1] in _HARMLESS_LAST_WORDS
        and not any(part in squashed for part in _NEVER_HARMLESS)
    ):
        return False
    if any(part in squashed for part in _SECRET_NAME_PARTS):
        return True
    for index, word in enumerate(words):
        if word in _SECRET_NAME_WORDS:
            if word == "code" and index and words[index - 1] in _PUBLIC_CODES:
                continue
            return True
    return False


def _clean_details(details: dict[str, object]) -> dict[str, Scalar]:
    cleaned: dict[str, Scalar] = {}
    for raw_name, value in details.items():
        name = str(raw_name)
        clean_name = _clean_text(name, _MAX_NAME)
        secret = _is_secret_name(name) or _is_secret_name(clean_name)
        cleaned[clean_name] = REDACTED if secret else _clean(value)
    return cleaned


_LEVELS = {
    **{e.value: logging.ERROR for e in _ERROR_EVENTS},
    **{e.value: logging.INFO for e in _INFO_EVENTS},
}
# Levels the application chose with set_event_level.
_CONFIGURED: dict[str, int] = {}


def _event_name(event: AuditEvent | str) -> str:
    if isinstance(event, AuditEvent):
        return event._value_
    if not isinstance(event, str) or _CUSTOM_EVENT.fullmatch(event) is None:
        raise ConfigurationError(f"audit event names are dotted lower-case words, got {event!r}")
    return event


def set_event_level(event: AuditEvent | str, level: int | None) -> None:
    """Log ``event`` at ``level`` from now on, in the whole process (None: its default).

    Denials are attacker-driven volume: one WARNING per denied request is
    a cost an attacker controls. Lower the noisy ones, or raise the ones you
    page on:

    >>> set_event_level(AuditEvent.RATE_LIMIT_DENIED, logging.DEBUG)
    >>> event_level("ratelimit.denied") == logging.DEBUG
    True
    >>> set_event_level(AuditEvent.RATE_LIMIT_DENIED, None)  # back to WARNING
    """
    name = _event_name(event)
    if level is None:
        _CONFIGURED.pop(name, None)
        return
    if isinstance(level, bool) or not isinstance(level, int) or not 0 <= level <= 100:
        raise ConfigurationError("level must be a logging level such as logging.INFO")
    _CONFIGURED[name] = level


def event_level(event: AuditEvent | str) -> int:
    """The level ``event`` is logged at: configured, or its default."""
    name = _event_name(event)
    return _CONFIGURED.get(name, _LEVELS.get(name, logging.WARNING))


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
        level: this record's level; by default the event's (see
            :func:`set_event_level`; failures WARNING, token reuse and store
            failures ERROR, routine usage INFO).
        details: further scalar fields; secret-named ones are redacted.
    """
    name = _event_name(event)
    if level is None:
        level = _CONFIGURED.get(name)
        record_level = _LEVELS.get(name, logging.WARNING) if level is None else level
    else:
        record_level = level
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
        "details": _clean_details(details),
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
