"""Signing keys bound to one algorithm, key rings with rotation by ``kid``, JWKS."""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Mapping
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from jwt.algorithms import (
    Algorithm,
    ECAlgorithm,
    HMACAlgorithm,
    OKPAlgorithm,
    RSAAlgorithm,
    RSAPSSAlgorithm,
)
from jwt.exceptions import InvalidKeyError, PyJWTError

from apisec import _b64
from apisec.errors import ConfigurationError
from apisec.tokens import _jws
from apisec.tokens._errors import InvalidToken

__all__ = ["KeyRing", "SigningKey", "jwk_thumbprint"]

HMAC_MIN_BYTES = {"HS256": 32, "HS384": 48, "HS512": 64}
ALGORITHMS = ("HS256", "HS384", "HS512", "RS256", "PS256", "ES256", "EdDSA")
MIN_RSA_BITS = 2048
_MAX_KID = 256

_ALGORITHM_OBJECTS: dict[str, Algorithm] = {
    "HS256": HMACAlgorithm(HMACAlgorithm.SHA256),
    "HS384": HMACAlgorithm(HMACAlgorithm.SHA384),
    "HS512": HMACAlgorithm(HMACAlgorithm.SHA512),
    "RS256": RSAAlgorithm(RSAAlgorithm.SHA256),
    "PS256": RSAPSSAlgorithm(RSAPSSAlgorithm.SHA256),
    "ES256": ECAlgorithm(ECAlgorithm.SHA256),
    "EdDSA": OKPAlgorithm(),
}
_THUMBPRINT_MEMBERS = {
    "RSA": ("e", "kty", "n"),
    "EC": ("crv", "kty", "x", "y"),
    "OKP": ("crv", "kty", "x"),
    "oct": ("k", "kty"),
}


def jwk_thumbprint(jwk: Mapping[str, Any]) -> str:
    """The RFC 7638 SHA-256 thumbprint of a JWK, base64url-encoded.

    Only the required public members take part, in lexicographic order, so
    the thumbprint of a private JWK equals that of its public half.
    """
    kty = jwk.get("kty")
    if kty not in _THUMBPRINT_MEMBERS:
        raise ConfigurationError(f"cannot take the thumbprint of a {kty!r} key")
    try:
        members = {name: jwk[name] for name in _THUMBPRINT_MEMBERS[kty]}
    except KeyError as exc:
        raise ConfigurationError(f"JWK lacks the {exc.args[0]!r} member") from None
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True).encode()
    return _b64.encode(hashlib.sha256(canonical).digest())


def new_private_key(alg: str) -> Any:
    """A fresh private key for an asymmetric ``alg`` (RSA 2048, P-256 or Ed25519)."""
    if alg in ("RS256", "PS256"):
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if alg == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    return ed25519.Ed25519PrivateKey.generate()


def _check_kid(kid: object) -> str:
    if not isinstance(kid, str) or not kid or len(kid) > _MAX_KID or not kid.isprintable():
        raise ConfigurationError("kid must be 1-256 printable characters")
    return kid


def _check_alg(alg: object) -> str:
    if alg not in ALGORITHMS:
        raise ConfigurationError(f"unsupported algorithm {alg!r}; choose one of {ALGORITHMS}")
    return str(alg)


def _key_alg_mismatch(alg: str, key: object) -> str | None:
    """Why ``key`` cannot serve ``alg``, or None."""
    if alg in ("RS256", "PS256"):
        if not isinstance(key, (rsa.RSAPrivateKey, rsa.RSAPublicKey)):
            return f"{alg} needs an RSA key"
        if key.key_size < MIN_RSA_BITS:
            return f"RSA keys must have at least {MIN_RSA_BITS} bits"
    elif alg == "ES256":
        if not isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)):
            return "ES256 needs an EC key"
        if not isinstance(key.curve, ec.SECP256R1):
            return "ES256 needs a P-256 key"
    elif alg == "EdDSA":
        kinds = (
            ed25519.Ed25519PrivateKey,
            ed25519.Ed25519PublicKey,
            ed448.Ed448PrivateKey,
            ed448.Ed448PublicKey,
        )
        if not isinstance(key, kinds):
            return "EdDSA needs an Ed25519 or Ed448 key"
    return None


def _infer_alg(key: object) -> str:
    if isinstance(key, (rsa.RSAPrivateKey, rsa.RSAPublicKey)):
        return "RS256"
    if isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)):
        return "ES256"
    if isinstance(
        key,
        (
            ed25519.Ed25519PrivateKey,
            ed25519.Ed25519PublicKey,
            ed448.Ed448PrivateKey,
            ed448.Ed448PublicKey,
        ),
    ):
        return "EdDSA"
    raise ConfigurationError(f"unsupported key type {type(key).__name__}")


