"""API key text: ``<prefix>_<32 random base62><6-char base62 CRC32>``.

The random part carries 190 bits from ``secrets``. The checksum (CRC32 of
everything before it) lets :func:`is_well_formed` reject typos and
scanner false positives offline, before any store lookup; CRC32 catches
every single-character change.
"""

from __future__ import annotations

import re
import secrets
import string
import zlib

from apisec.errors import ConfigurationError

__all__ = ["generate_key_text", "is_well_formed", "key_pattern", "split_key"]

BASE62 = string.digits + string.ascii_uppercase + string.ascii_lowercase
_INDEX = {c: i for i, c in enumerate(BASE62)}
RANDOM_CHARS = 32  # 32 * log2(62) = 190.5 bits
CHECKSUM_CHARS = 6  # 62**6 > 2**32
BODY_CHARS = RANDOM_CHARS + CHECKSUM_CHARS
_PREFIX = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,31}")
MAX_KEY_LENGTH = 32 + 1 + BODY_CHARS


def check_prefix(prefix: object) -> str:
    if not isinstance(prefix, str) or _PREFIX.fullmatch(prefix) is None or prefix.endswith("_"):
        raise ConfigurationError(
            "a key prefix is 1-32 letters, digits or underscores, starting with a letter"
            " and not ending with '_' (e.g. 'sk_live')"
        )
    return prefix


def _base62(number: int, width: int) -> str:
    chars = []
    for _ in range(width):
        number, digit = divmod(number, 62)
        chars.append(BASE62[digit])
    return "".join(reversed(chars))


def _checksum(head: str) -> str:
    return _base62(zlib.crc32(head.encode("ascii")), CHECKSUM_CHARS)


def generate_key_text(prefix: str) -> str:
    """A fresh key for ``prefix``."""
    head = f"{check_prefix(prefix)}_{''.join(secrets.choice(BASE62) for _ in range(RANDOM_CHARS))}"
    return head + _checksum(head)


def _decode_checksum(text: str) -> int:
    i = _INDEX
    a, b, c, d, e, f = text[0], text[1], text[2], text[3], text[4], text[5]
    return ((((i[a] * 62 + i[b]) * 62 + i[c]) * 62 + i[d]) * 62 + i[e]) * 62 + i[f]


def split_key(key: object) -> tuple[str, str] | None:
    """``(prefix, random part)`` of a well-formed key, else None. Never raises."""
    if not isinstance(key, str) or len(key) > MAX_KEY_LENGTH:
        return None
    prefix, _, body = key.rpartition("_")
    # str methods run in C: cheaper than a backtracking regex over the whole key.
    if len(body) != BODY_CHARS or not (body.isascii() and body.isalnum()):
        return None
    if _PREFIX.fullmatch(prefix) is None or prefix.endswith("_"):
        return None
    if zlib.crc32(key[:-CHECKSUM_CHARS].encode("ascii")) != _decode_checksum(body[RANDOM_CHARS:]):
        return None
    return prefix, body[:RANDOM_CHARS]


def is_well_formed(key: object) -> bool:
    """Whether ``key`` has our shape and a valid checksum (no store lookup; never raises).

    >>> is_well_formed(generate_key_text("sk_live"))
    True
    >>> is_well_formed("sk_live_0000000000000000000000000000000000000")
    False
    """
    return split_key(key) is not None


def key_pattern(prefix: str) -> str:
    """A regex matching keys of ``prefix``, for secret scanners (GitHub, gitleaks...).

    >>> key_pattern("sk_live")
    '\\\\bsk_live_[0-9A-Za-z]{38}\\\\b'
    """
    return rf"\b{re.escape(check_prefix(prefix))}_[0-9A-Za-z]{{{BODY_CHARS}}}\b"
