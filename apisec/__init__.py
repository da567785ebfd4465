"""apisec: a framework-agnostic toolkit that secures HTTP APIs.

The main names are re-exported here; each concern lives in its own module
(``apisec.problems``, ``apisec.errors``, ``apisec.audit``, ...). They are
loaded on first use (PEP 562): ``import apisec`` stays cheap, which every
``apisec`` command pays for, while ``from apisec import TokenService`` gives
the same class as ``from apisec.tokens import TokenService``.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from apisec._lazy import lazy_exports

if TYPE_CHECKING:
    from apisec.apikeys import ApiKeyService, InvalidApiKey
    from apisec.audit import AuditEvent
    from apisec.cors import CorsDecision, CorsPolicy
    from apisec.errors import (
        ApiSecError,
        AuthenticationError,
        ClientError,
        ConfigurationError,
        MalformedProblem,
        PayloadTooLarge,
        PermissionDenied,
        StoreError,
        ValidationError,
    )
    from apisec.headers import ContentSecurityPolicy, SecurityHeaders
    from apisec.problems import FieldError, Problem, validation_problem
    from apisec.ratelimit import RateLimiter, RateLimitExceeded
    from apisec.ssrf import UnsafeURL, check_url
    from apisec.tokens import InvalidToken, KeyRing, SigningKey, TokenService
    from apisec.webhooks import WebhookError, WebhookSigner, WebhookVerifier

__version__ = "0.1.0"

# A library prints nothing by itself: without the application's logging setup,
# records stop here instead of reaching Python's last-resort stderr handler.
logging.getLogger("apisec").addHandler(logging.NullHandler())

__all__ = [
    "ApiKeyService",
    "ApiSecError",
    "AuditEvent",
    "AuthenticationError",
    "ClientError",
    "ConfigurationError",
    "ContentSecurityPolicy",
    "CorsDecision",
    "CorsPolicy",
    "FieldError",
    "InvalidApiKey",
    "InvalidToken",
    "KeyRing",
    "MalformedProblem",
    "PayloadTooLarge",
    "PermissionDenied",
    "Problem",
    "RateLimitExceeded",
    "RateLimiter",
    "SecurityHeaders",
    "SigningKey",
    "StoreError",
    "TokenService",
    "UnsafeURL",
    "ValidationError",
    "WebhookError",
    "WebhookSigner",
    "WebhookVerifier",
    "check_url",
    "validation_problem",
]

# Where each name of __all__ lives; tests/test_public_surface.py checks the two agree.
_EXPORTS = {
    "apisec.apikeys": ("ApiKeyService", "InvalidApiKey"),
    "apisec.audit": ("AuditEvent",),
    "apisec.cors": ("CorsDecision", "CorsPolicy"),
    "apisec.errors": (
        "ApiSecError",
        "AuthenticationError",
        "ClientError",
        "ConfigurationError",
        "MalformedProblem",
        "PayloadTooLarge",
        "PermissionDenied",
        "StoreError",
        "ValidationError",
    ),
    "apisec.headers": ("ContentSecurityPolicy", "SecurityHeaders"),
    "apisec.problems": ("FieldError", "Problem", "validation_problem"),
    "apisec.ratelimit": ("RateLimitExceeded", "RateLimiter"),
    "apisec.ssrf": ("UnsafeURL", "check_url"),
    "apisec.tokens": ("InvalidToken", "KeyRing", "SigningKey", "TokenService"),
    "apisec.webhooks": ("WebhookError", "WebhookSigner", "WebhookVerifier"),
}

__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)
