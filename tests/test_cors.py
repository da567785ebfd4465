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
