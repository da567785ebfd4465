"""ASGI plumbing shared by the middleware: headers, client, responses."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from apisec._http import Headers, render_problem
from apisec._types import Message, Scope, Send
from apisec.clientaddr import TrustedProxies
from apisec.errors import ApiSecError

#: Where ProblemDetailsMiddleware leaves its problem ``type`` base for inner middleware.
TYPE_BASE_KEY = "apisec.type_base"
_CLIENT_KEY = "apisec.client"
RawHeaders = list[tuple[bytes, bytes]]


def header_values(scope: Scope, name: str) -> list[str]:
    """Every value of one request header (lower-case ``name``), decoded as Latin-1."""
    wanted = name.encode("latin-1")
    return [
        value.decode("latin-1")
        for key, value in scope.get("headers") or ()
        if key.lower() == wanted
    ]


def route_path(scope: Scope) -> str:
    """The path the application routes on: ``path`` below ``root_path``.

    ASGI ``path`` includes ``root_path`` (a mount, ``uvicorn --root-path``);
    Starlette and Django route on what follows it, like WSGI's ``PATH_INFO``.
    Path rules are written against this path.
    """
    path: str = scope["path"]
    root: str = scope.get("root_path") or ""
    if root and path.startswith(root) and path[len(root) : len(root) + 1] in ("", "/"):
        return path[len(root) :] or "/"
    return path


def getter(scope: Scope) -> Callable[[str], list[str]]:
    """A header lookup bound to one request."""
    return lambda name: header_values(scope, name)


def client_of(scope: Scope, proxies: TrustedProxies) -> str | None:
    """The request's client address (canonical), through the trusted-proxy setting."""
    cached = scope.get(_CLIENT_KEY)
    if cached is not None and cached[0] is proxies:
        result: str | None = cached[1]
        return result
    peer = scope.get("client")
    host = peer[0] if peer else None
    if proxies.enabled:
        client = proxies.client(
            host,
            forwarded_for=header_values(scope, "x-forwarded-for"),
            forwarded=header_values(scope, "forwarded"),
        )
    else:
        client = proxies.client(host)
    scope[_CLIENT_KEY] = (proxies, client)
    return client


def encode(headers: Headers) -> RawHeaders:
    return [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers]


async def send_response(send: Send, status: int, headers: Headers, body: bytes) -> None:
    """Send one complete response."""
    await send({"type": "http.response.start", "status": status, "headers": encode(headers)})
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def send_problem(
    send: Send, scope: Scope, error: ApiSecError, extra: Sequence[tuple[str, str]] = ()
) -> None:
    """Render ``error`` as a complete problem+json response, in place.

    ``extra`` headers replace the error's own headers of the same name
    (the middleware's ``WWW-Authenticate`` challenge, for one).
    """
    status, headers, body = render_problem(
        error,
        type_base=scope.get(TYPE_BASE_KEY),
        head=scope.get("method") == "HEAD",
        extra=extra,
    )
    await send_response(send, status, headers, body)


def with_headers(message: Message, headers: RawHeaders) -> Message:
    """A copy of a start message with new headers (the app's dict is left alone)."""
    copy: dict[str, Any] = dict(message)
    copy["headers"] = headers
    return copy
