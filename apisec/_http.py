"""What the ASGI and WSGI adapters share: request parsing and response rendering.

Nothing here knows about ASGI or WSGI. Headers arrive as the list of values
one field had in the request (so a repeated field is visible), paths as the
text the application routes on, and responses leave as ``(status, headers,
body)``.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import AnyStr, Generic, TypeVar
from urllib.parse import unquote_plus

from apisec.errors import ApiSecError, ClientError, ConfigurationError
from apisec.problems import Problem

__all__ = [
    "HttpsRequired",
    "InvalidRequest",
    "PathRules",
    "RequestView",
    "bearer_token",
    "merge_vary",
    "normalize_path",
    "render_problem",
]

T = TypeVar("T")
Headers = list[tuple[str, str]]

#: Longest credential header value considered at all (the token parser caps at 8 KiB too).
MAX_CREDENTIAL_LENGTH = 8192
_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
_METHOD = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_PROBLEM_TYPE = Problem.media_type
# Headers of an error response that describe its old body, dropped when it is replaced.
_BODY_HEADERS = frozenset(
    {
        "content-type",
        "content-length",
        "content-encoding",
        "content-language",
        "content-range",
        "transfer-encoding",
        "etag",
        "last-modified",
    }
)


class InvalidRequest(ClientError):
    """The request is malformed in a way the security layer must refuse (400).

    A repeated ``Authorization`` or API-key header, a token in the query
    string, a malformed ``Authorization`` value: never "first one wins".
    """

    status = 400
    slug = "invalid-request"
    title = "Invalid request"
    default_detail = "The request is malformed."


class HttpsRequired(ClientError):
    """A plain-HTTP request that cannot be redirected (not GET/HEAD, or no usable host)."""

    status = 403
    slug = "https-required"
    title = "HTTPS required"
    default_detail = "This API is served over HTTPS only."


_HOST = re.compile(
    r"(?:(?P<name>[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?)"
    r"|\[(?P<v6>[0-9A-Fa-f:.]+)\])(?::(?P<port>\d{1,5}))?"
)
_PATH_CHARS = re.compile(r"/[A-Za-z0-9\-._~%!$&'()*+,;=:@/]*")
_QUERY_CHARS = re.compile(r"[A-Za-z0-9\-._~%!$&'()*+,;=:@/?]*")


def https_location(host: str, port: int | None, path: str, query: str) -> str | None:
    """The ``https`` URL for a redirect, or None when the host or path is unusable.

    >>> https_location("api.example.com:80", None, "/v1/x", "a=1")
    'https://api.example.com/v1/x?a=1'
    >>> https_location("evil.com/@x", None, "/", "") is None
    True
    """
    match = _HOST.fullmatch(host.strip())
    if match is None or len(host) > 255:
        return None
    name = match.group("name") or f"[{match.group('v6')}]"
    if match.group("v6") is not None:
        try:
            ipaddress.IPv6Address(match.group("v6"))
        except ValueError:
            return None
    if _PATH_CHARS.fullmatch(path) is None or path.startswith("//"):
        return None  # "//evil.com" would be read as another host
    if _QUERY_CHARS.fullmatch(query) is None:
        return None
    authority = name if port in (None, 443) else f"{name}:{port}"
    return f"https://{authority}{path}" + (f"?{query}" if query else "")


def check_limit(value: object) -> int:
    """A body limit: a positive int of bytes, or ``ConfigurationError``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError("body limits are positive numbers of bytes")
    return value


def declared_length(values: Sequence[str]) -> int | None:
    """The request's ``Content-Length``, None when absent; 400 when malformed or conflicting."""
    if not values:
        return None
    parts = {part.strip(" \t") for value in values for part in value.split(",")}
    if len(parts) != 1:
        raise InvalidRequest("conflicting Content-Length values")
    (text,) = parts
    if not text.isdigit() or not text.isascii() or len(text) > 19:
        raise InvalidRequest("malformed Content-Length")
    return int(text)


def check_https_options(host: str | None, https_port: int | None) -> None:
    """Validate HTTPSRedirectMiddleware's options at construction."""
    if https_port is not None and (
        isinstance(https_port, bool)
        or not isinstance(https_port, int)
        or not 0 < https_port < 65536
    ):
        raise ConfigurationError("https_port must be a port number")
    if host is not None and (
        not isinstance(host, str) or https_location(host, None, "/", "") is None
    ):
        raise ConfigurationError("host must be a host name or address")


def bearer_challenge(realm: str, error: str | None = None, scope: str | None = None) -> str:
    """A ``WWW-Authenticate`` challenge for bearer tokens (RFC 6750 section 3)."""
    params = [f'realm="{realm}"']
    if error is not None:
        params.append(f'error="{error}"')
    if scope is not None:
        params.append(f'scope="{scope}"')
    return "Bearer " + ", ".join(params)


