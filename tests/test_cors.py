"""CORS decisions: a data table of Fetch cases, construction rules, and properties."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from apisec import ConfigurationError
from apisec.cors import CorsDecision, CorsPolicy

POLICIES = {
    "creds": CorsPolicy(
        ["https://app.example.com", "https://*.example.org", "http://localhost:3000"],
        allow_methods=["GET", "PUT", "PATCH", "DELETE"],
        allow_headers=["Content-Type", "Authorization", "X-Request-Id"],
        expose_headers=["X-Request-Id"],
        allow_credentials=True,
        max_age=600,
    ),
    "public": CorsPolicy(["*"], allow_methods=["*"], allow_headers=["*"], expose_headers=["*"]),
    "regex": CorsPolicy([], allow_origin_regex=r"https://[a-z0-9-]+\.preview\.example\.com"),
    "null": CorsPolicy(["null", "https://app.example.com"]),
    "pna": CorsPolicy(["https://app.example.com"], allow_private_network=True),
}
TABLE = json.loads((Path(__file__).parent / "vectors" / "cors-fetch-cases.json").read_text())


def _decide(policy: CorsPolicy, request: dict[str, Any]) -> CorsDecision:
    return policy.decide(
        request["method"],
        request["origin"],
        request["acrm"],
        request["acrh"],
        access_control_request_private_network=request["pna"],
    )


class TestFetchTable:
    @pytest.mark.parametrize("case", TABLE["cases"], ids=[c["name"] for c in TABLE["cases"]])
    def test_fetch_case_table(self, case: dict[str, Any]) -> None:
        """Each tabled request gets the decision, headers and Vary the Fetch standard calls for."""
        decision = _decide(POLICIES[case["policy"]], case["request"])
        expect = case["expect"]
        assert decision.allowed is expect["allowed"]
        assert decision.is_preflight is expect["is_preflight"]
        assert decision.reason == expect["reason"]
        headers = dict(decision.headers)
        assert len(headers) == len(decision.headers), "no header may appear twice"
        for name, value in expect["headers"].items():
            assert headers.get(name) == value, name
        for name in expect["absent"]:
            assert name not in headers, name
        if expect["vary"] is None:
            assert "Vary" not in headers
        else:
            assert headers["Vary"] == expect["vary"]

    def test_table_is_substantial(self) -> None:
        """The table covers lookalikes, wildcards, regexes, methods, headers and credentials."""
        assert len(TABLE["cases"]) >= 40
        assert TABLE["source"]

    def test_refused_requests_never_get_allow_origin(self) -> None:
        """Across the whole table, a refusal never carries Access-Control-Allow-Origin."""
        for case in TABLE["cases"]:
            decision = _decide(POLICIES[case["policy"]], case["request"])
            if not decision.allowed:
                assert all(n != "Access-Control-Allow-Origin" for n, _ in decision.headers)


class TestConstruction:
    @pytest.mark.parametrize(
        ("args", "kwargs", "match"),
        [
            (["*"], {"allow_credentials": True}, "credentials"),
            (["null"], {"allow_credentials": True}, "null"),
            (["https://a.example"], {"allow_credentials": True, "allow_headers": ["*"]}, "literal"),
            (["https://a.example"], {"allow_credentials": True, "allow_methods": ["*"]}, "literal"),
            (
                ["https://a.example"],
                {"allow_credentials": True, "expose_headers": ["*"]},
                "literal",
            ),
            (["https://a.example/"], {}, "serialized origin"),
            (["https://a.example/path"], {}, "serialized origin"),
            (["a.example"], {}, "serialized origin"),
            (["https://*.com"], {}, "wildcards"),
            (["https://a.*.example.com"], {}, "wildcards"),
            (["https://*example.com"], {}, "wildcards"),
            (["*.example.com"], {}, "wildcards"),
            (["https://a.example:99999"], {}, "port"),
            ([], {}, "at least one"),
            ("https://a.example", {}, "not one string"),
            (["*", "https://a.example"], {}, "already allows"),
            (["https://a.example"], {"allow_origin_regex": "("}, "compile"),
            (["https://a.example"], {"allow_methods": ["GET POST"]}, "token"),
            (["https://a.example"], {"allow_headers": ["X-Ok", "bad header"]}, "token"),
            (["https://a.example"], {"max_age": -1}, "max_age"),
            (["https://a.example"], {"allow_credentials": "yes"}, "bool"),
        ],
    )
    def test_unsafe_or_invalid_policies_are_refused(
        self, args: Any, kwargs: dict[str, Any], match: str
    ) -> None:
        """Wildcards with credentials, null with credentials and malformed origins fail at build."""
        with pytest.raises(ConfigurationError, match=match):
            CorsPolicy(args, **kwargs)

    def test_configured_origins_are_normalized_to_browser_serialization(self) -> None:
        """Upper-case hosts and default ports in configuration still match what browsers send."""
        policy = CorsPolicy(["HTTPS://App.Example.COM:443", "http://Local.test:80"])
        assert policy.decide("GET", "https://app.example.com").allowed
        assert policy.decide("GET", "http://local.test").allowed

    def test_lint_warns_about_risky_settings(self) -> None:
        """http beside https, unescaped dots, long max-age and null are reported."""
        policy = CorsPolicy(
            ["https://a.example", "http://a.example", "null"],
            allow_origin_regex=r"https://.*.example.com",
            max_age=86400,
        )
        warnings = policy.lint()
        assert any("http:" in w for w in warnings)
        assert any("unescaped" in w for w in warnings)
        assert any("max_age" in w for w in warnings)
        assert any("null" in w for w in warnings)
        assert (
            CorsPolicy(["https://a.example"], allow_origin_regex=r"https://x\.example").lint() == []
        )

    def test_decision_headers_are_fresh_lists(self) -> None:
        """Mutating one decision's headers cannot change the next decision."""
        policy = POLICIES["creds"]
        first = policy.decide("GET", "https://app.example.com")
        first.headers.append(("X-Injected", "1"))
        assert ("X-Injected", "1") not in policy.decide("GET", "https://app.example.com").headers


