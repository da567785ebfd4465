"""Signing keys and key rings: RFC vectors, algorithm binding, JWKS hygiene."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from apisec import ConfigurationError
from apisec.tokens import InvalidToken, KeyRing, SigningKey, jwk_thumbprint

JOSE = json.loads((Path(__file__).parent / "vectors" / "jose-rfc7515-rfc8037.json").read_text())
SUPPORTED = [v for v in JOSE["vectors"] if v["alg"] in ("HS256", "RS256", "ES256", "EdDSA")]


def _payload(vector: dict[str, Any]) -> Any:
    return vector["payload"] if "payload" in vector else vector["payload_text"]


@pytest.mark.parametrize("vector", SUPPORTED, ids=[v["name"] for v in SUPPORTED])
def test_rfc_vectors_verify_through_signing_key(vector: dict[str, Any]) -> None:
    """RFC 7515 A.1-A.3 and RFC 8037 A.4 tokens verify with keys loaded from their JWKs."""
    key = SigningKey.from_jwk(vector["jwk"], alg=vector["alg"])
    payload = key.verify_compact(vector["token"])
    expected = _payload(vector)
    if isinstance(expected, dict):
        assert json.loads(payload) == expected
    else:
        assert payload.decode() == expected


@pytest.mark.parametrize(
    "vector", [v for v in SUPPORTED if "public_jwk" in v], ids=lambda v: v["name"]
)
def test_rfc_vectors_verify_with_the_public_half_in_a_key_ring(vector: dict[str, Any]) -> None:
    """Public JWKs verify the same tokens, and a ring finds the key by kid."""
    public = SigningKey.from_jwk(vector["public_jwk"], alg=vector["alg"], kid="rfc")
    assert not public.can_sign
    ring = KeyRing(SigningKey.generate("HS256", kid="active"), public)
    found = ring.get("rfc")
    assert found is public
    assert found.verify_compact(vector["token"])


@pytest.mark.parametrize("vector", SUPPORTED, ids=[v["name"] for v in SUPPORTED])
def test_rfc_vectors_fail_when_tampered(vector: dict[str, Any]) -> None:
    """Flipping one payload character breaks each vector's signature."""
    key = SigningKey.from_jwk(vector["jwk"], alg=vector["alg"])
    header, payload, signature = vector["token"].split(".")
    tampered = payload[:-2] + ("A" if payload[-2] != "A" else "B") + payload[-1]
    with pytest.raises(InvalidToken):
        key.verify_compact(f"{header}.{tampered}.{signature}")


def test_unsupported_algorithms_are_refused_clearly() -> None:
    """The RFC's ES512 key is not one of ours: a ConfigurationError, not a surprise."""
    es512 = next(v for v in JOSE["vectors"] if v["alg"] == "ES512")
    with pytest.raises(ConfigurationError, match="ES256"):
        SigningKey.from_jwk(es512["jwk"], alg="ES256")
    with pytest.raises(ConfigurationError, match="unsupported algorithm"):
        SigningKey.from_jwk(es512["jwk"], alg="ES512")


@pytest.mark.parametrize("alg", ["HS256", "HS384", "HS512", "RS256", "PS256", "ES256", "EdDSA"])
def test_generated_keys_sign_and_verify_and_agree_with_pyjwt(alg: str) -> None:
    """Each algorithm round-trips, and PyJWT verifies our signatures with the public key."""
    key = SigningKey.generate(alg, kid="k1")
    from apisec.tokens import _jws

    token = _jws.serialize({"alg": alg, "kid": "k1"}, b'{"x":1}', key.sign)
    assert key.verify_compact(token) == b'{"x":1}'
    verifier: Any = key._public  # the prepared public key object
    assert jwt.decode(token, verifier, algorithms=[alg]) == {"x": 1}


@pytest.mark.parametrize(("alg", "size"), [("HS256", 31), ("HS384", 47), ("HS512", 63)])
def test_short_hmac_secrets_are_refused(alg: str, size: int) -> None:
    """An HMAC secret shorter than the hash output is a ConfigurationError."""
    with pytest.raises(ConfigurationError, match="at least"):
        SigningKey.hmac(b"k" * size, alg=alg)
    SigningKey.hmac(b"k" * (size + 1), alg=alg)


def _rsa_public_forms() -> list[bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    return [
        key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
        key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.PKCS1),
        key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH),
    ]


@pytest.mark.parametrize("material", _rsa_public_forms(), ids=["spki", "pkcs1", "openssh"])
def test_public_keys_cannot_become_hmac_secrets(material: bytes) -> None:
    """PEM and SSH key material is refused as an HMAC secret (algorithm confusion)."""
    with pytest.raises(ConfigurationError, match="asymmetric"):
        SigningKey.hmac(material)


