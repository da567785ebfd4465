"""Webhook signing and verification: vectors, round trips, and every way to attack it."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apisec import ConfigurationError
from apisec.testing import FakeClock
from apisec.webhooks import (
    AsyncWebhookVerifier,
    InvalidSignature,
    MalformedHeader,
    MemoryReplayGuard,
    MissingHeader,
    ReplayedWebhook,
    StaleTimestamp,
    WebhookError,
    WebhookPayloadTooLarge,
    WebhookSigner,
    WebhookVerifier,
    generate_keypair,
    generate_secret,
)

VECTORS = json.loads((Path(__file__).parent / "vectors" / "webhooks-pkce.json").read_text())
SW = VECTORS["standard_webhooks"]
GH = VECTORS["github"]
SCHEMES = ["standard", "stripe", "github", "hmac-sha256"]
TIMESTAMPED = ["standard", "stripe", "hmac-sha256"]
BODY = b'{"type":"invoice.paid","data":{"amount":4200,"currency":"eur"}}'


def pair(scheme: str, clock: FakeClock, **kw: Any) -> tuple[WebhookSigner, WebhookVerifier]:
    secret = generate_secret(scheme)
    return WebhookSigner(secret, scheme, clock=clock), WebhookVerifier(
        secret, scheme, clock=clock, **kw
    )


def async_pair(
    scheme: str, clock: FakeClock, **kw: Any
) -> tuple[WebhookSigner, AsyncWebhookVerifier]:
    secret = generate_secret(scheme)
    return WebhookSigner(secret, scheme, clock=clock), AsyncWebhookVerifier(
        secret, scheme, clock=clock, **kw
    )


class TestPublishedVectors:
    def test_standard_webhooks_reference_vector_verifies(self) -> None:
        """The Standard Webhooks reference vector verifies at its own timestamp."""
        clock = FakeClock(SW["timestamp"])
        headers = {
            "webhook-id": SW["msg_id"],
            "webhook-timestamp": str(SW["timestamp"]),
            "webhook-signature": SW["signature"],
        }
        WebhookVerifier(SW["secret"], clock=clock).verify(SW["body"].encode(), headers)

    def test_standard_webhooks_reference_vector_is_reproduced_by_the_signer(self) -> None:
        """Signing the reference message yields the reference signature byte for byte."""
        signer = WebhookSigner(SW["secret"], clock=FakeClock(SW["timestamp"]))
        headers = signer.sign(SW["body"].encode(), msg_id=SW["msg_id"])
        assert headers == {
            "webhook-id": SW["msg_id"],
            "webhook-timestamp": str(SW["timestamp"]),
            "webhook-signature": SW["signature"],
        }

    def test_github_documented_example(self) -> None:
        """GitHub's documented secret and body give its documented signature, both ways."""
        headers = WebhookSigner(GH["secret"], "github").sign(GH["body"].encode())
        assert headers == {GH["header"]: GH["signature"]}
        WebhookVerifier(GH["secret"], "github").verify(
            GH["body"].encode(), {GH["header"]: GH["signature"]}
        )

    def test_stripe_signature_matches_stripes_documented_construction(self) -> None:
        """Stripe: HMAC-SHA256 keyed with the whole secret string over "{t}.{body}", hex."""
        secret = "whsec_" + "A" * 32
        t = 1_700_000_000
        expected = hmac.new(secret.encode(), f"{t}.".encode() + BODY, hashlib.sha256).hexdigest()
        headers = WebhookSigner(secret, "stripe", clock=FakeClock(t)).sign(BODY)
        assert headers == {"Stripe-Signature": f"t={t},v1={expected}"}
        WebhookVerifier(secret, "stripe", clock=FakeClock(t + 10)).verify(BODY, headers)

    def test_hmac_sha256_scheme_construction(self) -> None:
        """Plain HMAC: v1=<hex> of HMAC-SHA256 over "{ts}.{body}" with the secret's bytes."""
        secret = generate_secret("hmac-sha256")
        t = 1_700_000_000
        expected = hmac.new(secret.encode(), f"{t}.".encode() + BODY, hashlib.sha256).hexdigest()
        headers = WebhookSigner(secret, "hmac-sha256", clock=FakeClock(t)).sign(BODY)
        assert headers == {"X-Webhook-Timestamp": str(t), "X-Webhook-Signature": f"v1={expected}"}


class TestInteroperability:
    def test_interop_with_the_standardwebhooks_package_both_ways(self) -> None:
        """Our signatures pass the reference library, and its signatures pass ours."""
        from standardwebhooks.webhooks import Webhook

        secret = generate_secret("standard")
        headers = WebhookSigner(secret).sign(BODY)
        assert Webhook(secret).verify(BODY, headers) == json.loads(BODY)

        now = datetime.now(tz=timezone.utc)
        theirs = Webhook(secret).sign("msg_interop1", now, BODY.decode())
        WebhookVerifier(secret).verify(
            BODY,
            {
                "webhook-id": "msg_interop1",
                "webhook-timestamp": str(int(now.timestamp())),
                "webhook-signature": theirs,
            },
        )