PROPERTY_POLICY = CorsPolicy(
    ["https://app.example.com", "https://*.example.org"],
    allow_origin_regex=r"https://pr-[0-9]+\.preview\.example\.net",
    allow_methods=["GET", "PUT"],
    allow_headers=["X-Token"],
    allow_credentials=True,
)
_WILDCARD = re.compile(r"https://[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.example\.org")
_REGEX = re.compile(r"https://pr-[0-9]+\.preview\.example\.net")

header_text = st.one_of(st.none(), st.text(max_size=80), st.sampled_from(["GET", "PUT", "*", ""]))
origins = st.one_of(
    st.text(max_size=80),
    st.sampled_from(["https://app.example.com", "null", "https://x.example.org", "*"]),
    st.from_regex(
        r"https://[a-z0-9.\-]{1,20}\.example\.(org|com|net)(:[0-9]{1,5})?", fullmatch=True
    ),
    st.from_regex(r"https://pr-[0-9]{1,4}\.preview\.example\.net.{0,5}", fullmatch=True),
)


class TestProperties:
    @given(
        method=st.sampled_from(["GET", "OPTIONS", "POST", "put", ""]) | st.text(max_size=10),
        origin=st.none() | origins,
        acrm=header_text,
        acrh=header_text,
        pna=header_text,
    )
    def test_decide_never_raises_and_allows_only_listed_origins(
        self, method: str, origin: str | None, acrm: str | None, acrh: str | None, pna: str | None
    ) -> None:
        """decide is total; allowed means listed, a one-label wildcard match or a full regex
        match."""
        decision = PROPERTY_POLICY.decide(
            method, origin, acrm, acrh, access_control_request_private_network=pna
        )
        if decision.allowed:
            assert origin is not None
            assert (
                origin == "https://app.example.com"
                or _WILDCARD.fullmatch(origin)
                or _REGEX.fullmatch(origin)
            )
            assert dict(decision.headers)["Access-Control-Allow-Origin"] == origin
            assert "Origin" in dict(decision.headers)["Vary"]
        else:
            assert "Access-Control-Allow-Origin" not in dict(decision.headers)

    def test_refusals_are_audited(self, audit_records: list[Any]) -> None:
        """Refused origins and preflights emit cors.rejected with the reason."""
        POLICIES["creds"].decide("GET", "https://evil.example")
        POLICIES["creds"].decide("OPTIONS", "https://app.example.com", "TRACE")
        reasons = [r.reason for r in audit_records if r.event == "cors.rejected"]
        assert reasons == ["origin_not_allowed", "method_not_allowed"]
        assert audit_records[0].details["origin"] == "https://evil.example"


class TestCompiledForm:
    def test_the_policy_is_compiled_once_into_one_private_field(self) -> None:
        """Construction leaves one precomputed field, kept out of repr and equality."""
        policy = CorsPolicy(["https://a.example", "https://*.b.example"], allow_headers=["X-A"])
        compiled = policy._compiled
        assert compiled.exact == frozenset({"https://a.example"})
        assert len(compiled.patterns) == 1
        assert compiled.header_names == frozenset({"x-a"})
        assert "_compiled" not in repr(policy)
        assert policy == CorsPolicy(
            ["https://a.example", "https://*.b.example"], allow_headers=["X-A"]
        )

    def test_the_compiled_form_cannot_be_replaced(self) -> None:
        """The policy stays frozen: its compiled form is not assignable."""
        import attrs

        policy = CorsPolicy(["https://a.example"])
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            policy._compiled = policy._compiled  # type: ignore[misc]


