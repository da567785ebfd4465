"""Defensive reading of webhook headers from any header container."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from apisec.webhooks._errors import MalformedHeader, MissingHeader

HeadersLike = Mapping[str, str] | Iterable[tuple[str | bytes, str | bytes]]

MAX_HEADER_VALUE = 8 * 1024
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
# Printable ASCII without '.', which delimits the signed content (the spec
# forbids it), and without spaces.
_MESSAGE_ID = re.compile(r"[!-\-/-~]{1,256}")


def _text(value: object, name: str) -> str:
    if isinstance(value, (bytes, bytearray)):
        value = bytes(value).decode("latin-1")
    if not isinstance(value, str):
        raise MalformedHeader(f"header {name} is not text")
    if len(value) > MAX_HEADER_VALUE:
        raise MalformedHeader(f"header {name} is longer than {MAX_HEADER_VALUE} characters")
    if not value.isascii() or any((ord(c) < 0x20 and c != "\t") or ord(c) == 0x7F for c in value):
        raise MalformedHeader(f"header {name} has non-ASCII or control characters")
    return value.strip(" \t")


def collect(headers: HeadersLike, wanted: frozenset[str]) -> dict[str, str]:
    """The ``wanted`` headers (lower-case names), refusing duplicates and junk.

    Accepts a mapping (``dict``, framework header objects) or an iterable of
    ``(name, value)`` pairs (ASGI's raw byte pairs included).
    """
    pairs: Iterable[tuple[object, object]] = (
        headers.items() if isinstance(headers, Mapping) else headers
    )
    found: dict[str, str] = {}
    for raw_name, raw_value in pairs:
        if isinstance(raw_name, (bytes, bytearray)):
            name = bytes(raw_name).decode("latin-1").lower()
        elif isinstance(raw_name, str):
            name = raw_name.lower()
        else:
            continue
        if name not in wanted:
            continue
        if name in found:
            raise MalformedHeader(f"header {name} appears more than once")
        found[name] = _text(raw_value, name)
    return found


def required(found: Mapping[str, str], name: str) -> str:
    value = found.get(name)
    if value is None:
        raise MissingHeader(f"header {name} is missing")
    if not value:
        raise MalformedHeader(f"header {name} is empty")
    return value


def timestamp(value: str, name: str) -> int:
    """Integer Unix seconds, ASCII digits only (no sign, underscores or Unicode digits)."""
    if _TIMESTAMP.fullmatch(value) is None:
        raise MalformedHeader(f"header {name} is not a Unix timestamp")
    return int(value)


def message_id(value: str, name: str) -> str:
    if _MESSAGE_ID.fullmatch(value) is None:
        raise MalformedHeader(f"header {name} is not a valid message id")
    return value
