"""parse_json against nasty bodies: only apisec errors come out, and quickly."""

from __future__ import annotations

import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apisec import ApiSecError, PayloadTooLarge
from apisec.validation import MalformedJSON, UnsupportedMediaType, parse_json

NASTY: list[tuple[str, bytes]] = [
    ("duplicate keys", b'{"role": "user", "role": "admin"}'),
    ("nested duplicate keys", b'{"a": {"x": 1, "x": 2}}'),
    ("10,000-deep arrays", b"[" * 10_000 + b"]" * 10_000),
    ("10,000-deep objects", b'{"a":' * 10_000 + b"1" + b"}" * 10_000),
    ("33-deep (over the default cap)", b"[" * 33 + b"]" * 33),
    ("huge exponent", b'{"n": 1e999999}'),
    ("negative huge exponent float", b"-1e400"),
    ("NaN", b'{"n": NaN}'),
    ("Infinity", b"[Infinity]"),
    ("-Infinity", b"[-Infinity]"),
    ("long integer", b"1" * 5000),
    ("41-digit integer", b"[" + b"9" * 41 + b"]"),
    ("lone high surrogate", b'{"s": "\\ud800"}'),
    ("lone low surrogate key", b'{"\\udc00": 1}'),
    ("UTF-8 BOM", b'\xef\xbb\xbf{"a": 1}'),
    ("UTF-16 body", '{"a": 1}'.encode("utf-16")),
    ("invalid UTF-8", b'{"a": "\xff\xfe"}'),
    ("overlong UTF-8", b'{"a": "\xc0\xaf"}'),
    ("trailing garbage", b'{"a": 1} xyz'),
    ("two documents", b"{}{}"),
    ("single quotes", b"{'a': 1}"),
    ("trailing comma", b"[1, 2,]"),
    ("comments", b'{"a": 1 /* hi */}'),
    ("control character in string", b'{"a": "x\x01y"}'),
    ("empty body", b""),
    ("whitespace only", b"   \n"),
    ("bare word", b"true false"),
]


@pytest.mark.parametrize(("name", "body"), NASTY, ids=[n for n, _ in NASTY])
def test_nasty_bodies_are_malformed_json(name: str, body: bytes) -> None:
    """Each nasty body is a 400 MalformedJSON, never a JSONDecodeError or RecursionError."""
    with pytest.raises(MalformedJSON) as caught:
        parse_json(body)
    assert caught.value.status == 400


def test_ten_megabyte_body_is_413_before_parsing() -> None:
    """A 10 MB body is refused by size at once (no parsing work)."""
    body = b"[" + b"1," * (5 * 1024 * 1024) + b"1]"
    start = time.perf_counter()
    with pytest.raises(PayloadTooLarge) as caught:
        parse_json(body)
    assert caught.value.status == 413
    assert time.perf_counter() - start < 0.05


def test_good_json_round_trips() -> None:
    """Ordinary JSON parses to the usual Python values."""
    body = b'{"name": "Ad\\u00e9", "n": -12, "x": 1.5e3, "ok": true, "none": null, "l": [1, [2]]}'
    assert parse_json(body) == {
        "name": "Adé",
        "n": -12,
        "x": 1500.0,
        "ok": True,
        "none": None,
        "l": [1, [2]],
    }


def test_limits_are_configurable() -> None:
    """max_depth, max_bytes and max_int_digits can be tightened or loosened."""
    assert parse_json(b"[[[1]]]", max_depth=3) == [[[1]]]
    with pytest.raises(MalformedJSON):
        parse_json(b"[[[1]]]", max_depth=2)
    with pytest.raises(PayloadTooLarge):
        parse_json(b"[1, 2, 3]", max_bytes=8)
    assert parse_json(b"12345", max_int_digits=5) == 12345
    with pytest.raises(MalformedJSON):
        parse_json(b"123456", max_int_digits=5)


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "application/json; charset=utf-8",
        "application/problem+json",
        "Application/JSON",
    ],
)
def test_json_media_types_are_accepted(content_type: str) -> None:
    """application/json and +json types pass the media type check."""
    assert parse_json(b"{}", content_type=content_type) == {}


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", ""])
def test_other_media_types_are_415(content_type: str) -> None:
    """A declared non-JSON type is 415."""
    with pytest.raises(UnsupportedMediaType) as caught:
        parse_json(b"{}", content_type=content_type)
    assert caught.value.status == 415


def test_non_bytes_body() -> None:
    """A str body is refused: the boundary hands over bytes."""
    with pytest.raises(MalformedJSON):
        parse_json("{}")  # type: ignore[arg-type]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_only_raise_apisec_errors(body: bytes) -> None:
    """Random bytes either parse or raise an ApiSecError, quickly."""
    start = time.perf_counter()
    try:
        parse_json(body)
    except ApiSecError:
        pass
    assert time.perf_counter() - start < 0.5


json_like: Any = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**20), 10**20) | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4)
    ),
    max_leaves=20,
)


@given(json_like)
def test_valid_documents_parse_back(value: Any) -> None:
    """Whatever json.dumps writes (within the limits) parse_json reads back equal."""
    import json

    body = json.dumps(value).encode()
    try:
        assert parse_json(body) == value
    except MalformedJSON:
        # Only our deliberate limits may refuse a valid document: surrogates.
        assert "\\ud" in body.decode().lower()