def _general_only(policy: CorsPolicy) -> CorsPolicy:
    """``policy`` with the listed-preflight shortcut of ``decide`` turned off."""
    import attrs

    twin = attrs.evolve(policy)
    compiled = attrs.evolve(policy._compiled, preflight_methods=frozenset())
    object.__setattr__(twin, "_compiled", compiled)
    return twin


_HEADER_LISTS = [
    "",
    "content-type",
    "Content-Type, X-Request-Id",
    "content-type,x-request-id,authorization",
    "x-token",
    "X-TOKEN, x-token",
    " content-type",
    "content-type ,x-request-id",
    "content-type,\tx-request-id",
    "content-type,,x-request-id",
    "content-type,",
    "x-to\u212aen",  # KELVIN SIGN: lower-cases to the k of x-token
    "content-type, x-to\u212aen",
    "authorization",
    "x-other",
    ",".join(["content-type"] * 65),
    "content-type, " * 400,
]
header_lists = st.one_of(
    st.none(),
    st.sampled_from(_HEADER_LISTS),
    st.lists(st.sampled_from(["content-type", "X-Token", "x-request-id", "bad name", "*"])).map(
        ", ".join
    ),
    st.text(max_size=40),
)


class TestListedPreflightShortcut:
    """decide's shortcut for listed methods and header names answers as the general checks."""

    @given(
        policy=st.sampled_from([*POLICIES.values(), PROPERTY_POLICY]),
        origin=origins,
        acrm=st.one_of(header_text, st.sampled_from(["PUT", "PATCH", "DELETE", "TRACE", "post"])),
        acrh=header_lists,
        pna=st.sampled_from([None, "true", "false"]),
    )
    def test_decisions_match_the_general_checks(
        self, policy: CorsPolicy, origin: str, acrm: str | None, acrh: str | None, pna: str | None
    ) -> None:
        """Same allowed, headers and reason with the shortcut on and off, for preflights of
        every shape (spaces, tabs, empty names, non-ASCII, too many names, refusals)."""
        general = _general_only(policy)
        ours = policy.decide(
            "OPTIONS", origin, acrm, acrh, access_control_request_private_network=pna
        )
        theirs = general.decide(
            "OPTIONS", origin, acrm, acrh, access_control_request_private_network=pna
        )
        assert ours == theirs
        assert type(ours) is CorsDecision

    @pytest.mark.parametrize("acrh", [v for v in _HEADER_LISTS if v is not None])
    @pytest.mark.parametrize(
        ("policy", "origin", "acrm"),
        [
            (POLICIES["creds"], "https://app.example.com", "PUT"),
            (PROPERTY_POLICY, "https://app.example.com", "PUT"),
            (POLICIES["public"], "https://any.example", "GET"),
            (POLICIES["pna"], "https://app.example.com", "POST"),
        ],
        ids=["creds", "property", "public", "pna"],
    )
    def test_each_header_list_matches_for_an_allowed_origin_and_method(
        self, policy: CorsPolicy, origin: str, acrm: str, acrh: str
    ) -> None:
        """With everything else allowed, each header list is decided as the general checks
        decide it."""
        general = _general_only(policy)
        assert policy.decide("OPTIONS", origin, acrm, acrh) == general.decide(
            "OPTIONS", origin, acrm, acrh
        )

    def test_a_long_list_of_long_listed_names_is_refused_both_ways(self) -> None:
        """Forty listed names of a hundred characters pass the count but not the length
        limit: refused with or without the shortcut."""
        name = "x-" + "a" * 98
        policy = CorsPolicy(["https://app.example.com"], allow_headers=[name])
        value = ",".join([name] * 41)
        decision = policy.decide("OPTIONS", "https://app.example.com", "GET", value)
        assert decision.reason == "invalid_request_headers"
        assert decision == _general_only(policy).decide(
            "OPTIONS", "https://app.example.com", "GET", value
        )

    def test_the_shortcut_is_taken_for_what_browsers_send(self) -> None:
        """A listed method with listed names never reaches the general checks."""
        from unittest import mock

        policy = POLICIES["creds"]
        with mock.patch.object(CorsPolicy, "_preflight_refusal", side_effect=AssertionError):
            decision = policy.decide(
                "OPTIONS", "https://app.example.com", "PUT", "content-type,x-request-id"
            )
        assert decision.allowed and decision.is_preflight and decision.reason is None
        with (
            pytest.raises(AssertionError),
            mock.patch.object(CorsPolicy, "_preflight_refusal", side_effect=AssertionError),
        ):
            policy.decide("OPTIONS", "https://app.example.com", "PUT", "content-type, bad name")
