"""CORSMiddleware (WSGI): the Fetch-standard decisions of a CorsPolicy."""

from __future__ import annotations

from collections.abc import Iterable

from apisec._http import Headers, merge_vary, replace_cors
from apisec._types import Environ, ExcInfo, StartResponse, WSGIApp
from apisec.cors import CorsPolicy, CorsRejected
from apisec.errors import ConfigurationError
from apisec.wsgi._base import header_values, problem_response, respond

__all__ = ["CORSMiddleware"]

_CACHE_SIZE = 256


def _lower(headers: Headers) -> Headers:
    return [(name.lower(), value) for name, value in headers]


class CORSMiddleware:
    """The WSGI twin of :class:`apisec.asgi.CORSMiddleware`.

    A WSGI server joins repeated ``Origin`` fields with a comma; such an
    origin is never allowed.
    """

    def __init__(self, app: WSGIApp, policy: CorsPolicy) -> None:
        if not isinstance(policy, CorsPolicy):
            raise ConfigurationError("policy must be a CorsPolicy")
        self.app = app
        self.policy = policy
        self._no_origin = _lower(policy.decide("GET", None).headers)
        self._allowed: dict[str, Headers] = {}

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        origins = header_values(environ, "origin")
        if not origins:
            return self.app(environ, self._decorating(start_response, self._no_origin))
        origin = origins[0]
        method = environ.get("REQUEST_METHOD", "GET")
        if method == "OPTIONS":
            requested = header_values(environ, "access-control-request-method")
            if requested:
                return self._preflight(environ, start_response, origin, requested[0])
        return self.app(environ, self._decorating(start_response, self._actual(method, origin)))

    def _actual(self, method: str, origin: str) -> Headers:
        cached = self._allowed.get(origin)
        if cached is not None:
            return cached
        decision = self.policy.decide(method, origin)
        headers = _lower(decision.headers)
        if decision.allowed and len(self._allowed) < _CACHE_SIZE:
            self._allowed[origin] = headers
        return headers

    def _preflight(
        self, environ: Environ, start_response: StartResponse, origin: str, requested: str
    ) -> Iterable[bytes]:
        request_headers = header_values(environ, "access-control-request-headers")
        private = header_values(environ, "access-control-request-private-network")
        decision = self.policy.decide(
            "OPTIONS",
            origin,
            requested,
            request_headers[0] if request_headers else None,
            access_control_request_private_network=private[0] if private else None,
        )
        if decision.allowed:
            return respond(start_response, 204, decision.headers, b"")
        return problem_response(
            environ, start_response, CorsRejected(decision.reason or "refused"), decision.headers
        )

    @staticmethod
    def _decorating(start_response: StartResponse, cors: Headers) -> StartResponse:
        def start_with_cors(
            status: str, headers: list[tuple[str, str]], exc_info: ExcInfo | None = None
        ) -> object:
            merged = replace_cors(
                headers, cors, vary="vary", prefix="access-control-", join=merge_vary
            )
            return start_response(status, merged, exc_info)

        return start_with_cors
