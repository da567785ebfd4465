"""RateLimitMiddleware (WSGI): a limit per client (or principal), before the app runs."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, cast

from apisec._adapter_core import LimitCore, fewest_left, proxies_or_default, reported_of
from apisec._http import RequestView, merge_rate_headers
from apisec._types import Environ, ExcInfo, StartResponse, WSGIApp
from apisec.audit import audit_context
from apisec.authz import get_principal
from apisec.clientaddr import DEFAULT_IPV6_PREFIX, TrustedProxies
from apisec.ratelimit import AsyncRateLimiter, Decision, RateLimiter, RateLimitExceeded
from apisec.wsgi._base import client_of, getter, path_of, problem_response

__all__ = ["RateLimitMiddleware", "spend"]

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
        with audit_context(client=client):
            try:
                reported = spend(limiters, key, cost)
            except RateLimitExceeded as exc:
                return problem_response(environ, start_response, exc)
        if not self.send_headers:
            return self.app(environ, start_response)
        added = [(name.lower(), value) for name, value in reported.headers]

        def start_with_limits(
            status: str, headers: list[tuple[str, str]], exc_info: ExcInfo | None = None
        ) -> object:
            return start_response(status, merge_rate_headers(headers, added), exc_info)

        return self.app(environ, start_with_limits)


def spend(limiters: Sequence[RateLimiter | AsyncRateLimiter], key: str, cost: int) -> Decision:
    """Hit each limiter; raise ``RateLimitExceeded`` at the first refusal.

    Returns the decision with the fewest units left (the one to report). The
    twin of :func:`apisec.asgi._ratelimit.spend`, shared by the middleware and
    the framework integrations.
    """
    reported: Decision | None = None
    for limiter in limiters:
        # WSGI cores admit sync limiters only.
        reported = fewest_left(reported, cast(RateLimiter, limiter).hit(key, cost))
    return reported_of(reported)
