"""CORSMiddleware: the Fetch-standard decisions of a CorsPolicy, rendered for ASGI."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from apisec._http import merge_vary_bytes, replace_cors, split_vary
from apisec._types import ASGIApp, Message, Receive, Scope, Send
from apisec.asgi._base import RawHeaders, encode, send_problem, with_headers
from apisec.cors import CorsDecision, CorsPolicy, CorsRejected
from apisec.errors import ConfigurationError

__all__ = ["CORSMiddleware"]

_CACHE_SIZE = 256
# A preflight whose CORS fields are longer than this together is decided, never cached.
_MAX_CACHED_KEY = 2048
_ORIGIN = b"origin"
_REQUEST_METHOD = b"access-control-request-method"
_REQUEST_FIELDS = frozenset(
    (_REQUEST_METHOD, b"access-control-request-headers", b"access-control-request-private-network")
)
_EMPTY: tuple[bytes, ...] = ()
_NO_HEADERS: tuple[tuple[bytes, bytes], ...] = ()
# Every value of Origin and of the three Access-Control-Request-* fields.
_PreflightKey = tuple[tuple[bytes, ...], ...]
# An actual request's CORS headers, apart from their Vary (see split_vary).
_Allowance = tuple[RawHeaders, "bytes | None"]


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

    Allowed answers are remembered — a policy's answer to the same fields
    never changes — for at most 256 origins and 256 distinct preflights;
    refusals are decided, and audited, every time.
    """

    def __init__(self, app: ASGIApp, policy: CorsPolicy) -> None:
        if not isinstance(policy, CorsPolicy):
            raise ConfigurationError("policy must be a CorsPolicy")
        self.app = app
        self.policy = policy
        self._no_origin = _split(encode(policy.decide("GET", None).headers))
        self._allowed: dict[bytes, _Allowance] = {}
        self._preflights: dict[_PreflightKey, RawHeaders] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers: Iterable[tuple[bytes, bytes]] = scope.get("headers") or _NO_HEADERS
        origins: Sequence[bytes]
        if scope["method"] == "OPTIONS":
            fields = _preflight_fields(headers)
            if fields[0] and fields[1]:
                await self._preflight(scope, send, fields)
                return
            origins = fields[0]
        else:
            origins = [value for name, value in headers if name.lower() == _ORIGIN]
        if not origins:
            allowance = self._no_origin
        elif len(origins) == 1:
            allowance = self._actual(scope["method"], origins[0])
        else:  # two Origin fields are no origin a browser sends: refuse to pick one
            allowance = _split(encode(self.policy.decide(scope["method"], "").headers))
        await self.app(scope, receive, _decorating(send, allowance))

    def _actual(self, method: str, origin: bytes) -> _Allowance:
        cached = self._allowed.get(origin)
        if cached is not None:
            return cached
        decision = self.policy.decide(method, origin.decode("latin-1"))
        allowance = _split(encode(decision.headers))
        if decision.allowed and len(self._allowed) < _CACHE_SIZE:
            self._allowed[origin] = allowance  # an allowed origin's headers never change
        return allowance

    async def _preflight(self, scope: Scope, send: Send, fields: _PreflightKey) -> None:
        headers = self._preflights.get(fields)
        if headers is None:
            decision = self._decide_preflight(fields)
            if not decision.allowed:
                await send_problem(
                    send, scope, CorsRejected(decision.reason or "refused"), decision.headers
                )
                return
            headers = encode(decision.headers)
            if sum(len(value) for values in fields for value in values) <= _MAX_CACHED_KEY:
                if len(self._preflights) >= _CACHE_SIZE:
                    self._preflights.clear()  # bounded: a flood of variants cannot grow it
                self._preflights[fields] = headers
        await send({"type": "http.response.start", "status": 204, "headers": list(headers)})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    def _decide_preflight(self, fields: _PreflightKey) -> CorsDecision:
        origins, requested, request_headers, private = fields
        return self.policy.decide(
            "OPTIONS",
            origins[0].decode("latin-1") if len(origins) == 1 else "",
            requested[0].decode("latin-1") if len(requested) == 1 else "",
            b", ".join(request_headers).decode("latin-1") if request_headers else None,
            access_control_request_private_network=(
                private[0].decode("latin-1") if len(private) == 1 else None
            ),
        )


def _preflight_fields(headers: Iterable[tuple[bytes, bytes]]) -> _PreflightKey:
    """Every value of Origin and the three Access-Control-Request-* fields, in one pass."""
    origins: list[bytes] = []
    found: dict[bytes, list[bytes]] = {}
    for name, value in headers:
        lowered = name.lower()
        if lowered == _ORIGIN:
            origins.append(value)
        elif lowered in _REQUEST_FIELDS:
            found.setdefault(lowered, []).append(value)
    if not found:
        return (tuple(origins), _EMPTY, _EMPTY, _EMPTY)
    get = found.get
    return (
        tuple(origins),
        tuple(get(_REQUEST_METHOD, _EMPTY)),
        tuple(get(b"access-control-request-headers", _EMPTY)),
        tuple(get(b"access-control-request-private-network", _EMPTY)),
    )


def _split(headers: RawHeaders) -> _Allowance:
    return split_vary(headers, vary=b"vary", join=merge_vary_bytes)


def _decorating(send: Send, allowance: _Allowance) -> Send:
    """``send`` with the policy's CORS headers replacing the app's on the response start."""

    async def send_with_cors(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = with_headers(
                message,
                replace_cors(
                    message.get("headers") or _NO_HEADERS,
                    allowance,
                    vary=b"vary",
                    prefix=b"access-control-",
                    join=merge_vary_bytes,
                ),
            )
        await send(message)

    return send_with_cors
