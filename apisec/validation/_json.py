"""Strict JSON for untrusted request bodies."""

from __future__ import annotations

import json
import math
import re
from typing import Any

from apisec.errors import ClientError, PayloadTooLarge

__all__ = ["MalformedJSON", "UnsupportedMediaType", "parse_json"]

DEFAULT_MAX_BYTES = 1024 * 1024
DEFAULT_MAX_DEPTH = 32
DEFAULT_MAX_INT_DIGITS = 40
#: ``application/json`` and ``application/<anything>+json``.
JSON_MEDIA_TYPE = re.compile(r"application/(?:[a-z0-9.+-]+\+)?json", re.IGNORECASE)


class MalformedJSON(ClientError):
    """The body is not acceptable JSON (400)."""

    slug = "malformed-json"
    title = "Malformed JSON"
    default_detail = "The request body is not valid JSON."


class UnsupportedMediaType(ClientError):
    """The body is not declared as JSON (415)."""

    status = 415
    slug = "unsupported-media-type"
    title = "Unsupported media type"
    default_detail = "The request body must be application/json."


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")


def _checked_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError("number out of range")
    return value


class _Decoder(json.JSONDecoder):
    def __init__(self, max_int_digits: int) -> None:
        def parse_int(text: str) -> int:
            if len(text.lstrip("-")) > max_int_digits:
                raise ValueError("integer too large")
            return int(text)

        super().__init__(
            object_pairs_hook=_no_duplicates,
            parse_constant=_refuse_constant,
            parse_float=_checked_float,
            parse_int=parse_int,
            strict=True,
        )


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise ValueError("duplicate key in an object")
    return obj


_DECODERS: dict[int, _Decoder] = {}


def _depth_and_surrogates(value: Any, max_depth: int) -> None:
    """Walk the parsed value iteratively: nesting cap, no lone surrogates in strings."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            _check_text(item)
        elif isinstance(item, (dict, list)):
            if depth > max_depth:
                raise ValueError(f"nesting deeper than {max_depth}")
            if isinstance(item, dict):
                for key, child in item.items():
                    _check_text(key)
                    stack.append((child, depth + 1))
            else:
                stack.extend((child, depth + 1) for child in item)


def _check_text(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("lone surrogate in a string") from None


def parse_json(
    body: bytes,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_depth: int = DEFAULT_MAX_DEPTH,
    max_int_digits: int = DEFAULT_MAX_INT_DIGITS,
    content_type: str | None = None,
) -> Any:
    """Parse an untrusted JSON body, strictly.

    The size cap is checked before any parsing. Refused (400
    :class:`MalformedJSON`): invalid UTF-8, a byte-order mark, duplicate keys,
    ``NaN``/``Infinity`` and numbers that overflow (``1e999999``), integers
    longer than ``max_int_digits``, nesting deeper than ``max_depth``, lone
    surrogates, trailing garbage. Over ``max_bytes``: 413. A ``content_type``
    that is given and is not JSON: 415. Nothing else escapes — no
    ``JSONDecodeError``, ``RecursionError`` or ``UnicodeDecodeError``.

    >>> parse_json(b'{"name": "Ada", "tags": ["a", "b"]}')
    {'name': 'Ada', 'tags': ['a', 'b']}
    """
    if content_type is not None:
        media_type = content_type.split(";", 1)[0].strip()
        if JSON_MEDIA_TYPE.fullmatch(media_type) is None:
            raise UnsupportedMediaType(f"content type {media_type[:60]!r} is not JSON")
    if not isinstance(body, (bytes, bytearray, memoryview)):
        raise MalformedJSON("the body must be bytes")
    if len(body) > max_bytes:
        raise PayloadTooLarge(f"body of {len(body)} bytes over {max_bytes}")
    raw = bytes(body)
    if raw.startswith(b"\xef\xbb\xbf"):
        raise MalformedJSON("byte-order mark before JSON")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedJSON("body is not UTF-8") from exc
    decoder = _DECODERS.get(max_int_digits)
    if decoder is None:
        decoder = _DECODERS.setdefault(max_int_digits, _Decoder(max_int_digits))
    try:
        value = decoder.decode(text)
        _depth_and_surrogates(value, max_depth)
    except RecursionError as exc:
        raise MalformedJSON("nesting too deep") from exc
    except ValueError as exc:  # JSONDecodeError included
        raise MalformedJSON(f"invalid JSON: {str(exc)[:120]}") from exc
    return value
