"""TokenEndpoint: the OAuth client-credentials token endpoint, served at one path."""

from __future__ import annotations

from apisec._adapter_core import checked_service
from apisec._http import normalize_path
from apisec._types import ASGIApp, Receive, Scope, Send
from apisec.asgi._base import route_path, send_problem, send_response
from apisec.asgi._webhooks import ClientDisconnected, read_body
from apisec.errors import ApiSecError, ConfigurationError, PayloadTooLarge
from apisec.oauth import AsyncClientCredentialsEndpoint, ClientCredentialsEndpoint

__all__ = ["TokenEndpoint"]


class TokenEndpoint:
    """Answer ``POST <path>`` with an OAuth client-credentials endpoint; pass the rest on.

    The body is read up to the endpoint's ``max_body_bytes`` (one byte more
    tells it the body is too large) and the endpoint's RFC 6749 response is
    written as it is: JSON, ``Cache-Control: no-store``, ``WWW-Authenticate``
    on 401. A failing client store is a 503 problem. The path is served
    exactly (normalized), never as a prefix.

    Args:
        app: the application behind it (every other path).
        endpoint: an :class:`~apisec.oauth.AsyncClientCredentialsEndpoint`,
            or the sync one over an in-memory key store.
        path: where the endpoint lives.
    """

    def __init__(
        self,
        app: ASGIApp,
        endpoint: AsyncClientCredentialsEndpoint | ClientCredentialsEndpoint,
        path: str = "/oauth/token",
    ) -> None:
        if not isinstance(endpoint, (AsyncClientCredentialsEndpoint, ClientCredentialsEndpoint)):
            raise ConfigurationError("endpoint must be a (Async)ClientCredentialsEndpoint")
        if isinstance(endpoint, ClientCredentialsEndpoint):
            checked_service(endpoint.clients, "asgi", "the client store", "AsyncApiKeyService")
        if not isinstance(path, str) or not path.startswith("/") or normalize_path(path) != path:
            raise ConfigurationError("path must be a normalized absolute path")
        self.app = app
        self.endpoint = endpoint
        self.path = path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or normalize_path(route_path(scope)) != self.path:
            await self.app(scope, receive, send)
            return
        endpoint = self.endpoint
        try:
            body = await read_body(receive, endpoint.max_body_bytes + 1)
        except PayloadTooLarge:
            body = b"\0" * (endpoint.max_body_bytes + 1)  # the endpoint answers its own 413
        except ClientDisconnected:
            return
        headers = scope.get("headers") or []
        try:
            if isinstance(endpoint, AsyncClientCredentialsEndpoint):
                response = await endpoint.handle(scope["method"], headers, body)
            else:
                response = endpoint.handle(scope["method"], headers, body)
        except ApiSecError as exc:
            await send_problem(send, scope, exc)
            return
        await send_response(send, response.status, response.headers, response.body)
