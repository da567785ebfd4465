"""RFC 9457 problem details: the RFC's own examples, strict building, lenient reading."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from apisec import ConfigurationError, FieldError, MalformedProblem, Problem, validation_problem
from apisec.problems import MEDIA_TYPE, reason_phrase

# RFC 9457 section 3, the out-of-credit example (status from its HTTP response).
OUT_OF_CREDIT: dict[str, Any] = {
    "type": "https://example.com/probs/out-of-credit",
    "title": "You do not have enough credit.",
    "detail": "Your current balance is 30, but that costs 50.",
    "instance": "/account/12345/msgs/abc",
    "balance": 30,
    "accounts": ["/account/12345", "/account/67890"],
}

# RFC 9457 section 3, the validation example (422).
RFC_VALIDATION: dict[str, Any] = {
    "type": "https://example.net/validation-error",
    "title": "Your request is not valid.",
    "errors": [
        {"detail": "must be a positive integer", "pointer": "#/age"},
        {"detail": "must be 'green', 'red' or 'blue'", "pointer": "#/profile/color"},
    ],
}


class TestRfcExamples:
    def test_out_of_credit_example_builds_and_serializes_as_in_the_rfc(self) -> None:
        """The RFC's 403 example round-trips member for member."""
        problem = Problem(
            403,
            title=OUT_OF_CREDIT["title"],
            detail=OUT_OF_CREDIT["detail"],
            type=OUT_OF_CREDIT["type"],
            instance=OUT_OF_CREDIT["instance"],
            extensions={"balance": 30, "accounts": ["/account/12345", "/account/67890"]},
        )
        assert problem.to_dict() == {**OUT_OF_CREDIT, "status": 403}
        assert json.loads(problem.to_json()) == {**OUT_OF_CREDIT, "status": 403}
        assert Problem.from_dict(OUT_OF_CREDIT, fallback_status=403) == problem

    def test_validation_example_reads_with_its_errors_extension(self) -> None:
        """The RFC's 422 example, read from JSON, keeps its errors list untouched."""
        problem = Problem.from_json(json.dumps(RFC_VALIDATION), fallback_status=422)
        assert problem.status == 422
        assert problem.title == "Your request is not valid."
        assert problem.extensions["errors"] == RFC_VALIDATION["errors"]
        assert problem.to_dict() == {**RFC_VALIDATION, "status": 422}


class TestSerialization:
    def test_defaults_are_about_blank_and_the_reason_phrase(self) -> None:
        """type defaults to about:blank and title to the status's phrase."""
        problem = Problem(404)
        assert problem.to_dict() == {"type": "about:blank", "title": "Not Found", "status": 404}
        assert Problem.media_type == MEDIA_TYPE == "application/problem+json"

    def test_serialization_puts_standard_members_first_and_is_compact_utf8(self) -> None:
        """to_json is compact UTF-8 with type, title, status leading."""
        raw = Problem(400, detail="naïve", extensions={"zzz": 1}).to_json()
        assert raw.startswith(b'{"type":"about:blank","title":"Bad Request","status":400')
        assert "naïve".encode() in raw

    @pytest.mark.parametrize(
        ("status", "phrase"),
        [
            (413, "Content Too Large"),
            (422, "Unprocessable Content"),
            (429, "Too Many Requests"),
            (499, "Client Error"),
            (599, "Server Error"),
            (200, "OK"),
        ],
    )
    def test_reason_phrases_follow_rfc_9110(self, status: int, phrase: str) -> None:
        """Titles use RFC 9110 phrases on every Python, with class phrases for unregistered
        codes."""
        assert reason_phrase(status) == phrase