def api_key_challenge(realm: str, header: str) -> str:
    """The ``WWW-Authenticate`` challenge for API keys (no registered scheme exists)."""
    return f'ApiKey realm="{realm}", header="{header}"'


def bearer_token(values: Sequence[str]) -> str | None:
    """The token of a ``Bearer`` credential, None if there is no such credential.

    ``values`` are every ``Authorization`` field of the request. The scheme
    compares case-insensitively (RFC 9110 section 11.1), exactly one space
    separates it from a ``b64token`` (RFC 6750 section 2.1). Another scheme
    (``Basic``) is no bearer credential. Raises :class:`InvalidRequest` for a
    repeated field or a malformed value.
    """
    if not values:
        return None
    if len(values) > 1:
        raise InvalidRequest("repeated Authorization header")
    value = values[0]
    if len(value) > MAX_CREDENTIAL_LENGTH:
        raise InvalidRequest("Authorization header too long")
    scheme, space, token = value.strip(" \t").partition(" ")
    if scheme.lower() != "bearer":
        if "," in value:  # a WSGI server's join of two fields
            raise InvalidRequest("repeated Authorization header")
        return None
    if not space or _B64TOKEN.fullmatch(token) is None:
        raise InvalidRequest("malformed bearer credential")
    return token


def single_value(values: Sequence[str], name: str) -> str | None:
    """The one value of a credential header; None when absent; 400 when repeated or odd."""
    if not values:
        return None
    if len(values) > 1:
        raise InvalidRequest(f"repeated {name} header")
    value = values[0].strip(" \t")
    if not value or len(value) > MAX_CREDENTIAL_LENGTH or not value.isascii():
        raise InvalidRequest(f"malformed {name} header")
    if "," in value or " " in value:  # two fields joined by a WSGI server, or junk
        raise InvalidRequest(f"malformed {name} header")
    return value


def query_has(query: str, names: Iterable[str]) -> bool:
    """Whether the raw query string carries any parameter named in ``names``."""
    if not query:
        return False
    wanted = set(names)
    for part in query.split("&"):
        name = part.split("=", 1)[0]
        if name in wanted or unquote_plus(name) in wanted:
            return True
    return False


def normalize_path(path: str) -> str:
    """The path with ``;`` parameters dropped, empty and dot segments resolved.

    ``path`` is the percent-decoded path the application routes on.

    >>> normalize_path("/a/./b/../c;v=1//d/")
    '/a/c/d/'
    """
    trailing = path.endswith("/") and path != "/"
    out: list[str] = []
    for raw in path.split("/"):
        segment = raw.split(";", 1)[0]
        if segment in ("", "."):
            continue
        if segment == "..":
            if out:
                out.pop()
            continue
        out.append(segment)
    result = "/" + "/".join(out)
    return result + "/" if trailing and out else result


def _rule_key(key: str) -> tuple[str | None, str]:
    method, space, prefix = key.partition(" ")
    if not space:
        method, prefix = None, key  # type: ignore[assignment]
    elif _METHOD.fullmatch(method) is None:
        raise ConfigurationError(f"bad method in rule {key!r}")
    else:
        method = method.upper()
    if not isinstance(prefix, str) or not prefix.startswith("/") or "?" in prefix:
        raise ConfigurationError(f"rule {key!r} must be a path prefix starting with '/'")
    if prefix != normalize_path(prefix):
        raise ConfigurationError(f"rule {key!r} must be a normalized path")
    if "%" in prefix:  # it would never match: requests are matched decoded
        raise ConfigurationError(f"rule {key!r} must be a decoded path ('/café', not '%C3%A9')")
    return method, prefix.rstrip("/") or "/"


def _under(path: str, prefix: str) -> bool:
    """Whether ``path`` is ``prefix`` or below it, by whole segments."""
    if prefix == "/":
        return True
    return path == prefix or path.startswith(prefix + "/") or path == prefix + "/"