class TestRoundTrips:
    @pytest.mark.parametrize("scheme", SCHEMES)
    def test_round_trip_for_every_scheme(self, scheme: str, clock: FakeClock) -> None:
        """What a signer signs, a verifier with the same secret accepts."""
        signer, verifier = pair(scheme, clock)
        verifier.verify(BODY, signer.sign(BODY))

    @pytest.mark.parametrize("scheme", SCHEMES)
    def test_other_secret_fails(self, scheme: str, clock: FakeClock) -> None:
        """A verifier holding a different secret refuses the delivery."""
        signer, _ = pair(scheme, clock)
        _, other = pair(scheme, clock)
        with pytest.raises(InvalidSignature):
            other.verify(BODY, signer.sign(BODY))

    @pytest.mark.parametrize("scheme", SCHEMES)
    def test_rotation_signer_emits_both_and_either_receiver_accepts(
        self, scheme: str, clock: FakeClock
    ) -> None:
        """During rotation the signer signs with old and new; receivers with either accept."""
        old, new = generate_secret(scheme), generate_secret(scheme)
        headers = WebhookSigner([new, old], scheme, clock=clock).sign(BODY)
        for secrets_ in ([old], [new], [new, old]):
            WebhookVerifier(secrets_, scheme, clock=clock).verify(BODY, headers)
        with pytest.raises(InvalidSignature):
            WebhookVerifier(generate_secret(scheme), scheme, clock=clock).verify(BODY, headers)

    @pytest.mark.parametrize("scheme", SCHEMES)
    def test_verifier_with_several_secrets_accepts_any(self, scheme: str, clock: FakeClock) -> None:
        """A receiver rotating its secret accepts deliveries signed with the old one."""
        old, new = generate_secret(scheme), generate_secret(scheme)
        headers = WebhookSigner(old, scheme, clock=clock).sign(BODY)
        WebhookVerifier([new, old], scheme, clock=clock).verify(BODY, headers)

    def test_standard_header_with_garbage_and_unknown_versions_still_finds_the_good_one(
        self,
        clock: FakeClock,
    ) -> None:
        """Unknown versions and junk entries are skipped; one valid v1 suffices."""
        signer, verifier = pair("standard", clock)
        headers = signer.sign(BODY)
        good = headers["webhook-signature"]
        headers["webhook-signature"] = f"v2,abc v1,!!notbase64!! v1a,%%% junk {good}"
        verifier.verify(BODY, headers)

    def test_stripe_several_v1_one_right(self, clock: FakeClock) -> None:
        """Stripe headers with several v1 entries pass when any one matches."""
        signer, verifier = pair("stripe", clock)
        header = signer.sign(BODY)["Stripe-Signature"]
        t, v1 = header.split(",")
        verifier.verify(BODY, {"Stripe-Signature": f"{t},v1={'0' * 64},{v1},v0=abc"})

    def test_stripe_v0_alone_never_passes(self, clock: FakeClock) -> None:
        """A correct signature under scheme v0 is ignored: only v1 counts."""
        secret = generate_secret("stripe")
        t = int(clock())
        v0 = hmac.new(secret.encode(), f"{t}.".encode() + BODY, hashlib.sha256).hexdigest()
        with pytest.raises(InvalidSignature):
            WebhookVerifier(secret, "stripe", clock=clock).verify(
                BODY, {"Stripe-Signature": f"t={t},v0={v0}"}
            )

    def test_github_sha1_header_is_never_enough(self) -> None:
        """The legacy X-Hub-Signature (SHA-1) alone is a missing header, not a pass."""
        sha1 = hmac.new(GH["secret"].encode(), GH["body"].encode(), hashlib.sha1).hexdigest()
        with pytest.raises(MissingHeader):
            WebhookVerifier(GH["secret"], "github").verify(
                GH["body"].encode(), {"X-Hub-Signature": f"sha1={sha1}"}
            )