def test_keys_are_bound_to_compatible_algorithms() -> None:
    """RSA under 2048 bits, wrong curves and mismatched algorithms are refused."""
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    pem = small.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(ConfigurationError, match="2048"):
        SigningKey.from_pem(pem)
    p384 = ec.generate_private_key(ec.SECP384R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(ConfigurationError, match="P-256"):
        SigningKey.from_pem(p384)
    es = SigningKey.generate("ES256")
    with pytest.raises(ConfigurationError, match="RSA"):
        SigningKey._from_key_object(es._private, "RS256", None)
    with pytest.raises(ConfigurationError):
        SigningKey.from_pem(b"not a key")
    with pytest.raises(ConfigurationError):
        SigningKey.hmac(b"k" * 32, alg="RS256")


def test_from_pem_private_and_public_and_pss() -> None:
    """Private PEM signs; public PEM only verifies; PS256 must be asked for."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    priv_pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    pub_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    signer = SigningKey.from_pem(priv_pem, alg="PS256", kid="pss")
    verifier = SigningKey.from_pem(pub_pem, alg="PS256", kid="pss")
    assert SigningKey.from_pem(priv_pem).alg == "RS256"
    from apisec.tokens import _jws

    token = _jws.serialize({"alg": "PS256"}, b"{}", signer.sign)
    assert verifier.verify_compact(token) == b"{}"
    with pytest.raises(ConfigurationError, match="public only"):
        verifier.sign(b"x")


def test_repr_and_jwks_never_show_secrets() -> None:
    """repr shows alg and kid only; jwks() omits oct keys and private members."""
    secret = b"s" * 32
    hmac_key = SigningKey.hmac(secret, kid="h")
    assert "sss" not in repr(hmac_key)
    rsa_key = SigningKey.generate("RS256", kid="r")
    ec_key = SigningKey.generate("ES256", kid="e")
    ed_key = SigningKey.generate("EdDSA", kid="d")
    ring = KeyRing(rsa_key, ec_key, ed_key, hmac_key)
    keys = ring.jwks()["keys"]
    assert [k["kid"] for k in keys] == ["r", "e", "d"]
    for jwk in keys:
        assert not {"d", "p", "q", "dp", "dq", "qi", "k"} & set(jwk)
        assert jwk["use"] == "sig"
        assert jwk["alg"] in ("RS256", "ES256", "EdDSA")
        assert SigningKey.from_jwk(jwk).can_sign is False
    assert "secret" not in repr(ring)


def test_thumbprint_is_stable_and_ignores_private_members() -> None:
    """RFC 7638: the thumbprint of a private JWK equals its public one; default kids use it."""
    key = SigningKey.generate("ES256")
    public = key.public_jwk()
    assert public is not None
    assert key.kid == jwk_thumbprint(public)
    reordered = dict(reversed(list(public.items())))
    assert jwk_thumbprint(reordered) == key.kid
    vector = next(v for v in JOSE["vectors"] if v["alg"] == "ES256")
    assert jwk_thumbprint(vector["jwk"]) == jwk_thumbprint(vector["public_jwk"])
    with pytest.raises(ConfigurationError):
        jwk_thumbprint({"kty": "EC", "crv": "P-256"})


def test_key_ring_rules() -> None:
    """Duplicate kids, public-only active keys and non-keys are refused."""
    a = SigningKey.generate("HS256", kid="a")
    with pytest.raises(ConfigurationError, match="share"):
        KeyRing(a, SigningKey.generate("HS256", kid="a"))
    public = SigningKey.from_jwk(SigningKey.generate("EdDSA").public_jwk() or {})
    with pytest.raises(ConfigurationError, match="sign"):
        KeyRing(public)
    with pytest.raises(ConfigurationError):
        KeyRing(a, "b")  # type: ignore[arg-type]
    ring = KeyRing(a)
    assert "a" in ring
    assert ring.get("a") is a
    assert ring.get(None) is None
    assert ring.get("../../etc/passwd") is None


@pytest.mark.parametrize("kid", ["", "x" * 257, "tab\tkid", 5])
def test_bad_kids_are_refused(kid: Any) -> None:
    """kids are 1-256 printable characters."""
    with pytest.raises(ConfigurationError):
        SigningKey.hmac(b"k" * 32, kid=kid)


@pytest.mark.parametrize(
    "jwk",
    [
        {"kty": "oct"},
        {"kty": "RSA", "n": "AQAB"},
        {"kty": "XYZ"},
        "not json",
        [],
        {"kty": "oct", "k": "!!!"},
    ],
)
def test_broken_jwks_are_configuration_errors(jwk: Any) -> None:
    """Unusable JWKs raise ConfigurationError, never PyJWT or KeyError."""
    with pytest.raises(ConfigurationError):
        SigningKey.from_jwk(
            jwk, alg="HS256" if isinstance(jwk, dict) and jwk.get("kty") == "oct" else None
        )
