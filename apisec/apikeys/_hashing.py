"""Hashing API keys for storage, with optional peppers that can rotate.

Without a pepper a key is stored as ``sha256$<hex>``. With peppers (secret
keys held by the application, not the database) it is
``hmac-sha256$<pepper id>$<hex>``: a stolen database alone is then useless
for offline guessing. The pepper id in the hash says which pepper made it, so
a new pepper can be introduced and old hashes upgraded on their next use.
API keys carry 190 random bits, so a fast hash is the right tool here (unlike
passwords).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Mapping

import attrs

from apisec.errors import ConfigurationError

__all__ = ["Peppers", "hash_api_key"]

_PEPPER_ID = re.compile(r"[A-Za-z0-9_-]{1,32}")
MIN_PEPPER_BYTES = 32


@attrs.frozen
class Peppers:
    """Pepper secrets by id; ``current`` hashes new keys, the others still verify.

    >>> peppers = Peppers({"p1": b"x" * 32, "p2": b"y" * 32}, current="p2")
    """

    secrets: Mapping[str, bytes] = attrs.field(repr=False)
    current: str

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.secrets, Mapping) or not self.secrets:
            raise ConfigurationError("give at least one pepper")
        for pepper_id, secret in self.secrets.items():
            if not isinstance(pepper_id, str) or _PEPPER_ID.fullmatch(pepper_id) is None:
                raise ConfigurationError("pepper ids are 1-32 letters, digits, '-' or '_'")
            if not isinstance(secret, bytes) or len(secret) < MIN_PEPPER_BYTES:
                raise ConfigurationError(f"peppers must be at least {MIN_PEPPER_BYTES} bytes")
        if self.current not in self.secrets:
            raise ConfigurationError("the current pepper must be one of the peppers")
        object.__setattr__(self, "secrets", dict(self.secrets))

    def __repr__(self) -> str:
        return f"Peppers(ids={sorted(self.secrets)!r}, current={self.current!r})"


def hash_api_key(
    key: str, pepper: bytes | Peppers | None = None, *, pepper_id: str | None = None
) -> str:
    """The storable hash of ``key``.

    Args:
        key: the key text.
        pepper: None (plain SHA-256), one pepper secret (id ``"default"``),
            or :class:`Peppers` (its current pepper, unless ``pepper_id`` names another).

    >>> hash_api_key("sk_test_abc")[:7]
    'sha256$'
    """
    data = key.encode("utf-8", "surrogatepass")
    if pepper is None:
        return "sha256$" + hashlib.sha256(data).hexdigest()
    if isinstance(pepper, bytes):
        if len(pepper) < MIN_PEPPER_BYTES:
            raise ConfigurationError(f"peppers must be at least {MIN_PEPPER_BYTES} bytes")
        pepper = Peppers({"default": pepper}, current="default")
    if not isinstance(pepper, Peppers):
        raise ConfigurationError("pepper must be bytes, Peppers or None")
    chosen = pepper.current if pepper_id is None else pepper_id
    secret = pepper.secrets.get(chosen)
    if secret is None:
        raise ConfigurationError(f"unknown pepper id {chosen!r}")
    return f"hmac-sha256${chosen}$" + hmac.new(secret, data, hashlib.sha256).hexdigest()


def current_hasher(pepper: Peppers | None) -> Callable[[str], str]:
    """``hash_api_key(key, pepper)`` as a function of ``key`` alone, its constants bound once."""
    if pepper is None:
        sha256 = hashlib.sha256

        def plain(key: str) -> str:
            return "sha256$" + sha256(key.encode("utf-8", "surrogatepass")).hexdigest()

        return plain
    secret = pepper.secrets[pepper.current]
    label = f"hmac-sha256${pepper.current}$"
    digest = hmac.digest

    def peppered(key: str) -> str:
        return label + digest(secret, key.encode("utf-8", "surrogatepass"), "sha256").hex()

    return peppered


def hash_versions(key: str, pepper: Peppers | None) -> list[str]:
    """Every hash ``key`` may be stored under: the current pepper's first."""
    if pepper is None:
        return [hash_api_key(key)]
    ids = [pepper.current, *sorted(i for i in pepper.secrets if i != pepper.current)]
    return [hash_api_key(key, pepper, pepper_id=i) for i in ids]


def same_hash(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