_PRIVATE_TYPES = (
    rsa.RSAPrivateKey,
    ec.EllipticCurvePrivateKey,
    ed25519.Ed25519PrivateKey,
    ed448.Ed448PrivateKey,
)


class SigningKey:
    """A key bound to exactly one JWS algorithm.

    Build with :meth:`hmac`, :meth:`generate`, :meth:`from_pem` or
    :meth:`from_jwk`. The parsed key object is kept, so nothing is parsed
    per token. A token is only ever checked with this key's own algorithm.

    >>> key = SigningKey.generate("ES256", kid="2026-11")
    >>> key
    SigningKey(alg='ES256', kid='2026-11', private=True)
    """

    __slots__ = ("_algorithm", "_private", "_public", "alg", "kid")

    def __init__(self, alg: str, kid: str, private: Any, public: Any) -> None:
        """Internal: use the class-method constructors."""
        self.alg = _check_alg(alg)
        self.kid = _check_kid(kid)
        self._private = private
        self._public = public
        self._algorithm = _ALGORITHM_OBJECTS[self.alg]

    def __repr__(self) -> str:
        return f"SigningKey(alg={self.alg!r}, kid={self.kid!r}, private={self.can_sign})"

    @property
    def can_sign(self) -> bool:
        return self._private is not None

    @property
    def is_symmetric(self) -> bool:
        return self.alg in HMAC_MIN_BYTES

    # --- constructors --------------------------------------------------------------

    @classmethod
    def hmac(cls, secret: bytes | str, *, alg: str = "HS256", kid: str | None = None) -> SigningKey:
        """An HMAC key; secrets shorter than the hash output are refused."""
        alg = _check_alg(alg)
        if alg not in HMAC_MIN_BYTES:
            raise ConfigurationError(f"{alg} is not an HMAC algorithm")
        raw = secret.encode() if isinstance(secret, str) else secret
        if not isinstance(raw, bytes):
            raise ConfigurationError("an HMAC secret must be bytes or str")
        if len(raw) < HMAC_MIN_BYTES[alg]:
            raise ConfigurationError(
                f"{alg} needs a secret of at least {HMAC_MIN_BYTES[alg]} bytes, got {len(raw)}"
            )
        try:
            prepared = _ALGORITHM_OBJECTS[alg].prepare_key(raw)
        except InvalidKeyError as exc:
            # PEM, SSH, DER or JWK material: the algorithm-confusion footgun.
            raise ConfigurationError(
                f"refusing an asymmetric key as an HMAC secret: {exc}"
            ) from None
        if kid is None:
            kid = jwk_thumbprint({"kty": "oct", "k": _b64.encode(raw)})[:16]
        return cls(alg, kid, prepared, prepared)

    @classmethod
    def generate(cls, alg: str, *, kid: str | None = None) -> SigningKey:
        """A fresh random key for ``alg``."""
        alg = _check_alg(alg)
        if alg in HMAC_MIN_BYTES:
            return cls.hmac(secrets.token_bytes(HMAC_MIN_BYTES[alg]), alg=alg, kid=kid)
        return cls._from_key_object(new_private_key(alg), alg, kid)

    @classmethod
    def from_pem(
        cls, pem: bytes | str, *, alg: str | None = None, kid: str | None = None
    ) -> SigningKey:
        """A key from PEM (private keys sign and verify; public keys only verify).

        ``alg`` defaults from the key type: RSA gives RS256 (pass ``"PS256"``
        for PSS), P-256 gives ES256, Ed25519/Ed448 give EdDSA.
        """
        data = pem.encode() if isinstance(pem, str) else pem
        key: Any
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError):
            try:
                key = serialization.load_pem_public_key(data)
            except (ValueError, TypeError) as exc:
                raise ConfigurationError("not a PEM private or public key (or encrypted)") from exc
        return cls._from_key_object(key, alg, kid)

    @classmethod
    def from_jwk(
        cls, jwk: Mapping[str, Any] | str, *, alg: str | None = None, kid: str | None = None
    ) -> SigningKey:
        """A key from a JWK (a mapping or its JSON text)."""
        if isinstance(jwk, str):
            try:
                jwk = json.loads(jwk)
            except ValueError as exc:
                raise ConfigurationError("JWK is not valid JSON") from exc
        if not isinstance(jwk, Mapping):
            raise ConfigurationError("a JWK must be a JSON object")
        alg = alg or jwk.get("alg")
        kid = kid or jwk.get("kid")
        kty = jwk.get("kty")
        try:
            if kty == "oct":
                if alg is None:
                    raise ConfigurationError("an oct JWK needs an explicit alg (HS256/384/512)")
                secret = _b64.decode(str(jwk.get("k", "")))
                if secret is None:
                    raise ConfigurationError("the oct JWK's k is not base64url")
                return cls.hmac(secret, alg=alg, kid=kid)
            loaders: dict[str, Any] = {
                "RSA": RSAAlgorithm.from_jwk,
                "EC": ECAlgorithm.from_jwk,
                "OKP": OKPAlgorithm.from_jwk,
            }
            if kty not in loaders:
                raise ConfigurationError(f"unsupported JWK kty {kty!r}")
            key = loaders[kty](dict(jwk))
        except (PyJWTError, ValueError, TypeError, KeyError) as exc:
            raise ConfigurationError(f"unusable {kty} JWK: {type(exc).__name__}") from None
        return cls._from_key_object(key, alg, kid)

    @classmethod
    def _from_key_object(cls, key: Any, alg: str | None, kid: str | None) -> SigningKey:
        alg = _check_alg(alg) if alg is not None else _infer_alg(key)
        problem = _key_alg_mismatch(alg, key)
        if problem is not None:
            raise ConfigurationError(problem)
        private = key if isinstance(key, _PRIVATE_TYPES) else None
        public = key.public_key() if private is not None else key
        self = cls(alg, "pending", private, public)
        self.kid = _check_kid(kid) if kid is not None else jwk_thumbprint(self._public_jwk_raw())
        return self

    # --- JWK / JWKS ----------------------------------------------------------------

    def _public_jwk_raw(self) -> dict[str, Any]:
        jwk: dict[str, Any] = self._algorithm.to_jwk(self._public, as_dict=True)
        return jwk

    def public_jwk(self) -> dict[str, Any] | None:
        """The public JWK (``kid``, ``alg``, ``use``), or None for HMAC keys."""
        if self.is_symmetric:
            return None
        jwk = {
            k: v
            for k, v in self._public_jwk_raw().items()
            if k in ("kty", "crv", "n", "e", "x", "y")
        }
        jwk.update({"kid": self.kid, "alg": self.alg, "use": "sig"})
        return jwk

    # --- signatures ----------------------------------------------------------------

    def sign(self, signing_input: bytes) -> bytes:
        if self._private is None:
            raise ConfigurationError(f"key {self.kid!r} is public only and cannot sign")
        signature: bytes = self._algorithm.sign(signing_input, self._private)
        return signature

    def verify_signature(self, signing_input: bytes, signature: bytes) -> bool:
        try:
            return bool(self._algorithm.verify(signing_input, self._public, signature))
        except (PyJWTError, ValueError, TypeError):
            return False

    def verify_compact(self, token: str, *, max_bytes: int = _jws.DEFAULT_MAX_TOKEN_BYTES) -> bytes:
        """Check a compact JWS made with this key; return its payload bytes.

        Only the signature and header rules are checked here (``alg`` equal to
        this key's, no ``crit``); claims are the caller's business.
        """
        compact = _jws.parse(token, max_bytes)
        check_header(compact.header, self)
        if not self.verify_signature(compact.signing_input, compact.signature):
            raise InvalidToken("signature does not verify")
        return compact.payload