class TestAsymmetricV1a:
    def test_v1a_ed25519_round_trip_with_public_key_only(self, clock: FakeClock) -> None:
        """whsk_ signs v1a; a receiver holding only whpk_ verifies it."""
        signing, public = generate_keypair()
        headers = WebhookSigner(signing, clock=clock).sign(BODY)
        assert headers["webhook-signature"].startswith("v1a,")
        WebhookVerifier(public, clock=clock).verify(BODY, headers)
        with pytest.raises(InvalidSignature):
            WebhookVerifier(public, clock=clock).verify(BODY + b" ", headers)
        _, other_public = generate_keypair()
        with pytest.raises(InvalidSignature):
            WebhookVerifier(other_public, clock=clock).verify(BODY, headers)

    def test_mixed_v1_and_v1a_header(self, clock: FakeClock) -> None:
        """A signer with both kinds emits both; each kind of receiver finds its own."""
        signing, public = generate_keypair()
        secret = generate_secret()
        headers = WebhookSigner([secret, signing], clock=clock).sign(BODY)
        versions = [e.split(",")[0] for e in headers["webhook-signature"].split(" ")]
        assert versions == ["v1", "v1a"]
        WebhookVerifier(public, clock=clock).verify(BODY, headers)
        WebhookVerifier(secret, clock=clock).verify(BODY, headers)

    def test_hmac_receiver_ignores_v1a_and_public_keys_cannot_sign(self, clock: FakeClock) -> None:
        """An HMAC-only receiver cannot be satisfied by v1a; whpk_ keys cannot sign."""
        signing, public = generate_keypair()
        headers = WebhookSigner(signing, clock=clock).sign(BODY)
        with pytest.raises(InvalidSignature):
            WebhookVerifier(generate_secret(), clock=clock).verify(BODY, headers)
        with pytest.raises(ConfigurationError, match="public"):
            WebhookSigner(public)

    def test_v1a_garbage_signatures_are_typed_failures(self, clock: FakeClock) -> None:
        """Bad base64, wrong lengths and junk in v1a entries give InvalidSignature only."""
        _, public = generate_keypair()
        verifier = WebhookVerifier(public, clock=clock)
        for sig in ["v1a,@@@", "v1a,AAAA", "v1a," + base64.b64encode(b"x" * 64).decode(), "v1a,=="]:
            headers = {
                "webhook-id": "msg_1",
                "webhook-timestamp": str(int(clock())),
                "webhook-signature": sig,
            }
            with pytest.raises(InvalidSignature):
                verifier.verify(BODY, headers)


class TestTamperingAndTheRawBody:
    @pytest.mark.parametrize("scheme", SCHEMES)
    def test_tampered_body_fails(self, scheme: str, clock: FakeClock) -> None:
        """Changing one byte of the body breaks the signature."""
        signer, verifier = pair(scheme, clock)
        headers = signer.sign(BODY)
        with pytest.raises(InvalidSignature):
            verifier.verify(BODY.replace(b"4200", b"4201"), headers)

    @pytest.mark.parametrize("scheme", SCHEMES)
    def test_reserialized_json_fails(self, scheme: str, clock: FakeClock) -> None:
        """Parsing and re-serializing the JSON body changes its bytes, so it fails."""
        signer, verifier = pair(scheme, clock)
        headers = signer.sign(BODY)
        reserialized = json.dumps(json.loads(BODY)).encode()
        assert reserialized != BODY
        with pytest.raises(InvalidSignature):
            verifier.verify(reserialized, headers)

    def test_standard_signed_metadata_cannot_be_swapped(self, clock: FakeClock) -> None:
        """webhook-id and webhook-timestamp are signed: changing either fails."""
        signer, verifier = pair("standard", clock)
        headers = signer.sign(BODY, msg_id="msg_original")
        with pytest.raises(InvalidSignature):
            verifier.verify(BODY, {**headers, "webhook-id": "msg_other"})
        with pytest.raises(InvalidSignature):
            verifier.verify(BODY, {**headers, "webhook-timestamp": str(int(clock()) - 1)})

    @pytest.mark.parametrize("scheme", SCHEMES)
    def test_binary_non_utf8_bodies_verify(self, scheme: str, clock: FakeClock) -> None:
        """Bodies are bytes: non-UTF-8 payloads sign and verify, never raise decode errors."""
        signer, verifier = pair(scheme, clock)
        body = bytes(range(256))
        verifier.verify(body, signer.sign(body))
        with pytest.raises(InvalidSignature):
            verifier.verify(body[::-1], signer.sign(body))

    def test_decoded_str_payload_is_refused(self, clock: FakeClock) -> None:
        """A str body is a programming error: only raw bytes can be verified correctly."""
        signer, verifier = pair("standard", clock)
        headers = signer.sign(BODY)
        with pytest.raises(ConfigurationError, match="raw body bytes"):
            verifier.verify(BODY.decode(), headers)  # type: ignore[arg-type]
        verifier.verify(bytearray(BODY), headers)  # type: ignore[arg-type]
        verifier.verify(memoryview(BODY), headers)  # type: ignore[arg-type]

    @pytest.mark.parametrize("scheme", SCHEMES)
    def test_body_size_cap(self, scheme: str, clock: FakeClock) -> None:
        """A body over max_body_bytes is refused with 413 before any hashing."""
        signer, verifier = pair(scheme, clock, max_body_bytes=1024)
        big = b"x" * 1025
        with pytest.raises(WebhookPayloadTooLarge) as caught:
            verifier.verify(big, signer.sign(big))
        assert caught.value.status == 413
        verifier.verify(b"x" * 1024, signer.sign(b"x" * 1024))


