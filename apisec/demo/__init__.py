"""``apisec demo``: a small API behind the whole apisec stack, and a page that calls it.

The API (``--port``, 8000) has password login guarded against brute force,
refresh tokens that rotate in a ``__Host-`` cookie, a bearer route that needs
a scope, an API-key route, per-client and per-caller rate limits with their
headers, CORS for the page's origin only, security headers, RFC 9457
problems for every error, and a Standard Webhooks receiver. The page
(``--web-port``, 8001) is another origin whose buttons call the API with
``fetch``, so CORS, 401/403/429 and refresh happen in a real browser.

State lives in memory, or in Redis with ``redis_url``. The app is
framework-free (a tiny ASGI router); uvicorn serves it (``apisec[demo]``).

>>> config = DemoConfig(port=0, web_port=0)
>>> config.host
'127.0.0.1'
"""

from __future__ import annotations

from apisec.demo._api import DemoApi, DemoCredentials, build_api
from apisec.demo._serve import DemoConfig, run
from apisec.demo._web import build_web

__all__ = ["DemoApi", "DemoConfig", "DemoCredentials", "build_api", "build_web", "run"]
