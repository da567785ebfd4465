"""FastAPI integration: security schemes that show in OpenAPI, per-route limits, webhooks.

Built on :mod:`apisec.asgi` (wrap the app with :func:`apisec.asgi.protect`
for headers, CORS, limits and authentication) and adds what only FastAPI
can do:

* :class:`Bearer` and :class:`ApiKey` — subclasses of FastAPI's
  ``HTTPBearer`` and ``APIKeyHeader``, so ``/openapi.json`` lists the
  schemes and each operation's scopes; ``Depends(Bearer("orders:read"))``
  is the caller's :class:`~apisec.authz.Principal`;
* :class:`RateLimit` — one route's own limit, with the rate-limit headers;
* :class:`WebhookBody` — the verified raw body of a webhook delivery;
* :func:`install` — FastAPI's own errors (404, 405, 422, ``HTTPException``,
  crashes) as problem+json, and services for the dependencies when no
  middleware authenticated the request.

``import apisec.fastapi`` does not import FastAPI; the first name used does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from apisec._lazy import lazy_attributes

if TYPE_CHECKING:
    from apisec._fastapi import ApiKey, Bearer, RateLimit, WebhookBody, install

__all__ = ["ApiKey", "Bearer", "RateLimit", "WebhookBody", "install"]

__getattr__ = lazy_attributes(__name__, "apisec._fastapi", __all__)
