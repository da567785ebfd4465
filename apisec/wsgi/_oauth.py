"""TokenEndpoint (WSGI): the OAuth client-credentials token endpoint, served at one path."""

from __future__ import annotations

from collections.abc import Iterable

from apisec._http import normalize_path
from apisec._types import Environ, StartResponse, WSGIApp
from apisec.errors import ApiSecError, ConfigurationError, PayloadTooLarge
from apisec.oauth import ClientCredentialsEndpoint
from apisec.wsgi._base import path_of, problem_response, respond
from apisec.wsgi._webhooks import read_body, request_headers

__all__ = ["TokenEndpoint"]


class TokenEndpoint:
    """The WSGI twin of :class:`apisec.asgi.TokenEndpoint`, over the sync endpoint."""

    def __init__(
        self, app: WSGIApp, endpoint: ClientCredentialsEndpoint, path: str = "/oauth/token"
    ) -> None:
        if not isinstance(endpoint, ClientCredentialsEndpoint):
            raise ConfigurationError("endpoint must be a ClientCredentialsEndpoint")
        if not isinstance(path, str) or not path.startswith("/") or normalize_path(path) != path:
            raise ConfigurationError("path must be a normalized absolute path")
        self.app = app
        self.endpoint = endpoint
        self.path = path

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        if normalize_path(path_of(environ)) != self.path:
            return self.app(environ, start_response)
        endpoint = self.endpoint
        try:
            body = read_body(environ, endpoint.max_body_bytes + 1)
        except PayloadTooLarge:
            body = b"\0" * (endpoint.max_body_bytes + 1)  # the endpoint answers its own 413
        except ApiSecError as exc:
            return problem_response(environ, start_response, exc)
        try:
            response = endpoint.handle(
                environ.get("REQUEST_METHOD", "GET"), request_headers(environ), body
            )
        except ApiSecError as exc:
            return problem_response(environ, start_response, exc)
        return respond(start_response, response.status, response.headers, response.body)
