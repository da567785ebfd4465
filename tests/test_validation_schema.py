"""Schemas, bridges, pagination cursors and response allowlists."""

from __future__ import annotations

import enum
from typing import Any

import attrs
import msgspec
import pydantic
import pytest
from hypothesis import given
from hypothesis import strategies as st

from apisec import ConfigurationError, ValidationError
from apisec.testing import FakeClock
from apisec.validation import (
    InvalidCursor,
    Paginator,
    boolean,
    enum_of,
    from_msgspec,
    from_pydantic,
    integer,
    list_of,
    nested,
    number,
    only,
    string,
    url,
    validate,
)


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


@attrs.define(kw_only=True)
class Item:
    name: str = string(min_length=1, max_length=10)
    qty: int = integer(min=1, max=99)


@attrs.define(kw_only=True)
class Order:
    customer: str = string(min_length=2, max_length=20, pattern=r"[a-z0-9_]+")
    total: float = number(min=0)
    express: bool = boolean(default=False)
    color: Color = enum_of(Color, default=Color.RED)
    items: list[Item] = list_of(nested(Item), min_items=1, max_items=3)
    note: str | None = string(max_length=5, nullable=True, default=None)
    callback: str | None = url(nullable=True, default=None)


@attrs.define
class Plain:
    """Annotations alone drive validation."""

    title: str
    count: int
    ratio: float | None = None
    labels: list[str] = attrs.field(factory=list)


GOOD = {"customer": "acme_1", "total": 10.5, "items": [{"name": "pen", "qty": 2}]}


def codes(err: ValidationError) -> dict[str, str]:
    return {e.field: e.code for e in err.errors}


class TestValidate:
    def test_valid_input_builds_the_instance(self) -> None:
        """Valid data returns a schema instance with nested objects and enums converted."""
        order = validate(Order, {**GOOD, "color": "green", "express": True})
        assert order.items == [Item(name="pen", qty=2)]
        assert order.color is Color.GREEN
        assert order.express is True and order.note is None

    def test_every_error_is_reported_in_one_pass(self) -> None:
        """Every failing field (nested paths included) comes back at once, with codes."""
        data = {
            "customer": "A",  # too short and bad pattern: first failing rule wins
            "total": -1,
            "express": "yes",
            "color": "blue",
            "items": [
                {"name": "pen", "qty": 2},
                {"name": "", "qty": 0},
                {"qty": 1, "x": 1},
                {"name": "a", "qty": 1},
            ],
            "note": "far too long",
            "callback": "http://169.254.169.254/latest",
            "admin": True,
        }
        with pytest.raises(ValidationError) as caught:
            validate(Order, data)
        assert codes(caught.value) == {
            "admin": "unknown_field",
            "customer": "too_short",
            "total": "too_small",
            "express": "type",
            "color": "not_in_choices",
            "items": "too_many_items",
            "note": "too_long",
            "callback": "unsafe_url",
        }
        problem = caught.value.to_problem().to_dict()
        assert problem["status"] == 422 and len(problem["errors"]) == 8

    def test_nested_paths(self) -> None:
        """Errors inside lists of objects are named like items.1.name."""
        data = {
            **GOOD,
            "items": [{"name": "pen", "qty": 2}, {"name": "", "qty": 0}, {"qty": 1, "x": 1}],
        }
        with pytest.raises(ValidationError) as caught:
            validate(Order, data)
        assert codes(caught.value) == {
            "items.1.name": "too_short",
            "items.1.qty": "too_small",
            "items.2.x": "unknown_field",
            "items.2.name": "required",
        }

    @pytest.mark.parametrize(
        ("field", "value", "code"),
        [
            ("total", "10", "type"),
            ("total", float("nan"), "type"),
            ("total", True, "type"),
            ("customer", 5, "type"),
            ("customer", "ab\x00cd", "invalid_characters"),
            ("customer", "UPPER", "pattern"),
            ("items", "pen", "type"),
            ("items", [], "too_few_items"),
            ("note", None, None),
            ("customer", None, "type"),
        ],
    )
    def test_types_without_silent_coercion(self, field: str, value: Any, code: str | None) -> None:
        """Strings are not numbers, booleans are not numbers, NaN is not finite, null needs
        nullable."""
        data = {**GOOD, field: value}
        if code is None:
            validate(Order, data)
            return
        with pytest.raises(ValidationError) as caught:
            validate(Order, data)
        assert codes(caught.value) == {field: code}

    def test_coercion_is_opt_in_for_query_strings(self) -> None:
        """coerce=True reads "3" as 3 and "true" as True (query parameters), never by default."""

        @attrs.define
        class Query:
            page: int = integer(min=1)
            active: bool = boolean(default=False)

        assert validate(Query, {"page": "3", "active": "true"}, coerce=True) == Query(3, True)
        with pytest.raises(ValidationError):
            validate(Query, {"page": "3"})

    def test_strings_are_trimmed_and_nfc_normalized(self) -> None:
        """Whitespace is trimmed before length checks; decomposed Unicode is composed (NFC)."""

        @attrs.define
        class Name:
            name: str = string(max_length=4)

        assert validate(Name, {"name": "  Zoë  "}).name == "Zoë"
        assert validate(Name, {"name": "Zoe\u0308"}).name == "Zo\u00eb"

    def test_annotations_without_helpers(self) -> None:
        """Plain attrs classes validate from their type annotations."""
        assert validate(Plain, {"title": "t", "count": 2, "labels": ["a"]}) == Plain(
            "t", 2, None, ["a"]
        )
        with pytest.raises(ValidationError) as caught:
            validate(Plain, {"title": 1, "count": 1.5, "ratio": "x", "labels": [1]})
        assert codes(caught.value) == {
            "title": "type",
            "count": "type",
            "ratio": "type",
            "labels.0": "type",
        }

    def test_allow_unknown_and_non_objects(self) -> None:
        """Unknown fields pass only when allowed; a non-object body is one error at $."""
        validate(Plain, {"title": "t", "count": 1, "extra": 1}, allow_unknown=True)
        with pytest.raises(ValidationError) as caught:
            validate(Plain, ["not", "an", "object"])
        assert codes(caught.value) == {"$": "not_object"}

    def test_schema_mistakes_are_configuration_errors(self) -> None:
        """Unsupported annotations, non-attrs schemas and mutable defaults are caught."""

        @attrs.define
        class Weird:
            blob: bytes

        with pytest.raises(ConfigurationError):
            validate(Weird, {"blob": "x"})
        with pytest.raises(ConfigurationError):
            validate(dict, {})
        with pytest.raises(ConfigurationError):
            list_of(int, default=[])
        with pytest.raises(ConfigurationError):
            string(pattern="(unclosed")

    @given(
        st.dictionaries(
            st.text(max_size=8),
            st.none() | st.integers() | st.text(max_size=30) | st.lists(st.integers(), max_size=3),
            max_size=8,
        )
    )
    def test_validate_is_total(self, data: dict[str, Any]) -> None:
        """Any JSON-like object either validates or raises ValidationError, nothing else."""
        try:
            validate(Order, data)
        except ValidationError as err:
            assert err.errors


