"""The demo's front-end: three static files on their own origin, with a strict CSP."""

from __future__ import annotations

import html
from importlib import resources

from apisec._types import ASGIApp, Receive, Scope, Send
from apisec.asgi import ProblemDetailsMiddleware, SecurityHeadersMiddleware
from apisec.errors import NotFound
from apisec.headers import ContentSecurityPolicy, SecurityHeaders

__all__ = ["build_web"]

_TYPES = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
}


def build_web(api_origin: str) -> ASGIApp:
    """The page app: ``/`` (the API origin filled in), ``/app.js`` and ``/style.css``."""
    static = resources.files("apisec.demo") / "static"
    files: dict[str, tuple[bytes, str]] = {}
    for name, content_type in _TYPES.items():
        data = (static / name).read_bytes()
        if name == "index.html":
            data = data.replace(b"{{API_ORIGIN}}", html.escape(api_origin).encode())
        files["/" if name == "index.html" else "/" + name] = (data, content_type)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        found = files.get(scope["path"]) if scope["method"] in ("GET", "HEAD") else None
        if found is None:
            raise NotFound("no such file")
        data, content_type = found
        headers = [
            (b"content-type", content_type.encode()),
            (b"content-length", str(len(data)).encode()),
            (b"cache-control", b"no-cache"),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        body = b"" if scope["method"] == "HEAD" else data
        await send({"type": "http.response.body", "body": body, "more_body": False})

    csp = ContentSecurityPolicy(
        {
            "default-src": ["'none'"],
            "script-src": ["'self'"],
            "style-src": ["'self'"],
            "connect-src": [api_origin],
            "base-uri": ["'none'"],
            "form-action": ["'none'"],
            "frame-ancestors": ["'none'"],
        }
    )
    return SecurityHeadersMiddleware(
        ProblemDetailsMiddleware(app), SecurityHeaders(profile="html", csp=csp)
    )
