"""The demo API: a few routes behind the whole apisec stack, through ``protect``."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import secrets
from collections.abc import Awaitable
from typing import Any, TypeVar

import attrs

from apisec._types import ASGIApp
from apisec.apikeys import ApiKeyService, AsyncApiKeyService
from apisec.asgi import WEBHOOK_BODY_KEY, protect
from apisec.authz import require_principal
from apisec.clientaddr import client_key
from apisec.cors import CorsPolicy
from apisec.demo._router import JSONResponse, Request, Router
from apisec.errors import AuthenticationError, PermissionDenied
from apisec.headers import SecurityHeaders
from apisec.login import AsyncLoginGuard
from apisec.passwords import PasswordHasher
from apisec.ratelimit import AsyncRateLimiter, SlidingWindow, TokenBucket
from apisec.tokens import (
    AsyncTokenService,
    InvalidToken,
    KeyRing,
    RefreshCookie,
    SigningKey,
    TokenService,
)
from apisec.validation import string, validate
from apisec.webhooks import MemoryReplayGuard, WebhookVerifier, generate_secret

__all__ = ["DemoApi", "DemoCredentials", "build_api"]

T = TypeVar("T")

USERNAME = "demo"
USER_SCOPES = ("orders:read",)
KEY_SCOPES = ("reports:read",)
WEBHOOK_PATH = "/webhooks/demo"
#: Every authenticated caller may make this many calls in ``PRINCIPAL_WINDOW`` seconds.
PRINCIPAL_LIMIT, PRINCIPAL_WINDOW = 10, 10.0
#: Every client address gets a bucket of this many requests, refilled at one per second.
CLIENT_BURST = 60
EXPOSED = [
    "RateLimit",
    "RateLimit-Policy",
    "Retry-After",
    "WWW-Authenticate",
    "X-RateLimit-Limit",
    "X-RateLimit-Remaining",
    "X-RateLimit-Reset",
]
REFRESH_REFUSED = "The refresh token is invalid, expired, revoked or was already used."
ORDERS = [
    {"id": 1, "item": "pen", "quantity": 2},
    {"id": 2, "item": "notebook", "quantity": 1},
]


@attrs.frozen
class DemoCredentials:
    """What the demo creates at start and shows once (never in ``repr``)."""

    username: str
    password: str = attrs.field(repr=False)
    api_key: str = attrs.field(repr=False)
    webhook_secret: str = attrs.field(repr=False)


@attrs.frozen
class DemoApi:
    """The protected API and the credentials seeded into it."""

    app: ASGIApp
    credentials: DemoCredentials


@attrs.define(kw_only=True)
class _LoginForm:
    username: str = string(min_length=1, max_length=64)
    password: str = string(min_length=1, max_length=1024, trim=False, normalize=None)


async def _done(value: T | Awaitable[T]) -> T:
    """The result of a call to a sync (memory) or async (Redis) service."""
    if inspect.isawaitable(value):
        return await value
    return value


def _stores(redis_client: Any) -> dict[str, Any]:
    """Memory stores (the sync services over memory never block), or Redis ones."""
    if redis_client is None:
        return {"rate": None, "tokens": None, "keys": None, "replay": MemoryReplayGuard()}
    from apisec.apikeys.redis import AsyncRedisApiKeyStore  # noqa: PLC0415 - redis is optional
    from apisec.ratelimit.redis import AsyncRedisStore  # noqa: PLC0415
    from apisec.tokens.redis import AsyncRedisRefreshTokenStore  # noqa: PLC0415
    from apisec.webhooks.redis import AsyncRedisReplayGuard  # noqa: PLC0415

    return {
        "rate": AsyncRedisStore(redis_client, prefix="apisec-demo:"),
        "tokens": AsyncRedisRefreshTokenStore(redis_client, prefix="apisec-demo:rt:"),
        "keys": AsyncRedisApiKeyStore(redis_client, prefix="apisec-demo:key:"),
        "replay": AsyncRedisReplayGuard(redis_client, prefix="apisec-demo:webhook:"),
    }


async def build_api(
    *, api_origin: str, web_origin: str, redis_client: Any = None, hasher: PasswordHasher | None
) -> DemoApi:
    """Seed a user, an API key and a webhook secret, and build the protected app.

    Args:
        api_origin: the API's own origin (the tokens' issuer and audience).
        web_origin: the one front-end origin CORS lets in, with credentials.
        redis_client: a ``redis.asyncio.Redis`` to keep all state in, or None (memory).
        hasher: the password hasher (None: the default scrypt cost).
    """
    stores = _stores(redis_client)
    hasher = hasher or PasswordHasher()
    password = secrets.token_urlsafe(12)
    key = SigningKey.generate("EdDSA", kid="demo-" + secrets.token_hex(4))
    token_options: dict[str, Any] = {
        "issuer": api_origin,
        "audience": api_origin,
        "access_ttl": 300,
        "refresh_ttl": 3600,
    }
    tokens: TokenService | AsyncTokenService
    keys: ApiKeyService | AsyncApiKeyService
    if redis_client is None:
        tokens = TokenService(KeyRing(key), **token_options)
        keys = ApiKeyService(default_prefix="sk_demo")
    else:
        tokens = AsyncTokenService(KeyRing(key), store=stores["tokens"], **token_options)
        keys = AsyncApiKeyService(stores["keys"], default_prefix="sk_demo")
    new_key = await _done(keys.create("demo-service", scopes=KEY_SCOPES))
    webhook_secret = generate_secret("standard")
    handlers = _Handlers(
        tokens=tokens,
        guard=AsyncLoginGuard(stores["rate"], prefix="apisec-demo:login"),
        cookie=RefreshCookie.for_service(tokens),
        hasher=hasher,
        users={USERNAME: await asyncio.to_thread(hasher.hash, password)},
        web_origin=web_origin,
        store="memory" if redis_client is None else "redis",
    )
    app = protect(
        handlers.router(),
        tokens=tokens,
        keys=keys,
        public_paths=["/health", "/auth"],
        scopes={
            "GET /api/orders": ["orders:read"],
            "POST /api/orders": ["orders:write"],
            "/api/reports": ["reports:read"],
        },
        cors=CorsPolicy(
            [web_origin],
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type", "X-API-Key"],
            expose_headers=EXPOSED,
            allow_credentials=True,
        ),
        headers=SecurityHeaders(),
        client_limiter=AsyncRateLimiter(
            TokenBucket(CLIENT_BURST, 1, name="per-client"), stores["rate"], prefix="apisec-demo:c"
        ),
        principal_limiter=AsyncRateLimiter(
            SlidingWindow(PRINCIPAL_LIMIT, PRINCIPAL_WINDOW, name="per-caller"),
            stores["rate"],
            prefix="apisec-demo:p",
        ),
        max_body=64 * 1024,
        webhooks={WEBHOOK_PATH: WebhookVerifier(webhook_secret, replay_guard=stores["replay"])},
    )
    credentials = DemoCredentials(
        username=USERNAME,
        password=password,
        api_key=new_key.plaintext,
        webhook_secret=webhook_secret,
    )
    return DemoApi(app=app, credentials=credentials)


@attrs.define(kw_only=True)
class _Handlers:
    """The routes. Authentication, scopes, limits and webhooks happen in front of them."""

    tokens: TokenService | AsyncTokenService
    guard: AsyncLoginGuard
    cookie: RefreshCookie
    hasher: PasswordHasher
    users: dict[str, str] = attrs.field(repr=False)
    web_origin: str
    store: str

    def router(self) -> Router:
        router = Router()
        router.add("GET", "/health", self.health)
        router.add("POST", "/auth/login", self.login)
        router.add("POST", "/auth/refresh", self.refresh)
        router.add("POST", "/auth/logout", self.logout)
        router.add("GET", "/api/me", self.me)
        router.add("GET", "/api/orders", self.list_orders)
        router.add("POST", "/api/orders", self.create_order)
        router.add("GET", "/api/reports", self.reports)
        router.add("POST", WEBHOOK_PATH, self.webhook)
        return router

    async def health(self, request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "store": self.store})

    async def login(self, request: Request) -> JSONResponse:
        form = validate(_LoginForm, await request.json())
        peer = request.scope.get("client")
        client = client_key(peer[0] if peer else "unknown")  # the limiting key, as everywhere
        stored = self.users.get(form.username)

        async def verify() -> bool:
            # Hashing is CPU-heavy: off the event loop. Unknown users cost the same.
            return await asyncio.to_thread(self.hasher.verify, form.password, stored)

        await self.guard.attempt(form.username, client, verify)
        pair = await _done(self.tokens.issue(form.username, scope=" ".join(USER_SCOPES)))
        body = {**_access(pair), "scope": " ".join(USER_SCOPES)}
        return JSONResponse(body, headers=[self.cookie.set(pair.refresh_token)])

    def _check_origin(self, request: Request) -> None:
        # The cookie is SameSite=Strict; a cookie-authenticated POST still checks Origin.
        origins = request.headers("origin")
        if origins and origins != [self.web_origin]:
            raise PermissionDenied("cookie request from a foreign origin")

    async def refresh(self, request: Request) -> JSONResponse:
        self._check_origin(request)
        presented = self.cookie.read(request.headers("cookie"))
        if presented is None:
            raise AuthenticationError("no refresh cookie", detail="No refresh token was sent.")
        try:
            pair = await _done(self.tokens.refresh(presented))
        except InvalidToken as exc:
            # Reuse detected, revoked, expired or unknown: the cookie is of no further use.
            clear = [self.cookie.clear()]
            raise type(exc)(exc.message, detail=REFRESH_REFUSED, headers=clear) from exc
        return JSONResponse(_access(pair), headers=[self.cookie.set(pair.refresh_token)])

    async def logout(self, request: Request) -> JSONResponse:
        self._check_origin(request)
        presented = self.cookie.read(request.headers("cookie"))
        if presented is not None:
            with contextlib.suppress(InvalidToken):  # malformed: nothing to revoke
                await _done(self.tokens.revoke(presented))
        return JSONResponse(None, status=204, headers=[self.cookie.clear()])

    async def me(self, request: Request) -> JSONResponse:
        principal = require_principal(request.scope)
        body = {"subject": principal.subject, "kind": principal.kind}
        return JSONResponse({**body, "scopes": sorted(principal.scopes)})

    async def list_orders(self, request: Request) -> JSONResponse:
        return JSONResponse({"orders": ORDERS})

    async def create_order(self, request: Request) -> JSONResponse:
        return JSONResponse({"created": True}, status=201)  # needs orders:write: nobody has it

    async def reports(self, request: Request) -> JSONResponse:
        principal = require_principal(request.scope)
        return JSONResponse({"report": "daily", "orders": len(ORDERS), "for": principal.subject})

    async def webhook(self, request: Request) -> JSONResponse:
        body: bytes = request.scope["state"][WEBHOOK_BODY_KEY]  # verified, raw
        return JSONResponse({"accepted": True, "bytes": len(body)}, status=202)


def _access(pair: Any) -> dict[str, Any]:
    """The token response without the refresh token: that one lives in the cookie."""
    return {
        "access_token": pair.access_token,
        "token_type": pair.token_type,
        "expires_in": pair.expires_in,
    }
