"""Form encoding (RFC 6749 Appendix B), parsed strictly, and HTTP Basic client credentials.

OAuth parameters travel as ``application/x-www-form-urlencoded``: UTF-8,
percent-encoded, spaces as ``+``. Requests and responses must not repeat a
parameter (RFC 6749 sections 3.1 and 3.2), so the parser refuses duplicates
rather than picking one. Client credentials in HTTP Basic are form-encoded
*before* base64 (section 2.3.1): ``a:b`` as a client id is sent as ``a%3Ab``.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Mapping
from urllib.parse import quote_plus, unquote_to_bytes

__all__ = [
    "FormError",
    "basic_authorization",
    "encode_form",
    "header_pairs",
    "header_values",
    "parse_basic_authorization",
    "parse_form",
]

#: Visible ASCII except ``%``, or a complete percent-escape: nothing else is in a form.
_FORM_TEXT = re.compile(r"(?:[\x21-\x24\x26-\x7e]|%[0-9A-Fa-f]{2})*")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_BASE64 = re.compile(r"[A-Za-z0-9+/]+={0,2}")
MAX_FIELDS = 64
MAX_BASIC_HEADER = 4096


class FormError(ValueError):
    """A form body or Basic credential that does not follow the encoding rules."""


def encode_form(pairs: Iterable[tuple[str, str]]) -> str:
    """``name=value&...`` as RFC 6749 Appendix B encodes them (UTF-8, space as ``+``).

    >>> encode_form([("v", " %&+£€")])
    'v=+%25%26%2B%C2%A3%E2%82%AC'
    """
    return "&".join(
        f"{quote_plus(name, safe='')}={quote_plus(value, safe='')}" for name, value in pairs
    )


def _decode(text: str) -> str:
    try:
        value = unquote_to_bytes(text.replace("+", " ")).decode("utf-8")
    except UnicodeDecodeError:
        raise FormError("a parameter is not UTF-8") from None
    if _CONTROL.search(value):
        raise FormError("a parameter holds control characters")
    return value


def parse_form(body: bytes | str, *, max_fields: int = MAX_FIELDS) -> dict[str, str]:
    """The parameters of a form body; refuses duplicates and anything malformed.

    Refused with :class:`FormError`: raw bytes outside visible ASCII (spaces
    included: they are sent as ``+``), broken percent-escapes, percent-encoded
    text that is not UTF-8 or holds control characters, a field without a
    name or ``=``, empty fields (``a=1&&b=2``), more than ``max_fields``
    fields, and any name given twice. Empty values are kept (``scope=``);
    OAuth treats them as omitted, which is the caller's call.

    >>> parse_form(b"grant_type=client_credentials&scope=a+b")
    {'grant_type': 'client_credentials', 'scope': 'a b'}
    """
    if isinstance(body, (bytes, bytearray, memoryview)):
        try:
            text = bytes(body).decode("ascii")
        except UnicodeDecodeError:
            raise FormError("raw non-ASCII bytes in a form") from None
    else:
        text = body
    if not text:
        return {}
    if _FORM_TEXT.fullmatch(text) is None:
        raise FormError("characters or percent-escapes a form cannot hold")
    fields = text.split("&")
    if len(fields) > max_fields:
        raise FormError(f"more than {max_fields} parameters")
    result: dict[str, str] = {}
    for field in fields:
        raw_name, equals, raw_value = field.partition("=")
        if not equals or not raw_name:
            raise FormError("a parameter without a name or '='")
        name = _decode(raw_name)
        if name in result:
            raise FormError(f"parameter {name[:40]!r} sent more than once")
        result[name] = _decode(raw_value)
    return result


def basic_authorization(client_id: str, client_secret: str) -> str:
    """The ``Authorization`` value for client credentials (RFC 6749 section 2.3.1).

    Both parts are form-encoded first, then joined by ``:`` and base64-encoded.

    >>> basic_authorization("s6BhdRkqt3", "gX1fBat3bV")  # RFC 6749 section 2.3.1
    'Basic czZCaGRSa3F0MzpnWDFmQmF0M2JW'
    """
    pair = f"{quote_plus(client_id, safe='')}:{quote_plus(client_secret, safe='')}"
    return "Basic " + base64.b64encode(pair.encode("ascii")).decode("ascii")


def parse_basic_authorization(value: str) -> tuple[str, str]:
    """``(client_id, client_secret)`` from a Basic ``Authorization`` value.

    Raises:
        FormError: not the Basic scheme, not strict base64, no ``:``, an empty
            client id, or parts that do not decode as form-encoded UTF-8.
    """
    if len(value) > MAX_BASIC_HEADER:
        raise FormError("Authorization header too long")
    scheme, _, token = value.strip(" ").partition(" ")
    if scheme.lower() != "basic":
        raise FormError("not the Basic scheme")
    token = token.strip(" ")
    if len(token) % 4 or _BASE64.fullmatch(token) is None:
        raise FormError("Basic credentials are not base64")
    try:
        decoded = base64.b64decode(token, validate=True).decode("ascii")
    except (binascii.Error, UnicodeDecodeError):
        raise FormError("Basic credentials are not form-encoded ASCII") from None
    raw_id, colon, raw_secret = decoded.partition(":")
    if not colon or not raw_id:
        raise FormError("Basic credentials need a client id and ':'")
    for part in (raw_id, raw_secret):
        if _FORM_TEXT.fullmatch(part) is None:
            raise FormError("Basic credentials are not form-encoded")
    return _decode(raw_id), _decode(raw_secret)


def header_pairs(pairs: Iterable[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    """Headers as an immutable tuple of (name, value) pairs."""
    return tuple((name, value) for name, value in pairs)


def header_values(
    headers: Mapping[str, str] | Iterable[tuple[str | bytes, str | bytes]], name: str
) -> list[str]:
    """Every value of header ``name`` (case-insensitive), from a mapping or (name, value) pairs.

    Byte strings (ASGI) are read as Latin-1, as HTTP/1.1 transmits them.
    """
    items: Iterable[tuple[str | bytes, str | bytes]]
    items = headers.items() if isinstance(headers, Mapping) else headers
    wanted = name.lower()
    values = []
    for raw_name, raw_value in items:
        header = raw_name.decode("latin-1") if isinstance(raw_name, bytes) else raw_name
        if header.lower() == wanted:
            values.append(
                raw_value.decode("latin-1") if isinstance(raw_value, bytes) else raw_value
            )
    return values
