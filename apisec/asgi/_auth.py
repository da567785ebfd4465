"""Authentication middleware: bearer tokens, API keys, or either."""

from __future__ import annotations

from collections.abc import Container, Iterable, Mapping, Sequence

from apisec._adapter_core import AuthCore, proxies_or_default
from apisec._async import resolved
from apisec._types import ASGIApp, Receive, Scope, Send
from apisec.apikeys import ApiKeyService, AsyncApiKeyService
from apisec.asgi._base import client_of, getter, route_path, send_problem
from apisec.audit import audit_context
from apisec.authz import PRINCIPAL_KEY, Principal
from apisec.clientaddr import TrustedProxies
from apisec.errors import ApiSecError
from apisec.tokens import AsyncTokenService, TokenService

__all__ = ["ApiKeyAuthMiddleware", "AuthMiddleware", "BearerAuthMiddleware", "authenticate"]


class AuthMiddleware:
    """Authenticate every request by bearer token or API key; publish the principal.

    The :class:`~apisec.authz.Principal` lands in
    ``scope["state"]["apisec.principal"]`` (read it with
    :func:`apisec.authz.get_principal`). Refusals are rendered here:

    * no credential: 401 with a challenge and no error code (RFC 6750 §3);
    * a bad or expired token: 401 ``error="invalid_token"``; a bad API key:
      401 with the ``ApiKey`` challenge;
    * a repeated ``Authorization`` or API-key header, two credentials at
      once, a malformed value, or a credential in the query string: 400
      (``error="invalid_request"`` for bearer);
    * a route's scopes missing: 403 (``error="insufficient_scope"``).

    Args:
        app: the ASGI application.
        tokens: a :class:`~apisec.tokens.TokenService` (or async twin) for bearer tokens.
        keys: an :class:`~apisec.apikeys.AsyncApiKeyService` (or a sync one
            over a memory store) for API keys.
        api_key_header: the header carrying API keys.
        accept_bearer_keys: also take API keys as ``Authorization: Bearer <key>``
            (told apart from JWTs by their checksummed format).
        exclude_paths: path prefixes served without authentication
            (``/health`` covers ``/health/live``, never ``/healthz``). A path
            a router could read two ways is exempt only if both readings are.
        scopes: scopes per path prefix, optionally per method
            (``{"GET /orders": ["orders:read"], "POST /orders": ["orders:write"]}``).
        allow_query_token: accept ``?access_token=`` (RFC 6750 §2.3; off:
            URLs end up in logs and ``Referer`` headers).
        realm: the challenge's realm.
        websocket: also authenticate WebSocket handshakes (refused ones are
            closed with code 1008 before they are accepted); by default
            WebSocket scopes pass through untouched.
        proxies: which forwarding headers name the client (for audit events).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        tokens: TokenService | AsyncTokenService | None = None,
        keys: ApiKeyService | AsyncApiKeyService | None = None,
        api_key_header: str = "X-API-Key",
        accept_bearer_keys: bool = False,
        exclude_paths: Iterable[str] = (),
        scopes: Mapping[str, Sequence[str]] | None = None,
        allow_query_token: bool = False,
        realm: str = "api",
        websocket: bool = False,
        proxies: TrustedProxies | None = None,
    ) -> None:
        self.app = app
        self.core: AuthCore[ApiKeyService | AsyncApiKeyService] = AuthCore(
            mode="asgi",
            tokens=tokens,
            keys=keys,
            api_key_header=api_key_header,
            accept_bearer_keys=accept_bearer_keys,
            exclude_paths=exclude_paths,
            scopes=scopes,
            allow_query_token=allow_query_token,
            realm=realm,
        )
        self.websocket = websocket
        self.proxies = proxies_or_default(proxies)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind != "http" and not (kind == "websocket" and self.websocket):
            await self.app(scope, receive, send)
            return
        core = self.core
        method = scope.get("method", "GET")
        path = route_path(scope)
        if core.skips(method, path):
            await self.app(scope, receive, send)
            return
        client = client_of(scope, self.proxies)
        with audit_context(client=client):
            try:
                principal = await self._authenticate(scope, method, path)
            except ApiSecError as exc:
                if kind == "websocket":
                    await send({"type": "websocket.close", "code": 1008})
                    return
                await send_problem(send, scope, exc, core.challenges(exc))
                return
        state = scope.get("state")
        if state is None:
            state = scope["state"] = {}
        state[PRINCIPAL_KEY] = principal
        with audit_context(client=client, principal=principal.id):
            await self.app(scope, receive, send)

    async def _authenticate(self, scope: Scope, method: str, path: str) -> Principal:
        principal = await authenticate(self.core, scope)
        if principal is None:
            raise self.core.missing()
        return self.core.authorize(principal, method, path)


async def authenticate(
    core: AuthCore[ApiKeyService | AsyncApiKeyService],
    scope: Scope,
    kinds: Container[str] = ("token", "api_key"),
) -> Principal | None:
    """The principal of the request's one credential; None when it carries none of ``kinds``.

    Shared by the middleware and the framework integrations (``apisec.fastapi``),
    so a credential is parsed and verified the same way everywhere. Raises the
    credential's ``ApiSecError`` (malformed, repeated, invalid, expired).
    """
    query = scope.get("query_string") or b""
    credential = core.credential(getter(scope), query.decode("latin-1"))
    if credential is None or credential[0] not in kinds:
        return None
    kind, value = credential
    if kind == "token" or core.keys is None:  # API keys come only with a key service
        return core.verify_token(value)
    return Principal.from_api_key(await resolved(core.keys.authenticate(value)))


class BearerAuthMiddleware(AuthMiddleware):
    """:class:`AuthMiddleware` for bearer access tokens only (same options)."""

    def __init__(
        self,
        app: ASGIApp,
        tokens: TokenService | AsyncTokenService,
        *,
        exclude_paths: Iterable[str] = (),
        scopes: Mapping[str, Sequence[str]] | None = None,
        allow_query_token: bool = False,
        realm: str = "api",
        websocket: bool = False,
        proxies: TrustedProxies | None = None,
    ) -> None:
        super().__init__(
            app,
            tokens=tokens,
            exclude_paths=exclude_paths,
            scopes=scopes,
            allow_query_token=allow_query_token,
            realm=realm,
            websocket=websocket,
            proxies=proxies,
        )


class ApiKeyAuthMiddleware(AuthMiddleware):
    """:class:`AuthMiddleware` for API keys only, in ``header`` (same options)."""

    def __init__(
        self,
        app: ASGIApp,
        keys: ApiKeyService | AsyncApiKeyService,
        header: str = "X-API-Key",
        *,
        accept_bearer_keys: bool = False,
        exclude_paths: Iterable[str] = (),
        scopes: Mapping[str, Sequence[str]] | None = None,
        realm: str = "api",
        websocket: bool = False,
        proxies: TrustedProxies | None = None,
    ) -> None:
        super().__init__(
            app,
            keys=keys,
            api_key_header=header,
            accept_bearer_keys=accept_bearer_keys,
            exclude_paths=exclude_paths,
            scopes=scopes,
            realm=realm,
            websocket=websocket,
            proxies=proxies,
        )
