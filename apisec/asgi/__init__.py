"""ASGI middleware: the apisec core in front of any ASGI application.

Pure ASGI — no framework is imported — so the same middleware serves
Starlette, FastAPI, Litestar, Falcon's ASGI app, Django's ASGI handler or a
bare ASGI callable. Each middleware is a thin translation: read what the
request says, ask the core, render the decision. :func:`protect` stacks them
in the documented order; :mod:`apisec.wsgi` has the same names for WSGI.

>>> from apisec.tokens import SigningKey, TokenService
>>> async def app(scope, receive, send): ...
>>> tokens = TokenService(SigningKey.generate("EdDSA"), issuer="https://auth.example.com",
...                       audience="https://api.example.com")
>>> protected = protect(app, tokens=tokens, public_paths=["/health"])
"""

from __future__ import annotations

from apisec.asgi._auth import ApiKeyAuthMiddleware, AuthMiddleware, BearerAuthMiddleware
from apisec.asgi._body import BodyLimitMiddleware
from apisec.asgi._cors import CORSMiddleware
from apisec.asgi._headers import SecurityHeadersMiddleware
from apisec.asgi._https import HTTPSRedirectMiddleware
from apisec.asgi._oauth import TokenEndpoint
from apisec.asgi._problems import ProblemDetailsMiddleware
from apisec.asgi._protect import protect
from apisec.asgi._ratelimit import RateLimitMiddleware
from apisec.asgi._webhooks import WEBHOOK_BODY_KEY, WebhookMiddleware, read_body, verified_body
from apisec.authz import PRINCIPAL_KEY, get_principal

__all__ = [
    "PRINCIPAL_KEY",
    "WEBHOOK_BODY_KEY",
    "ApiKeyAuthMiddleware",
    "AuthMiddleware",
    "BearerAuthMiddleware",
    "BodyLimitMiddleware",
    "CORSMiddleware",
    "HTTPSRedirectMiddleware",
    "ProblemDetailsMiddleware",
    "RateLimitMiddleware",
    "SecurityHeadersMiddleware",
    "TokenEndpoint",
    "WebhookMiddleware",
    "get_principal",
    "protect",
    "read_body",
    "verified_body",
]
