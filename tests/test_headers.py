"""Security headers: exact profile sets, the CSP builder, HSTS rules, lifecycle headers."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from apisec import ConfigurationError
from apisec.headers import ApiLifecycle, ContentSecurityPolicy, RouteLifecycles, SecurityHeaders

API_EXPECTED = [
    ("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'"),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
    ("Cross-Origin-Resource-Policy", "same-origin"),
    ("Cache-Control", "no-store"),
    ("Strict-Transport-Security", "max-age=31536000; includeSubDomains"),
]

# Helmet 8's documented defaults.
HTML_EXPECTED = {
    "Content-Security-Policy": (
        "default-src 'self'; base-uri 'self'; font-src 'self' https: data:; "
        "form-action 'self'; frame-ancestors 'self'; img-src 'self' data:; object-src 'none'; "
        "script-src 'self'; script-src-attr 'none'; style-src 'self' https: 'unsafe-inline'; "
        "upgrade-insecure-requests"
    ),
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Origin-Agent-Cluster": "?1",
    "Referrer-Policy": "no-referrer",
    "Strict-Transport-Security": "max-age=31536000; includeSubDomains",
    "X-Content-Type-Options": "nosniff",
    "X-DNS-Prefetch-Control": "off",
    "X-Download-Options": "noopen",
    "X-Frame-Options": "SAMEORIGIN",
    "X-Permitted-Cross-Domain-Policies": "none",
    "X-XSS-Protection": "0",
}


def test_api_profile_is_exactly_the_documented_set() -> None:
    """The default (api) profile sends exactly these headers and values."""
    assert sorted(SecurityHeaders().headers) == sorted(API_EXPECTED)


def test_html_profile_matches_helmet_8() -> None:
    """The html profile equals Helmet 8's defaults, header for header."""
    headers = SecurityHeaders(profile="html").headers
    assert dict(headers) == HTML_EXPECTED
    assert len(headers) == len(HTML_EXPECTED)


def test_both_profiles_strip_fingerprinting_headers() -> None:
    """Server and X-Powered-By are listed for removal."""
    assert SecurityHeaders().remove_lower == {"server", "x-powered-by"}


def test_hsts_preload_and_disable() -> None:
    """preload adds the token; 0 removes the header; preload needs a year and subdomains."""
    assert dict(SecurityHeaders(hsts_preload=True).headers)["Strict-Transport-Security"] == (
        "max-age=31536000; includeSubDomains; preload"
    )
    assert "Strict-Transport-Security" not in dict(SecurityHeaders(hsts_max_age=0).headers)
    with pytest.raises(ConfigurationError, match="preload"):
        SecurityHeaders(hsts_preload=True, hsts_max_age=86400)
    with pytest.raises(ConfigurationError, match="preload"):
        SecurityHeaders(hsts_preload=True, hsts_include_subdomains=False)


def test_overrides_replace_case_insensitively_and_none_drops() -> None:
    """An override replaces the same header whatever its case; None removes it."""
    headers = dict(
        SecurityHeaders(overrides={"x-frame-options": "SAMEORIGIN", "Cache-Control": None}).headers
    )
    assert headers["x-frame-options"] == "SAMEORIGIN"
    assert "X-Frame-Options" not in headers
    assert "Cache-Control" not in headers


def test_custom_csp_and_report_only() -> None:
    """A custom CSP replaces the default; report_only switches the header name."""
    csp = ContentSecurityPolicy(
        {"default_src": ["'self'"], "report-uri": ["/csp"]}, report_only=True
    )
    headers = dict(SecurityHeaders(csp=csp).headers)
    assert headers["Content-Security-Policy-Report-Only"] == "default-src 'self'; report-uri /csp"
    assert "Content-Security-Policy" not in headers
    assert "Content-Security-Policy" not in dict(SecurityHeaders(csp=None).headers)


@pytest.mark.parametrize(
    ("directives", "match"),
    [
        ({"default-source": ["'self'"]}, "unknown CSP directive"),
        ({"script-src": ["self"]}, "must be quoted"),
        ({"script-src": ["none"]}, "must be quoted"),
        ({"script-src": ["unsafe-inline"]}, "must be quoted"),
        ({"script-src": ["'unsafe-everything'"]}, "unknown quoted source"),
        ({"script-src": ["nonce-abc"]}, "must be quoted"),
        ({"script-src": ["https://a.example; img-src *"]}, "not a valid source"),
        ({"script-src": ["https://a.example,b"]}, "not a valid source"),
        ({"script-src": []}, "empty"),
        ({"script-src": "'self'"}, "list of sources"),
        ({"script-src": ["'none'", "'self'"]}, "cannot be combined"),
        ({"upgrade-insecure-requests": ["x"]}, "takes no sources"),
        ({}, "at least one directive"),
    ],
)
def test_csp_builder_refuses_mistakes(directives: dict[str, Any], match: str) -> None:
    """Unknown directives, unquoted keywords and injection attempts are configuration errors."""
    with pytest.raises(ConfigurationError, match=match):
        ContentSecurityPolicy(directives)


