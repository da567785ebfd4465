"""CORSMiddleware (WSGI): the Fetch-standard decisions of a CorsPolicy."""

from __future__ import annotations

from collections.abc import Iterable

from apisec._http import Headers, merge_vary, replace_cors, split_vary
from apisec._types import Environ, ExcInfo, StartResponse, WSGIApp
from apisec.cors import CorsPolicy, CorsRejected
from apisec.errors import ConfigurationError
from apisec.wsgi._base import problem_response, respond

__all__ = ["CORSMiddleware"]

_CACHE_SIZE = 256
# A preflight whose CORS fields are longer than this together is decided, never cached.
_MAX_CACHED_KEY = 2048
_PreflightKey = tuple[str, str, "str | None", "str | None"]
# An actual request's CORS headers, apart from their Vary (see split_vary).
_Allowance = tuple[Headers, "str | None"]


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
        self._no_origin = _split(policy.decide("GET", None).headers)
        self._allowed: dict[str, _Allowance] = {}
        self._preflights: dict[_PreflightKey, Headers] = {}

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        origin = environ.get("HTTP_ORIGIN")
        if origin is None:
            return self.app(environ, _decorating(start_response, self._no_origin))
        method = environ.get("REQUEST_METHOD", "GET")
        if method == "OPTIONS":
            requested = environ.get("HTTP_ACCESS_CONTROL_REQUEST_METHOD")
            if requested is not None:
                return self._preflight(environ, start_response, origin, requested)
        return self.app(environ, _decorating(start_response, self._actual(method, origin)))

    def _actual(self, method: str, origin: str) -> _Allowance:
        cached = self._allowed.get(origin)
        if cached is not None:
            return cached
        decision = self.policy.decide(method, origin)
        allowance = _split(decision.headers)
        if decision.allowed and len(self._allowed) < _CACHE_SIZE:
            self._allowed[origin] = allowance  # an allowed origin's headers never change
        return allowance

    def _preflight(
        self, environ: Environ, start_response: StartResponse, origin: str, requested: str
    ) -> Iterable[bytes]:
        key: _PreflightKey = (
            origin,
            requested,
            environ.get("HTTP_ACCESS_CONTROL_REQUEST_HEADERS"),
            environ.get("HTTP_ACCESS_CONTROL_REQUEST_PRIVATE_NETWORK"),
        )
        headers = self._preflights.get(key)
        if headers is None:
            decision = self.policy.decide(
                "OPTIONS", origin, requested, key[2], access_control_request_private_network=key[3]
            )
            if not decision.allowed:
                return problem_response(
                    environ,
                    start_response,
                    CorsRejected(decision.reason or "refused"),
                    decision.headers,
                )
            headers = decision.headers
            if sum(len(part) for part in key if part is not None) <= _MAX_CACHED_KEY:
                if len(self._preflights) >= _CACHE_SIZE:
                    self._preflights.clear()  # bounded: a flood of variants cannot grow it
                self._preflights[key] = headers
        return respond(start_response, 204, list(headers), b"")


def _split(headers: Headers) -> _Allowance:
    return split_vary(headers, vary="vary", join=merge_vary)


def _decorating(start_response: StartResponse, allowance: _Allowance) -> StartResponse:
    """``start_response`` with the policy's CORS headers replacing the app's."""

    def start_with_cors(
        status: str, headers: list[tuple[str, str]], exc_info: ExcInfo | None = None
    ) -> object:
        merged = replace_cors(
            headers, allowance, vary="vary", prefix="access-control-", join=merge_vary
        )
        return start_response(status, merged, exc_info)

    return start_with_cors