class TestTime:
    @pytest.mark.parametrize("scheme", TIMESTAMPED)
    @pytest.mark.parametrize("offset", [-301, 301, -(10**6), 10**6])
    def test_tolerance_is_symmetric(self, scheme: str, offset: int, clock: FakeClock) -> None:
        """Timestamps too far in the past or in the future are both stale."""
        secret = generate_secret(scheme)
        headers = WebhookSigner(secret, scheme).sign(BODY, timestamp=int(clock()) + offset)
        with pytest.raises(StaleTimestamp):
            WebhookVerifier(secret, scheme, clock=clock).verify(BODY, headers)

    @pytest.mark.parametrize("scheme", TIMESTAMPED)
    @pytest.mark.parametrize("offset", [-300, 0, 300])
    def test_tolerance_edges_pass(self, scheme: str, offset: int, clock: FakeClock) -> None:
        """Exactly tolerance seconds away, either way, still passes."""
        secret = generate_secret(scheme)
        headers = WebhookSigner(secret, scheme).sign(BODY, timestamp=int(clock()) + offset)
        WebhookVerifier(secret, scheme, clock=clock).verify(BODY, headers)

    def test_github_has_no_timestamp_to_go_stale(self) -> None:
        """GitHub deliveries carry no timestamp, so age does not matter to the signature."""
        clock = FakeClock()
        signer, verifier = pair("github", clock)
        headers = signer.sign(BODY)
        clock.advance(10**6)
        verifier.verify(BODY, headers)


class TestHeaders:
    def test_header_names_are_case_insensitive_and_raw_asgi_pairs_work(
        self, clock: FakeClock
    ) -> None:
        """Mixed-case names and ASGI (bytes, bytes) pairs are read the same."""
        signer, verifier = pair("standard", clock)
        headers = signer.sign(BODY)
        verifier.verify(BODY, {k.upper(): v for k, v in headers.items()})
        verifier.verify(BODY, [(k.title().encode(), v.encode()) for k, v in headers.items()])

    @pytest.mark.parametrize("scheme", SCHEMES)
    def test_each_missing_header_is_reported(self, scheme: str, clock: FakeClock) -> None:
        """Dropping any required header gives MissingHeader."""
        signer, verifier = pair(scheme, clock)
        headers = signer.sign(BODY)
        for name in headers:
            if name.lower() == "x-github-delivery":
                continue
            with pytest.raises(MissingHeader):
                verifier.verify(BODY, {k: v for k, v in headers.items() if k != name})

    def test_duplicate_headers_are_refused(self, clock: FakeClock) -> None:
        """Two copies of a signed header are ambiguous and refused."""
        signer, verifier = pair("standard", clock)
        headers = list(signer.sign(BODY).items())
        with pytest.raises(MalformedHeader, match="more than once"):
            verifier.verify(BODY, [*headers, ("Webhook-Timestamp", "1")])

    @pytest.mark.parametrize(
        "timestamp",
        [
            "+1700000000",
            "1_700_000_000",
            "١٧٠٠٠٠٠٠٠٠",
            "1700000000.5",
            "-1",
            "9" * 40,
            "0x65",
            "1e9",
            "",
        ],
    )
    def test_malformed_timestamps_are_typed(self, timestamp: str, clock: FakeClock) -> None:
        """Signs, underscores, Unicode digits, fractions and huge numbers are malformed."""
        signer, verifier = pair("hmac-sha256", clock)
        headers = signer.sign(BODY)
        headers["X-Webhook-Timestamp"] = timestamp
        with pytest.raises((MalformedHeader, MissingHeader)):
            verifier.verify(BODY, headers)

    @pytest.mark.parametrize(
        ("scheme", "name", "value"),
        [
            ("standard", "webhook-signature", "nocomma"),
            ("standard", "webhook-id", "msg.with.dots"),
            ("standard", "webhook-id", "has space"),
            ("standard", "webhook-signature", "v1,é"),
            ("standard", "webhook-signature", " ".join(["v1,x"] * 17)),
            ("stripe", "Stripe-Signature", "garbage"),
            ("stripe", "Stripe-Signature", "t=1,t=2,v1=ab"),
            ("stripe", "Stripe-Signature", "v1=abc"),
            ("github", "X-Hub-Signature-256", "sha1=abc"),
            ("github", "X-Hub-Signature-256", "sha256=XYZ"),
            ("hmac-sha256", "X-Webhook-Signature", "nothing"),
            ("standard", "webhook-signature", "v1," + "A" * 9000),
            ("standard", "webhook-signature", "v1,abc\x00"),
        ],
    )
    def test_malformed_headers_are_typed(
        self, scheme: str, name: str, value: str, clock: FakeClock
    ) -> None:
        """Garbage signature headers raise MalformedHeader, never ValueError or binascii.Error."""
        signer, verifier = pair(scheme, clock)
        headers = {k.lower(): v for k, v in signer.sign(BODY).items()}
        headers[name.lower()] = value
        with pytest.raises(MalformedHeader):
            verifier.verify(BODY, headers)

    @pytest.mark.parametrize("scheme", SCHEMES)
    @settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(
        headers=st.dictionaries(
            st.sampled_from(
                [
                    "webhook-id",
                    "webhook-timestamp",
                    "webhook-signature",
                    "Stripe-Signature",
                    "X-Hub-Signature-256",
                    "X-Webhook-Timestamp",
                    "X-Webhook-Signature",
                    "X-GitHub-Delivery",
                    "x-webhook-id",
                    "other",
                ]
            )
            | st.text(max_size=20),
            st.text(max_size=200) | st.binary(max_size=50).map(lambda b: b.decode("latin-1")),
            max_size=8,
        ),
        body=st.binary(max_size=300),
    )
    def test_arbitrary_input_only_ever_raises_webhook_errors(
        self, scheme: str, headers: dict[str, str], body: bytes
    ) -> None:
        """Whatever headers and body arrive, the verifier raises only WebhookError subclasses."""
        verifier = WebhookVerifier(generate_secret(scheme), scheme, clock=FakeClock())
        with pytest.raises(WebhookError):
            verifier.verify(body, headers)

    @given(sig=st.text(max_size=300), ts=st.text(max_size=30), msg_id=st.text(max_size=40))
    def test_arbitrary_standard_header_values_only_raise_webhook_errors(
        self, sig: str, ts: str, msg_id: str
    ) -> None:
        """Random values in the right header names (v1 and v1a keys) stay typed failures."""
        _, public = generate_keypair()
        verifier = WebhookVerifier([generate_secret(), public], clock=FakeClock())
        with pytest.raises(WebhookError):
            verifier.verify(
                BODY, {"webhook-id": msg_id, "webhook-timestamp": ts, "webhook-signature": sig}
            )


