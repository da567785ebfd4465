"""RateLimitMiddleware (WSGI): a limit per client (or principal), before the app runs."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, cast

from apisec._adapter_core import LimitCore, proxies_or_default
from apisec._http import RequestView, add_rate_headers
from apisec._types import Environ, ExcInfo, StartResponse, WSGIApp
from apisec.audit import audit_context
from apisec.authz import get_principal
from apisec.clientaddr import DEFAULT_IPV6_PREFIX, TrustedProxies
from apisec.ratelimit import Decision, RateLimiter, RateLimitExceeded
from apisec.wsgi._base import client_of, getter, path_of, problem_response

__all__ = ["RateLimitMiddleware"]

KeyFunction = Callable[[RequestView], str | None]


class RateLimitMiddleware:
    """The WSGI twin of :class:`apisec.asgi.RateLimitMiddleware` (takes a :class:`RateLimiter`)."""

    def __init__(
        self,
        app: WSGIApp,
        limiter: RateLimiter,
        key: str | KeyFunction | None = None,
        *,
        exclude_paths: Iterable[str] = (),
        routes: Mapping[str, RateLimiter] | None = None,
        cost: int | Callable[[RequestView], int] = 1,
        proxies: TrustedProxies | None = None,
        ipv6_prefix: int = DEFAULT_IPV6_PREFIX,
        send_headers: bool = True,
    ) -> None:
        self.app = app
        self.core = LimitCore(
            mode="wsgi",
            limiter=limiter,
            key=key,
            exclude_paths=exclude_paths,
            routes=routes,
            cost=cost,
            ipv6_prefix=ipv6_prefix,
        )
        self.proxies = proxies_or_default(proxies)
        self.send_headers = send_headers

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        core = self.core
        method, path = environ.get("REQUEST_METHOD", "GET"), path_of(environ)
        limiters = core.limiters(method, path)
        if not limiters:
            return self.app(environ, start_response)
        client = client_of(environ, self.proxies)
        principal = get_principal(environ)
        view: Any = None
        if callable(core.key) or callable(core.cost):
            view = RequestView(method, path, client, principal, getter(environ))
        key = core.key_for(client, principal, view)
        if key is None:
            return self.app(environ, start_response)
        cost = core.cost_for(view)
        reported: Decision | None = None
        with audit_context(client=client):
            for limiter in limiters:
                decision = cast(RateLimiter, limiter).hit(key, cost)
                if not decision.allowed:
                    return problem_response(environ, start_response, RateLimitExceeded(decision))
                if reported is None or decision.remaining < reported.remaining:
                    reported = decision
        if not self.send_headers or reported is None:
            return self.app(environ, start_response)
        added = [(name.lower(), value) for name, value in reported.headers]

        def start_with_limits(
            status: str, headers: list[tuple[str, str]], exc_info: ExcInfo | None = None
        ) -> object:
            merged = add_rate_headers(headers, added, remaining="x-ratelimit-remaining")
            return start_response(status, merged, exc_info)

        return self.app(environ, start_with_limits)
