"""The four signature schemes: how each reads, checks and writes its headers.

Every scheme is pure: headers and body in, a :class:`Delivery` or a
decision out. The verifier and signer around them handle time, size caps,
replay guards and audit events.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
from collections.abc import Mapping
from typing import NamedTuple

from cryptography.exceptions import InvalidSignature as _CryptoInvalidSignature

from apisec._fastpath import tuple_builder
from apisec.webhooks import _headers
from apisec.webhooks._errors import InvalidSignature, MalformedHeader
from apisec.webhooks._keys import KeySet

MAX_SIGNATURES = 16
_HEX64 = re.compile(r"[0-9a-f]{64}")


class Delivery(NamedTuple):
    """What a scheme read from the headers of one delivery."""

    msg_id: str | None
    timestamp: int | None
    #: (version, value) pairs, e.g. ("v1", "g0hM9S...=").
    signatures: tuple[tuple[str, str], ...]
    #: The signed content is ``prefix + body``.
    prefix: bytes


#: Delivery(...) by keyword at the cost of a positional build (apisec._fastpath).
_build_delivery = tuple_builder(Delivery)


def _mac(base: hmac.HMAC, prefix: bytes, body: bytes) -> bytes:
    mac = base.copy()
    if prefix:
        mac.update(prefix)
    mac.update(body)
    return mac.digest()


def _hex_matches(keys: KeySet, delivery: Delivery, body: bytes, version: str) -> bool:
    for base in keys.hmac_bases:
        expected: str | None = None
        for v, value in delivery.signatures:
            if v == version:
                if expected is None:
                    expected = _mac(base, delivery.prefix, body).hex()
                # Every candidate is compared, in constant time each.
                if hmac.compare_digest(expected, value):
                    return True
    return False


class Scheme:
    """Base of the schemes; subclasses fill in the header handling."""

    name: str
    timestamped: bool
    header_names: frozenset[str]

    def parse(self, found: Mapping[str, str]) -> Delivery:  # pragma: no cover - abstract
        raise NotImplementedError

    def matches(self, keys: KeySet, delivery: Delivery, body: bytes) -> bool:
        return _hex_matches(keys, delivery, body, "v1")

    def sign(  # pragma: no cover - abstract
        self, keys: KeySet, body: bytes, msg_id: str | None, timestamp: int
    ) -> dict[str, str]:
        raise NotImplementedError


def _split_entries(value: str, separators: str) -> list[str]:
    if len(separators) > 1:
        value = value.replace(separators[1], separators[0])
    entries = [e for e in value.split(separators[0]) if e]
    if len(entries) > MAX_SIGNATURES:
        raise MalformedHeader(f"more than {MAX_SIGNATURES} signatures in one header")
    return entries


class StandardScheme(Scheme):
    """Standard Webhooks 1.0: ``webhook-id``, ``webhook-timestamp``, ``webhook-signature``."""

    name = "standard"
    timestamped = True
    header_names = frozenset({"webhook-id", "webhook-timestamp", "webhook-signature"})

    def parse(self, found: Mapping[str, str]) -> Delivery:
        # Written as plain loops on purpose: this is the hot path of every delivery.
        msg_id = found.get("webhook-id")
        ts_text = found.get("webhook-timestamp")
        header = found.get("webhook-signature")
        if not msg_id or not ts_text or not header:
            _headers.missing(found, self.header_names)
        if _headers.MESSAGE_ID.fullmatch(msg_id) is None:
            _headers.message_id(msg_id, "webhook-id")
        timestamp = _headers.timestamp(ts_text, "webhook-timestamp")
        signatures = []
        for entry in _split_entries(header, " "):
            version, sep, value = entry.partition(",")
            if sep and version and value:
                signatures.append((version, value))
        if not signatures:
            raise MalformedHeader("webhook-signature holds no 'version,signature' entry")
        return _build_delivery(
            msg_id=msg_id,
            timestamp=timestamp,
            signatures=tuple(signatures),
            prefix=f"{msg_id}.{ts_text}.".encode(),
        )

    def matches(self, keys: KeySet, delivery: Delivery, body: bytes) -> bool:
        prefix = delivery.prefix
        for base in keys.hmac_bases:
            expected: str | None = None
            for version, value in delivery.signatures:
                if version == "v1":
                    if expected is None:
                        expected = base64.b64encode(_mac(base, prefix, body)).decode()
                    # Constant-time for each candidate.
                    if hmac.compare_digest(expected, value):
                        return True
        v1a = [value for version, value in delivery.signatures if version == "v1a"]
        if v1a and keys.ed25519_public:
            content = delivery.prefix + body
            for value in v1a:
                try:
                    signature = base64.b64decode(value, validate=True)
                except (binascii.Error, ValueError):
                    continue
                if len(signature) != 64:
                    continue
                for public in keys.ed25519_public:
                    try:
                        public.verify(signature, content)
                    except _CryptoInvalidSignature:
                        continue
                    return True
        return False

    def sign(self, keys: KeySet, body: bytes, msg_id: str | None, timestamp: int) -> dict[str, str]:
        if msg_id is None:
            raise MalformedHeader("the standard scheme needs a message id")
        prefix = f"{msg_id}.{timestamp}.".encode()
        entries = [
            "v1," + base64.b64encode(_mac(base, prefix, body)).decode() for base in keys.hmac_bases
        ]
        if keys.ed25519_private:
            content = prefix + body
            entries += [
                "v1a," + base64.b64encode(key.sign(content)).decode()
                for key in keys.ed25519_private
            ]
        return {
            "webhook-id": msg_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": " ".join(entries),
        }


class StripeScheme(Scheme):
    """Stripe: ``Stripe-Signature: t=<ts>,v1=<hex>[,v1=<hex>...]`` over ``"{t}.{body}"``."""

    name = "stripe"
    timestamped = True
    header_names = frozenset({"stripe-signature"})

    def parse(self, found: Mapping[str, str]) -> Delivery:
        header = _headers.required(found, "stripe-signature")
        ts_text: str | None = None
        signatures = []
        for item in _split_entries(header, ","):
            key, sep, value = item.strip(" \t").partition("=")
            if not sep or not key:
                raise MalformedHeader("Stripe-Signature has an entry without 'key=value'")
            if key == "t":
                if ts_text is not None:
                    raise MalformedHeader("Stripe-Signature carries two timestamps")
                ts_text = value
            else:
                signatures.append((key, value))
        if ts_text is None:
            raise MalformedHeader("Stripe-Signature has no timestamp")
        timestamp = _headers.timestamp(ts_text, "stripe-signature")
        if not any(version == "v1" for version, _ in signatures):
            # Only v1 counts: a header with v0 (or anything else) alone never passes.
            raise InvalidSignature("Stripe-Signature has no v1 signature")
        return _build_delivery(
            msg_id=None,
            timestamp=timestamp,
            signatures=tuple(signatures),
            prefix=f"{ts_text}.".encode(),
        )

    def sign(self, keys: KeySet, body: bytes, msg_id: str | None, timestamp: int) -> dict[str, str]:
        prefix = f"{timestamp}.".encode()
        entries = [f"t={timestamp}"]
        entries += ["v1=" + _mac(base, prefix, body).hex() for base in keys.hmac_bases]
        return {"Stripe-Signature": ",".join(entries)}


class GitHubScheme(Scheme):
    """GitHub: ``X-Hub-Signature-256: sha256=<hex>`` over the body alone."""

    name = "github"
    timestamped = False
    header_names = frozenset({"x-hub-signature-256", "x-github-delivery"})

    def parse(self, found: Mapping[str, str]) -> Delivery:
        header = _headers.required(found, "x-hub-signature-256")
        signatures = []
        for entry in _split_entries(header, ", "):
            algorithm, sep, value = entry.partition("=")
            if algorithm != "sha256" or not sep or _HEX64.fullmatch(value) is None:
                raise MalformedHeader("X-Hub-Signature-256 must be 'sha256=<64 hex digits>'")
            signatures.append(("sha256", value))
        delivery = found.get("x-github-delivery")
        msg_id = _headers.message_id(delivery, "x-github-delivery") if delivery else None
        return _build_delivery(
            msg_id=msg_id, timestamp=None, signatures=tuple(signatures), prefix=b""
        )

    def matches(self, keys: KeySet, delivery: Delivery, body: bytes) -> bool:
        return _hex_matches(keys, delivery, body, "sha256")

    def sign(self, keys: KeySet, body: bytes, msg_id: str | None, timestamp: int) -> dict[str, str]:
        headers = {
            "X-Hub-Signature-256": ",".join(
                "sha256=" + _mac(base, b"", body).hex() for base in keys.hmac_bases
            )
        }
        if msg_id is not None:
            headers["X-GitHub-Delivery"] = msg_id
        return headers


class HmacSha256Scheme(Scheme):
    """Plain HMAC: ``X-Webhook-Signature: v1=<hex>`` over ``"{ts}.{body}"``.

    The timestamp travels in ``X-Webhook-Timestamp``.
    """

    name = "hmac-sha256"
    timestamped = True
    header_names = frozenset({"x-webhook-timestamp", "x-webhook-signature", "x-webhook-id"})

    def parse(self, found: Mapping[str, str]) -> Delivery:
        ts_text = _headers.required(found, "x-webhook-timestamp")
        timestamp = _headers.timestamp(ts_text, "x-webhook-timestamp")
        signatures = []
        for entry in _split_entries(_headers.required(found, "x-webhook-signature"), ", "):
            version, sep, value = entry.partition("=")
            if not sep or not version:
                raise MalformedHeader("X-Webhook-Signature entries must be 'v1=<hex>'")
            signatures.append((version, value))
        if not any(version == "v1" for version, _ in signatures):
            raise InvalidSignature("X-Webhook-Signature has no v1 signature")
        raw_id = found.get("x-webhook-id")
        msg_id = _headers.message_id(raw_id, "x-webhook-id") if raw_id else None
        return _build_delivery(
            msg_id=msg_id,
            timestamp=timestamp,
            signatures=tuple(signatures),
            prefix=f"{ts_text}.".encode(),
        )

    def sign(self, keys: KeySet, body: bytes, msg_id: str | None, timestamp: int) -> dict[str, str]:
        prefix = f"{timestamp}.".encode()
        headers = {
            "X-Webhook-Timestamp": str(timestamp),
            "X-Webhook-Signature": ",".join(
                "v1=" + _mac(base, prefix, body).hex() for base in keys.hmac_bases
            ),
        }
        if msg_id is not None:
            headers["X-Webhook-Id"] = msg_id
        return headers


# The fast path of Standard Webhooks verification (docs/architecture.md). Plain
# dict headers with exactly one spelling of each field, an id, a timestamp and
# one to MAX_SIGNATURES "v1,<base64>" entries, all in the strict shape one
# pattern checks at once: the general path (collect, parse, matches) reads
# such a delivery exactly so, and costs several times the HMAC itself. Any
# other shape (spaces to strip, v1a or unknown versions, odd header
# containers, several spellings of a name) returns None and takes the general
# path, as does every failure, so errors and audit events are the general
# path's own. tests/test_webhooks.py::TestFastPathIsPinned pins it.
_STANDARD_NAMES = ("webhook-id", "webhook-timestamp", "webhook-signature")
_V1 = r"v1,[A-Za-z0-9+/]+={0,2}"
_PLAIN_STANDARD = re.compile(
    rf"[!-\-/-~]{{1,256}}\.[0-9]{{1,12}}\.{_V1}(?: {_V1}){{0,{MAX_SIGNATURES - 1}}}"
)


def _one_spelling_each(headers: dict[object, object]) -> bool:
    """Whether no other key of ``headers`` names one of the three fields (any case)."""
    if len(headers) == 3:
        return True  # the three exact names themselves
    try:
        names = "\0".join(headers).lower().split("\0")  # type: ignore[arg-type]
    except TypeError:
        return False  # a non-str name (bytes pairs and such): the general path reads it
    # A name holding "\0" only adds pieces, so a count of one is one spelling.
    return all(names.count(name) == 1 for name in _STANDARD_NAMES)


def plain_standard(
    keys: KeySet, headers: dict[object, object], body: bytes
) -> tuple[str, int] | None:
    """``(msg_id, timestamp)`` of a delivery the fast path verified, else None.

    The timestamp is not checked against the clock here: the caller does it.
    """
    msg_id = headers.get("webhook-id")
    ts_text = headers.get("webhook-timestamp")
    header = headers.get("webhook-signature")
    if (
        type(msg_id) is not str
        or type(ts_text) is not str
        or type(header) is not str
        or _PLAIN_STANDARD.fullmatch(f"{msg_id}.{ts_text}.{header}") is None
        or not _one_spelling_each(headers)
    ):
        return None
    prefix = f"{msg_id}.{ts_text}.".encode()
    values = header.split(" ")
    for base in keys.hmac_bases:
        expected = binascii.b2a_base64(_mac(base, prefix, body), newline=False).decode()
        for value in values:
            # Constant-time for each candidate ("v1," is the pattern's, not secret).
            if hmac.compare_digest(expected, value[3:]):
                return msg_id, int(ts_text)
    return None


SCHEMES: dict[str, Scheme] = {
    s.name: s for s in (StandardScheme(), StripeScheme(), GitHubScheme(), HmacSha256Scheme())
}