class TestReplayGuard:
    @pytest.mark.parametrize("scheme", SCHEMES)
    def test_memory_replay_guard_refuses_the_second_identical_delivery(
        self, scheme: str, clock: FakeClock
    ) -> None:
        """With a replay guard, the same delivery is accepted once and then refused (409)."""
        signer, verifier = pair(scheme, clock, replay_guard=MemoryReplayGuard(clock=clock))
        headers = signer.sign(BODY)
        verifier.verify(BODY, headers)
        with pytest.raises(ReplayedWebhook) as caught:
            verifier.verify(BODY, headers)
        assert caught.value.status == 409

    def test_replay_key_ignores_unsigned_header_changes(self, clock: FakeClock) -> None:
        """Adding junk signature entries or a new delivery id does not dodge the guard."""
        signer, verifier = pair("github", clock, replay_guard=MemoryReplayGuard(clock=clock))
        headers = signer.sign(BODY, msg_id="d1")
        verifier.verify(BODY, headers)
        sig = headers["X-Hub-Signature-256"]
        with pytest.raises(ReplayedWebhook):
            verifier.verify(
                BODY, {"X-Hub-Signature-256": f"sha256={'0' * 64},{sig}", "X-GitHub-Delivery": "d2"}
            )

    def test_standard_retry_with_new_timestamp_is_not_a_replay(self, clock: FakeClock) -> None:
        """A sender's retry (same id, new timestamp, new signature) is accepted."""
        signer, verifier = pair("standard", clock, replay_guard=MemoryReplayGuard(clock=clock))
        verifier.verify(BODY, signer.sign(BODY, msg_id="msg_retry"))
        clock.advance(5)
        verifier.verify(BODY, signer.sign(BODY, msg_id="msg_retry"))

    def test_failed_verification_does_not_poison_the_guard(self, clock: FakeClock) -> None:
        """A forged delivery with a real id is not recorded, so the genuine one still passes."""
        guard = MemoryReplayGuard(clock=clock)
        signer, verifier = pair("standard", clock, replay_guard=guard)
        headers = signer.sign(BODY)
        with pytest.raises(InvalidSignature):
            verifier.verify(BODY, {**headers, "webhook-signature": "v1," + "A" * 44})
        assert len(guard) == 0
        verifier.verify(BODY, headers)

    def test_memory_guard_forgets_after_ttl_and_stays_bounded(self, clock: FakeClock) -> None:
        """Entries expire after their ttl; max_entries bounds memory."""
        guard = MemoryReplayGuard(clock=clock, max_entries=3)
        assert guard.first_seen("a", 10)
        assert not guard.first_seen("a", 10)
        clock.advance(10)
        assert guard.first_seen("a", 10)
        for key in "bcde":
            guard.first_seen(key, 100)
        assert len(guard) == 3

    def test_github_replays_are_remembered_for_a_day_by_default(self) -> None:
        """Without timestamps the guard remembers deliveries for 24 hours."""
        clock = FakeClock()
        signer, verifier = pair("github", clock, replay_guard=MemoryReplayGuard(clock=clock))
        headers = signer.sign(BODY)
        verifier.verify(BODY, headers)
        clock.advance(23 * 3600)
        with pytest.raises(ReplayedWebhook):
            verifier.verify(BODY, headers)

    def test_sync_verify_refuses_an_async_guard(self, clock: FakeClock) -> None:
        """An async guard needs averify; verify says so instead of skipping the guard."""

        class AsyncGuard:
            async def first_seen(self, key: str, ttl: float) -> bool:
                return True

        signer, verifier = pair("standard", clock, replay_guard=AsyncGuard())
        with pytest.raises(ConfigurationError, match="averify"):
            verifier.verify(BODY, signer.sign(BODY))

    async def test_async_verifier_works_with_sync_and_async_guards(self, clock: FakeClock) -> None:
        """AsyncWebhookVerifier.verify drives both guard kinds."""
        seen: set[str] = set()

        class AsyncGuard:
            async def first_seen(self, key: str, ttl: float) -> bool:
                fresh = key not in seen
                seen.add(key)
                return fresh

        for guard in (AsyncGuard(), MemoryReplayGuard(clock=clock)):
            signer, verifier = async_pair("stripe", clock, replay_guard=guard)
            headers = signer.sign(BODY)
            await verifier.verify(BODY, headers)
            with pytest.raises(ReplayedWebhook):
                await verifier.verify(BODY, headers)
            with pytest.raises(InvalidSignature):
                await verifier.verify(BODY + b"x", headers)

    async def test_averify_is_a_deprecated_alias_of_the_async_twin(self, clock: FakeClock) -> None:
        """WebhookVerifier.averify still verifies (async guard included) and warns it is
        deprecated."""

        class AsyncGuard:
            async def first_seen(self, key: str, ttl: float) -> bool:
                return key not in {"never"}

        signer, verifier = pair("stripe", clock, replay_guard=AsyncGuard())
        headers = signer.sign(BODY)
        with pytest.warns(DeprecationWarning, match="AsyncWebhookVerifier"):
            await verifier.averify(BODY, headers)
        with pytest.warns(DeprecationWarning, match="averify"), pytest.raises(InvalidSignature):
            await verifier.averify(BODY + b"x", headers)

    def test_the_twins_share_their_checks(self, clock: FakeClock) -> None:
        """The async twin takes the same arguments and refuses the same bad configuration."""
        secret = generate_secret("stripe")
        twin = AsyncWebhookVerifier(secret, "stripe", clock=clock, tolerance=60)
        assert twin.scheme == "stripe"
        assert repr(twin).startswith("AsyncWebhookVerifier(scheme='stripe'")
        assert secret not in repr(twin)
        with pytest.raises(ConfigurationError):
            AsyncWebhookVerifier(secret, "stripe", max_body_bytes=0)


