"""protect(): the whole stack in the documented order, in one call."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from apisec._types import ASGIApp
from apisec.apikeys import ApiKeyService, AsyncApiKeyService
from apisec.asgi._auth import AuthMiddleware
from apisec.asgi._body import BodyLimitMiddleware
from apisec.asgi._cors import CORSMiddleware
from apisec.asgi._headers import SecurityHeadersMiddleware
from apisec.asgi._https import HTTPSRedirectMiddleware
from apisec.asgi._oauth import TokenEndpoint
from apisec.asgi._problems import ProblemDetailsMiddleware
from apisec.asgi._ratelimit import RateLimitMiddleware
from apisec.asgi._webhooks import Verifier, WebhookMiddleware
from apisec.clientaddr import DEFAULT_IPV6_PREFIX, TrustedProxies
from apisec.cors import CorsPolicy
from apisec.headers import RouteLifecycles, SecurityHeaders
from apisec.oauth import AsyncClientCredentialsEndpoint, ClientCredentialsEndpoint
from apisec.ratelimit import AsyncRateLimiter, RateLimiter
from apisec.tokens import AsyncTokenService, TokenService

__all__ = ["protect"]


def protect(
    app: ASGIApp,
    *,
    tokens: TokenService | AsyncTokenService | None = None,
    keys: ApiKeyService | AsyncApiKeyService | None = None,
    api_key_header: str = "X-API-Key",
    accept_bearer_keys: bool = False,
    scopes: Mapping[str, Sequence[str]] | None = None,
    public_paths: Iterable[str] = (),
    websocket_auth: bool = True,
    cors: CorsPolicy | None = None,
    headers: SecurityHeaders | None = None,
    lifecycles: RouteLifecycles | None = None,
    client_limiter: RateLimiter | AsyncRateLimiter | None = None,
    principal_limiter: RateLimiter | AsyncRateLimiter | None = None,
    max_body: int | None = 1 << 20,
    webhooks: Mapping[str, Verifier] | None = None,
    token_endpoint: AsyncClientCredentialsEndpoint | ClientCredentialsEndpoint | None = None,
    token_path: str = "/oauth/token",  # noqa: S107 - a path, not a password
    https: bool = False,
    https_host: str | None = None,
    proxies: TrustedProxies | None = None,
    ipv6_prefix: int = DEFAULT_IPV6_PREFIX,
    type_base: str | None = None,
    rewrite_errors: bool = True,
) -> ASGIApp:
    """Wrap ``app`` in apisec's middleware, outermost first:

    1. :class:`SecurityHeadersMiddleware` — outermost, so every response
       carries the headers: the app's, each refusal below, a preflight, a 500.
    2. :class:`CORSMiddleware` (with ``cors``) — preflights answered before
       anything is spent; refusals below (401, 429, 500) keep their CORS
       headers so the browser lets the front end read them.
    3. :class:`ProblemDetailsMiddleware` — unexpected exceptions and the
       framework's own error pages become problems (and still pass 1 and 2).
    4. :class:`HTTPSRedirectMiddleware` (with ``https=True``).
    5. :class:`RateLimitMiddleware` per client (``client_limiter``) — before
       authentication, so guessing credentials spends a budget.
    6. :class:`BodyLimitMiddleware` (``max_bytes=max_body``; None to skip).
    7. :class:`WebhookMiddleware` (``webhooks``: path to verifier) — those
       paths are signed by their sender and need no token — and
       :class:`TokenEndpoint` (``token_endpoint`` at ``token_path``), which
       authenticates OAuth clients itself.
    8. :class:`AuthMiddleware` (with ``tokens`` and/or ``keys``); ``public_paths``
       are served without credentials; ``scopes`` per path prefix.
    9. :class:`RateLimitMiddleware` per principal (``principal_limiter``).

    WebSocket handshakes are authenticated too (``websocket_auth=True``, the
    default here, unlike a bare :class:`AuthMiddleware`): a refused one is
    closed with code 1008 before it is accepted. Browsers cannot send
    ``Authorization`` on a WebSocket; for browser clients pass
    ``websocket_auth=False`` and authenticate in the handler (a short-lived
    ticket), checking ``Origin`` there too.

    Every layer renders its own refusal in place, so the layers outside it
    still decorate it. Each stays usable on its own.
    """
    public = list(public_paths)
    if principal_limiter is not None:
        app = RateLimitMiddleware(app, principal_limiter, "principal", proxies=proxies)
    if tokens is not None or keys is not None:
        app = AuthMiddleware(
            app,
            tokens=tokens,
            keys=keys,
            api_key_header=api_key_header,
            accept_bearer_keys=accept_bearer_keys,
            exclude_paths=[*public, *(webhooks or {})],  # signed by their senders
            scopes=scopes,
            proxies=proxies,
            websocket=websocket_auth,
        )
    if webhooks:
        app = WebhookMiddleware(app, webhooks)
    if token_endpoint is not None:
        app = TokenEndpoint(app, token_endpoint, token_path)
    if max_body is not None:
        app = BodyLimitMiddleware(app, max_body)
    if client_limiter is not None:
        app = RateLimitMiddleware(app, client_limiter, proxies=proxies, ipv6_prefix=ipv6_prefix)
    if https:
        app = HTTPSRedirectMiddleware(app, host=https_host, proxies=proxies)
    app = ProblemDetailsMiddleware(app, type_base=type_base, rewrite_errors=rewrite_errors)
    if cors is not None:
        app = CORSMiddleware(app, cors)
    return SecurityHeadersMiddleware(app, headers, lifecycles=lifecycles)
