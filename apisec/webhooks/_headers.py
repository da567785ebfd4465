"""Defensive reading of webhook headers from any header container."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import NoReturn

from apisec.webhooks._errors import MalformedHeader, MissingHeader

HeadersLike = Mapping[str, str] | Iterable[tuple[str | bytes, str | bytes]]

MAX_HEADER_VALUE = 8 * 1024
# Printable ASCII and tab only: no controls, no obs-text, no smuggled CR/LF.
_VALUE = re.compile(r"[\t\x20-\x7e]*")
_FAST_VALUE = re.compile(rf"[\t\x20-\x7e]{{0,{MAX_HEADER_VALUE}}}")
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
# Printable ASCII without '.', which delimits the signed content (the spec
# forbids it), and without spaces.
MESSAGE_ID = re.compile(r"[!-\-/-~]{1,256}")


def _text(value: object, name: str) -> str:
    """The slow, explaining path for values the fast path did not accept."""
    if isinstance(value, (bytes, bytearray)):
        value = bytes(value).decode("latin-1")
    if not isinstance(value, str):
        raise MalformedHeader(f"header {name} is not text")
    if len(value) > MAX_HEADER_VALUE:
        raise MalformedHeader(f"header {name} is longer than {MAX_HEADER_VALUE} characters")
    if _VALUE.fullmatch(value) is None:
        raise MalformedHeader(f"header {name} has non-ASCII or control characters")
    return value.strip(" \t")


def collect(headers: HeadersLike | None, wanted: frozenset[str]) -> dict[str, str]:
    """The ``wanted`` headers (lower-case names), refusing duplicates and junk.

    Accepts a mapping (``dict``, framework header objects) or an iterable of
    ``(name, value)`` pairs (ASGI's raw byte pairs included).
    """
    if headers is None:
        return {}
    pairs: Iterable[tuple[object, object]] = (
        headers.items() if type(headers) is dict or isinstance(headers, Mapping) else headers
    )
    found: dict[str, str] = {}
    try:
        iterator = iter(pairs)
    except TypeError:
        raise MalformedHeader("headers must be a mapping or (name, value) pairs") from None
    for pair in iterator:
        # ASGI allows any two-item iterable per header; tuples and lists cover servers.
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise MalformedHeader("headers must be a mapping or (name, value) pairs")
        raw_name, raw_value = pair
        if type(raw_name) is str:
            name = raw_name.lower()
        elif isinstance(raw_name, (bytes, bytearray)):
            name = bytes(raw_name).decode("latin-1").lower()
        else:
            continue
        if name not in wanted:
            continue
        if name in found:
            raise MalformedHeader(f"header {name} appears more than once")
        if type(raw_value) is str and _FAST_VALUE.fullmatch(raw_value) is not None:
            found[name] = raw_value.strip(" \t")
        else:
            found[name] = _text(raw_value, name)
    return found


def required(found: Mapping[str, str], name: str) -> str:
    value = found.get(name)
    if value is None:
        raise MissingHeader(f"header {name} is missing")
    if not value:
        raise MalformedHeader(f"header {name} is empty")
    return value


def missing(found: Mapping[str, str], names: Iterable[str]) -> NoReturn:
    """Raise the error for the first absent or empty header among ``names``."""
    for name in sorted(names):
        required(found, name)
    raise MissingHeader("a required header is missing")  # pragma: no cover - unreachable


def timestamp(value: str, name: str) -> int:
    """Integer Unix seconds, ASCII digits only (no sign, underscores or Unicode digits)."""
    if _TIMESTAMP.fullmatch(value) is None:
        raise MalformedHeader(f"header {name} is not a Unix timestamp")
    return int(value)


def message_id(value: str, name: str) -> str:
    if MESSAGE_ID.fullmatch(value) is None:
        raise MalformedHeader(f"header {name} is not a valid message id")
    return value