class TestConfiguration:
    @pytest.mark.parametrize(
        ("secret", "scheme"),
        [
            ("whsec_" + base64.b64encode(b"k" * 23).decode(), "standard"),
            ("whsec_not*base64", "standard"),
            ("whpk_" + base64.b64encode(b"k" * 31).decode(), "standard"),
            ("whsk_" + base64.b64encode(b"k" * 33).decode(), "standard"),
            ("short", "stripe"),
            (b"k" * 23, "github"),
            ([], "standard"),
            (generate_secret(), "nope"),
            (12345, "standard"),
        ],
    )
    def test_weak_or_malformed_secrets_are_refused(self, secret: Any, scheme: str) -> None:
        """Short (<24 bytes), malformed or missing secrets and unknown schemes fail at
        construction."""
        with pytest.raises(ConfigurationError):
            WebhookVerifier(secret, scheme)

    @pytest.mark.parametrize(
        "kwargs", [{"tolerance": 0}, {"tolerance": -1}, {"max_body_bytes": 0}, {"replay_guard": 5}]
    )
    def test_bad_verifier_options_are_refused(self, kwargs: dict[str, Any]) -> None:
        """Zero tolerance, empty body caps and non-guards are refused when built."""
        with pytest.raises(ConfigurationError):
            WebhookVerifier(generate_secret(), **kwargs)

    @pytest.mark.parametrize("msg_id", ["has.dot", "", "x" * 257, "tab\tid"])
    def test_signer_refuses_ids_that_would_break_the_signed_content(self, msg_id: str) -> None:
        """Message ids with dots, spaces or bad lengths are refused by the signer too."""
        with pytest.raises(ConfigurationError):
            WebhookSigner(generate_secret()).sign(BODY, msg_id=msg_id)

    @pytest.mark.parametrize("make", [WebhookSigner, WebhookVerifier])
    def test_repr_never_shows_secrets(self, make: Callable[..., object]) -> None:
        """Neither repr names the secret or any part of it."""
        secret = generate_secret()
        text = repr(make(secret))
        assert secret not in text
        assert secret[6:14] not in text

    @pytest.mark.parametrize("scheme", SCHEMES)
    def test_generated_secrets_have_256_bits_and_the_right_shape(self, scheme: str) -> None:
        """generate_secret makes distinct secrets the scheme accepts."""
        a, b = generate_secret(scheme), generate_secret(scheme)
        assert a != b
        if scheme in ("standard", "stripe"):
            assert a.startswith("whsec_")
        if scheme == "standard":
            assert len(base64.b64decode(a[6:])) == 32
        WebhookVerifier(a, scheme)

    def test_libsodium_style_64_byte_signing_keys_are_accepted(self, clock: FakeClock) -> None:
        """whsk_ keys holding seed||public (64 bytes) work; a mismatched half is refused."""
        signing, public = generate_keypair()
        seed = base64.b64decode(signing[5:])
        pub = base64.b64decode(public[5:])
        long_key = "whsk_" + base64.b64encode(seed + pub).decode()
        WebhookVerifier(public, clock=clock).verify(
            BODY, WebhookSigner(long_key, clock=clock).sign(BODY)
        )
        with pytest.raises(ConfigurationError, match="public half"):
            WebhookSigner("whsk_" + base64.b64encode(seed + bytes(32)).decode())

    def test_failures_are_audited(
        self, audit_records: list[logging.LogRecord], clock: FakeClock
    ) -> None:
        """Each refusal emits a webhook.failure event with its reason and no secret."""
        secret = generate_secret()
        verifier = WebhookVerifier(secret, clock=clock)
        with pytest.raises(InvalidSignature):
            verifier.verify(BODY, WebhookSigner(generate_secret(), clock=clock).sign(BODY))
        record = audit_records[-1]
        assert record.event == "webhook.failure"  # type: ignore[attr-defined]
        assert record.reason == "invalid-signature"  # type: ignore[attr-defined]
        assert record.details == {"scheme": "standard"}  # type: ignore[attr-defined]
        assert secret not in repr(record.__dict__)

    def test_problem_bodies_are_generic(self) -> None:
        """Client problems of webhook errors say nothing about the internal reason."""
        body = InvalidSignature("no match for key 2 of 3").to_problem().to_dict()
        assert body == {
            "type": "about:blank",
            "title": "Unauthorized",
            "status": 401,
            "detail": "The webhook could not be verified.",
        }

    @pytest.mark.parametrize("headers", [None, 5, "webhook-id: x", [("only-one",)], [["a", "b"]]])
    def test_unusable_header_containers_are_typed_failures(
        self, headers: Any, clock: FakeClock
    ) -> None:
        """None, numbers, strings and malformed pair lists give WebhookErrors, not TypeErrors."""
        _, verifier = pair("standard", clock)
        with pytest.raises(WebhookError):
            verifier.verify(BODY, headers)


