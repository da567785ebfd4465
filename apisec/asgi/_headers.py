"""SecurityHeadersMiddleware: the security headers on every response."""

from __future__ import annotations

from apisec._http import add_missing
from apisec._types import ASGIApp, Message, Receive, Scope, Send
from apisec.asgi._base import encode, route_path, with_headers
from apisec.errors import ConfigurationError
from apisec.headers import RouteLifecycles, SecurityHeaders

__all__ = ["SecurityHeadersMiddleware"]


class SecurityHeadersMiddleware:
    """Add :class:`~apisec.headers.SecurityHeaders` to every HTTP response.

    Whatever produced the response — the app, a 404, a 429 or a preflight
    answered further in — gets the headers. A header the app set itself
    wins (a route may need its own ``Content-Security-Policy``); the
    ``remove`` list (``Server``, ``X-Powered-By``) is stripped.

    Args:
        app: the ASGI application.
        headers: the header set (the ``api`` profile by default).
        lifecycles: ``Deprecation`` / ``Sunset`` / ``Link`` per route prefix.
    """

    def __init__(
        self,
        app: ASGIApp,
        headers: SecurityHeaders | None = None,
        *,
        lifecycles: RouteLifecycles | None = None,
    ) -> None:
        headers = SecurityHeaders() if headers is None else headers
        if not isinstance(headers, SecurityHeaders):
            raise ConfigurationError("headers must be a SecurityHeaders")
        if lifecycles is not None and not isinstance(lifecycles, RouteLifecycles):
            raise ConfigurationError("lifecycles must be a RouteLifecycles")
        self.app = app
        self.headers = headers
        self.lifecycles = lifecycles
        self._add = encode(headers.headers)
        self._remove = frozenset(name.encode("latin-1") for name in headers.remove_lower)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        add = self._add
        if self.lifecycles is not None:
            lifecycle = self.lifecycles.headers_for(route_path(scope))
            if lifecycle:
                add = add + encode(lifecycle)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = with_headers(
                    message, add_missing(message.get("headers") or [], add, self._remove)
                )
            await send(message)

        await self.app(scope, receive, send_with_headers)
