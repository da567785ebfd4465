"""Strict, canonical base64url (RFC 7515 section 2): no padding, no stray bits."""

from __future__ import annotations

import base64
import binascii
import re

_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_INDEX = {c: i for i, c in enumerate(_ALPHABET)}
_B64URL = re.compile(r"[A-Za-z0-9_-]*")
_TO_STANDARD = bytes.maketrans(b"-_", b"+/")
_PADDING = (b"", b"", b"==", b"=")


def encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def decode(text: str) -> bytes | None:
    """The bytes of canonical unpadded base64url ``text``, or None.

    Non-canonical spellings (padding, characters outside the alphabet, set
    bits after the last full byte, which decode to the same bytes) are
    refused, so each byte string has exactly one encoding. (A token can still
    have two spellings when its *signature* does: ECDSA's ``(r, s)`` and
    ``(r, n - s)`` both verify. Never key anything on a token's text.)
    """
    if _B64URL.fullmatch(text) is None:
        return None
    rest = len(text) % 4
    if rest == 1:
        return None
    if rest == 2 and _INDEX[text[-1]] & 0x0F:
        return None
    if rest == 3 and _INDEX[text[-1]] & 0x03:
        return None
    try:
        # bytes.translate with a 256-byte table runs at memcpy speed.
        return binascii.a2b_base64(text.encode("ascii").translate(_TO_STANDARD) + _PADDING[rest])
    except (binascii.Error, ValueError):  # pragma: no cover - excluded by the checks above
        return None
