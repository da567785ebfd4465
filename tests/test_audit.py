"""Audit events: structured records on apisec.audit, and secrets that never get in."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from apisec import ConfigurationError
from apisec.audit import (
    _MAX_SCAN,
    _MAX_TEXT,
    REDACTED,
    AuditEvent,
    RedactingFilter,
    emit,
    event_level,
    redact,
    set_event_level,
)

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


class TestRecords:
    def test_event_is_a_structured_record(self, audit_records: list[logging.LogRecord]) -> None:
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
        assert (
            record.getMessage()
            == "auth.failure principal=user_42 client=203.0.113.9 reason=expired"
        )

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
        self, audit_records: list[logging.LogRecord], event: AuditEvent, level: int
    ) -> None:
        """Routine usage is INFO, failures WARNING, token reuse ERROR."""
        emit(event)
        assert audit_records[-1].levelno == level


class TestRedaction:
    def test_redaction_keeps_every_secret_out_of_every_record(
        self,
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

    def test_identifiers_and_hints_stay_readable(
        self, audit_records: list[logging.LogRecord]
    ) -> None:
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

    def test_control_characters_cannot_forge_log_lines(
        self, audit_records: list[logging.LogRecord]
    ) -> None:
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

    def test_long_values_are_truncated(self, audit_records: list[logging.LogRecord]) -> None:
        """A huge client-controlled value cannot flood the logs."""
        emit(AuditEvent.AUTH_FAILURE, reason="a b " * 10_000)
        assert len(audit_records[0].reason) <= 201  # type: ignore[attr-defined]


class TestEmitting:
    def test_disabled_logger_builds_nothing(self, caplog: pytest.LogCaptureFixture) -> None:
        """When the audit logger is off for a level, emit returns without a record."""
        caplog.set_level(logging.ERROR, logger="apisec.audit")
        emit(AuditEvent.API_KEY_USED, principal="k")
        assert not [r for r in caplog.records if r.name == "apisec.audit"]

    @pytest.mark.parametrize("name", ["Auth.Failure", "nodot", "a..b", "", "spa ce.x", 5])
    def test_custom_event_names_are_checked(self, name: object) -> None:
        """Custom events must be dotted lower-case names."""
        with pytest.raises(ConfigurationError):
            emit(name)  # type: ignore[arg-type]


class TestRedactAndFilter:
    def test_redacting_filter_scrubs_other_loggers(self) -> None:
        """RedactingFilter removes credentials from any record's final message."""
        record = logging.LogRecord(
            "app", logging.INFO, __file__, 1, "got %s and %s", (JWT, API_KEY), None
        )
        assert RedactingFilter().filter(record)
        assert record.getMessage() == f"got {REDACTED} and {REDACTED}"

    @given(st.text(max_size=300))
    def test_redact_never_raises_and_never_leaves_controls(self, text: str) -> None:
        """redact is total, and its output has no raw control characters."""
        out = redact(text)
        assert not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in out)

    @given(
        st.text(
            alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-", min_size=32
        )
    )
    def test_long_random_material_is_always_redacted(self, secret: str) -> None:
        """Any credential-like run of 32+ characters disappears, whatever surrounds it."""
        assert secret not in redact(f"value={secret};")


class TestRedactBeforeTruncate:
    """A credential that straddles a cut never leaves part of itself in the record."""

    @pytest.mark.parametrize("secret", [API_KEY, JWT, WEBHOOK_SECRET, REFRESH])
    def test_every_offset_around_the_output_cut(
        self, audit_records: list[logging.LogRecord], secret: str
    ) -> None:
        """The secret starting anywhere from well before to just after character 200."""
        for offset in range(_MAX_TEXT - len(secret) - 5, _MAX_TEXT + 5):
            audit_records.clear()
            emit(AuditEvent.AUTH_FAILURE, reason="." * offset + " " + secret + " tail")
            _assert_no_piece_of(secret, _everything_in(audit_records[0]))

    @pytest.mark.parametrize("secret", [API_KEY, JWT])
    def test_every_offset_around_the_scan_cut(
        self, audit_records: list[logging.LogRecord], secret: str
    ) -> None:
        """Past the scan limit, a redacted run before it cannot pull half a secret into view."""
        for back in range(1, len(secret) + 3):
            audit_records.clear()
            filler = "A" * (_MAX_SCAN - back)  # one long run: redacted down to ten characters
            emit(AuditEvent.AUTH_FAILURE, reason=f"{filler} {secret} tail")
            text = _everything_in(audit_records[0])
            assert REDACTED in text
            _assert_no_piece_of(secret, text)


