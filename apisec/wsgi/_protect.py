"""protect() (WSGI): the whole stack in the documented order, in one call."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from apisec._types import WSGIApp
from apisec.apikeys import ApiKeyService
from apisec.clientaddr import DEFAULT_IPV6_PREFIX, TrustedProxies
from apisec.cors import CorsPolicy
from apisec.headers import RouteLifecycles, SecurityHeaders
from apisec.oauth import ClientCredentialsEndpoint
from apisec.ratelimit import RateLimiter
from apisec.tokens import TokenService
from apisec.webhooks import WebhookVerifier
from apisec.wsgi._auth import AuthMiddleware
from apisec.wsgi._body import BodyLimitMiddleware
from apisec.wsgi._cors import CORSMiddleware
from apisec.wsgi._headers import SecurityHeadersMiddleware
from apisec.wsgi._https import HTTPSRedirectMiddleware
from apisec.wsgi._oauth import TokenEndpoint
from apisec.wsgi._problems import ProblemDetailsMiddleware
from apisec.wsgi._ratelimit import RateLimitMiddleware
from apisec.wsgi._webhooks import WebhookMiddleware

__all__ = ["protect"]


def protect(
    app: WSGIApp,
    *,
    tokens: TokenService | None = None,
    keys: ApiKeyService | None = None,
    api_key_header: str = "X-API-Key",
    accept_bearer_keys: bool = False,
    scopes: Mapping[str, Sequence[str]] | None = None,
    public_paths: Iterable[str] = (),
    cors: CorsPolicy | None = None,
    headers: SecurityHeaders | None = None,
    lifecycles: RouteLifecycles | None = None,
    client_limiter: RateLimiter | None = None,
    principal_limiter: RateLimiter | None = None,
    max_body: int | None = 1 << 20,
    webhooks: Mapping[str, WebhookVerifier] | None = None,
    token_endpoint: ClientCredentialsEndpoint | None = None,
    token_path: str = "/oauth/token",  # noqa: S107 - a path, not a password
    https: bool = False,
    https_host: str | None = None,
    proxies: TrustedProxies | None = None,
    ipv6_prefix: int = DEFAULT_IPV6_PREFIX,
    type_base: str | None = None,
    rewrite_errors: bool = True,
) -> WSGIApp:
    """Wrap a WSGI ``app`` in apisec's middleware.

    The same stack, order and reasons as :func:`apisec.asgi.protect`, over
    the synchronous services (:class:`~apisec.tokens.TokenService`,
    :class:`~apisec.apikeys.ApiKeyService`, :class:`~apisec.ratelimit.RateLimiter`).
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