class PathRules(Generic[T]):
    """Values attached to path prefixes, optionally per method; longest prefix wins.

    Keys are ``"/prefix"`` or ``"METHOD /prefix"``. A prefix covers itself
    and everything below it by whole segments: ``/health`` covers
    ``/health/live`` but never ``/healthz``. Methods compare upper-cased
    (Werkzeug and Django route ``post`` to POST views), and a ``GET`` rule
    also covers ``HEAD`` (routers answer HEAD with the GET handler).

    >>> rules = PathRules({"/orders": "read", "POST /orders": "write"})
    >>> rules.match("GET", "/orders/7"), rules.match("POST", "/orders"), rules.match("GET", "/x")
    ('read', 'write', None)
    """

    __slots__ = ("_rules",)

    def __init__(self, rules: Mapping[str, T] | Iterable[str] | None = None) -> None:
        parsed: list[tuple[str | None, str, T]] = []
        if rules is None:
            rules = {}
        if isinstance(rules, str):
            raise ConfigurationError("give a list of paths, not one string")
        items = rules.items() if isinstance(rules, Mapping) else ((k, True) for k in rules)
        for key, value in items:
            if not isinstance(key, str):
                raise ConfigurationError("path rules are keyed by strings")
            method, prefix = _rule_key(key)
            parsed.append((method, prefix, value))  # type: ignore[arg-type]
        # Longest prefix first; a method-specific rule before a general one of equal length.
        parsed.sort(key=lambda rule: (len(rule[1]), rule[0] is not None), reverse=True)
        self._rules = tuple(parsed)

    def __bool__(self) -> bool:
        return bool(self._rules)

    def match(self, method: str, path: str) -> T | None:
        """The value of the most specific rule covering ``method path``, or None."""
        method = method.upper()
        head = method == "HEAD"
        for rule_method, prefix, value in self._rules:
            if (
                rule_method is None or rule_method == method or (head and rule_method == "GET")
            ) and _under(path, prefix):
                return value
        return None

    def match_strict(self, method: str, path: str) -> T | None:
        """A rule that covers the path both as sent and normalized (for exemptions).

        A path a router could read another way (dot segments, ``;``
        parameters, doubled slashes) is only exempt when both readings are.
        """
        value = self.match(method, path)
        if value is None:
            return None
        normalized = normalize_path(path)
        if normalized == path:
            return value
        other = self.match(method, normalized)
        return value if other == value else None

    def match_all(self, method: str, path: str) -> list[T]:
        """Values covering the path as sent and normalized (for requirements: all apply)."""
        found = []
        first = self.match(method, path)
        if first is not None:
            found.append(first)
        normalized = normalize_path(path)
        if normalized != path:
            second = self.match(method, normalized)
            if second is not None and second != first:
                found.append(second)
        return found


class RequestView:
    """What a key or cost function sees of a request, for ASGI and WSGI alike."""

    __slots__ = ("_get", "client", "method", "path", "principal")

    def __init__(
        self,
        method: str,
        path: str,
        client: str | None,
        principal: object,
        get: Callable[[str], list[str]],
    ) -> None:
        self.method = method
        self.path = path
        self.client = client
        self.principal = principal
        self._get = get

    def header(self, name: str) -> str | None:
        """The value of a header sent exactly once, else None."""
        values = self._get(name.lower())
        return values[0] if len(values) == 1 else None


def merge_vary(values: Sequence[str]) -> str:
    """One ``Vary`` value holding every field name once (case-insensitively).

    >>> merge_vary(["Accept-Encoding, origin", "Origin, Access-Control-Request-Method"])
    'Accept-Encoding, origin, Access-Control-Request-Method'
    """
    names: list[str] = []
    seen: set[str] = set()
    for value in values:
        for part in value.split(","):
            name = part.strip(" \t")
            if name and name.lower() not in seen:
                seen.add(name.lower())
                names.append(name)
    if "*" in seen:
        return "*"
    return ", ".join(names)


def add_missing(
    existing: Iterable[tuple[AnyStr, AnyStr]],
    added: Sequence[tuple[AnyStr, AnyStr]],
    remove: frozenset[AnyStr],
) -> list[tuple[AnyStr, AnyStr]]:
    """The response's headers minus ``remove``, plus each of ``added`` it does not set itself.

    Names in ``added`` and ``remove`` are lower-case.
    """
    present = set()
    merged = []
    for name, value in existing:
        lowered = name.lower()
        if lowered in remove:
            continue
        present.add(lowered)
        merged.append((name, value))
    merged.extend(header for header in added if header[0] not in present)
    return merged


def replace_headers(
    existing: Iterable[tuple[AnyStr, AnyStr]], added: Sequence[tuple[AnyStr, AnyStr]]
) -> list[tuple[AnyStr, AnyStr]]:
    """The response's headers with those named in ``added`` (lower-case) replaced."""
    names = {name for name, _ in added}
    return [h for h in existing if h[0].lower() not in names] + list(added)


def merge_rate_headers(
    existing: Iterable[tuple[AnyStr, AnyStr]], added: Sequence[tuple[AnyStr, AnyStr]]
) -> list[tuple[AnyStr, AnyStr]]:
    """A limiter's fields (``added``) on a response, unless an inner limiter's are tighter.

    Stacked limiters (per client outside, per principal inside) each describe
    the response; the client is told about the one that runs out first, and
    an inner 429 keeps its own fields.
    """
    kept = list(existing)
    inner, ours = _remaining(kept), _remaining(added)
    if inner is not None and ours is not None and inner <= ours:
        return kept
    return replace_headers(kept, added)


