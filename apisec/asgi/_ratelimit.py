"""RateLimitMiddleware: a limit per client (or principal), decided before the app runs."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from apisec._adapter_core import LimitCore, fewest_left, proxies_or_default, reported_of
from apisec._http import RequestView, merge_rate_headers
from apisec._types import ASGIApp, Message, Receive, Scope, Send
from apisec.asgi._base import (
    client_of,
    encode,
    getter,
    route_path,
    send_problem,
    with_headers,
)
from apisec.audit import audit_context
from apisec.authz import get_principal
from apisec.clientaddr import DEFAULT_IPV6_PREFIX, TrustedProxies
from apisec.ratelimit import AsyncRateLimiter, Decision, RateLimiter, RateLimitExceeded

__all__ = ["RateLimitMiddleware", "spend"]

KeyFunction = Callable[[RequestView], str | None]


class RateLimitMiddleware:
    """Spend one hit per request; refuse with a 429 problem and ``Retry-After``.

    Args:
        app: the ASGI application.
        limiter: an :class:`~apisec.ratelimit.AsyncRateLimiter`, or a
            synchronous :class:`~apisec.ratelimit.RateLimiter` over an
            in-memory store (one over Redis would block the event loop and
            is refused).
        key: ``None`` (the default) limits per client address — the socket
            peer, or what ``proxies`` allow, IPv6 grouped by ``ipv6_prefix``;
            ``"principal"`` limits per authenticated principal (put the
            middleware inside the authentication one); or a function of a
            :class:`~apisec._http.RequestView` returning the key (None: not
            limited).
        exclude_paths: path prefixes that are never limited.
        routes: further limiters per path prefix (``{"POST /login": strict}``),
            applied in addition to ``limiter``.
        cost: units per request, or a function of the request.
        proxies: which forwarding headers to believe (none by default).
        ipv6_prefix: IPv6 clients share a budget per network of this size.
        send_headers: add ``X-RateLimit-*`` and ``RateLimit`` fields to
            allowed responses too (a 429 always carries them).
    """

    def __init__(
        self,
        app: ASGIApp,
        limiter: RateLimiter | AsyncRateLimiter,
        key: str | KeyFunction | None = None,
        *,
        exclude_paths: Iterable[str] = (),
        routes: Mapping[str, RateLimiter | AsyncRateLimiter] | None = None,
        cost: int | Callable[[RequestView], int] = 1,
        proxies: TrustedProxies | None = None,
        ipv6_prefix: int = DEFAULT_IPV6_PREFIX,
        send_headers: bool = True,
    ) -> None:
        self.app = app
        self.core = LimitCore(
            mode="asgi",
            limiter=limiter,
            key=key,
            exclude_paths=exclude_paths,
            routes=routes,
            cost=cost,
            ipv6_prefix=ipv6_prefix,
        )
        self.proxies = proxies_or_default(proxies)
        self.send_headers = send_headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        core = self.core
        method, path = scope["method"], route_path(scope)
        limiters = core.limiters(method, path)
        if not limiters:
            await self.app(scope, receive, send)
            return
        client = client_of(scope, self.proxies)
        principal = get_principal(scope)
        view: Any = None
        if callable(core.key) or callable(core.cost):
            view = RequestView(method, path, client, principal, getter(scope))
        key = core.key_for(client, principal, view)
        if key is None:
            await self.app(scope, receive, send)
            return
        cost = core.cost_for(view)
        with audit_context(client=client):
            try:
                reported = await spend(limiters, key, cost)
            except RateLimitExceeded as exc:
                await send_problem(send, scope, exc)
                return
        if not self.send_headers:
            await self.app(scope, receive, send)
            return
        await self.app(scope, receive, _with_rate_headers(send, reported))


async def spend(
    limiters: Sequence[RateLimiter | AsyncRateLimiter], key: str, cost: int
) -> Decision:
    """Hit each limiter; raise ``RateLimitExceeded`` at the first refusal.

    Returns the decision with the fewest units left (the one to report).
    Shared by the middleware and ``apisec.fastapi.RateLimit``.
    """
    reported: Decision | None = None
    for limiter in limiters:
        if isinstance(limiter, AsyncRateLimiter):
            decision = await limiter.hit(key, cost)
        else:
            decision = limiter.hit(key, cost)
        reported = fewest_left(reported, decision)
    return reported_of(reported)


def _with_rate_headers(send: Send, decision: Decision) -> Send:
    added = encode(decision.headers)

    async def send_with_limits(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = with_headers(message, merge_rate_headers(message.get("headers") or [], added))
        await send(message)

    return send_with_limits
