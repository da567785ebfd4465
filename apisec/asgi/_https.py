"""HTTPSRedirectMiddleware: plain HTTP is redirected (GET, HEAD) or refused."""

from __future__ import annotations

from urllib.parse import quote

from apisec._adapter_core import proxies_or_default
from apisec._http import HttpsRequired, check_https_options, https_location
from apisec._types import ASGIApp, Receive, Scope, Send
from apisec.asgi._base import header_values, send_problem, send_response
from apisec.clientaddr import TrustedProxies

__all__ = ["HTTPSRedirectMiddleware"]


class HTTPSRedirectMiddleware:
    """Send plain-HTTP requests to HTTPS.

    ``GET`` and ``HEAD`` get a ``308 Permanent Redirect`` to the same path
    and query on ``https``; any other method gets a 403 problem instead — a
    redirect would make clients resend the body (and its credentials) once
    more, and API clients should fail loudly rather than follow. The scheme
    comes from the server, or from ``X-Forwarded-Proto`` only through a
    trusted-proxy setting. WebSocket handshakes over ``ws`` are closed (1008).

    Args:
        app: the ASGI application.
        host: the canonical host to redirect to (recommended: the ``Host``
            header is the client's to choose). Without it the request's
            ``Host`` is used when it is a well-formed host name.
        https_port: a non-default port for the redirect target.
        proxies: which proxies may tell the original scheme.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        host: str | None = None,
        https_port: int | None = None,
        proxies: TrustedProxies | None = None,
    ) -> None:
        check_https_options(host, https_port)
        self.app = app
        self.host = host
        self.https_port = https_port
        self.proxies = proxies_or_default(proxies)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        peer = scope.get("client")
        scheme = self.proxies.scheme(
            peer[0] if peer else None,
            scope.get("scheme", "http"),
            header_values(scope, "x-forwarded-proto"),
            forwarded=header_values(scope, "forwarded"),
        )
        if scheme in ("https", "wss"):
            await self.app(scope, receive, send)
            return
        if kind == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        method = scope["method"]
        hosts = header_values(scope, "host")
        host = self.host or (hosts[0] if len(hosts) == 1 else None)
        location = None
        if host is not None:
            query = (scope.get("query_string") or b"").decode("latin-1")
            location = https_location(host, self.https_port, _raw_path(scope), query)
        if method not in ("GET", "HEAD") or location is None:
            await send_problem(send, scope, HttpsRequired("plain HTTP request refused"))
            return
        await send_response(send, 308, [("Location", location), ("Content-Length", "0")], b"")


def _raw_path(scope: Scope) -> str:
    raw = scope.get("raw_path")
    if raw:
        return bytes(raw).decode("latin-1").split("?", 1)[0]
    return quote(scope["path"], safe="/;:@&=+$,!~*'()")
