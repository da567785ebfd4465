"""Form encoding and HTTP Basic client credentials, by RFC 6749 and against an attacker."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import pytest
from hypothesis import given
from hypothesis import strategies as st

from apisec.oauth import basic_authorization, parse_basic_authorization
from apisec.oauth._form import FormError, encode_form, header_values, parse_form

VECTORS: dict[str, Any] = json.loads(
    (Path(__file__).parent / "vectors" / "oauth-rfc6749-7636-9207.json").read_text()
)

# Printable text without surrogates: what a client id, secret or parameter can hold.
printable = st.text(
    st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\x85"), max_size=40
)
RESERVED_IDS = [
    "svc:billing",
    "a:b:c",
    "100%",
    "%41",
    "a+b",
    "with space",
    "café ☕",
    "日本語",
    "x:y %+ é/?#&=",
]


class TestSpecVectors:
    def test_appendix_b_encoding(self) -> None:
        """RFC 6749 Appendix B: ' %&+£€' encodes to '+%25%26%2B%C2%A3%E2%82%AC' and back."""
        vector = VECTORS["appendix_b"]
        assert encode_form([("v", vector["value"])]) == "v=" + vector["encoded"]
        assert parse_form("v=" + vector["encoded"]) == {"v": vector["value"]}

    def test_basic_credentials_of_section_2_3_1(self) -> None:
        """RFC 6749 section 2.3.1: the example client's Basic header, both ways."""
        client = VECTORS["client"]
        assert (
            basic_authorization(client["client_id"], client["client_secret"])
            == (client["authorization"])
        )
        assert parse_basic_authorization(client["authorization"]) == (
            client["client_id"],
            client["client_secret"],
        )

    def test_over_encoded_rfc_bodies_parse(self) -> None:
        """The RFC's own bodies percent-encode '.', which parses to the plain text."""
        body = VECTORS["code_token_request"]["body"]
        assert parse_form(body)["redirect_uri"] == "https://client.example.com/cb"


class TestBasicCredentials:
    @pytest.mark.parametrize("client_id", RESERVED_IDS)
    @pytest.mark.parametrize("secret", ["plain", "p:ss", "50% off", "1+1=2", "sécret ☃"])
    def test_reserved_characters_round_trip(self, client_id: str, secret: str) -> None:
        """Ids and secrets with ':', '%', '+', spaces and non-ASCII survive the Basic header."""
        assert parse_basic_authorization(basic_authorization(client_id, secret)) == (
            client_id,
            secret,
        )

    def test_parts_are_form_encoded_before_base64(self) -> None:
        """The colon of an id is sent as %3A and a space as '+', as section 2.3.1 requires."""
        header = basic_authorization("svc:billing app", "p+w%")
        decoded = base64.b64decode(header.removeprefix("Basic ")).decode("ascii")
        assert decoded == "svc%3Abilling+app:p%2Bw%25"
        assert decoded == f"{quote_plus('svc:billing app')}:{quote_plus('p+w%')}"

    def test_unencoded_colon_splits_at_the_first_colon(self) -> None:
        """A client that skips the form-encoding loses its id at the first ':' (never a match)."""
        raw = base64.b64encode(b"svc:billing:secret").decode()
        assert parse_basic_authorization(f"Basic {raw}") == ("svc", "billing:secret")

    @pytest.mark.parametrize(
        "value",
        [
            "Bearer abc",
            "Basic",
            "Basic !!!!",
            "Basic " + base64.b64encode(b"no-colon").decode(),
            "Basic " + base64.b64encode(b":secret").decode(),
            "Basic " + base64.b64encode("é:x".encode()).decode(),  # raw UTF-8, not form-encoded
            "Basic " + base64.b64encode(b"a b:x").decode(),  # raw space
            "Basic " + base64.b64encode(b"a%zz:x").decode(),  # broken escape
            "Basic " + base64.b64encode(b"a%FF:x").decode(),  # not UTF-8
            "Basic " + base64.b64encode(b"a%0A:x").decode(),  # a newline
            "Basic YWJj",  # 'abc': no colon
            "Basic YQ",  # unpadded
            "Basic " + "A" * 5000,
        ],
    )
    def test_malformed_credentials_are_refused(self, value: str) -> None:
        """Anything but strict base64 of a form-encoded 'id:secret' raises FormError."""
        with pytest.raises(FormError):
            parse_basic_authorization(value)

    def test_scheme_is_case_insensitive(self) -> None:
        """'basic' and 'BASIC' are the Basic scheme (RFC 9110 section 11.1)."""
        token = basic_authorization("a", "b").removeprefix("Basic ")
        assert parse_basic_authorization(f"bAsIc {token}") == ("a", "b")

    @given(client_id=printable.filter(bool), secret=printable)
    def test_any_printable_text_round_trips(self, client_id: str, secret: str) -> None:
        """Every printable id and secret comes back unchanged from its Basic header."""
        assert parse_basic_authorization(basic_authorization(client_id, secret)) == (
            client_id,
            secret,
        )

    @given(st.text(max_size=200))
    def test_arbitrary_headers_only_raise_form_error(self, value: str) -> None:
        """Garbage in an Authorization header is a FormError, never another exception."""
        try:
            parse_basic_authorization(value)
        except FormError:
            pass


