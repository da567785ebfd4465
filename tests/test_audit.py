"""Audit events: structured records on apisec.audit, and secrets that never get in."""

from __future__ import annotations

import json
import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st

from apisec import ConfigurationError
from apisec.audit import REDACTED, AuditEvent, RedactingFilter, emit, redact

JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
    "eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ."
    "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)
API_KEY = "sk_live_4eC39HqLyjWDarjtT1zdp7dcQz8Rb1"
WEBHOOK_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
REFRESH = "rt_7Hk2mQ9vX4pL1sN8wE3rT6yU0iO5aZ2c"
PASSWORD = "correct horse battery staple"
SECRETS = (JWT, API_KEY, WEBHOOK_SECRET, REFRESH, PASSWORD, "hunter2")


class _Leaky:
    def __repr__(self) -> str:
        return f"<Leaky {API_KEY}>"

    def __str__(self) -> str:
        return API_KEY


def _everything_in(record: logging.LogRecord) -> str:
    """All text a handler or formatter could ever see of this record."""
    fmt = logging.Formatter("%(message)s %(event)s %(principal)s %(client)s %(reason)s %(details)s")
    return fmt.format(record) + repr(record.__dict__) + json.dumps(record.__dict__, default=repr)


def test_event_is_a_structured_record(audit_records: list[logging.LogRecord]) -> None:
    """emit produces one record with event, principal, client, reason and details fields."""
    emit(
        AuditEvent.AUTH_FAILURE,
        principal="user_42",
        client="203.0.113.9",
        reason="expired",
        key_id="k_1",
        attempts=3,
    )
    [record] = audit_records
    assert record.name == "apisec.audit"
    assert record.levelno == logging.WARNING
    assert record.event == "auth.failure"  # type: ignore[attr-defined]
    assert record.principal == "user_42"  # type: ignore[attr-defined]
    assert record.client == "203.0.113.9"  # type: ignore[attr-defined]
    assert record.reason == "expired"  # type: ignore[attr-defined]
    assert record.details == {"key_id": "k_1", "attempts": 3}  # type: ignore[attr-defined]
    assert record.getMessage() == "auth.failure principal=user_42 client=203.0.113.9 reason=expired"


@pytest.mark.parametrize(
    ("event", "level"),
    [
        (AuditEvent.API_KEY_USED, logging.INFO),
        (AuditEvent.RATE_LIMIT_DENIED, logging.WARNING),
        (AuditEvent.WEBHOOK_FAILURE, logging.WARNING),
        (AuditEvent.TOKEN_REUSE_DETECTED, logging.ERROR),
    ],
)
def test_events_have_sensible_default_levels(
    audit_records: list[logging.LogRecord], event: AuditEvent, level: int
) -> None:
    """Routine usage is INFO, failures WARNING, token reuse ERROR."""
    emit(event)
    assert audit_records[-1].levelno == level


def test_redaction_keeps_every_secret_out_of_every_record(
    audit_records: list[logging.LogRecord],
) -> None:
    """Secrets passed in any field, by name or by shape, never reach a record."""
    emit(
        AuditEvent.AUTH_FAILURE,
        principal=API_KEY,
        client=WEBHOOK_SECRET,
        reason=f"mismatch in {JWT}",
        password=PASSWORD,
        token=REFRESH,
        api_key="short",
        client_secret="hunter2",
        authorization=f"Bearer {JWT}",
        note=f"Bearer {REFRESH}",
        blob=_Leaky(),
        passphrase=PASSWORD,
        pin="1234",
        webhook_signature="v1,abc",
    )
    emit(AuditEvent.WEBHOOK_FAILURE, reason=_Leaky(), principal=_Leaky())
    emit("custom.event", level=logging.CRITICAL, detail_text=f"x {JWT} y")
    assert len(audit_records) == 3
    for record in audit_records:
        text = _everything_in(record)
        for secret in SECRETS:
            assert secret not in text
        assert "1234" not in text
    first = audit_records[0]
    assert first.details["password"] == REDACTED  # type: ignore[attr-defined]
    assert first.details["blob"] == "<_Leaky>"  # type: ignore[attr-defined]
    assert first.reason == f"mismatch in {REDACTED}"  # type: ignore[attr-defined]


def test_identifiers_and_hints_stay_readable(audit_records: list[logging.LogRecord]) -> None:
    """key_id, token_type, key_hint and UUID principals are not mistaken for secrets."""
    uuid = "123e4567-e89b-12d3-a456-426614174000"
    emit(
        AuditEvent.API_KEY_USED,
        principal=uuid,
        key_id="key_01",
        token_type="refresh",
        key_hint="sk_live_4eC3",
    )
    [record] = audit_records
    assert record.principal == uuid  # type: ignore[attr-defined]
    assert record.details == {  # type: ignore[attr-defined]
        "key_id": "key_01",
        "token_type": "refresh",
        "key_hint": "sk_live_4eC3",
    }


def test_control_characters_cannot_forge_log_lines(audit_records: list[logging.LogRecord]) -> None:
    """CR, LF and other controls from client data are escaped, not written."""
    emit(
        AuditEvent.AUTH_FAILURE,
        principal="alice\nINFO auth.success principal=admin",
        client="1.2.3.4\r\x1b[2J",
        reason="x\u2028y",
    )
    [record] = audit_records
    message = record.getMessage()
    assert "\n" not in message
    assert "\r" not in message
    assert "\x1b" not in message
    assert "\u2028" not in message
    assert "\\n" in message


def test_long_values_are_truncated(audit_records: list[logging.LogRecord]) -> None:
    """A huge client-controlled value cannot flood the logs."""
    emit(AuditEvent.AUTH_FAILURE, reason="a b " * 10_000)
    assert len(audit_records[0].reason) <= 201  # type: ignore[attr-defined]


def test_disabled_logger_builds_nothing(caplog: pytest.LogCaptureFixture) -> None:
    """When the audit logger is off for a level, emit returns without a record."""
    caplog.set_level(logging.ERROR, logger="apisec.audit")
    emit(AuditEvent.API_KEY_USED, principal="k")
    assert not [r for r in caplog.records if r.name == "apisec.audit"]


@pytest.mark.parametrize("name", ["Auth.Failure", "nodot", "a..b", "", "spa ce.x", 5])
def test_custom_event_names_are_checked(name: object) -> None:
    """Custom events must be dotted lower-case names."""
    with pytest.raises(ConfigurationError):
        emit(name)  # type: ignore[arg-type]


def test_redacting_filter_scrubs_other_loggers() -> None:
    """RedactingFilter removes credentials from any record's final message."""
    record = logging.LogRecord(
        "app", logging.INFO, __file__, 1, "got %s and %s", (JWT, API_KEY), None
    )
    assert RedactingFilter().filter(record)
    assert record.getMessage() == f"got {REDACTED} and {REDACTED}"


@given(st.text(max_size=300))
def test_redact_never_raises_and_never_leaves_controls(text: str) -> None:
    """redact is total, and its output has no raw control characters."""
    out = redact(text)
    assert not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in out)


@given(
    st.text(
        alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-", min_size=32
    )
)
def test_long_random_material_is_always_redacted(secret: str) -> None:
    """Any credential-like run of 32+ characters disappears, whatever surrounds it."""
    assert secret not in redact(f"value={secret};")