def _assert_no_piece_of(secret: str, text: str, piece: int = 8) -> None:
    for start in range(len(secret) - piece + 1):
        assert secret[start : start + piece] not in text, (secret[start : start + piece], text)


SECRET_NAME_CORES = [
    ["password"],
    ["passwd"],
    ["pass"],
    ["pwd"],
    ["pw"],
    ["new", "pw"],
    ["old", "password"],
    ["session"],
    ["session", "id"],
    ["sessionid"],
    ["sid"],
    ["code", "verifier"],
    ["refresh"],
    ["refresh", "token"],
    ["client", "assertion"],
    ["client", "secret"],
    ["mfa", "code"],
    ["auth", "code"],
    ["code"],
    ["otp"],
    ["totp"],
    ["pin"],
    ["api", "key"],
    ["apikey"],
    ["private", "key"],
    ["access", "token"],
    ["id", "token"],
    ["cookie"],
    ["set", "cookie"],
    ["authorization"],
    ["auth"],
    ["credentials"],
    ["signature"],
    ["sig"],
    ["hmac"],
    ["csrf"],
    ["xsrf", "token"],
    ["passphrase"],
    ["pepper"],
    ["seed"],
    ["jwt"],
    ["bearer"],
    ["cvv"],
]
STYLES: dict[str, Callable[[list[str]], str]] = {
    "snake": "_".join,
    "kebab": "-".join,
    "dotted": ".".join,
    "upper": lambda words: "_".join(words).upper(),
    "camel": lambda words: words[0] + "".join(w.title() for w in words[1:]),
    "pascal": lambda words: "".join(w.title() for w in words),
}


class TestSecretNames:
    @given(
        core=st.sampled_from(SECRET_NAME_CORES),
        prefix=st.lists(
            st.sampled_from(["new", "old", "user", "client", "x", "my", "raw"]), max_size=2
        ),
        style=st.sampled_from(sorted(STYLES)),
        value=st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=6, max_size=20),
    )
    def test_no_value_under_a_secret_sounding_name_survives(
        self, core: list[str], prefix: list[str], style: str, value: str
    ) -> None:
        """Any spelling (snake, kebab, camel, UPPER...) of a secret-sounding name is redacted."""
        name = STYLES[style]([*prefix, *core])
        records: list[logging.LogRecord] = []
        handler = _Collector(records)
        logger = logging.getLogger("apisec.audit")
        logger.addHandler(handler)
        old_level = logger.level
        logger.setLevel(logging.DEBUG)
        try:
            emit(AuditEvent.AUTH_FAILURE, **{name: "v=" + value})  # type: ignore[arg-type]
        finally:
            logger.removeHandler(handler)
            logger.setLevel(old_level)
        [record] = records
        assert record.details == {name: REDACTED}  # type: ignore[attr-defined]
        assert "v=" + value not in _everything_in(record)

    @pytest.mark.parametrize(
        "name",
        [
            "key_id",
            "token_type",
            "key_hint",
            "token_count",
            "scheme",
            "attempts",
            "status_code",
            "error_code",
            "action",
            "backend",
            "operation",
            "missing",
            "max_keys",
            "upward_count",
        ],
    )
    def test_identifiers_stay_readable(
        self, audit_records: list[logging.LogRecord], name: str
    ) -> None:
        """Names of identifiers, counts and public codes are not mistaken for secrets."""
        emit(AuditEvent.API_KEY_USED, **{name: "visible"})  # type: ignore[arg-type]
        assert audit_records[-1].details == {name: "visible"}  # type: ignore[attr-defined]

    def test_detail_names_are_cleaned_like_values(
        self, audit_records: list[logging.LogRecord]
    ) -> None:
        """A detail name with CR/LF or a credential in it is escaped and redacted."""
        details: dict[str, Any] = {
            "note\nINFO auth.success principal=admin": "x",
            f"k_{API_KEY}": "y",
            "n" * 500: 1,
        }
        emit(AuditEvent.AUTH_FAILURE, **details)
        record = audit_records[-1]
        names = list(record.details)  # type: ignore[attr-defined]
        assert names[0] == "note\\nINFO auth.success principal=admin"
        assert API_KEY not in _everything_in(record)
        assert all("\n" not in name and len(name) <= 65 for name in names)