def _remaining(headers: Iterable[tuple[AnyStr, AnyStr]]) -> int | None:
    for name, value in headers:
        text = name.decode("latin-1") if isinstance(name, bytes) else name
        if text.lower() == "x-ratelimit-remaining":
            number = value.decode("latin-1") if isinstance(value, bytes) else value
            return int(number) if number.isdigit() and len(number) < 19 else None
    return None


def split_vary(
    headers: Iterable[tuple[AnyStr, AnyStr]],
    *,
    vary: AnyStr,
    join: Callable[[list[AnyStr]], AnyStr],
) -> tuple[list[tuple[AnyStr, AnyStr]], AnyStr | None]:
    """CORS headers (lower-case names) apart from their ``Vary``, which is merged into one value.

    Done once per decision, so :func:`replace_cors` merges every response cheaply.
    """
    fields = [(name.lower(), value) for name, value in headers if name.lower() != vary]
    varies = [value for name, value in headers if name.lower() == vary]
    if not varies:
        return fields, None
    return fields, varies[0] if len(varies) == 1 else join(varies)


def replace_cors(
    existing: Iterable[tuple[AnyStr, AnyStr]],
    cors: tuple[list[tuple[AnyStr, AnyStr]], AnyStr | None],
    *,
    vary: AnyStr,
    prefix: AnyStr,
    join: Callable[[list[AnyStr]], AnyStr],
) -> list[tuple[AnyStr, AnyStr]]:
    """The app's headers without its own ``Access-Control-*``, plus ours, ``Vary`` merged once.

    ``cors`` comes from :func:`split_vary`; ``vary`` and ``prefix`` are
    ``vary`` and ``access-control-`` in the headers' own type (bytes for
    ASGI, str for WSGI); ``join`` merges several ``Vary`` values into one.
    """
    merged = []
    varies = []
    for name, value in existing:
        lowered = name.lower()
        if lowered == vary:
            varies.append(value)
        elif not lowered.startswith(prefix):
            merged.append((name, value))
    fields, cors_vary = cors
    merged.extend(fields)
    if cors_vary is not None:
        varies.append(cors_vary)
    if varies:
        merged.append((vary, varies[0] if len(varies) == 1 else join(varies)))
    return merged


def merge_vary_bytes(values: list[bytes]) -> bytes:
    """:func:`merge_vary` for raw ASGI header values."""
    return merge_vary([value.decode("latin-1") for value in values]).encode("latin-1")


def render_problem(
    error: ApiSecError,
    *,
    type_base: str | None = None,
    head: bool = False,
    instance: str | None = None,
    extra: Sequence[tuple[str, str]] = (),
) -> tuple[int, Headers, bytes]:
    """A complete problem+json response for ``error``: status, headers and body.

    The error's own headers (``WWW-Authenticate``, ``Retry-After``,
    rate-limit fields) come along, except those named in ``extra`` (a
    middleware's own challenge), which replace them. The body is never
    cached. For ``HEAD`` the body is empty and ``Content-Length`` still
    tells its size.
    """
    body = error.to_problem(type_base=type_base, instance=instance).to_json()
    headers: Headers = [
        ("Content-Type", _PROBLEM_TYPE),
        ("Content-Length", str(len(body))),
        ("Cache-Control", "no-store"),
    ]
    if extra:
        replaced = {name.lower() for name, _ in extra}
        headers.extend(h for h in error.headers if h[0].lower() not in replaced)
        headers.extend(extra)
    else:
        headers.extend(error.headers)
    return error.status, headers, b"" if head else body


def render_status_problem(
    status: int,
    kept: Headers,
    *,
    type_base: str | None = None,
    head: bool = False,
    instance: str | None = None,
    detail: str | None = None,
) -> tuple[int, Headers, bytes]:
    """A problem for an error response the application produced in another format.

    ``kept`` are the original headers; those describing the old body are
    dropped, the rest (``Allow``, ``WWW-Authenticate``, ``Retry-After``,
    cookies...) stay. ``detail`` is dropped for 5xx statuses.
    """
    problem = Problem(
        status=status,
        type="about:blank" if type_base is None else f"{type_base}http-{status}",
        instance=instance,
        detail=detail if status < 500 else None,
    )
    body = problem.to_json()
    headers: Headers = [(n, v) for n, v in kept if n.lower() not in _BODY_HEADERS]
    headers.append(("Content-Type", _PROBLEM_TYPE))
    headers.append(("Content-Length", str(len(body))))
    return status, headers, b"" if head else body


def is_problem_or_json(content_type: str | None) -> bool:
    """Whether a response body is JSON already (left as it is by problem rewriting)."""
    if not content_type:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or media.endswith("+json")