class PydItem(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid", strict=True)
    name: str = pydantic.Field(min_length=1, max_length=10)
    qty: int = pydantic.Field(ge=1, le=99)


class MItem(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    qty: int


class MOuter(msgspec.Struct):
    items: list[MItem]


class TestPydanticAndMsgspec:
    @given(
        st.dictionaries(
            st.sampled_from(["name", "qty", "other"]),
            st.none()
            | st.integers(-5, 120)
            | st.text(max_size=12)
            | st.booleans()
            | st.floats(-2, 200),
            max_size=3,
        )
    )
    def test_agrees_with_pydantic_on_accept_or_reject(self, data: dict[str, Any]) -> None:
        """On the same constraints, apisec and a strict pydantic model accept the same inputs."""
        if isinstance(data.get("name"), str) and data["name"] != data["name"].strip():
            return  # apisec trims by default; pydantic does not
        if isinstance(data.get("name"), str):
            import unicodedata

            if unicodedata.normalize("NFC", data["name"]) != data["name"] or any(
                ord(c) < 32 or ord(c) == 127 for c in data["name"]
            ):
                return  # apisec normalizes and refuses control characters
        ours = theirs = True
        try:
            validate(Item, data)
        except ValidationError:
            ours = False
        try:
            PydItem.model_validate(data)
        except pydantic.ValidationError:
            theirs = False
        assert ours == theirs

    def test_pydantic_bridge(self) -> None:
        """pydantic errors become FieldErrors with dotted paths and pydantic's type as code."""

        class Outer(pydantic.BaseModel):
            items: list[PydItem]

        with pytest.raises(pydantic.ValidationError) as caught:
            Outer.model_validate({"items": [{"name": "ok", "qty": 1}, {"name": "", "qty": 500}]})
        err = from_pydantic(caught.value)
        assert {e.field: e.code for e in err.errors} == {
            "items.1.name": "string_too_short",
            "items.1.qty": "less_than_equal",
        }
        assert err.to_problem().status == 422

    def test_msgspec_bridge(self) -> None:
        """msgspec's single error text becomes a FieldError with a dotted path."""
        for payload, expected in [
            (
                b'{"items": [{"name": "a", "qty": 1}, {"name": "b", "qty": "x"}]}',
                ("items.1.qty", "type"),
            ),
            (b'{"items": [{"qty": 1}]}', ("items.0.name", "required")),
            (b'{"items": [{"name": "a", "qty": 1, "z": 0}]}', ("items.0.z", "unknown_field")),
        ]:
            with pytest.raises(msgspec.ValidationError) as caught:
                msgspec.json.decode(payload, type=MOuter)
            [error] = from_msgspec(caught.value).errors
            assert (error.field, error.code) == expected


class TestPaginationAndAllowlists:
    def test_cursors_round_trip_and_resist_forgery(self) -> None:
        """A cursor carries its position; any change, another key or another purpose fails."""
        pages = Paginator(b"s" * 32, default_limit=20, max_limit=50)
        cursor = pages.cursor({"after_id": 100})
        assert pages.parse(cursor=cursor).position == {"after_id": 100}
        assert pages.parse().limit == 20
        _, mac = cursor.split(".")
        import base64
        import json

        forged_payload = base64.urlsafe_b64encode(
            json.dumps({"p": {"after_id": 0}}).encode()
        ).rstrip(b"=")
        for bad in [f"{forged_payload.decode()}.{mac}", cursor + "A", "x", "a.b.c", "", "." * 3000]:
            if bad == "":
                continue
            with pytest.raises(InvalidCursor):
                pages.parse(cursor=bad)
        with pytest.raises(InvalidCursor):
            Paginator(b"t" * 32).parse(cursor=cursor)
        with pytest.raises(InvalidCursor):
            Paginator(b"s" * 32, purpose="invoices").parse(cursor=cursor)

    def test_cursor_expiry(self) -> None:
        """With a ttl, old cursors are refused."""
        clock = FakeClock()
        pages = Paginator(b"s" * 32, ttl=60, clock=clock)
        cursor = pages.cursor({"offset": 40})
        clock.advance(59)
        assert pages.parse(cursor=cursor).position == {"offset": 40}
        clock.advance(1)
        with pytest.raises(InvalidCursor):
            pages.parse(cursor=cursor)

    @pytest.mark.parametrize("limit", ["0", "51", "-1", "1.5", "ten", "١٢", True, "9" * 20])
    def test_limit_is_capped_and_strict(self, limit: Any) -> None:
        """limit must be an integer from 1 to max_limit, in ASCII digits."""
        with pytest.raises(ValidationError):
            Paginator(b"s" * 32, max_limit=50).parse(limit=limit)

    def test_only_keeps_listed_fields(self) -> None:
        """only() returns the allowlisted fields of mappings and objects, nothing else."""

        @attrs.define
        class User:
            id: int
            email: str
            password_hash: str

        user = User(1, "a@example.com", "scrypt$...")
        assert only(user, ["id", "email"]) == {"id": 1, "email": "a@example.com"}
        assert only({"id": 1, "secret": 2}, ["id", "missing"]) == {"id": 1}
        assert only(user, ["_private", "__class__"]) == {}


class TestCanonicalCursors:
    """A cursor has exactly one spelling: padding, junk and stray bits are refused."""

    PAGES = Paginator(b"s" * 32)

    def test_other_spellings_of_a_valid_cursor_are_refused(self) -> None:
        """Padding, ignored characters, standard-alphabet letters and stray low bits all fail."""
        cursor = self.PAGES.cursor({"after_id": 12345})
        payload, mac = cursor.split(".")
        assert len(mac) % 4 == 2  # 16 bytes: the last character carries 4 stray bits
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
        stray = mac[:-1] + alphabet[alphabet.index(mac[-1]) | 1]  # same bytes, a stray bit set
        spellings = [
            f"{payload}.{mac}==",
            f"{payload}==.{mac}",
            f"{payload}.{mac[:3]}!{mac[3:]}",
            f"{payload}.{mac[:3]}\n{mac[3:]}",
            f"{payload.replace('-', '+').replace('_', '/')}.{mac}",
        ]
        spellings.append(f"{payload}.{stray}")
        for spelling in spellings:
            if spelling == cursor:
                continue
            with pytest.raises(InvalidCursor):
                self.PAGES.parse(cursor=spelling)
        assert self.PAGES.parse(cursor=cursor).position == {"after_id": 12345}

    @given(
        position=st.integers(0, 10**12),
        index=st.integers(0, 200),
        char=st.sampled_from(list("=!.+/ \t\nAa0-_")),
        replace=st.booleans(),
    )
    def test_any_edit_of_a_cursor_is_refused(
        self, position: int, index: int, char: str, replace: bool
    ) -> None:
        """Inserting or replacing one character anywhere never yields another accepted spelling."""
        cursor = self.PAGES.cursor({"after_id": position})
        index %= len(cursor) + 1
        edited = cursor[:index] + char + cursor[index + (1 if replace else 0) :]
        if edited == cursor:
            return
        with pytest.raises(InvalidCursor):
            self.PAGES.parse(cursor=edited)
