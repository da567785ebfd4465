"""WSGI plumbing shared by the middleware: headers, client, responses."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from apisec._http import Headers, render_problem
from apisec._types import Environ, ExcInfo, StartResponse
from apisec.clientaddr import TrustedProxies
from apisec.errors import ApiSecError
from apisec.problems import reason_phrase

#: Where ProblemDetailsMiddleware leaves its problem ``type`` base for inner middleware.
TYPE_BASE_KEY = "apisec.type_base"
_CLIENT_KEY = "apisec.client"
_UNPREFIXED = {"content-type": "CONTENT_TYPE", "content-length": "CONTENT_LENGTH"}


def header_values(environ: Environ, name: str) -> list[str]:
    """The value of one request header (lower-case ``name``) as a one-item list, or [].

    WSGI servers join repeated fields with commas (PEP 3333), so a repeat
    shows as a comma inside the value; credential parsers refuse those.
    """
    unprefixed = _UNPREFIXED.get(name)
    key = unprefixed or "HTTP_" + name.upper().replace("-", "_")
    value = environ.get(key)
    if value is None or (unprefixed and value == ""):
        return []  # PEP 3333: CONTENT_TYPE/CONTENT_LENGTH "may be empty or absent" (wsgiref)
    return [value]


def getter(environ: Environ) -> Callable[[str], list[str]]:
    """A header lookup bound to one request."""
    return lambda name: header_values(environ, name)


def path_of(environ: Environ) -> str:
    """The path the application routes on (``PATH_INFO``, read as UTF-8 like Werkzeug)."""
    raw: str = environ.get("PATH_INFO") or "/"
    try:
        return raw.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return raw


def client_of(environ: Environ, proxies: TrustedProxies) -> str | None:
    """The request's client address (canonical), through the trusted-proxy setting."""
    cached = environ.get(_CLIENT_KEY)
    if cached is not None and cached[0] is proxies:
        result: str | None = cached[1]
        return result
    peer = environ.get("REMOTE_ADDR")
    if proxies.enabled:
        client = proxies.client(
            peer,
            forwarded_for=header_values(environ, "x-forwarded-for"),
            forwarded=header_values(environ, "forwarded"),
        )
    else:
        client = proxies.client(peer)
    environ[_CLIENT_KEY] = (proxies, client)
    return client


def status_line(status: int) -> str:
    return f"{status} {reason_phrase(status)}"


def respond(
    start_response: StartResponse,
    status: int,
    headers: Headers,
    body: bytes,
    exc_info: ExcInfo | None = None,
) -> list[bytes]:
    """Start one complete response and return its body iterable."""
    start_response(status_line(status), headers, exc_info)
    return [body]


def problem_response(
    environ: Environ,
    start_response: StartResponse,
    error: ApiSecError,
    extra: Sequence[tuple[str, str]] = (),
    exc_info: ExcInfo | None = None,
) -> list[bytes]:
    """Render ``error`` as a complete problem+json response, in place."""
    status, headers, body = render_problem(
        error,
        type_base=environ.get(TYPE_BASE_KEY),
        head=environ.get("REQUEST_METHOD") == "HEAD",
        extra=extra,
    )
    return respond(start_response, status, headers, body, exc_info)


def closing(result: Iterable[bytes]) -> Callable[[], None]:
    """The ``close`` of an app's body iterable (a no-op when it has none)."""
    close = getattr(result, "close", None)
    return close if callable(close) else _nothing


def _nothing() -> None:
    return None
