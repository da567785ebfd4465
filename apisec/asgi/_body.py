"""BodyLimitMiddleware: a 413 problem before the app reads more than the limit."""

from __future__ import annotations

from collections.abc import Mapping

from apisec._http import InvalidRequest, PathRules, check_limit, declared_length
from apisec._types import ASGIApp, Message, Receive, Scope, Send
from apisec.asgi._base import header_values, route_path, send_problem
from apisec.errors import ApiSecError, PayloadTooLarge

__all__ = ["BodyLimitMiddleware"]


class BodyLimitMiddleware:
    """Cap request bodies: by ``Content-Length`` up front, by counting chunked bodies.

    A declared length over the limit is refused before the app runs. A body
    without one (chunked) is counted as the app reads it; the read that
    crosses the limit raises inside the app, and whatever the app then
    answers is replaced by the 413 problem (unless it already reached the
    client, in which case the connection is dropped). A malformed or
    repeated ``Content-Length`` is a 400.

    Args:
        app: the ASGI application.
        max_bytes: the default limit (1 MiB).
        routes: other limits per path prefix (``{"POST /uploads": 50 * 2**20}``).
    """

    def __init__(
        self, app: ASGIApp, max_bytes: int = 1 << 20, *, routes: Mapping[str, int] | None = None
    ) -> None:
        self.app = app
        self.max_bytes = check_limit(max_bytes)
        self.routes: PathRules[int] = PathRules(
            {rule: check_limit(limit) for rule, limit in (routes or {}).items()}
        )

    def limit_for(self, method: str, path: str) -> int:
        if not self.routes:
            return self.max_bytes
        limits = self.routes.match_all(method, path)
        return min(limits) if limits else self.max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["method"], route_path(scope))
        try:
            declared = declared_length(header_values(scope, "content-length"))
        except InvalidRequest as exc:
            await send_problem(send, scope, exc)
            return
        if declared is not None and declared > limit:
            await send_problem(send, scope, PayloadTooLarge(f"declared {declared} > {limit}"))
            return
        guard = _Guard(receive, send, limit)
        try:
            await self.app(scope, guard.receive, guard.send)
        except Exception as exc:
            if guard.tripped is None:
                raise
            if guard.started:
                raise guard.tripped from exc
        if guard.tripped is not None and not guard.started:
            error: ApiSecError = guard.tripped
            await send_problem(send, scope, error)


class _Guard:
    __slots__ = ("_receive", "_send", "limit", "received", "started", "tripped")

    def __init__(self, receive: Receive, send: Send, limit: int) -> None:
        self._receive = receive
        self._send = send
        self.limit = limit
        self.received = 0
        self.started = False
        self.tripped: PayloadTooLarge | None = None

    async def receive(self) -> Message:
        if self.tripped is not None:
            raise self.tripped
        message = await self._receive()
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            if self.received > self.limit:
                self.tripped = PayloadTooLarge(f"body over {self.limit} bytes")
                raise self.tripped
        return message

    async def send(self, message: Message) -> None:
        if self.tripped is not None and not self.started:
            return  # the app's answer to the failed read is replaced by the 413
        if message["type"] == "http.response.start":
            self.started = True
        await self._send(message)