def check_header(header: Mapping[str, Any], key: SigningKey) -> None:
    """Header rules shared by every verification path."""
    alg = header.get("alg")
    if alg != key.alg:
        # Covers "none" in any case and algorithm confusion (HS256 against an RSA key).
        raise InvalidToken(f"token alg {str(alg)[:16]!r} does not match key {key.kid!r}")
    if "crit" in header:
        raise InvalidToken("token has critical header parameters we do not understand")


class KeyRing:
    """The active signing key plus previous keys that still verify.

    Tokens are matched to keys by ``kid`` only; a token without a known
    ``kid`` is refused. Rotate by building a new ring with the new key
    active and the old one among ``previous`` until its tokens expire.
    """

    __slots__ = ("_by_kid", "active", "keys")

    def __init__(self, active: SigningKey, *previous: SigningKey) -> None:
        keys = (active, *previous)
        for key in keys:
            if not isinstance(key, SigningKey):
                raise ConfigurationError("a KeyRing holds SigningKey objects")
        if not active.can_sign:
            raise ConfigurationError("the active key must be able to sign (a private key)")
        by_kid: dict[str, SigningKey] = {}
        for key in keys:
            if key.kid in by_kid:
                raise ConfigurationError(f"two keys share the kid {key.kid!r}")
            by_kid[key.kid] = key
        self.active = active
        self.keys = keys
        self._by_kid = by_kid

    def __repr__(self) -> str:
        return f"KeyRing(active={self.active.kid!r}, kids={list(self._by_kid)!r})"

    def __contains__(self, kid: object) -> bool:
        return kid in self._by_kid

    def get(self, kid: object) -> SigningKey | None:
        if not isinstance(kid, str):
            return None
        return self._by_kid.get(kid)

    def jwks(self) -> dict[str, list[dict[str, Any]]]:
        """The public JWK Set: asymmetric keys only, never private members."""
        return {"keys": [jwk for key in self.keys if (jwk := key.public_jwk()) is not None]}
