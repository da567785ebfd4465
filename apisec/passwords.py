"""Password hashing: scrypt from the standard library, Argon2id with ``apisec[argon2]``.

>>> hasher = PasswordHasher(scrypt_n_log2=10)      # cheap, for the example
>>> stored = hasher.hash("correct horse battery staple")
>>> stored.startswith("$scrypt$ln=10,r=8,p=1$")
True
>>> hasher.verify("correct horse battery staple", stored), hasher.verify("wrong", stored)
(True, False)
>>> hasher.verify("anything", None)                 # unknown user: same work, False
False

Hashes carry their parameters, so raising the cost later is safe:
:meth:`PasswordHasher.needs_rehash` says when to store a fresh hash after a
successful login. Passwords are NFKC-normalized (as NIST SP 800-63B asks),
never logged and never part of an error message.

In asyncio code use :class:`AsyncPasswordHasher`, the twin whose ``hash``
and ``verify`` are awaited: the hash runs in a worker thread, never on the
event loop.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import re
import secrets
import threading
import unicodedata
import warnings
from typing import Any

from apisec.errors import ConfigurationError, FieldError, ValidationError

__all__ = [
    "AsyncPasswordHasher",
    "PasswordHasher",
    "hash_password",
    "needs_rehash",
    "verify_password",
]

MAX_PASSWORD_BYTES = 1024
_SCRYPT = re.compile(
    r"\$scrypt\$ln=(?P<ln>\d{1,2}),r=(?P<r>\d{1,2}),p=(?P<p>\d{1,2})\$(?P<salt>[A-Za-z0-9+/]+)\$(?P<dk>[A-Za-z0-9+/]+)"
)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


def _argon2() -> Any:
    try:
        import argon2  # noqa: PLC0415 - optional extra
    except ImportError:
        raise ConfigurationError("Argon2id needs the extra: pip install 'apisec[argon2]'") from None
    return argon2


class _HasherCore:
    """Configuration and the hashing itself, shared by both twins."""

    def __init__(
        self,
        scheme: str = "scrypt",
        *,
        scrypt_n_log2: int = 15,
        scrypt_r: int = 8,
        scrypt_p: int = 1,
        argon2_time_cost: int = 3,
        argon2_memory_cost: int = 65536,
        argon2_parallelism: int = 4,
        max_password_bytes: int = MAX_PASSWORD_BYTES,
    ) -> None:
        if scheme not in ("scrypt", "argon2id"):
            raise ConfigurationError("scheme must be 'scrypt' or 'argon2id'")
        if not 10 <= scrypt_n_log2 <= 22 or not 1 <= scrypt_r <= 32 or not 1 <= scrypt_p <= 16:
            raise ConfigurationError(
                "scrypt parameters out of range (n_log2 10-22, r 1-32, p 1-16)"
            )
        self.scheme = scheme
        self._scrypt = (scrypt_n_log2, scrypt_r, scrypt_p)
        self.max_password_bytes = max_password_bytes
        self._argon: Any = None
        if scheme == "argon2id":
            argon2 = _argon2()
            self._argon = argon2.PasswordHasher(
                time_cost=argon2_time_cost,
                memory_cost=argon2_memory_cost,
                parallelism=argon2_parallelism,
                hash_len=32,
                salt_len=16,
                type=argon2.Type.ID,
            )
        # Built now, not on first use: a lazily built dummy would make the first
        # unknown-user check in a process measurably slower than a known one.
        self._dummy = self._hash(secrets.token_urlsafe(16))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(scheme={self.scheme!r})"

    def _encode(self, password: object) -> bytes | None:
        # The raw length is checked first: NFKC can expand one character 18-fold,
        # and a huge password must not cost more than a normal one to refuse.
        if not isinstance(password, str) or len(password) > self.max_password_bytes:
            return None
        data = unicodedata.normalize("NFKC", password).encode("utf-8", "surrogatepass")
        return None if len(data) > self.max_password_bytes else data

    def _hash(self, password: str) -> str:
        data = self._encode(password)
        if data is None:
            raise ValidationError([FieldError("password", "is too long", "too_long")])
        if not data:
            raise ValidationError([FieldError("password", "must not be empty", "too_short")])
        if self._argon is not None:
            digest: str = self._argon.hash(data)
            return digest
        n_log2, r, p = self._scrypt
        salt = secrets.token_bytes(16)
        dk = _scrypt(data, salt, n_log2, r, p)
        return f"$scrypt$ln={n_log2},r={r},p={p}${_b64(salt)}${_b64(dk)}"

    def _verify(self, password: str, stored: str | None) -> bool:
        data = self._encode(password)
        if stored is None or data is None:
            self._verify_hash(data or b"", self._dummy)
            return False
        return self._verify_hash(data, stored)

    def needs_rehash(self, stored: str) -> bool:
        """True when ``stored`` was made with another scheme or other parameters."""
        if self._argon is not None:
            if not stored.startswith("$argon2id$"):
                return True
            return bool(self._argon.check_needs_rehash(stored))
        match = _SCRYPT.fullmatch(stored)
        if match is None:
            return True
        return (int(match["ln"]), int(match["r"]), int(match["p"])) != self._scrypt

    def _verify_hash(self, data: bytes, stored: str) -> bool:
        if stored.startswith("$argon2"):
            argon2 = _argon2()
            verifier = self._argon or argon2.PasswordHasher()
            try:
                return bool(verifier.verify(stored, data))
            except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
                return False
        match = _SCRYPT.fullmatch(stored) if isinstance(stored, str) else None
        if match is None:
            return False
        n_log2, r, p = int(match["ln"]), int(match["r"]), int(match["p"])
        if not 10 <= n_log2 <= 22 or not 1 <= r <= 32 or not 1 <= p <= 16:
            return False  # refuse hashes that would make us burn absurd CPU or memory
        try:
            salt, expected = _unb64(match["salt"]), _unb64(match["dk"])
        except (binascii.Error, ValueError):
            return False
        return hmac.compare_digest(_scrypt(data, salt, n_log2, r, p, len(expected)), expected)


class PasswordHasher(_HasherCore):
    """Hash and verify passwords with one configured scheme.

    Args:
        scheme: ``"scrypt"`` (default, stdlib) or ``"argon2id"`` (needs ``argon2-cffi``).
        scrypt_n_log2, scrypt_r, scrypt_p: scrypt cost (N = 2**n_log2; the
            default 2**15 with r=8 uses 32 MiB and tens of milliseconds).
        argon2_time_cost, argon2_memory_cost (KiB), argon2_parallelism: Argon2id cost
            (defaults follow RFC 9106's second recommended option).
        max_password_bytes: longer passwords are refused (a cheap DoS guard).
    """

    def hash(self, password: str) -> str:
        """A new salted hash of ``password``.

        Raises:
            apisec.errors.ValidationError: empty or too long (field ``password``).
        """
        return self._hash(password)

    def verify(self, password: str, stored: str | None) -> bool:
        """Whether ``password`` matches ``stored``.

        ``stored=None`` (no such user) verifies against a dummy hash with the
        same cost and returns False, so response times do not reveal which
        accounts exist. Malformed hashes and over-long passwords give False.
        """
        return self._verify(password, stored)

    async def ahash(self, password: str) -> str:
        """Deprecated: use :class:`AsyncPasswordHasher` (same arguments), whose ``hash`` this is."""
        _deprecated("ahash", "hash")
        return await asyncio.to_thread(self._hash, password)

    async def averify(self, password: str, stored: str | None) -> bool:
        """Deprecated: use :class:`AsyncPasswordHasher`, whose ``verify`` this is."""
        _deprecated("averify", "verify")
        return await asyncio.to_thread(self._verify, password, stored)


class AsyncPasswordHasher(_HasherCore):
    """The asyncio twin of :class:`PasswordHasher` (same arguments).

    ``hash`` and ``verify`` run in a worker thread, so a hash never blocks
    the event loop; ``needs_rehash`` does no hashing and stays synchronous.
    """

    async def hash(self, password: str) -> str:
        """Same as :meth:`PasswordHasher.hash`, in a worker thread."""
        return await asyncio.to_thread(self._hash, password)

    async def verify(self, password: str, stored: str | None) -> bool:
        """Same as :meth:`PasswordHasher.verify`, in a worker thread."""
        return await asyncio.to_thread(self._verify, password, stored)


def _deprecated(name: str, twin: str) -> None:
    warnings.warn(
        f"PasswordHasher.{name} is deprecated: use AsyncPasswordHasher(...).{twin}",
        DeprecationWarning,
        stacklevel=3,
    )


def _scrypt(data: bytes, salt: bytes, n_log2: int, r: int, p: int, length: int = 32) -> bytes:
    n = 1 << n_log2
    maxmem = 128 * r * n * (p + 1) + 1024 * 1024
    return hashlib.scrypt(data, salt=salt, n=n, r=r, p=p, maxmem=maxmem, dklen=length)


_default: PasswordHasher | None = None
_default_lock = threading.Lock()


def _default_hasher() -> PasswordHasher:
    # Built on first use of the module functions (it hashes once, for its dummy),
    # so importing apisec.passwords costs nothing.
    global _default  # noqa: PLW0603 - one shared, lazily built hasher
    if _default is None:
        with _default_lock:
            if _default is None:
                _default = PasswordHasher()
    return _default


def hash_password(password: str) -> str:
    """Hash with the default :class:`PasswordHasher` (scrypt, N=2**15, r=8, p=1)."""
    return _default_hasher().hash(password)


def verify_password(password: str, stored: str | None) -> bool:
    """Verify with the default hasher; ``stored=None`` spends the same time and returns False."""
    return _default_hasher().verify(password, stored)


def needs_rehash(stored: str) -> bool:
    """Whether the default hasher would hash differently now."""
    return _default_hasher().needs_rehash(stored)