class _Collector(logging.Handler):
    def __init__(self, records: list[logging.LogRecord]) -> None:
        super().__init__(logging.DEBUG)
        self.records = records

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


class TestSilentLibrary:
    def test_nothing_reaches_stderr_when_logging_is_unconfigured(self) -> None:
        """Denials, failures and errors print nothing unless the application configures logging."""
        code = (
            "from apisec.ratelimit import RateLimiter, FixedWindow;"
            "from apisec.audit import emit, AuditEvent;"
            "limiter = RateLimiter(FixedWindow(1, 60));"
            "[limiter.hit('k') for _ in range(3)];"
            "[emit(event) for event in AuditEvent]"
        )
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        )
        assert out.stderr == ""
        assert out.stdout == ""

    def test_a_configured_application_still_gets_every_event(self) -> None:
        """With logging.basicConfig, every event reaches the application's handler."""
        code = (
            "import logging; logging.basicConfig(level=logging.DEBUG, format='%(message)s');"
            "from apisec.audit import emit, AuditEvent;"
            "[emit(event) for event in AuditEvent]"
        )
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        )
        lines = [line.split()[0] for line in out.stderr.splitlines()]
        assert lines == [event.value for event in AuditEvent]


class TestEventLevels:
    def test_the_level_of_an_event_is_configurable(
        self, audit_records: list[logging.LogRecord]
    ) -> None:
        """set_event_level moves an event (the limiter's denials too) to another level, and back."""
        from apisec.ratelimit import FixedWindow, RateLimiter

        limiter = RateLimiter(FixedWindow(1, 60))
        limiter.hit("k")
        set_event_level(AuditEvent.RATE_LIMIT_DENIED, logging.DEBUG)
        try:
            assert event_level(AuditEvent.RATE_LIMIT_DENIED) == logging.DEBUG
            limiter.hit("k")
            assert audit_records[-1].levelno == logging.DEBUG
            emit(AuditEvent.RATE_LIMIT_DENIED, level=logging.CRITICAL)  # a call's own level wins
            assert audit_records[-1].levelno == logging.CRITICAL
        finally:
            set_event_level(AuditEvent.RATE_LIMIT_DENIED, None)
        limiter.hit("k")
        assert audit_records[-1].levelno == logging.WARNING

    def test_a_lowered_event_costs_nothing_when_filtered(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Below the logger's level, a lowered event builds no record at all."""
        caplog.set_level(logging.INFO, logger="apisec.audit")
        set_event_level("custom.noisy", logging.DEBUG)
        try:
            emit("custom.noisy", principal="x")
        finally:
            set_event_level("custom.noisy", None)
        assert not [r for r in caplog.records if r.name == "apisec.audit"]

    @pytest.mark.parametrize(
        ("event", "level"),
        [("Bad Name", logging.INFO), ("a.b", "INFO"), ("a.b", True), ("a.b", -1)],
    )
    def test_bad_level_configuration(self, event: str, level: Any) -> None:
        """Unknown event names and non-level values are configuration errors."""
        with pytest.raises(ConfigurationError):
            set_event_level(event, level)


class TestCaptureAudit:
    def test_it_collects_every_level_and_restores_the_logger(self) -> None:
        """capture_audit sees DEBUG events too, then leaves level and handlers as they were."""
        from apisec.testing import capture_audit

        logger = logging.getLogger("apisec.audit")
        handlers, level = list(logger.handlers), logger.level
        with capture_audit() as records:
            emit(AuditEvent.AUTH_FAILURE, principal="u", level=logging.DEBUG)
            emit(AuditEvent.TOKEN_ISSUED, principal="u")
        emit(AuditEvent.AUTH_FAILURE, principal="after")
        assert [(r.event, r.levelno) for r in records] == [  # type: ignore[attr-defined]
            ("auth.failure", logging.DEBUG),
            ("token.issued", logging.INFO),
        ]
        assert logger.handlers == handlers and logger.level == level

    def test_blocks_nest_and_each_sees_its_own_events(self) -> None:
        """An inner block collects its events; the outer one collects them too."""
        from apisec.testing import capture_audit

        with capture_audit() as outer:
            emit(AuditEvent.AUTH_FAILURE, principal="a")
            with capture_audit() as inner:
                emit(AuditEvent.AUTH_FAILURE, principal="b")
        assert [r.principal for r in inner] == ["b"]  # type: ignore[attr-defined]
        assert [r.principal for r in outer] == ["a", "b"]  # type: ignore[attr-defined]
