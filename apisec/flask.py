"""Flask integration: the :mod:`apisec.wsgi` stack around a Flask app, plus per-view rules.

:class:`ApiSec` wraps ``app.wsgi_app`` with :func:`apisec.wsgi.protect`
(security headers, CORS, problem details, HTTPS, the per-client limit, the
body limit) and authenticates inside Flask, once the route is known, so the
decorators can exempt a view, narrow it to API keys, demand scopes, add
limits or verify a webhook. Every view is authenticated unless it says
otherwise (deny by default, also for URLs no view answers)::

    app = Flask(__name__)
    ApiSec(app, tokens=tokens, keys=keys, cors=policy, client_limiter=limiter)


    @app.get("/orders")
    @scopes("orders:read")
    def orders():
        return {"subject": principal().subject}

Flask is imported only when an :class:`ApiSec` is attached to an app.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from contextlib import ExitStack
from typing import TYPE_CHECKING, Any, TypeVar

from apisec._views import (
    LIMIT_KEY,
    Rendered,
    ViewGuard,
    api_key_only,
    limit,
    limit_headers,
    public,
    render_error,
    render_status,
    rules_of,
    scopes,
    webhook,
)
from apisec.authz import Principal, require_principal
from apisec.clientaddr import DEFAULT_IPV6_PREFIX, TrustedProxies
from apisec.cors import CorsPolicy
from apisec.errors import ApiSecError, ConfigurationError
from apisec.headers import RouteLifecycles, SecurityHeaders
from apisec.ratelimit import RateLimiter
from apisec.tokens import TokenService
from apisec.webhooks import WebhookVerifier
from apisec.wsgi import WEBHOOK_BODY_KEY, protect, verified_body

if TYPE_CHECKING:
    from flask import Flask, Request, Response
    from werkzeug.exceptions import HTTPException

__all__ = [
    "ApiSec",
    "api_key_only",
    "limit",
    "principal",
    "public",
    "scopes",
    "webhook",
    "webhook_body",
]

AppT = TypeVar("AppT", bound="Flask")
_AUDIT_KEY = "apisec.flask.audit"


def _unused(environ: Any, start_response: Any) -> Iterable[bytes]:
    return []  # pragma: no cover - only wrapped to validate the options


class ApiSec:
    """The apisec stack for a Flask app; ``ApiSec(app, ...)`` or ``ApiSec(...).init_app(app)``.

    The options are those of :func:`apisec.wsgi.protect` (the per-principal
    limit and the credentials are applied per view) and are validated here.
    ``init_app`` sets ``PROPAGATE_EXCEPTIONS`` so an unexpected exception
    reaches :class:`apisec.wsgi.ProblemDetailsMiddleware`, which logs it with
    the correlation id its 500 problem shows; Flask's own HTTP errors (404,
    405, ``abort()``) and every ``ApiSecError`` become problems through
    error handlers.
    """

    def __init__(
        self,
        app: Flask | None = None,
        *,
        tokens: TokenService | None = None,
        keys: Any = None,
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
        https: bool = False,
        https_host: str | None = None,
        proxies: TrustedProxies | None = None,
        ipv6_prefix: int = DEFAULT_IPV6_PREFIX,
        type_base: str | None = None,
        rewrite_errors: bool = True,
        realm: str = "api",
    ) -> None:
        self.guard = ViewGuard(
            tokens=tokens,
            keys=keys,
            api_key_header=api_key_header,
            accept_bearer_keys=accept_bearer_keys,
            scopes=scopes,
            public_paths=public_paths,
            principal_limiter=principal_limiter,
            proxies=proxies,
            realm=realm,
        )
        self._wrap = functools.partial(
            protect,
            cors=cors,
            headers=headers,
            lifecycles=lifecycles,
            client_limiter=client_limiter,
            max_body=max_body,
            https=https,
            https_host=https_host,
            proxies=proxies,
            ipv6_prefix=ipv6_prefix,
            type_base=type_base,
            rewrite_errors=rewrite_errors,
        )
        self._wrap(_unused)  # the middleware validate their options now, not on a request
        if app is not None:
            self.init_app(app)

    def init_app(self, app: AppT) -> AppT:
        """Wrap ``app.wsgi_app`` and register the hooks and error handlers; returns ``app``."""
        from werkzeug.exceptions import HTTPException

        if "apisec" in app.extensions:
            raise ConfigurationError("apisec is already attached to this app")
        app.wsgi_app = self._wrap(app.wsgi_app)  # type: ignore[method-assign, assignment]
        app.config["PROPAGATE_EXCEPTIONS"] = True
        app.before_request(self._before)
        app.after_request(self._after)
        app.teardown_request(self._teardown)
        app.register_error_handler(ApiSecError, self._api_error)
        app.register_error_handler(HTTPException, self._http_error)
        app.extensions["apisec"] = self
        return app

    def _before(self) -> Response | None:
        from flask import current_app, request

        view = current_app.view_functions.get(request.endpoint) if request.endpoint else None
        environ = request.environ
        refused = self.guard.check(environ, rules_of(view), _verify)
        if refused is not None:
            return _response(refused)
        audit = ExitStack()  # events the view emits name its client and principal
        audit.enter_context(self.guard.audit(environ))
        environ[_AUDIT_KEY] = audit
        return None

    @staticmethod
    def _after(response: Response) -> Response:
        decision = _request().environ.get(LIMIT_KEY)
        for name, value in limit_headers(decision, response.headers.get("X-RateLimit-Remaining")):
            response.headers[name] = value
        return response

    @staticmethod
    def _teardown(exc: BaseException | None) -> None:
        audit = _request().environ.pop(_AUDIT_KEY, None)
        if audit is not None:
            audit.close()

    @staticmethod
    def _api_error(error: ApiSecError) -> Response:
        return _response(render_error(_request().environ, error))

    @staticmethod
    def _http_error(error: HTTPException) -> Response | HTTPException:
        if error.code is None or error.code < 400:
            return error  # redirects raised by the router stay redirects
        if error.response is not None:
            return error  # abort(response): the app chose its answer
        own = error.description if error.description != type(error).description else None
        kept = list(error.get_headers())  # Allow (405), WWW-Authenticate (401)...
        return _response(
            render_status(_request().environ, error.code, kept, detail=own, error=error)
        )


def _request() -> Request:
    from flask import request

    return request


def _response(rendered: Rendered) -> Response:
    from flask import Response

    status, headers, body = rendered
    return Response(body, status=status, headers=headers)


def _verify(verifier: WebhookVerifier, max_bytes: int) -> bytes:
    return verified_body(_request().environ, verifier, max_bytes)


def principal() -> Principal:
    """The authenticated caller of this request (401 problem on a public view without one)."""
    return require_principal(_request().environ)


def webhook_body() -> bytes:
    """The verified raw body of a :func:`webhook` view (``request.get_data()`` returns it too)."""
    body = _request().environ.get(WEBHOOK_BODY_KEY)
    if not isinstance(body, bytes):
        raise ConfigurationError("webhook_body() is for views decorated with @webhook")
    return body
