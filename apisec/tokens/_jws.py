"""Compact JWS parsing and serialization, strict; the crypto stays in PyJWT.

Parsing is ours so that every rule is explicit and cheap: a size cap before
any decoding, exactly three segments, canonical base64url, JSON objects
without duplicate members or NaN. Signatures are computed and checked by
PyJWT's algorithm objects over ``cryptography``.
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

from apisec import _b64
from apisec._fastpath import tuple_builder
from apisec.tokens._errors import InvalidToken

DEFAULT_MAX_TOKEN_BYTES = 8 * 1024


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise ValueError("duplicate member")
    return obj


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


_DECODER = json.JSONDecoder(object_pairs_hook=_no_duplicates, parse_constant=_no_constants)


def parse_json_object(raw: bytes, what: str) -> dict[str, Any]:
    """A JSON object from untrusted bytes (UTF-8, RFC 8259), or InvalidToken."""
    try:
        value = _DECODER.decode(raw.decode("utf-8"))
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError
        raise InvalidToken(f"token {what} is not a valid JSON object") from exc
    if not isinstance(value, dict):
        raise InvalidToken(f"token {what} is not a JSON object")
    return value


def dumps(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


class Compact(NamedTuple):
    """The parts of a compact JWS, decoded but not yet verified."""

    header: dict[str, Any]
    payload: bytes
    signing_input: bytes
    signature: bytes


#: Compact(...) by keyword at the cost of a positional build (apisec._fastpath).
_build_compact = tuple_builder(Compact)


def parse(token: object, max_bytes: int = DEFAULT_MAX_TOKEN_BYTES) -> Compact:
    """Split and decode a compact JWS; no signature check happens here."""
    if not isinstance(token, str):
        raise InvalidToken("token is not a string")
    if len(token) > max_bytes:
        raise InvalidToken(f"token longer than {max_bytes} bytes")
    parts = token.split(".")
    if len(parts) != 3:
        raise InvalidToken("token is not a compact JWS (three segments)")
    header_b64, payload_b64, signature_b64 = parts
    header_raw = _b64.decode(header_b64)
    payload = _b64.decode(payload_b64)
    signature = _b64.decode(signature_b64)
    if header_raw is None or payload is None or signature is None:
        raise InvalidToken("token segment is not canonical base64url")
    if not signature:
        raise InvalidToken("token has no signature")
    header = parse_json_object(header_raw, "header")
    return _build_compact(
        header=header,
        payload=payload,
        signing_input=f"{header_b64}.{payload_b64}".encode("ascii"),
        signature=signature,
    )


def serialize(header: dict[str, Any], payload: bytes, sign: Any) -> str:
    """``header.payload.signature`` with ``sign(signing_input) -> bytes``."""
    signing_input = f"{_b64.encode(dumps(header))}.{_b64.encode(payload)}"
    signature = sign(signing_input.encode("ascii"))
    return f"{signing_input}.{_b64.encode(signature)}"