class TestConstruction:
    @pytest.mark.parametrize("status", [99, 600, 0, -1, 1000, True, "404", 404.0, None])
    def test_status_outside_100_to_599_is_refused(self, status: Any) -> None:
        """Status must be an int in 100-599 (bools and strings too are refused)."""
        with pytest.raises(ConfigurationError, match="status"):
            Problem(status)

    @pytest.mark.parametrize("status", [100, 599])
    def test_status_bounds_are_inclusive(self, status: int) -> None:
        """100 and 599 are the first and last valid codes."""
        assert Problem(status).status == status

    @pytest.mark.parametrize("name", ["type", "title", "status", "detail", "instance"])
    def test_extensions_cannot_shadow_standard_members(self, name: str) -> None:
        """An extension named like a standard member is refused."""
        with pytest.raises(ConfigurationError, match="shadow"):
            Problem(400, extensions={name: "x"})

    @pytest.mark.parametrize("name", ["ab", "1abc", "_abc", "a-bc", "a bc", "émoji", "", "a.b.c"])
    def test_extension_names_follow_the_rfc_advice(self, name: str) -> None:
        """Names start with a letter, use letters/digits/_ and have three characters."""
        with pytest.raises(ConfigurationError, match="extension name"):
            Problem(400, extensions={name: 1})

    @pytest.mark.parametrize(
        "value", [float("nan"), float("inf"), object(), {1: "a"}, b"bytes", {"s"}]
    )
    def test_extension_values_must_be_plain_json(self, value: Any) -> None:
        """Values JSON cannot carry exactly (NaN, objects, non-string keys) are refused."""
        with pytest.raises(ConfigurationError, match="plain JSON"):
            Problem(400, extensions={"value": value})

    @pytest.mark.parametrize("bad", ["has space", "", "tab\there", "<x>", 'q"uote', "ü"])
    def test_type_and_instance_must_be_uri_references(self, bad: str) -> None:
        """type and instance refuse text that cannot be a URI reference."""
        with pytest.raises(ConfigurationError, match="URI reference"):
            Problem(400, type=bad)
        with pytest.raises(ConfigurationError, match="URI reference"):
            Problem(400, instance=bad)

    def test_title_and_detail_must_be_strings(self) -> None:
        """Non-string title or detail are refused at construction."""
        with pytest.raises(ConfigurationError, match="title"):
            Problem(400, title=5)  # type: ignore[arg-type]
        with pytest.raises(ConfigurationError, match="detail"):
            Problem(400, detail=["x"])  # type: ignore[arg-type]

    def test_problem_is_immutable_even_through_the_callers_extension_objects(self) -> None:
        """Mutating the dict or list that was passed in does not alter the problem."""
        accounts = ["/a"]
        ext = {"accounts": accounts}
        problem = Problem(403, extensions=ext)
        accounts.append("/b")
        ext["other"] = ["x"]
        assert problem.to_dict()["accounts"] == ["/a"]
        assert "other" not in problem.extensions
        with pytest.raises(TypeError):
            problem.extensions["accounts"] = []  # type: ignore[index]
        problem.to_dict()["accounts"].append("/c")
        assert problem.to_dict()["accounts"] == ["/a"]

    def test_equal_problems_compare_and_hash_equal(self) -> None:
        """Problems with the same members are equal and hash alike."""
        a = Problem(409, detail="d", extensions={"items": [1, 2]})
        b = Problem(409, detail="d", extensions={"items": (1, 2)})
        assert a == b
        assert hash(a) == hash(b)
        assert a != Problem(409, detail="other")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)


class TestFromDict:
    @pytest.mark.parametrize(
        ("member", "bad_value"),
        [
            ("type", 5),
            ("type", "has space"),
            ("title", ["x"]),
            ("detail", {"a": 1}),
            ("instance", 7),
            ("status", "403"),
            ("status", True),
            ("status", 42),
            ("status", 700),
        ],
    )
    def test_from_dict_ignores_members_of_the_wrong_type(self, member: str, bad_value: Any) -> None:
        """RFC 9457 3.1: a member whose value has the wrong type is ignored."""
        data = {**OUT_OF_CREDIT, "status": 403, member: bad_value}
        problem = Problem.from_dict(data, fallback_status=418)
        body = problem.to_dict()
        if member == "type":
            assert body["type"] == "about:blank"
        elif member == "status":
            assert body["status"] == 418
        elif member == "title":
            assert body["title"] == reason_phrase(403)
        else:
            assert member not in body
        assert body["balance"] == 30

    def test_from_dict_drops_extensions_it_could_not_emit_again(self) -> None:
        """Badly named or non-JSON extensions from elsewhere are dropped, not fatal."""
        problem = Problem.from_dict(
            {"status": 400, "ok_name": 1, "x": 2, "bad-name": 3, "nan_value": float("nan")}
        )
        assert dict(problem.extensions) == {"ok_name": 1}

    @pytest.mark.parametrize("data", [[], "problem", 42, None])
    def test_from_dict_refuses_non_objects(self, data: Any) -> None:
        """Something that is not a JSON object is a MalformedProblem."""
        with pytest.raises(MalformedProblem):
            Problem.from_dict(data)

    @pytest.mark.parametrize(
        "raw", [b"{", b"[]", b'"x"', b"\xff\xfe", b'{"status": NaN}', b"[" * 60_000, b" " * 70_000]
    )
    def test_from_json_refuses_unusable_documents(self, raw: bytes) -> None:
        """Broken, non-object, non-UTF-8, NaN-bearing, deeply nested or huge documents fail
        typed."""
        with pytest.raises(MalformedProblem):
            Problem.from_json(raw)

    @given(st.dictionaries(st.text(max_size=12), json_values, max_size=8))
    def test_from_dict_never_raises_on_any_json_object(self, data: dict[str, Any]) -> None:
        """Whatever object comes in, from_dict returns a problem that serializes."""
        problem = Problem.from_dict(data)
        reread = Problem.from_json(problem.to_json())
        assert reread == problem


class TestValidationProblem:
    def test_validation_problem_lists_every_field(self) -> None:
        """validation_problem makes a 422 with field, message and code for each error."""
        problem = validation_problem(
            [
                FieldError("age", "must be a positive integer", "min_value"),
                {"field": "profile.color", "message": "must be green, red or blue", "code": "enum"},
            ]
        )
        assert problem.status == 422
        assert problem.to_dict()["errors"] == [
            {"field": "age", "message": "must be a positive integer", "code": "min_value"},
            {"field": "profile.color", "message": "must be green, red or blue", "code": "enum"},
        ]

    @pytest.mark.parametrize(
        "errors",
        [[], [{"field": "a", "message": "m"}], [{"field": 1, "message": "m", "code": "c"}], ["a"]],
    )
    def test_validation_problem_refuses_empty_or_broken_errors(self, errors: list[Any]) -> None:
        """No errors, missing keys or wrong types are configuration errors."""
        with pytest.raises(ConfigurationError):
            validation_problem(errors)
