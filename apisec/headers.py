"""Security response headers with safe defaults, and API lifecycle headers.

>>> dict(SecurityHeaders().headers)["Content-Security-Policy"]
"default-src 'none'; frame-ancestors 'none'"
>>> dict(SecurityHeaders(profile="html").headers)["X-Frame-Options"]
'SAMEORIGIN'

Two profiles:

* ``"api"`` (default) for JSON APIs: nothing may be loaded or framed,
  responses are not cached, no referrer leaks;
* ``"html"`` for pages: Helmet 8's defaults.

Every value is validated and rendered once, when the object is built.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from email.utils import format_datetime

import attrs

from apisec.errors import ConfigurationError

__all__ = [
    "ApiLifecycle",
    "ContentSecurityPolicy",
    "RouteLifecycles",
    "SecurityHeaders",
]

# CSP Level 3 directives (plus the still-common report-uri and the
# deprecated-but-harmless block-all-mixed-content).
_DIRECTIVES = frozenset(
    {
        "default-src",
        "script-src",
        "script-src-elem",
        "script-src-attr",
        "style-src",
        "style-src-elem",
        "style-src-attr",
        "img-src",
        "font-src",
        "connect-src",
        "media-src",
        "object-src",
        "frame-src",
        "child-src",
        "worker-src",
        "manifest-src",
        "prefetch-src",
        "fenced-frame-src",
        "base-uri",
        "form-action",
        "frame-ancestors",
        "sandbox",
        "upgrade-insecure-requests",
        "block-all-mixed-content",
        "report-uri",
        "report-to",
        "require-trusted-types-for",
        "trusted-types",
        "webrtc",
    }
)
_VALUELESS = frozenset({"upgrade-insecure-requests", "block-all-mixed-content"})
_KEYWORDS = frozenset(
    {
        "self",
        "none",
        "unsafe-inline",
        "unsafe-eval",
        "strict-dynamic",
        "unsafe-hashes",
        "report-sample",
        "unsafe-allow-redirects",
        "wasm-unsafe-eval",
        "inline-speculation-rules",
    }
)
_SOURCE = re.compile(r"[!-+\--:<-~]+")  # printable ASCII, no space, comma or semicolon
_NONCE_OR_HASH = re.compile(r"'(nonce-[A-Za-z0-9+/\-_]+=*|sha(256|384|512)-[A-Za-z0-9+/\-_]+=*)'")
_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_HEADER_VALUE = re.compile(r"[\t\x20-\x7e]*")


def _source(directive: str, value: str) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigurationError(f"CSP {directive}: sources must be non-empty strings")
    bare = value.strip("'")
    if value.startswith("'"):
        if bare in _KEYWORDS or _NONCE_OR_HASH.fullmatch(value):
            return value
        raise ConfigurationError(f"CSP {directive}: unknown quoted source {value!r}")
    if bare in _KEYWORDS:
        raise ConfigurationError(
            f"CSP {directive}: keyword {value!r} must be quoted (\"'{value}'\"), or the browser"
            " reads it as a host name"
        )
    if value.startswith(("nonce-", "sha256-", "sha384-", "sha512-")):
        raise ConfigurationError(f"CSP {directive}: {value!r} must be quoted")
    if _SOURCE.fullmatch(value) is None:
        raise ConfigurationError(f"CSP {directive}: {value!r} is not a valid source expression")
    return value


@attrs.frozen
class ContentSecurityPolicy:
    """A validated CSP, built from directive names to source lists.

    >>> str(ContentSecurityPolicy({"default-src": ["'self'"], "img-src": ["'self'", "data:"]}))
    "default-src 'self'; img-src 'self' data:"
    >>> ContentSecurityPolicy({"script-src": ["self"]})
    Traceback (most recent call last):
    ...
    apisec.errors.ConfigurationError: CSP script-src: keyword 'self' must be quoted ...

    Directive names are checked against CSP Level 3 (underscores may stand
    for dashes: ``default_src``); keywords must be quoted; valueless
    directives (``upgrade-insecure-requests``) take ``True``.
    """

    directives: Mapping[str, Iterable[str] | bool] = attrs.field(eq=False)
    report_only: bool = attrs.field(default=False, kw_only=True)
    value: str = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.directives, Mapping) or not self.directives:
            raise ConfigurationError("a Content-Security-Policy needs at least one directive")
        parts = []
        for raw_name, sources in self.directives.items():
            name = str(raw_name).replace("_", "-").lower()
            if name not in _DIRECTIVES:
                raise ConfigurationError(f"unknown CSP directive {raw_name!r}")
            if name in _VALUELESS:
                if sources is not True:
                    raise ConfigurationError(f"CSP {name} takes no sources; pass True")
                parts.append(name)
                continue
            if isinstance(sources, (str, bool)):
                raise ConfigurationError(f"CSP {name}: give a list of sources")
            values = [_source(name, s) for s in sources]
            if not values:
                raise ConfigurationError(f"CSP {name}: empty source list; use \"'none'\"")
            if "'none'" in values and len(values) > 1:
                raise ConfigurationError(f"CSP {name}: \"'none'\" cannot be combined")
            parts.append(f"{name} {' '.join(values)}")
        object.__setattr__(self, "value", "; ".join(parts))

    def __str__(self) -> str:
        return self.value

    @property
    def header_name(self) -> str:
        if self.report_only:
            return "Content-Security-Policy-Report-Only"
        return "Content-Security-Policy"


API_CSP = ContentSecurityPolicy({"default-src": ["'none'"], "frame-ancestors": ["'none'"]})
#: Helmet 8's default policy.
HTML_CSP = ContentSecurityPolicy(
    {
        "default-src": ["'self'"],
        "base-uri": ["'self'"],
        "font-src": ["'self'", "https:", "data:"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'self'"],
        "img-src": ["'self'", "data:"],
        "object-src": ["'none'"],
        "script-src": ["'self'"],
        "script-src-attr": ["'none'"],
        "style-src": ["'self'", "https:", "'unsafe-inline'"],
        "upgrade-insecure-requests": True,
    }
)

_PROFILES: dict[str, dict[str, str]] = {
    "api": {
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "no-referrer",
        "Cross-Origin-Opener-Policy": "same-origin",
        "Cross-Origin-Resource-Policy": "same-origin",
        "Cache-Control": "no-store",
    },
    "html": {
        "Cross-Origin-Opener-Policy": "same-origin",
        "Cross-Origin-Resource-Policy": "same-origin",
        "Origin-Agent-Cluster": "?1",
        "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
        "X-DNS-Prefetch-Control": "off",
        "X-Download-Options": "noopen",
        "X-Frame-Options": "SAMEORIGIN",
        "X-Permitted-Cross-Domain-Policies": "none",
        "X-XSS-Protection": "0",
    },
}
_REFERRER_POLICIES = frozenset(
    {
        "no-referrer",
        "no-referrer-when-downgrade",
        "origin",
        "origin-when-cross-origin",
        "same-origin",
        "strict-origin",
        "strict-origin-when-cross-origin",
        "unsafe-url",
    }
)


def _checked_headers(values: Mapping[str, str | None]) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name, value in values.items():
        if not isinstance(name, str) or _HEADER_NAME.fullmatch(name) is None:
            raise ConfigurationError(f"{name!r} is not a valid header name")
        if value is not None and (
            not isinstance(value, str) or _HEADER_VALUE.fullmatch(value) is None
        ):
            raise ConfigurationError(f"header {name}: value must be printable ASCII")
        out[name] = value
    return out


@attrs.frozen(kw_only=True)
class SecurityHeaders:
    """Security response headers, rendered once.

    Args:
        profile: ``"api"`` (default) or ``"html"`` (Helmet 8 defaults).
        csp: a :class:`ContentSecurityPolicy`, or None to send none; defaults
            to the profile's policy.
        hsts_max_age: seconds for ``Strict-Transport-Security``; 0 disables it.
        hsts_include_subdomains: add ``includeSubDomains``.
        hsts_preload: add ``preload`` (needs a year of max-age and subdomains,
            as the preload list requires).
        referrer_policy: override the ``Referrer-Policy``.
        overrides: set (``"name": "value"``) or drop (``"name": None``) headers.
        remove: headers to strip from responses (``Server``, ``X-Powered-By``).

    Attributes:
        headers: the ``(name, value)`` pairs to add to every response.
    """

    profile: str = "api"
    csp: ContentSecurityPolicy | None = attrs.field()
    hsts_max_age: int = 31_536_000
    hsts_include_subdomains: bool = True
    hsts_preload: bool = False
    referrer_policy: str | None = None
    overrides: Mapping[str, str | None] = attrs.field(factory=dict)
    remove: tuple[str, ...] = ("Server", "X-Powered-By")
    headers: list[tuple[str, str]] = attrs.field(init=False)
    #: Lower-case names of the headers to strip, for adapters (computed once).
    remove_lower: frozenset[str] = attrs.field(init=False)

    @csp.default
    def _default_csp(self) -> ContentSecurityPolicy | None:
        return HTML_CSP if self.profile == "html" else API_CSP

    def __attrs_post_init__(self) -> None:  # noqa: PLR0912 - one validation pass
        if self.profile not in _PROFILES:
            raise ConfigurationError(f"unknown profile {self.profile!r}; use 'api' or 'html'")
        if self.csp is not None and not isinstance(self.csp, ContentSecurityPolicy):
            raise ConfigurationError("csp must be a ContentSecurityPolicy or None")
        max_age = self.hsts_max_age
        if isinstance(max_age, bool) or not isinstance(max_age, int) or max_age < 0:
            raise ConfigurationError("hsts_max_age must be a non-negative int")
        if self.hsts_preload and (max_age < 31_536_000 or not self.hsts_include_subdomains):
            raise ConfigurationError(
                "HSTS preload requires hsts_max_age >= 31536000 and includeSubDomains"
            )
        if self.referrer_policy is not None and self.referrer_policy not in _REFERRER_POLICIES:
            raise ConfigurationError(f"unknown Referrer-Policy {self.referrer_policy!r}")
        for name in self.remove:
            if not isinstance(name, str) or _HEADER_NAME.fullmatch(name) is None:
                raise ConfigurationError(f"{name!r} is not a valid header name")

        values: dict[str, str | None] = {}
        if self.csp is not None:
            values[self.csp.header_name] = self.csp.value
        values.update(_PROFILES[self.profile])
        if max_age:
            hsts = f"max-age={max_age}"
            if self.hsts_include_subdomains:
                hsts += "; includeSubDomains"
            if self.hsts_preload:
                hsts += "; preload"
            values["Strict-Transport-Security"] = hsts
        if self.referrer_policy is not None:
            values["Referrer-Policy"] = self.referrer_policy
        lowered = {name.lower(): name for name in values}
        for name, value in _checked_headers(self.overrides).items():
            values.pop(lowered.get(name.lower(), name), None)
            values[name] = value
        rendered = [(name, value) for name, value in values.items() if value is not None]
        object.__setattr__(self, "headers", rendered)
        object.__setattr__(self, "remove_lower", frozenset(name.lower() for name in self.remove))


@attrs.frozen(kw_only=True)
class ApiLifecycle:
    """Deprecation (RFC 9745), Sunset (RFC 8594) and migration ``Link`` headers.

    >>> from datetime import datetime, timezone
    >>> policy = ApiLifecycle(deprecated_at=datetime(2026, 1, 1, tzinfo=timezone.utc),
    ...                       sunset_at=datetime(2026, 7, 1, tzinfo=timezone.utc),
    ...                       link="https://api.example.com/docs/migrate-v2")
    >>> policy.headers
    [('Deprecation', '@1767225600'), ('Sunset', 'Wed, 01 Jul 2026 00:00:00 GMT'), \
('Link', '<https://api.example.com/docs/migrate-v2>; rel="deprecation"; type="text/html", \
<https://api.example.com/docs/migrate-v2>; rel="sunset"; type="text/html"')]
    """

    deprecated_at: datetime | None = None
    sunset_at: datetime | None = None
    link: str | None = None
    headers: list[tuple[str, str]] = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        if self.deprecated_at is None and self.sunset_at is None:
            raise ConfigurationError("give deprecated_at, sunset_at, or both")
        for value in (self.deprecated_at, self.sunset_at):
            if value is not None and (not isinstance(value, datetime) or value.tzinfo is None):
                raise ConfigurationError("lifecycle dates must be timezone-aware datetimes")
        if (
            self.deprecated_at is not None
            and self.sunset_at is not None
            and self.sunset_at < self.deprecated_at
        ):
            raise ConfigurationError("an endpoint cannot sunset before it is deprecated")
        if self.link is not None and (
            not isinstance(self.link, str)
            or not self.link.startswith(("https://", "http://", "/"))
            or re.search(r"[\s<>\"]", self.link)
        ):
            raise ConfigurationError("link must be an absolute URL or path without spaces")
        headers: list[tuple[str, str]] = []
        links: list[str] = []
        if self.deprecated_at is not None:
            headers.append(("Deprecation", f"@{int(self.deprecated_at.timestamp())}"))
            if self.link:
                links.append(f'<{self.link}>; rel="deprecation"; type="text/html"')
        if self.sunset_at is not None:
            sunset = format_datetime(self.sunset_at.astimezone(timezone.utc), usegmt=True)
            headers.append(("Sunset", sunset))
            if self.link:
                links.append(f'<{self.link}>; rel="sunset"; type="text/html"')
        if links:
            headers.append(("Link", ", ".join(links)))
        object.__setattr__(self, "headers", headers)


class RouteLifecycles:
    """Lifecycle headers per route prefix: the longest matching prefix wins.

    >>> from datetime import datetime, timezone
    >>> routes = RouteLifecycles({
    ...     "/v1/": ApiLifecycle(deprecated_at=datetime(2026, 1, 1, tzinfo=timezone.utc)),
    ... })
    >>> routes.headers_for("/v1/orders")
    [('Deprecation', '@1767225600')]
    >>> routes.headers_for("/v2/orders")
    []
    """

    def __init__(self, policies: Mapping[str, ApiLifecycle]) -> None:
        for prefix, policy in policies.items():
            if not isinstance(prefix, str) or not prefix.startswith("/"):
                raise ConfigurationError("route prefixes start with '/'")
            if not isinstance(policy, ApiLifecycle):
                raise ConfigurationError("each route maps to an ApiLifecycle")
        # Longest prefix first, so /v1/orders/ can differ from /v1/.
        self._policies = sorted(policies.items(), key=lambda item: len(item[0]), reverse=True)

    def headers_for(self, path: str) -> list[tuple[str, str]]:
        for prefix, policy in self._policies:
            if path.startswith(prefix):
                return list(policy.headers)
        return []