def test_csp_builder_accepts_nonces_hashes_and_hosts() -> None:
    """Quoted nonces and hashes, schemes and hosts render in order."""
    csp = ContentSecurityPolicy(
        {
            "script-src": ["'self'", "'nonce-r4nd0m=='", "'sha256-abc+/='", "https://cdn.example"],
            "img-src": ["data:", "*.example.com"],
            "upgrade_insecure_requests": True,
        }
    )
    assert str(csp) == (
        "script-src 'self' 'nonce-r4nd0m==' 'sha256-abc+/=' https://cdn.example; "
        "img-src data: *.example.com; upgrade-insecure-requests"
    )


@pytest.mark.parametrize(
    "kwargs",
    [
        {"profile": "web"},
        {"referrer_policy": "never"},
        {"hsts_max_age": -1},
        {"overrides": {"Bad Name": "x"}},
        {"overrides": {"X-Ok": "line\r\nInjected: 1"}},
        {"remove": ("Bad Name",)},
        {"csp": "default-src 'self'"},
    ],
)
def test_bad_security_header_configuration_is_refused(kwargs: dict[str, Any]) -> None:
    """Unknown profiles and policies, header injection and bad names fail when built."""
    with pytest.raises(ConfigurationError):
        SecurityHeaders(**kwargs)


UTC = timezone.utc


def test_lifecycle_headers_follow_rfc_9745_and_8594() -> None:
    """Deprecation is an @epoch date; Sunset an HTTP-date; Link rels point to the guide."""
    policy = ApiLifecycle(
        deprecated_at=datetime(2026, 1, 1, tzinfo=UTC),
        sunset_at=datetime(2026, 7, 1, 12, 30, tzinfo=UTC),
        link="https://api.example.com/migrate",
    )
    headers = dict(policy.headers)
    assert headers["Deprecation"] == "@1767225600"
    assert headers["Sunset"] == "Wed, 01 Jul 2026 12:30:00 GMT"
    assert headers["Link"] == (
        '<https://api.example.com/migrate>; rel="deprecation"; type="text/html", '
        '<https://api.example.com/migrate>; rel="sunset"; type="text/html"'
    )


def test_lifecycle_converts_other_timezones_to_gmt() -> None:
    """A sunset given in another zone is rendered in GMT."""
    cet = timezone(timedelta(hours=1))
    policy = ApiLifecycle(sunset_at=datetime(2026, 7, 1, 1, 0, tzinfo=cet))
    assert policy.headers == [("Sunset", "Wed, 01 Jul 2026 00:00:00 GMT")]


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"sunset_at": datetime(2026, 7, 1)},  # naive
        {
            "deprecated_at": datetime(2026, 7, 1, tzinfo=UTC),
            "sunset_at": datetime(2026, 1, 1, tzinfo=UTC),
        },
        {"sunset_at": datetime(2026, 7, 1, tzinfo=UTC), "link": "javascript:alert(1)"},
        {"sunset_at": datetime(2026, 7, 1, tzinfo=UTC), "link": "https://a.example/x> ; rel=evil"},
    ],
)
def test_lifecycle_refuses_bad_dates_and_links(kwargs: dict[str, Any]) -> None:
    """No dates, naive dates, sunset before deprecation and unsafe links are refused."""
    with pytest.raises(ConfigurationError):
        ApiLifecycle(**kwargs)


def test_route_lifecycles_pick_the_longest_prefix() -> None:
    """Per-route policies: the most specific prefix applies; other routes get nothing."""
    v1 = ApiLifecycle(deprecated_at=datetime(2026, 1, 1, tzinfo=UTC))
    orders = ApiLifecycle(
        deprecated_at=datetime(2025, 6, 1, tzinfo=UTC), sunset_at=datetime(2026, 1, 1, tzinfo=UTC)
    )
    routes = RouteLifecycles({"/v1/": v1, "/v1/orders": orders})
    assert dict(routes.headers_for("/v1/orders/7"))["Sunset"] == "Thu, 01 Jan 2026 00:00:00 GMT"
    assert routes.headers_for("/v1/users") == v1.headers
    assert routes.headers_for("/v2/users") == []
    with pytest.raises(ConfigurationError):
        RouteLifecycles({"v1": v1})
    with pytest.raises(ConfigurationError):
        RouteLifecycles({"/v1": "soon"})  # type: ignore[dict-item]
