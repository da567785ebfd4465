"""CORSMiddleware: the Fetch-standard decisions of a CorsPolicy, rendered for ASGI."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import chain

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
# The lengths of those four names: any other name is skipped without lower-casing it.
_FIELD_LENGTHS = frozenset(len(name) for name in (_ORIGIN, *_REQUEST_FIELDS))
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
    never changes — for at most 256 origins and 256 distinct preflights, and
    each allowed preflight answer is encoded once (at most 256 of them);
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
        # Allowed preflights' headers, encoded, by their text: many preflights share one
        # answer (one per allowed origin), so a new preflight is decided but not re-encoded.
        self._encoded: dict[tuple[tuple[str, str], ...], RawHeaders] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers: Iterable[tuple[bytes, bytes]] = scope.get("headers") or _NO_HEADERS
        origins: Sequence[bytes]
        if scope["method"] == "OPTIONS":
            fields = _preflight_fields(headers)
            if fields[0] and fields[1]:
                answer = self._preflights.get(fields) or self._preflight(fields)
                if type(answer) is CorsDecision:  # refused
                    reason = answer.reason or "refused"
                    await send_problem(send, scope, CorsRejected(reason), answer.headers)
                    return
                await send({"type": "http.response.start", "status": 204, "headers": list(answer)})
                await send({"type": "http.response.body", "body": b"", "more_body": False})
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

    def _preflight(self, fields: _PreflightKey) -> RawHeaders | CorsDecision:
        """A preflight not in the cache: its encoded headers (cached), or the refusal."""
        decision = self._decide_preflight(fields)
        if not decision.allowed:
            return decision
        answer = tuple(decision.headers)
        headers = self._encoded.get(answer)
        if headers is None:
            headers = encode(decision.headers)
            if len(self._encoded) >= _CACHE_SIZE:
                self._encoded.clear()
            self._encoded[answer] = headers
        if _key_size(fields) <= _MAX_CACHED_KEY:
            if len(self._preflights) >= _CACHE_SIZE:
                self._preflights.clear()  # bounded: a flood of variants cannot grow it
            self._preflights[fields] = headers
        return headers

    def _decide_preflight(self, fields: _PreflightKey) -> CorsDecision:
        origins, requested, request_headers, private = fields
        if len(request_headers) == 1:
            names: str | None = request_headers[0].decode("latin-1")
        else:
            names = b", ".join(request_headers).decode("latin-1") if request_headers else None
        return self.policy.decide(
            "OPTIONS",
            origins[0].decode("latin-1") if len(origins) == 1 else "",
            requested[0].decode("latin-1") if len(requested) == 1 else "",
            names,
            access_control_request_private_network=(
                private[0].decode("latin-1") if len(private) == 1 else None
            ),
        )


def _key_size(fields: _PreflightKey) -> int:
    """The bytes a preflight's fields would keep in the cache."""
    origins, requested, request_headers, private = fields
    if len(origins) == 1 and len(requested) == 1 and len(request_headers) == 1 and not private:
        return len(origins[0]) + len(requested[0]) + len(request_headers[0])  # the usual shape
    return sum(map(len, chain.from_iterable(fields)))


def _preflight_fields(headers: Iterable[tuple[bytes, bytes]]) -> _PreflightKey:
    """Every value of Origin and the three Access-Control-Request-* fields, in one pass."""
    origins: list[bytes] = []
    found: dict[bytes, list[bytes]] = {}
    for name, value in headers:
        if len(name) not in _FIELD_LENGTHS:
            continue
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
