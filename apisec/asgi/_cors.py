"""CORSMiddleware: the Fetch-standard decisions of a CorsPolicy, rendered for ASGI."""

from __future__ import annotations

from apisec._http import merge_vary_bytes, replace_cors
from apisec._types import ASGIApp, Message, Receive, Scope, Send
from apisec.asgi._base import RawHeaders, encode, header_values, send_problem, with_headers
from apisec.cors import CorsDecision, CorsPolicy, CorsRejected
from apisec.errors import ConfigurationError

__all__ = ["CORSMiddleware"]

_CACHE_SIZE = 256


class CORSMiddleware:
    """Answer preflights and decorate actual requests by a :class:`~apisec.cors.CorsPolicy`.

    * A preflight (``OPTIONS`` with ``Origin`` and
      ``Access-Control-Request-Method``) is answered here, never reaching the
      app: 204 with the allow headers, or — refused — a 403 problem whose
      ``reason`` says what was not allowed (never which origins are).
    * An actual request goes to the app; its response gets the allow headers
      when the origin is allowed. The policy is the only authority:
      ``Access-Control-*`` headers the app set are replaced, and ``Vary`` is
      merged so it names each field once.
    """

    def __init__(self, app: ASGIApp, policy: CorsPolicy) -> None:
        if not isinstance(policy, CorsPolicy):
            raise ConfigurationError("policy must be a CorsPolicy")
        self.app = app
        self.policy = policy
        no_origin = policy.decide("GET", None)
        self._no_origin = encode(no_origin.headers)
        self._allowed: dict[str, RawHeaders] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        origins = header_values(scope, "origin")
        if not origins:
            await self.app(scope, receive, self._decorating(send, self._no_origin))
            return
        # Two Origin fields are no origin a browser sends: refuse to pick one.
        origin = origins[0] if len(origins) == 1 else ""
        method = scope["method"]
        if method == "OPTIONS":
            requested = header_values(scope, "access-control-request-method")
            if requested:
                await self._preflight(scope, send, origin, requested)
                return
        await self.app(scope, receive, self._decorating(send, self._actual(method, origin)))

    def _actual(self, method: str, origin: str) -> RawHeaders:
        cached = self._allowed.get(origin)
        if cached is not None:
            return cached
        decision = self.policy.decide(method, origin)
        headers = encode(decision.headers)
        if decision.allowed and len(self._allowed) < _CACHE_SIZE:
            self._allowed[origin] = headers  # an allowed origin's headers never change
        return headers

    async def _preflight(self, scope: Scope, send: Send, origin: str, requested: list[str]) -> None:
        request_headers = header_values(scope, "access-control-request-headers")
        private = header_values(scope, "access-control-request-private-network")
        decision: CorsDecision = self.policy.decide(
            "OPTIONS",
            origin,
            requested[0] if len(requested) == 1 else "",
            ", ".join(request_headers) if request_headers else None,
            access_control_request_private_network=private[0] if len(private) == 1 else None,
        )
        if decision.allowed:
            await send(
                {"type": "http.response.start", "status": 204, "headers": encode(decision.headers)}
            )
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return
        await send_problem(
            send, scope, CorsRejected(decision.reason or "refused"), decision.headers
        )

    @staticmethod
    def _decorating(send: Send, cors: RawHeaders) -> Send:
        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = with_headers(
                    message,
                    replace_cors(
                        message.get("headers") or [],
                        cors,
                        vary=b"vary",
                        prefix=b"access-control-",
                        join=merge_vary_bytes,
                    ),
                )
            await send(message)

        return send_with_cors
