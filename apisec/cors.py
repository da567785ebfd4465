"""CORS decisions by the Fetch standard, as a pure function adapters render.

>>> policy = CorsPolicy(["https://app.example.com"], allow_methods=["GET", "PUT"],
...                     allow_headers=["Content-Type"], allow_credentials=True)
>>> d = policy.decide("OPTIONS", "https://app.example.com", "PUT", "content-type")
>>> d.allowed, d.is_preflight
(True, True)
>>> dict(d.headers)["Access-Control-Allow-Origin"]
'https://app.example.com'
>>> policy.decide("GET", "https://app.example.com.evil.net").allowed
False

Origins are compared exactly as browsers serialize them (scheme, host,
port). ``allow_origin_regex`` must match the *whole* origin. Structured
wildcards such as ``https://*.example.com`` stand for exactly one DNS label.
``null`` is allowed only when listed, and never with credentials; ``*`` with
credentials is refused when the policy is built. Methods compare
case-sensitively, as Fetch does; requested header names compare
case-insensitively, and ``*`` never covers ``Authorization``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

import attrs

from apisec._fastpath import tuple_builder
from apisec.audit import AuditEvent, emit
from apisec.errors import ConfigurationError, PermissionDenied

__all__ = ["CorsDecision", "CorsPolicy", "CorsRejected"]

SAFELISTED_METHODS = frozenset({"GET", "HEAD", "POST"})
MAX_ORIGIN_LENGTH = 2048
MAX_REQUEST_HEADERS_LENGTH = 4096
MAX_REQUEST_HEADER_NAMES = 64
LONG_MAX_AGE = 7200  # Chromium's cap; longer values are silently cut to it

_TCHARS = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_TOKEN = re.compile(_TCHARS)
# The shape browsers send ("content-type,x-request-id"), with optional spaces.
_HEADER_LIST = re.compile(rf"{_TCHARS}(?:[ \t]*,[ \t]*{_TCHARS})*")
_DEFAULT_PORTS = {"http": "80", "https": "443"}
_ORIGIN = re.compile(r"([a-z][a-z0-9+.\-]*)://([a-z0-9\-._~]+|\[[0-9a-f:.]+\])(?::([0-9]{1,5}))?")
_WILDCARD = re.compile(
    r"([a-z][a-z0-9+.\-]*)://\*\.([a-z0-9\-]+(?:\.[a-z0-9\-]+)+)(?::([0-9]{1,5}))?"
)
_LABEL = r"[a-z0-9](?:[a-z0-9\-]{0,61}[a-z0-9])?"


class CorsDecision(NamedTuple):
    """What the policy says about one request (an immutable named tuple).

    Attributes:
        allowed: the origin (and, for a preflight, method and headers) passed.
        is_preflight: the request was an OPTIONS preflight.
        headers: the response headers to add, as ``(name, value)`` pairs.
        reason: why it was refused (``"origin_not_allowed"``,
            ``"method_not_allowed"``, ``"header_not_allowed"``,
            ``"invalid_origin"``, ``"invalid_request_headers"``,
            ``"private_network_not_allowed"``, ``"no_origin"``), else None.
    """

    allowed: bool
    is_preflight: bool
    headers: list[tuple[str, str]]
    reason: str | None = None


#: CorsDecision(...) by keyword at the cost of a positional build (apisec._fastpath).
_build_decision = tuple_builder(CorsDecision)
#: An allowed preflight's CorsDecision, from its headers.
_build_allowed_preflight = tuple_builder(CorsDecision, allowed=True, is_preflight=True, reason=None)


class CorsRejected(PermissionDenied):
    """A refused CORS preflight, as the adapters answer it: 403 with the reason code.

    The reason (``origin_not_allowed``, ``method_not_allowed``,
    ``header_not_allowed``...) helps a front-end developer; the policy itself
    (which origins are allowed) is never echoed.
    """

    slug = "cors-rejected"
    title = "CORS request refused"
    default_detail = "The cross-origin request is not allowed by this API's CORS policy."

    def __init__(self, reason: str) -> None:
        super().__init__(f"CORS preflight refused: {reason}", extensions={"reason": reason})


def _normalize_origin(origin: str) -> str:
    if origin == "null":
        return origin
    lowered = origin.lower()
    match = _ORIGIN.fullmatch(lowered)
    if match is None:
        raise ConfigurationError(
            f"{origin!r} is not a serialized origin like 'https://app.example.com'"
            " (no path, no trailing slash)"
        )
    scheme, host, port = match.groups()
    if port is not None and (not 0 < int(port) < 65536):
        raise ConfigurationError(f"{origin!r} has an invalid port")
    if port is None or _DEFAULT_PORTS.get(scheme) == port:
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def _wildcard_pattern(origin: str) -> re.Pattern[str]:
    match = _WILDCARD.fullmatch(origin.lower())
    if match is None:
        raise ConfigurationError(
            f"{origin!r}: wildcards are written 'https://*.example.com' — '*' as the whole"
            " leftmost label, with at least two labels after it"
        )
    scheme, domain, port = match.groups()
    if port is not None and _DEFAULT_PORTS.get(scheme) == port:
        port = None
    suffix = "" if port is None else f":{port}"
    return re.compile(re.escape(f"{scheme}://") + _LABEL + re.escape(f".{domain}{suffix}"))


def _tokens(values: Iterable[str], what: str) -> tuple[str, ...]:
    if isinstance(values, str):
        raise ConfigurationError(f"{what} must be a list of names, not one string")
    items = tuple(values)
    for item in items:
        if not isinstance(item, str) or (item != "*" and _TOKEN.fullmatch(item) is None):
            raise ConfigurationError(f"{what}: {item!r} is not a valid HTTP token")
    return items


def _methods(values: Iterable[str]) -> tuple[str, ...]:
    return _tokens(values, "allow_methods")


def _headers(values: Iterable[str]) -> tuple[str, ...]:
    return _tokens(values, "allow_headers")


def _exposed(values: Iterable[str]) -> tuple[str, ...]:
    return _tokens(values, "expose_headers")


def _origins(values: Iterable[str]) -> tuple[str, ...]:
    if isinstance(values, str):
        raise ConfigurationError("allow_origins must be a list of origins, not one string")
    return tuple(values)


# Validators: one rule each, run when the policy is built.


def _check_bool(_: object, attribute: attrs.Attribute[bool], value: object) -> None:
    if not isinstance(value, bool):
        raise ConfigurationError(f"{attribute.name} must be a bool")


def _check_max_age(_: object, __: attrs.Attribute[Any], value: object) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        raise ConfigurationError("max_age must be a non-negative int or None")


def _check_no_wildcard_with_credentials(
    policy: CorsPolicy, attribute: attrs.Attribute[tuple[str, ...]], values: tuple[str, ...]
) -> None:
    if policy.allow_credentials is True and "*" in values:
        raise ConfigurationError(
            f"'*' in {attribute.name} is a literal name, not a wildcard, when credentials are"
            " allowed; list the names"
        )


class _Origins(NamedTuple):
    any: bool
    exact: frozenset[str]
    patterns: tuple[re.Pattern[str], ...]


def _parse_origins(origins: tuple[str, ...], regex: str | None, credentials: bool) -> _Origins:
    """The allowed origins in matching form; refuses the unsafe combinations."""
    exact: set[str] = set()
    patterns: list[re.Pattern[str]] = []
    any_origin = False
    for origin in origins:
        if not isinstance(origin, str):
            raise ConfigurationError("allow_origins must hold strings")
        if origin == "*":
            any_origin = True
        elif "*" in origin:
            patterns.append(_wildcard_pattern(origin))
        else:
            exact.add(_normalize_origin(origin))
    if regex is not None:
        try:
            patterns.append(re.compile(regex))
        except re.error as exc:
            raise ConfigurationError(f"allow_origin_regex does not compile: {exc}") from exc
    if not (any_origin or exact or patterns):
        raise ConfigurationError("a CORS policy needs at least one allowed origin")
    if credentials and any_origin:
        raise ConfigurationError(
            "allow_origins=['*'] with allow_credentials=True would let every site read"
            " authenticated responses; list the origins instead"
        )
    if credentials and "null" in exact:
        raise ConfigurationError(
            "the 'null' origin (sandboxed iframes, file: pages, some redirects) cannot be"
            " trusted with credentials"
        )
    if any_origin and (exact or patterns):
        raise ConfigurationError("'*' already allows every origin; list nothing else")
    return _Origins(any=any_origin, exact=frozenset(exact), patterns=tuple(patterns))


@attrs.frozen
class _Compiled:
    """What :meth:`CorsPolicy.decide` reads: the policy, precomputed once."""

    any_origin: bool
    exact: frozenset[str]
    patterns: tuple[re.Pattern[str], ...]
    methods: frozenset[str]
    any_method: bool
    header_names: frozenset[str]
    any_header: bool
    simple_allowed: tuple[tuple[str, str], ...]
    preflight_allowed: tuple[tuple[str, str], ...]
    vary_simple: tuple[tuple[str, str], ...]
    vary_preflight: tuple[tuple[str, str], ...]
    #: Methods a preflight may name, safelisted ones included: each a valid token.
    preflight_methods: frozenset[str]
    #: What follows Access-Control-Allow-Origin in an allowed preflight without PNA.
    preflight_tail: tuple[tuple[str, str], ...]


def _compile(policy: CorsPolicy) -> _Compiled:
    """The precomputed form of a policy whose fields passed their validators."""
    origins = _parse_origins(
        policy.allow_origins, policy.allow_origin_regex, policy.allow_credentials
    )
    common: list[tuple[str, str]] = []
    if policy.allow_credentials:
        common.append(("Access-Control-Allow-Credentials", "true"))
    simple = list(common)
    if policy.expose_headers:
        simple.append(("Access-Control-Expose-Headers", ", ".join(policy.expose_headers)))
    preflight = list(common)
    preflight.append(("Access-Control-Allow-Methods", ", ".join(policy.allow_methods)))
    if policy.allow_headers:
        preflight.append(("Access-Control-Allow-Headers", ", ".join(policy.allow_headers)))
    if policy.max_age is not None:
        preflight.append(("Access-Control-Max-Age", str(policy.max_age)))
    request_names = "Access-Control-Request-Method, Access-Control-Request-Headers"
    if policy.allow_private_network:
        request_names += ", Access-Control-Request-Private-Network"
    methods = frozenset(m for m in policy.allow_methods if m != "*")
    vary_preflight = (("Vary", request_names if origins.any else "Origin, " + request_names),)
    return _Compiled(
        any_origin=origins.any,
        exact=origins.exact,
        patterns=origins.patterns,
        methods=methods,
        any_method="*" in policy.allow_methods,
        header_names=frozenset(h.lower() for h in policy.allow_headers if h != "*"),
        any_header="*" in policy.allow_headers,
        simple_allowed=tuple(simple),
        preflight_allowed=tuple(preflight),
        # With '*' (and no credentials) the answer never depends on the origin.
        vary_simple=() if origins.any else (("Vary", "Origin"),),
        vary_preflight=vary_preflight,
        preflight_methods=methods | SAFELISTED_METHODS,
        preflight_tail=(*preflight, *vary_preflight),
    )


@attrs.frozen
class CorsPolicy:
    """A CORS policy, validated and precomputed when built.

    Args:
        allow_origins: exact origins (``"https://app.example.com"``),
            structured wildcards (``"https://*.example.com"``), ``"*"`` for
            any origin (not with credentials) or ``"null"`` (explicit opt-in,
            not with credentials).
        allow_methods: methods a preflight may ask for (case-sensitive);
            GET, HEAD and POST never need a preflight approval.
        allow_headers: request header names allowed (case-insensitive), or
            ``"*"`` (without credentials; never covers ``Authorization``).
        expose_headers: response headers scripts may read; ``"*"`` only
            without credentials.
        allow_credentials: allow cookies / HTTP auth on cross-origin requests.
        max_age: preflight cache lifetime in seconds (None omits the header).
        allow_origin_regex: a regex that must match the *whole* origin.
        allow_private_network: answer Private Network Access preflights.
    """

    allow_origins: tuple[str, ...] = attrs.field(converter=_origins)
    allow_methods: tuple[str, ...] = attrs.field(
        default=("GET", "HEAD", "POST"),
        kw_only=True,
        converter=_methods,
        validator=_check_no_wildcard_with_credentials,
    )
    allow_headers: tuple[str, ...] = attrs.field(
        default=(), kw_only=True, converter=_headers, validator=_check_no_wildcard_with_credentials
    )
    expose_headers: tuple[str, ...] = attrs.field(
        default=(), kw_only=True, converter=_exposed, validator=_check_no_wildcard_with_credentials
    )
    allow_credentials: bool = attrs.field(default=False, kw_only=True, validator=_check_bool)
    max_age: int | None = attrs.field(default=600, kw_only=True, validator=_check_max_age)
    allow_origin_regex: str | None = attrs.field(default=None, kw_only=True)
    allow_private_network: bool = attrs.field(default=False, kw_only=True, validator=_check_bool)

    _compiled: _Compiled = attrs.field(init=False, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        # After the field validators; the origins are checked as they are compiled.
        object.__setattr__(self, "_compiled", _compile(self))

    def origin_allowed(self, origin: str) -> bool:
        """Whether ``origin`` (the request's ``Origin`` value) is allowed."""
        compiled = self._compiled
        if compiled.any_origin:
            return True
        if origin in compiled.exact:
            return True
        if origin == "null" or len(origin) > MAX_ORIGIN_LENGTH:
            return False
        return any(pattern.fullmatch(origin) for pattern in compiled.patterns)

    def decide(
        self,
        method: str,
        origin: str | None,
        access_control_request_method: str | None = None,
        access_control_request_headers: str | None = None,
        *,
        access_control_request_private_network: str | None = None,
    ) -> CorsDecision:
        """Decide one request from its method and CORS request headers.

        A preflight is ``OPTIONS`` carrying both ``Origin`` and
        ``Access-Control-Request-Method``; anything else with an ``Origin`` is
        an actual request. Never raises on header values.
        """
        compiled = self._compiled
        is_preflight = (
            method == "OPTIONS" and origin is not None and access_control_request_method is not None
        )
        vary = compiled.vary_preflight if is_preflight else compiled.vary_simple
        if origin is None:
            return _build_decision(
                allowed=False,
                is_preflight=False,
                headers=list(compiled.vary_simple),
                reason="no_origin",
            )
        if not isinstance(origin, str) or not origin.isascii() or len(origin) > MAX_ORIGIN_LENGTH:
            return _refused(is_preflight, vary, "invalid_origin", origin)
        if origin not in compiled.exact and not self.origin_allowed(origin):
            return _refused(is_preflight, vary, "origin_not_allowed", origin)
        allow_origin = "*" if compiled.any_origin else origin
        if not is_preflight:
            headers = [
                ("Access-Control-Allow-Origin", allow_origin),
                *compiled.simple_allowed,
                *vary,
            ]
            return _build_decision(allowed=True, is_preflight=False, headers=headers)

        # What browsers send: a listed method, listed header names and nothing else. Such
        # a preflight passes every check of _preflight_refusal, which is skipped for it.
        names = access_control_request_headers
        listed = (
            type(access_control_request_method) is str
            and access_control_request_method in compiled.preflight_methods
            and access_control_request_private_network is None
            and (not names or _listed_names_only(compiled.header_names, names))
        )
        if not listed:
            refusal = self._preflight_refusal(
                access_control_request_method,
                access_control_request_headers,
                access_control_request_private_network,
            )
            if refusal is not None:
                return _refused(True, vary, refusal, origin)
        if listed or not (
            self.allow_private_network and _is_true(access_control_request_private_network)
        ):
            headers = [("Access-Control-Allow-Origin", allow_origin), *compiled.preflight_tail]
        else:
            headers = [
                ("Access-Control-Allow-Origin", allow_origin),
                *compiled.preflight_allowed,
                ("Access-Control-Allow-Private-Network", "true"),
                *vary,
            ]
        return _build_allowed_preflight(headers=headers)

    def _preflight_refusal(
        self, method: str | None, header_list: str | None, private_network: str | None
    ) -> str | None:
        compiled = self._compiled
        if not isinstance(method, str) or _TOKEN.fullmatch(method) is None:
            return "method_not_allowed"
        if not (
            method in compiled.methods
            or method in SAFELISTED_METHODS
            or (compiled.any_method and not self.allow_credentials)
        ):
            return "method_not_allowed"
        if header_list:
            names = _parse_header_names(header_list)
            if names is None:
                return "invalid_request_headers"
            if compiled.header_names.issuperset(names):
                names = ()
            for name in names:
                if name in compiled.header_names:
                    continue
                if compiled.any_header and name != "authorization":
                    continue
                return "header_not_allowed"
        if _is_true(private_network) and not self.allow_private_network:
            return "private_network_not_allowed"
        return None

    def lint(self) -> list[str]:
        """Warnings about risky but legal settings (for startup logs or CI)."""
        warnings: list[str] = []
        exact = self._compiled.exact
        schemes = {origin.split("://", 1)[0] for origin in exact if "://" in origin}
        if "http" in schemes and "https" in schemes:
            warnings.append(
                "both http: and https: origins are allowed; a network attacker can act as the"
                " http: one"
            )
        regex = self.allow_origin_regex
        if regex is not None and re.search(r"(?<!\\)\.(?![*+?{])", regex.replace("\\\\", "")):
            warnings.append(
                f"allow_origin_regex {regex!r} has an unescaped '.', which matches any character"
            )
        if self.max_age is not None and self.max_age > LONG_MAX_AGE:
            warnings.append(
                f"max_age={self.max_age} exceeds what Chromium honours ({LONG_MAX_AGE}s) and keeps"
                " a revoked origin cached for long"
            )
        if "null" in exact:
            warnings.append("the 'null' origin is shared by every sandboxed iframe and file: page")
        return warnings


def _refused(
    is_preflight: bool, vary: tuple[tuple[str, str], ...], reason: str, origin: object
) -> CorsDecision:
    # Reported for the security log; the origin is cleaned (and cut) by the audit module.
    emit(AuditEvent.CORS_REJECTED, reason=reason, origin=origin, preflight=is_preflight)
    return _build_decision(
        allowed=False, is_preflight=is_preflight, headers=list(vary), reason=reason
    )


def _is_true(value: str | None) -> bool:
    return isinstance(value, str) and value.strip().lower() == "true"


def _listed_names_only(listed: frozenset[str], value: str | None) -> bool:
    """Whether ``Access-Control-Request-Headers`` is absent or names listed headers only,
    comma-separated as browsers write it (``content-type,x-request-id``; ``", "`` too).

    False means "decide it the general way" (``_parse_header_names``), never a refusal.
    A listed name is a valid token, so a list of them needs no pattern; ASCII only,
    since ``str.lower`` maps some non-ASCII letters onto ASCII ones.
    """
    if value is None or value == "":
        return True
    if type(value) is not str or len(value) > MAX_REQUEST_HEADERS_LENGTH or not value.isascii():
        return False
    names = value.lower().replace(", ", ",").split(",")
    return len(names) <= MAX_REQUEST_HEADER_NAMES and listed.issuperset(names)


def _parse_header_names(value: str) -> Sequence[str] | None:
    """Lower-case names from ``Access-Control-Request-Headers``, or None if malformed."""
    if not isinstance(value, str) or len(value) > MAX_REQUEST_HEADERS_LENGTH:
        return None
    stripped = value.strip(" \t")
    if _HEADER_LIST.fullmatch(stripped):
        fast = stripped.lower().replace(" ", "").replace("\t", "").split(",")
        return fast if len(fast) <= MAX_REQUEST_HEADER_NAMES else None
    names = []
    for part in value.split(","):
        name = part.strip(" \t")
        if not name:
            continue  # tolerate empty list elements, as RFC 9110 asks
        if _TOKEN.fullmatch(name) is None:
            return None
        names.append(name.lower())
    if len(names) > MAX_REQUEST_HEADER_NAMES:
        return None
    return names
