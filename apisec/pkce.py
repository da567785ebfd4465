"""PKCE (RFC 7636) for OAuth clients and authorization servers.

>>> pair = create_pair()
>>> verify(pair.verifier, pair.challenge)
True
>>> challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk")
'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM'

The verifier grammar (43-128 characters of ``A-Z a-z 0-9 - . _ ~``) is
enforced on both sides. ``plain`` is refused unless a caller opts in with
``allow_plain=True``: it offers no protection against an intercepted
authorization request. Comparisons are constant-time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import string

import attrs

from apisec.errors import ClientError, ConfigurationError

__all__ = [
    "PkceError",
    "PkcePair",
    "challenge",
    "create_pair",
    "create_verifier",
    "nonce",
    "state",
    "verify",
]

_UNRESERVED = string.ascii_letters + string.digits + "-._~"
_VERIFIER = re.compile(r"[A-Za-z0-9\-._~]{43,128}")
_S256_CHALLENGE = re.compile(r"[A-Za-z0-9\-_]{43}")
_METHODS = ("S256", "plain")


class PkceError(ClientError):
    """A code verifier that does not follow RFC 7636's grammar."""

    slug = "invalid-pkce-verifier"
    title = "Invalid PKCE verifier"
    default_detail = "The code verifier is not valid."


@attrs.frozen
class PkcePair:
    """A verifier (kept by the client, hidden from ``repr``) and its challenge."""

    verifier: str = attrs.field(repr=False)
    challenge: str
    method: str = "S256"


def _check_method(method: str, allow_plain: bool) -> None:
    if method not in _METHODS:
        raise ConfigurationError(f"unknown PKCE method {method!r}; use 'S256'")
    if method == "plain" and not allow_plain:
        raise ConfigurationError("PKCE method 'plain' is refused unless allow_plain=True")


def create_verifier(length: int = 64) -> str:
    """A random code verifier of ``length`` (43-128) unreserved characters."""
    if isinstance(length, bool) or not isinstance(length, int) or not 43 <= length <= 128:
        raise ConfigurationError("a PKCE verifier is 43 to 128 characters long")
    return "".join(secrets.choice(_UNRESERVED) for _ in range(length))


def challenge(verifier: str, method: str = "S256", *, allow_plain: bool = False) -> str:
    """The code challenge for ``verifier``.

    Raises:
        PkceError: the verifier does not follow the RFC 7636 grammar.
        ConfigurationError: unknown method, or ``plain`` without ``allow_plain``.
    """
    _check_method(method, allow_plain)
    if not isinstance(verifier, str) or _VERIFIER.fullmatch(verifier) is None:
        raise PkceError("code verifier must be 43-128 unreserved characters")
    return _challenge_of(verifier, method)


def _challenge_of(verifier: str, method: str) -> str:
    if method == "plain":
        return verifier
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def verify(
    verifier: str,
    challenge: str,  # the RFC's parameter name; shadows the function inside verify()
    method: str = "S256",
    *,
    allow_plain: bool = False,
) -> bool:
    """Whether ``verifier`` answers ``challenge_``; malformed input is simply False."""
    _check_method(method, allow_plain)
    challenge_grammar = _S256_CHALLENGE if method == "S256" else _VERIFIER
    if not _matches(_VERIFIER, verifier) or not _matches(challenge_grammar, challenge):
        return False
    expected = _challenge_of(verifier, method)
    return hmac.compare_digest(expected.encode("ascii"), challenge.encode("ascii"))


def _matches(pattern: re.Pattern[str], value: object) -> bool:
    return isinstance(value, str) and pattern.fullmatch(value) is not None


def create_pair(method: str = "S256", *, length: int = 64) -> PkcePair:
    """A fresh verifier and its S256 challenge."""
    _check_method(method, allow_plain=False)
    verifier = create_verifier(length)
    return PkcePair(verifier=verifier, challenge=_challenge_of(verifier, method), method=method)


def state(nbytes: int = 32) -> str:
    """An unguessable OAuth ``state`` value (CSRF protection for the redirect)."""
    if nbytes < 16:
        raise ConfigurationError("state needs at least 16 random bytes")
    return secrets.token_urlsafe(nbytes)


def nonce(nbytes: int = 32) -> str:
    """An unguessable OpenID Connect ``nonce`` (binds the ID token to the request)."""
    if nbytes < 16:
        raise ConfigurationError("nonce needs at least 16 random bytes")
    return secrets.token_urlsafe(nbytes)
