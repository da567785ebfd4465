"""Bare ASGI and WSGI apps (no framework) with the routes the adapter tests need."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

from apisec._types import Environ, Receive, Scope, Send, StartResponse
from apisec.authz import get_principal


def _principal_json(principal: Any) -> bytes:
    if principal is None:
        return b'{"principal":null}'
    return json.dumps(
        {"subject": principal.subject, "kind": principal.kind, "scopes": sorted(principal.scopes)}
    ).encode()


async def asgi_app(scope: Scope, receive: Receive, send: Send) -> None:
    """Routes: /boom raises, /html-404 and /text-500 are framework-style error pages,
    /json-400 is the app's own JSON error, /body echoes the body size, /stream streams,
    anything else answers 200 with the principal as JSON."""
    if scope["type"] != "http":
        return
    path = scope["path"]
    if path == "/boom":
        raise RuntimeError("database password is hunter2")
    if path in ("/html-404", "/text-500", "/json-400"):
        status, kind, body = {
            "/html-404": (404, b"text/html", b"<h1>Not Found</h1>"),
            "/text-500": (500, b"text/plain", b"Traceback: secret"),
            "/json-400": (400, b"application/json", b'{"error":"mine"}'),
        }[path]
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", kind), (b"allow", b"GET")],
            }
        )
        await send({"type": "http.response.body", "body": body})
        return
    if path == "/body":
        size = 0
        while True:
            message = await receive()
            size += len(message.get("body", b""))
            if not message.get("more_body"):
                break
        body = json.dumps({"size": size}).encode()
    elif path == "/stream":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for part in (b"one,", b"two,", b"three"):
            await send({"type": "http.response.body", "body": part, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        return
    elif path == "/stream-fail":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"partial", "more_body": True})
        raise RuntimeError("mid-stream failure")
    else:
        body = _principal_json(get_principal(scope))
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json"), (b"server", b"bare/1.0")],
        }
    )
    await send({"type": "http.response.body", "body": body})


def wsgi_app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    """The same routes as :func:`asgi_app`, for WSGI."""
    path = environ["PATH_INFO"]
    if path == "/boom":
        raise RuntimeError("database password is hunter2")
    if path in ("/html-404", "/text-500", "/json-400"):
        status, kind, body = {
            "/html-404": ("404 Not Found", "text/html", b"<h1>Not Found</h1>"),
            "/text-500": ("500 Internal Server Error", "text/plain", b"Traceback: secret"),
            "/json-400": ("400 Bad Request", "application/json", b'{"error":"mine"}'),
        }[path]
        start_response(status, [("Content-Type", kind), ("Allow", "GET")])
        return [body]
    if path == "/body":
        data = environ["wsgi.input"].read()
        body = json.dumps({"size": len(data)}).encode()
    elif path == "/stream":
        start_response("200 OK", [])
        return iter([b"one,", b"two,", b"three"])
    elif path == "/stream-fail":
        return _failing_stream(start_response)
    else:
        body = _principal_json(get_principal(environ))
    start_response("200 OK", [("Content-Type", "application/json"), ("Server", "bare/1.0")])
    return [body]


def _failing_stream(start_response: StartResponse) -> Iterator[bytes]:
    start_response("200 OK", [])
    yield b"partial"
    raise RuntimeError("mid-stream failure")