class TestStrictFormParsing:
    @pytest.mark.parametrize(
        ("body", "why"),
        [
            (b"grant_type=a&grant_type=b", "duplicate"),
            (b"scope=&scope=a", "duplicate, even empty"),
            (b"a=1&&b=2", "empty field"),
            (b"a=1&", "trailing '&'"),
            (b"=value", "no name"),
            (b"flag", "no '='"),
            (b"a=b c", "raw space"),
            ("a=é".encode(), "raw non-ASCII"),
            (b"a=%zz", "broken escape"),
            (b"a=%4", "short escape"),
            (b"a=%FF", "percent-encoded bytes that are not UTF-8"),
            (b"a=%00", "NUL"),
            (b"a=%0D%0A", "CR LF"),
            (b"a=\x01", "raw control byte"),
            (b"&".join(b"p%d=1" % i for i in range(65)), "too many fields"),
        ],
    )
    def test_refused(self, body: bytes, why: str) -> None:
        """Malformed, ambiguous or repeated parameters are refused, not guessed at."""
        with pytest.raises(FormError):
            parse_form(body)

    def test_empty_values_are_kept_and_empty_body_is_empty(self) -> None:
        """'scope=' parses as an empty value (OAuth treats it as omitted); b'' is no field."""
        assert parse_form(b"scope=&grant_type=x") == {"scope": "", "grant_type": "x"}
        assert parse_form(b"") == {}

    def test_names_are_decoded_before_the_duplicate_check(self) -> None:
        """'scope' and 'sc%6Fpe' are one name twice: refused."""
        with pytest.raises(FormError):
            parse_form(b"scope=a&sc%6Fpe=b")

    @given(st.dictionaries(printable.filter(bool), printable, max_size=10))
    def test_encode_then_parse_round_trips(self, params: dict[str, str]) -> None:
        """encode_form then parse_form gives back every name and value."""
        assert parse_form(encode_form(params.items()).encode("ascii")) == params

    @given(st.binary(max_size=300))
    def test_arbitrary_bytes_only_raise_form_error(self, body: bytes) -> None:
        """Any body either parses into str->str or raises FormError."""
        try:
            result = parse_form(body)
        except FormError:
            return
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in result.items())


class TestHeaderValues:
    def test_pairs_bytes_and_mappings(self) -> None:
        """Header lookup is case-insensitive over str pairs, ASGI byte pairs and mappings."""
        assert header_values([("Authorization", "a"), ("authorization", "b")], "AUTHORIZATION") == [
            "a",
            "b",
        ]
        assert header_values([(b"content-type", b"x/y")], "Content-Type") == ["x/y"]
        assert header_values({"Content-Type": "x/y"}, "content-type") == ["x/y"]
        assert header_values([], "content-type") == []