class TestUnpaddedSecrets:
    """whsec_ secrets without base64 padding work, as in the reference libraries."""

    RAW = bytes(range(32))  # 32 bytes: base64 ends in one "="

    def test_unpadded_and_padded_spellings_are_one_key(self) -> None:
        """The unpadded secret signs exactly like the padded one, and the reference lib agrees."""
        from standardwebhooks.webhooks import Webhook

        padded = "whsec_" + base64.b64encode(self.RAW).decode()
        unpadded = padded.rstrip("=")
        assert unpadded != padded
        now = 1_700_000_000
        ours = WebhookSigner(unpadded).sign(BODY, msg_id="msg_1", timestamp=now)
        assert ours == WebhookSigner(padded).sign(BODY, msg_id="msg_1", timestamp=now)
        WebhookVerifier(unpadded, clock=lambda: float(now)).verify(BODY, ours)
        theirs = Webhook(unpadded).sign("msg_1", datetime.fromtimestamp(now, timezone.utc), "x")
        ours_x = WebhookSigner(unpadded).sign(b"x", msg_id="msg_1", timestamp=now)
        assert ours_x["webhook-signature"] == theirs

    @pytest.mark.parametrize(
        "secret",
        [
            "whsec_" + base64.b64encode(b"k" * 22).decode().rstrip("="),  # short, unpadded
            "whsec_" + base64.b64encode(b"k" * 32).decode().rstrip("=") + "*",  # not base64
            "whsec_" + base64.b64encode(b"k" * 33).decode() + "A",  # a length no base64 has
            "whsec_" + base64.b64encode(b"k" * 32).decode().rstrip("=") + "==",  # wrong padding
        ],
    )
    def test_short_or_malformed_secrets_are_still_refused(self, secret: str) -> None:
        """Dropping the padding requirement accepts nothing else."""
        with pytest.raises(ConfigurationError):
            WebhookVerifier(secret)


def _verdict(verifier: WebhookVerifier, body: bytes, headers: Any) -> tuple[object, ...]:
    """What one verification did: ("ok",) or the error's class, message and audit reason."""
    from apisec.testing import capture_audit

    with capture_audit() as events:
        try:
            verifier.verify(body, headers)
        except WebhookError as exc:
            return (type(exc).__name__, exc.message, [e.reason for e in events])  # type: ignore[attr-defined]
    return ("ok", [e.reason for e in events])  # type: ignore[attr-defined]


# Header edits the fast path must either read exactly as the general path or leave to it.
_EDITS = st.sampled_from(
    [
        "none",
        "extra header",
        "upper-case duplicate",
        "title-case names",
        "bytes name",
        "padded value",
        "tab in value",
        "second signature first",
        "v1a entry",
        "unknown version",
        "two spaces",
        "17 signatures",
        "dot in id",
        "id of 257",
        "timestamp of 13 digits",
        "signed timestamp with leading zeros",
        "non-ASCII id",
        "wrong secret",
        "one character off",
        "not a str value",
        "missing id",
        "empty signature",
    ]
)


