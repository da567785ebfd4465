"""WSGI middleware: the apisec core in front of any WSGI application.

The same names as :mod:`apisec.asgi`, for Flask, Django, Falcon, Bottle or a
bare WSGI callable, over the synchronous services. No framework is imported.

>>> from apisec.tokens import SigningKey, TokenService
>>> def app(environ, start_response): ...
>>> tokens = TokenService(SigningKey.generate("EdDSA"), issuer="https://auth.example.com",
...                       audience="https://api.example.com")
>>> protected = protect(app, tokens=tokens, public_paths=["/health"])
"""

from __future__ import annotations

from apisec.authz import PRINCIPAL_KEY, get_principal
from apisec.wsgi._auth import ApiKeyAuthMiddleware, AuthMiddleware, BearerAuthMiddleware
from apisec.wsgi._body import BodyLimitMiddleware
from apisec.wsgi._cors import CORSMiddleware
from apisec.wsgi._headers import SecurityHeadersMiddleware
from apisec.wsgi._https import HTTPSRedirectMiddleware
from apisec.wsgi._oauth import TokenEndpoint
from apisec.wsgi._problems import ProblemDetailsMiddleware
from apisec.wsgi._protect import protect
from apisec.wsgi._ratelimit import RateLimitMiddleware
from apisec.wsgi._webhooks import WEBHOOK_BODY_KEY, WebhookMiddleware, read_body, verified_body

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
