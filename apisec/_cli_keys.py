"""Key material for the ``apisec`` command: new signing keys, and keys read from files.

The library's :class:`~apisec.tokens.SigningKey` never hands out private
material; the command has to print a new key once, so it makes the key here
(same algorithms and sizes as ``SigningKey.generate``) and then loads it back
through ``SigningKey`` for the ``kid`` and the public JWK.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

import attrs
from cryptography.hazmat.primitives import serialization
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from apisec import _b64
from apisec.errors import ConfigurationError
from apisec.tokens import SigningKey
from apisec.tokens._keys import HMAC_MIN_BYTES, new_private_key

__all__ = ["GeneratedKey", "generate_key", "parse_keys"]


@attrs.frozen
class GeneratedKey:
    """A new key: the private form to print once, the ``kid`` and the public JWK."""

    alg: str
    kid: str
    private_value: str | dict[str, Any] = attrs.field(repr=False)
    private_text: str = attrs.field(repr=False)
    public_jwk: dict[str, Any] | None


def generate_key(alg: str, kid: str | None, form: str | None) -> GeneratedKey:
    """A fresh key for ``alg`` as PEM (``form="pem"``, the default) or JWK."""
    if alg in HMAC_MIN_BYTES:
        if form == "pem":
            raise ConfigurationError("HMAC keys have no PEM form; use --format jwk")
        raw = secrets.token_bytes(HMAC_MIN_BYTES[alg])
        key = SigningKey.hmac(raw, alg=alg, kid=kid)
        jwk: dict[str, Any] = {"kty": "oct", "k": _b64.encode(raw)}
        return _as_jwk(key, jwk)
    private = new_private_key(alg)
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")
    key = SigningKey.from_pem(pem, alg=alg, kid=kid)
    if form == "jwk":
        codec: Any = {"RS256": RSAAlgorithm, "PS256": RSAAlgorithm, "ES256": ECAlgorithm}.get(
            alg, OKPAlgorithm
        )
        return _as_jwk(key, codec.to_jwk(private, as_dict=True))
    return GeneratedKey(
        alg=alg, kid=key.kid, private_value=pem, private_text=pem, public_jwk=key.public_jwk()
    )


def _as_jwk(key: SigningKey, jwk: dict[str, Any]) -> GeneratedKey:
    jwk = {**jwk, "kid": key.kid, "alg": key.alg, "use": "sig"}
    text = json.dumps(jwk, indent=2, sort_keys=True) + "\n"
    return GeneratedKey(
        alg=key.alg, kid=key.kid, private_value=jwk, private_text=text, public_jwk=key.public_jwk()
    )


def parse_keys(text: str, *, alg: str | None = None, kid: str | None = None) -> list[SigningKey]:
    """The keys in a PEM file, a JWK, or a JWK Set (private or public)."""
    if text.lstrip().startswith("-----BEGIN"):
        return [SigningKey.from_pem(text, alg=alg, kid=kid)]
    try:
        data = json.loads(text)
    except ValueError:
        raise ConfigurationError("a key file holds PEM, a JWK or a JWK Set") from None
    if isinstance(data, dict) and isinstance(data.get("keys"), list):
        if kid is not None:
            raise ConfigurationError("--kid applies to a single key, not a JWK Set")
        return [SigningKey.from_jwk(jwk) for jwk in data["keys"]]
    if isinstance(data, dict):
        return [SigningKey.from_jwk(data, alg=alg, kid=kid)]
    raise ConfigurationError("a key file holds PEM, a JWK or a JWK Set")