def _edit(headers: dict[Any, Any], edit: str, other: dict[str, str]) -> dict[Any, Any]:  # noqa: PLR0912 - one branch per edit
    """``headers`` with one edit made (on whatever spelling of a name earlier edits left)."""

    class Named(dict[Any, Any]):
        def __missing__(self, name: str) -> Any:
            for key, value in self.items():
                if isinstance(key, str) and key.lower() == name:
                    return value
            return ""

        def __setitem__(self, name: Any, value: Any) -> None:
            for key in list(self):
                if isinstance(key, str) and key.lower() == name and key != name:
                    del self[key]
            super().__setitem__(name, value)

    h: dict[Any, Any] = Named(headers)
    sig = str(h["webhook-signature"])
    if edit == "extra header":
        h = {"content-type": "application/json", **h, "user-agent": "x"}
    elif edit == "upper-case duplicate":
        dict.__setitem__(h, "Webhook-Id", h["webhook-id"])
    elif edit == "title-case names":
        h = {k.title(): v for k, v in h.items()}
    elif edit == "bytes name":
        h[b"x-request-id"] = "1"
    elif edit == "padded value":
        h["webhook-signature"] = f" {sig} "
    elif edit == "tab in value":
        h["webhook-id"] = str(h["webhook-id"]) + "\t"
    elif edit == "second signature first":
        h["webhook-signature"] = f"{other['webhook-signature']} {sig}"
    elif edit == "v1a entry":
        h["webhook-signature"] = f"v1a,{'A' * 86}== {sig}"
    elif edit == "unknown version":
        h["webhook-signature"] = f"v2,abc {sig}"
    elif edit == "two spaces":
        h["webhook-signature"] = f"{other['webhook-signature']}  {sig}"
    elif edit == "17 signatures":
        h["webhook-signature"] = " ".join([other["webhook-signature"]] * 16 + [sig])
    elif edit == "dot in id":
        h["webhook-id"] = "msg.1"
    elif edit == "id of 257":
        h["webhook-id"] = "m" * 257
    elif edit == "timestamp of 13 digits":
        h["webhook-timestamp"] = "0" + str(h["webhook-timestamp"]).rjust(12, "0")
    elif edit == "signed timestamp with leading zeros":
        pass  # made by the signer below
    elif edit == "non-ASCII id":
        h["webhook-id"] = "msg_é"
    elif edit == "wrong secret":
        h["webhook-signature"] = other["webhook-signature"]
    elif edit == "one character off" and len(sig) > 4:
        h["webhook-signature"] = sig[:-2] + ("A" if sig[-2] != "A" else "B") + sig[-1]
    elif edit == "not a str value":
        h["webhook-id"] = str(h["webhook-id"]).encode()
    elif edit == "missing id":
        h = {k: v for k, v in h.items() if not (isinstance(k, str) and k.lower() == "webhook-id")}
    elif edit == "empty signature":
        h["webhook-signature"] = ""
    return dict(h)


class TestFastPathIsPinned:
    """Standard Webhooks over plain dict headers: the fast path answers as the general path."""

    @settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(
        edits=st.lists(_EDITS, min_size=1, max_size=3),
        skew=st.sampled_from([0, 299, 300, 301, -301]),
        body=st.binary(max_size=2048),
        guarded=st.booleans(),
    )
    def test_every_shape_matches_the_general_path(
        self, edits: list[str], skew: int, body: bytes, guarded: bool
    ) -> None:
        """Same verdict, error message and audit reason with the fast path on and off, for
        valid deliveries and for each unusual shape, stale time or wrong signature."""
        clock = FakeClock(1_700_000_000)
        secret = generate_secret()
        signer = WebhookSigner(secret, clock=clock)
        other = WebhookSigner(generate_secret(), clock=clock).sign(body, msg_id="msg_other")
        kw: dict[str, Any] = {"clock": clock, "max_body_bytes": 1024}
        fast = WebhookVerifier(secret, replay_guard=MemoryReplayGuard() if guarded else None, **kw)
        general = WebhookVerifier(
            secret, replay_guard=MemoryReplayGuard() if guarded else None, **kw
        )
        general._plain_standard = False
        assert fast._plain_standard
        headers: dict[Any, Any] = signer.sign(body)
        if "signed timestamp with leading zeros" in edits:
            headers = {**headers, "webhook-timestamp": headers["webhook-timestamp"].zfill(12)}
            mac = hmac.new(
                base64.b64decode(secret.removeprefix("whsec_")),
                f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body,
                hashlib.sha256,
            ).digest()
            headers["webhook-signature"] = "v1," + base64.b64encode(mac).decode()
        for edit in edits:
            headers = _edit(headers, edit, other)
        clock.set(1_700_000_000 + skew)
        first = _verdict(fast, body, headers)
        assert first == _verdict(general, body, headers)
        assert _verdict(fast, body, headers) == _verdict(general, body, headers)  # replays

    def test_the_fast_path_is_taken_for_the_common_shapes(self, clock: FakeClock) -> None:
        """A signed delivery in a dict of its three headers, or among others, is verified
        without the general path (which would need the scheme's parser)."""
        signer, verifier = pair("standard", clock)
        headers = signer.sign(BODY)
        verifier._scheme = None  # type: ignore[assignment]  # the general path would fail
        verifier.verify(BODY, headers)
        verifier.verify(BODY, {"host": "x", **headers, "content-length": "10"})
