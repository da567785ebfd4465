"""SecurityHeadersMiddleware (WSGI): the security headers on every response."""

from __future__ import annotations

from collections.abc import Iterable

from apisec._http import add_missing
from apisec._types import Environ, ExcInfo, StartResponse, WSGIApp
from apisec.errors import ConfigurationError
from apisec.headers import RouteLifecycles, SecurityHeaders
from apisec.wsgi._base import path_of

__all__ = ["SecurityHeadersMiddleware"]


class SecurityHeadersMiddleware:
    """The WSGI twin of :class:`apisec.asgi.SecurityHeadersMiddleware`."""

    def __init__(
        self,
        app: WSGIApp,
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
        self._add = [(name.lower(), value) for name, value in headers.headers]
        self._remove = headers.remove_lower

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        add = self._add
        if self.lifecycles is not None:
            lifecycle = self.lifecycles.headers_for(path_of(environ))
            if lifecycle:
                add = add + [(name.lower(), value) for name, value in lifecycle]

        def start_with_headers(
            status: str, headers: list[tuple[str, str]], exc_info: ExcInfo | None = None
        ) -> object:
            return start_response(status, add_missing(headers, add, self._remove), exc_info)

        return self.app(environ, start_with_headers)
