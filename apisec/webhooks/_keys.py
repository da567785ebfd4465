"""Webhook secrets: parsing them per scheme, and generating good ones."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac as _hmac
import secrets
import string
from collections.abc import Sequence

import attrs
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from apisec.errors import ConfigurationError

__all__ = ["KeySet", "SecretLike", "generate_keypair", "generate_secret", "parse_keys"]

SecretLike = str | bytes
#: Standard Webhooks asks for 24 bytes at least; we hold every scheme to it.
MIN_SECRET_BYTES = 24
SCHEMES = ("standard", "stripe", "github", "hmac-sha256")
_BASE62 = string.ascii_letters + string.digits


@attrs.frozen
class KeySet:
    """The keys a signer or verifier holds, by kind. Never shown in ``repr``."""

    hmac: tuple[bytes, ...] = attrs.field(repr=False)
    ed25519_private: tuple[Ed25519PrivateKey, ...] = attrs.field(repr=False)
    ed25519_public: tuple[Ed25519PublicKey, ...] = attrs.field(repr=False)
    #: One keyed HMAC-SHA256 per secret; copied per message so the key
    #: schedule is computed once, not on every verification.
    hmac_bases: tuple[_hmac.HMAC, ...] = attrs.field(repr=False, eq=False, init=False)

    def __attrs_post_init__(self) -> None:
        bases = tuple(_hmac.new(key, digestmod=hashlib.sha256) for key in self.hmac)
        object.__setattr__(self, "hmac_bases", bases)

    def __repr__(self) -> str:
        return (
            f"KeySet(hmac={len(self.hmac)}, ed25519_private={len(self.ed25519_private)},"
            f" ed25519_public={len(self.ed25519_public)})"
        )


def _b64decode(text: str, what: str) -> bytes:
    # Unpadded base64 is accepted, as the reference Standard Webhooks libraries do;
    # anything outside the alphabet, or a length no base64 can have, is not.
    if len(text) % 4 and "=" not in text:
        text += "=" * (-len(text) % 4)
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError) as exc:
        raise ConfigurationError(f"{what} is not valid base64") from exc


def _checked_hmac(key: bytes, what: str) -> bytes:
    if len(key) < MIN_SECRET_BYTES:
        raise ConfigurationError(
            f"{what} is {len(key)} bytes; at least {MIN_SECRET_BYTES} bytes are required"
        )
    return key


def _ed25519_private(raw: bytes) -> Ed25519PrivateKey:
    # 32 bytes is the seed; 64 bytes is libsodium's seed||public layout.
    if len(raw) not in (32, 64):
        raise ConfigurationError("a whsk_ key must hold a 32-byte Ed25519 seed")
    key = Ed25519PrivateKey.from_private_bytes(raw[:32])
    if len(raw) == 64 and raw[32:] != key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw):
        raise ConfigurationError("the whsk_ key's public half does not match its seed")
    return key


def _one_secret(secret: object, scheme: str) -> tuple[str, object]:
    if isinstance(secret, (bytes, bytearray)):
        return "hmac", _checked_hmac(bytes(secret), "the webhook secret")
    if not isinstance(secret, str):
        raise ConfigurationError("webhook secrets must be str or bytes")
    if scheme != "standard":
        # Stripe, GitHub and plain HMAC key with the whole secret string.
        return "hmac", _checked_hmac(secret.encode(), "the webhook secret")
    if secret.startswith("whpk_"):
        raw = _b64decode(secret[5:], "the whpk_ key")
        if len(raw) != 32:
            raise ConfigurationError("a whpk_ key must hold a 32-byte Ed25519 public key")
        return "ed25519_public", Ed25519PublicKey.from_public_bytes(raw)
    if secret.startswith("whsk_"):
        return "ed25519_private", _ed25519_private(_b64decode(secret[5:], "the whsk_ key"))
    body = secret.removeprefix("whsec_")
    return "hmac", _checked_hmac(_b64decode(body, "the whsec_ secret"), "the whsec_ secret")


def parse_keys(secrets_: SecretLike | Sequence[SecretLike], scheme: str) -> KeySet:
    """Parse one secret or several (rotation) for ``scheme``.

    Standard Webhooks secrets are ``whsec_<base64>`` (HMAC, ``v1``),
    ``whsk_<base64>`` (Ed25519 signing key, ``v1a``) or ``whpk_<base64>``
    (Ed25519 public key, verify only); the base64 may be unpadded. Other
    schemes use the secret string's UTF-8 bytes as the HMAC key. ``bytes``
    are always a raw HMAC key.
    """
    if scheme not in SCHEMES:
        raise ConfigurationError(f"unknown webhook scheme {scheme!r}; expected one of {SCHEMES}")
    if isinstance(secrets_, (str, bytes, bytearray)):
        items: list[object] = [secrets_]
    elif isinstance(secrets_, Sequence):
        items = list(secrets_)
    else:
        raise ConfigurationError("webhook secrets must be a str, bytes, or a sequence of them")
    if not items:
        raise ConfigurationError("at least one webhook secret is required")
    by_kind: dict[str, list[object]] = {"hmac": [], "ed25519_private": [], "ed25519_public": []}
    for item in items:
        kind, key = _one_secret(item, scheme)
        by_kind[kind].append(key)
    publics = [k for k in by_kind["ed25519_public"] if isinstance(k, Ed25519PublicKey)]
    privates = [k for k in by_kind["ed25519_private"] if isinstance(k, Ed25519PrivateKey)]
    return KeySet(
        hmac=tuple(k for k in by_kind["hmac"] if isinstance(k, bytes)),
        ed25519_private=tuple(privates),
        ed25519_public=(*publics, *(k.public_key() for k in privates)),
    )


def generate_secret(scheme: str = "standard") -> str:
    """A fresh 256-bit secret in the form ``scheme`` expects.

    >>> generate_secret("standard").startswith("whsec_")
    True
    """
    if scheme == "standard":
        return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    if scheme == "stripe":
        return "whsec_" + "".join(secrets.choice(_BASE62) for _ in range(43))
    if scheme in SCHEMES:
        return secrets.token_urlsafe(32)
    raise ConfigurationError(f"unknown webhook scheme {scheme!r}; expected one of {SCHEMES}")


def generate_keypair() -> tuple[str, str]:
    """A Standard Webhooks ``v1a`` key pair: ``(whsk_ signing key, whpk_ public key)``."""
    key = Ed25519PrivateKey.generate()
    seed = key.private_bytes_raw()
    public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return "whsk_" + base64.b64encode(seed).decode(), "whpk_" + base64.b64encode(public).decode()
