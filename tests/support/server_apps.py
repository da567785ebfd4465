"""The protected stacks the real-server tests run, built the same way for ASGI and WSGI.

Gunicorn imports :func:`wsgi_from_env` in its own worker processes, so the
whole configuration travels as environment variables (:class:`StackConfig`).
Besides the routes of :mod:`tests.support.apps`, the apps here have a gated
stream: ``/gate/stream?id=X`` sends its first chunk, then waits until
``/gate/release?id=X`` is requested — a client that reads the first chunk
before releasing the gate proves the response is not buffered anywhere.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import attrs

from apisec import asgi, wsgi
from apisec._types import ASGIApp, Environ, Receive, Scope, Send, StartResponse, WSGIApp
from apisec.clientaddr import TrustedProxies
from apisec.cors import CorsPolicy
from apisec.ratelimit import AsyncRateLimiter, FixedWindow, MemoryStore, RateLimiter
from apisec.testing import FakeClock
from apisec.tokens import SigningKey, TokenService
from tests.support.apps import asgi_app, wsgi_app

ISS, AUD = "https://auth.example.com", "https://api.example.com"
#: Frozen time for tokens and limits: no window rolls over during a test.
START = 1_750_000_000.0
#: The canonical host HTTPS redirects point to.
HTTPS_HOST = "api.example.test"
#: How long a gated stream waits for its release before giving up.
GATE_TIMEOUT = 10.0
_ENV = "APISEC_TEST_STACK_"


@attrs.frozen
class StackConfig:
    """What varies between the test servers (all of it fits in environment variables)."""

    secret: str = attrs.field(repr=False)
    origins: tuple[str, ...] = ("https://app.example.com",)
    quota: int = 10
    max_body: int = 1024
    redis_url: str = ""
    redis_prefix: str = ""
    https: bool = True
    credentials: bool = True

    def env(self) -> dict[str, str]:
        fields = attrs.asdict(self)
        fields["origins"] = " ".join(self.origins)
        return {_ENV + name.upper(): str(value) for name, value in fields.items()}

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> StackConfig:
        def get(name: str) -> str:
            return environ[_ENV + name.upper()]

        return cls(
            secret=get("secret"),
            origins=tuple(get("origins").split()),
            quota=int(get("quota")),
            max_body=int(get("max_body")),
            redis_url=get("redis_url"),
            redis_prefix=get("redis_prefix"),
            https=get("https") == "True",
            credentials=get("credentials") == "True",
        )


def token_service(config: StackConfig) -> TokenService:
    """The token service both the servers and the tests use (same key, frozen clock)."""
    key = SigningKey.hmac(bytes.fromhex(config.secret), alg="HS256", kid="test")
    return TokenService(key, issuer=ISS, audience=AUD, clock=FakeClock(START))


def _options(config: StackConfig) -> dict[str, Any]:
    """protect() options shared by both stacks, except the limiter."""
    return {
        "tokens": token_service(config),
        "public_paths": ["/health", "/gate"],
        "cors": CorsPolicy(
            config.origins,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "X-Request-Id"],
            expose_headers=["X-RateLimit-Remaining"],
            allow_credentials=config.credentials,
        ),
        "max_body": config.max_body,
        "https": config.https,
        "https_host": HTTPS_HOST,
        # The TLS-terminating proxy sits on loopback; 127.0.0.2 and the rest are clients.
        "proxies": TrustedProxies(networks=["127.0.0.1/32", "::1/128"]),
    }


# --- ASGI ------------------------------------------------------------------------


class _AsyncGates:
    def __init__(self) -> None:
        self._events: dict[str, asyncio.Event] = {}

    def get(self, name: str) -> asyncio.Event:
        return self._events.setdefault(name, asyncio.Event())


def gated_asgi(inner: ASGIApp) -> ASGIApp:
    """``inner`` plus the gated stream (one gate set per app, on the server's loop)."""
    gates = _AsyncGates()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] in ("/gate/stream", "/gate/release"):
            event = gates.get(scope["query_string"].decode())
            if scope["path"] == "/gate/release":
                event.set()
                await send({"type": "http.response.start", "status": 204, "headers": []})
                await send({"type": "http.response.body", "body": b""})
                return
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"first;", "more_body": True})
            try:
                await asyncio.wait_for(event.wait(), GATE_TIMEOUT)
                rest = b"released;"
            except asyncio.TimeoutError:
                rest = b"timed out;"
            await send({"type": "http.response.body", "body": rest, "more_body": True})
            await send({"type": "http.response.body", "body": b"last"})
            return
        await inner(scope, receive, send)

    return app


def build_asgi(config: StackConfig, limiter: RateLimiter | AsyncRateLimiter | None = None) -> Any:
    """The ASGI protect() stack (a memory-store client limit unless ``limiter``)."""
    if limiter is None:
        limiter = RateLimiter(
            FixedWindow(config.quota, 3600), MemoryStore(), clock=FakeClock(START)
        )
    return asgi.protect(gated_asgi(asgi_app), client_limiter=limiter, **_options(config))


# --- WSGI ------------------------------------------------------------------------


class _Gates:
    def __init__(self) -> None:
        self._events: dict[str, threading.Event] = {}
        self._lock = threading.Lock()

    def get(self, name: str) -> threading.Event:
        with self._lock:
            return self._events.setdefault(name, threading.Event())


def gated_wsgi(inner: WSGIApp) -> WSGIApp:
    """``inner`` plus the gated stream (needs a threaded server: the gate blocks a thread)."""
    gates = _Gates()

    def stream(event: threading.Event) -> Iterator[bytes]:
        yield b"first;"
        yield b"released;" if event.wait(GATE_TIMEOUT) else b"timed out;"
        yield b"last"

    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        path = environ["PATH_INFO"]
        if path in ("/gate/stream", "/gate/release"):
            event = gates.get(environ.get("QUERY_STRING", ""))
            if path == "/gate/release":
                event.set()
                start_response("204 No Content", [])
                return [b""]
            start_response("200 OK", [])
            return stream(event)
        return inner(environ, start_response)

    return app


def build_wsgi(config: StackConfig) -> Any:
    """The WSGI protect() stack, its client limit in memory or (``redis_url``) in Redis."""
    if config.redis_url:
        import redis

        from apisec.ratelimit.redis import RedisStore

        store: Any = RedisStore(redis.Redis.from_url(config.redis_url), prefix=config.redis_prefix)
    else:
        store = MemoryStore()
    limiter = RateLimiter(FixedWindow(config.quota, 3600), store, clock=FakeClock(START))
    return wsgi.protect(gated_wsgi(wsgi_app), client_limiter=limiter, **_options(config))


def wsgi_from_env() -> Any:
    """Gunicorn's app factory (``tests.support.server_apps:wsgi_from_env()``)."""
    return build_wsgi(StackConfig.from_env(os.environ))
