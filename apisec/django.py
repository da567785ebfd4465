"""Django integration: one middleware configured from ``settings.APISEC``, plus per-view rules.

Django-native rather than WSGI middleware around ``get_wsgi_application()``:
the per-view decorators need the resolved view (``process_view``), Django's
test client never passes through the WSGI callable, and Django's responses
(cookies, streaming) must survive untouched. So the middleware runs the same
protocol-free cores as :mod:`apisec.wsgi` (``CorsPolicy`` decisions,
``SecurityHeaders``, the per-client ``LimitCore``, the problem renderers, and
the :class:`~apisec._views.ViewGuard` that :mod:`apisec.flask` uses), in the
order of :func:`apisec.wsgi.protect`. ``request.META`` is the WSGI environ, so
the principal is at ``request.META["apisec.principal"]`` as on any WSGI app,
and at ``request.principal``::

    MIDDLEWARE = ["apisec.django.ApiSecMiddleware", ...]  # first: it answers for all below
    APISEC = {"tokens": "myapi.security.tokens", "cors": "myapi.security.cors"}

Django is imported only when the middleware is loaded.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import ExitStack
from typing import TYPE_CHECKING, Any

from apisec._adapter_core import LimitCore
from apisec._http import check_limit, declared_length, is_problem_or_json
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
from apisec.authz import Principal, get_principal, require_principal
from apisec.clientaddr import DEFAULT_IPV6_PREFIX, TrustedProxies
from apisec.cors import CorsPolicy, CorsRejected
from apisec.errors import ApiSecError, ConfigurationError, PayloadTooLarge
from apisec.headers import RouteLifecycles, SecurityHeaders
from apisec.ratelimit import Decision, RateLimiter
from apisec.tokens import TokenService
from apisec.webhooks import WebhookVerifier
from apisec.wsgi import WEBHOOK_BODY_KEY
from apisec.wsgi._base import TYPE_BASE_KEY, client_of, header_values, path_of
from apisec.wsgi._ratelimit import spend

if TYPE_CHECKING:
    from django.http import HttpRequest, HttpResponse, HttpResponseBase

__all__ = [
    "ApiSecMiddleware",
    "api_key_only",
    "handler400",
    "handler403",
    "handler404",
    "handler500",
    "limit",
    "principal",
    "public",
    "scopes",
    "webhook",
    "webhook_body",
]

_AUDIT_KEY = "apisec.django.audit"
_ROUTED_KEY = "apisec.django.routed"
#: APISEC entries that may name their object by dotted path.
_OBJECTS = frozenset(
    {"tokens", "keys", "cors", "headers", "lifecycles", "client_limiter", "principal_limiter"}
    | {"proxies"}
)


class ApiSecMiddleware:
    """apisec for Django: put it first in ``MIDDLEWARE`` and configure ``settings.APISEC``.

    ``APISEC`` takes the options of :func:`apisec.wsgi.protect` (objects, or
    dotted paths to them): ``tokens``, ``keys``, ``api_key_header``,
    ``accept_bearer_keys``, ``scopes``, ``public_paths``, ``cors``,
    ``headers``, ``lifecycles``, ``client_limiter``, ``principal_limiter``,
    ``max_body``, ``proxies``, ``ipv6_prefix``, ``type_base``,
    ``rewrite_errors``, ``realm``. HTTPS redirects are Django's own
    (``SECURE_SSL_REDIRECT``).
    """

    sync_capable = True
    async_capable = False

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        from django.conf import settings

        self.get_response = get_response
        self._configure(**_options(getattr(settings, "APISEC", None)))

    def _configure(
        self,
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
        headers = SecurityHeaders() if headers is None else headers
        if not isinstance(headers, SecurityHeaders):
            raise ConfigurationError("APISEC['headers'] must be a SecurityHeaders")
        if cors is not None and not isinstance(cors, CorsPolicy):
            raise ConfigurationError("APISEC['cors'] must be a CorsPolicy")
        if lifecycles is not None and not isinstance(lifecycles, RouteLifecycles):
            raise ConfigurationError("APISEC['lifecycles'] must be a RouteLifecycles")
        self.security = headers
        self.cors = cors
        self.lifecycles = lifecycles
        self.client_limit = None
        if client_limiter is not None:
            self.client_limit = LimitCore(
                mode="wsgi",
                limiter=client_limiter,
                key=None,
                exclude_paths=(),
                routes=None,
                cost=1,
                ipv6_prefix=ipv6_prefix,
            )
        self.max_body = None if max_body is None else check_limit(max_body)
        self.type_base = type_base
        self.rewrite_errors = rewrite_errors

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        environ = request.META
        if self.type_base is not None:
            environ[TYPE_BASE_KEY] = self.type_base
        with ExitStack() as audit:  # closed after the view: its events name client and principal
            environ[_AUDIT_KEY] = audit
            audit.enter_context(self.guard.audit(environ))
            preflight = self._preflight(environ)
            if preflight is not None:
                return self._secure(environ, preflight)
            response, decision = self._respond(request, environ)
        return self._secure(environ, self._cors(environ, _with_limits(environ, response, decision)))

    def _preflight(self, environ: dict[str, Any]) -> HttpResponseBase | None:
        """A CORS preflight answered without the app (204, or a 403 problem)."""
        origins = header_values(environ, "origin")
        if self.cors is None or not origins or environ.get("REQUEST_METHOD") != "OPTIONS":
            return None
        requested = header_values(environ, "access-control-request-method")
        if not requested:
            return None
        asked = header_values(environ, "access-control-request-headers")
        private = header_values(environ, "access-control-request-private-network")
        decision = self.cors.decide(
            "OPTIONS",
            origins[0],
            requested[0],
            asked[0] if asked else None,
            access_control_request_private_network=private[0] if private else None,
        )
        if decision.allowed:
            return _response((204, list(decision.headers), b""))
        refusal = CorsRejected(decision.reason or "refused")
        return _response(render_error(environ, refusal, decision.headers))

    def _respond(
        self, request: HttpRequest, environ: dict[str, Any]
    ) -> tuple[HttpResponseBase, Decision | None]:
        method, path = environ.get("REQUEST_METHOD", "GET"), path_of(environ)
        decision = None
        try:
            if self.client_limit is not None:
                key = self.client_limit.key_for(client_of(environ, self.guard.proxies), None, None)
                if key is not None:
                    decision = spend(self.client_limit.limiters(method, path), key, 1)
            declared = declared_length(header_values(environ, "content-length"))
            if self.max_body is not None and declared is not None and declared > self.max_body:
                raise PayloadTooLarge(f"declared {declared} > {self.max_body}")
        except ApiSecError as exc:
            return _response(render_error(environ, exc)), None
        response = self.get_response(request)
        if not environ.get(_ROUTED_KEY) and response.status_code == 404:
            # No view matched, so process_view never ran: deny by default, as the WSGI stack
            # does, so that the URL map is not revealed to callers without credentials.
            refused = self.guard.check(environ, rules_of(None), _no_webhook)
            if refused is not None:
                return _response(refused), decision
        if self.rewrite_errors:
            response = _rewritten(environ, response)
        return response, decision

    def process_view(
        self,
        request: HttpRequest,
        view: Callable[..., Any],
        args: Sequence[Any],
        kwargs: Mapping[str, Any],
    ) -> HttpResponseBase | None:
        """Authenticate, limit and verify for the resolved view; a refusal ends the request."""
        environ = request.META
        environ[_ROUTED_KEY] = True

        def verify(verifier: WebhookVerifier, max_bytes: int) -> bytes:
            return _verified_body(request, verifier, max_bytes)

        refused = self.guard.check(environ, rules_of(view), verify)
        if refused is not None:
            return _response(refused)
        request.principal = get_principal(environ)
        audit = environ.get(_AUDIT_KEY)
        if audit is not None:
            audit.enter_context(self.guard.audit(environ))
        return None

    def process_exception(
        self, request: HttpRequest, exception: Exception
    ) -> HttpResponseBase | None:
        """An exception from a view: a problem; a crash is a 500 whose id is in the log."""
        from django.core import signals
        from django.core.exceptions import BadRequest, PermissionDenied, SuspiciousOperation
        from django.http import Http404

        if isinstance(exception, ApiSecError):
            return _response(render_error(request.META, exception))
        if isinstance(exception, (Http404, PermissionDenied, BadRequest, SuspiciousOperation)):
            return None  # Django answers (and logs) these; the page is then rewritten
        signals.got_request_exception.send(sender=None, request=request)  # error trackers
        return _response(render_error(request.META, exception))

    def _cors(self, environ: dict[str, Any], response: HttpResponseBase) -> HttpResponseBase:
        """The actual-request CORS headers, replacing any the app set; ``Vary`` merged."""
        if self.cors is None:
            return response
        from django.utils.cache import patch_vary_headers

        origins = header_values(environ, "origin")
        method = environ.get("REQUEST_METHOD", "GET")
        decision = self.cors.decide(method, origins[0] if origins else None)
        for name in [n for n in response.headers if n.lower().startswith("access-control-")]:
            del response.headers[name]
        for name, value in decision.headers:
            if name.lower() == "vary":
                patch_vary_headers(response, [v.strip() for v in value.split(",") if v.strip()])
            else:
                response.headers[name] = value
        return response

    def _secure(self, environ: dict[str, Any], response: HttpResponseBase) -> HttpResponseBase:
        """The security headers the response does not set itself; ``Server`` & co removed."""
        for name in self.security.remove_lower:
            if name in response.headers:
                del response.headers[name]
        added = list(self.security.headers)
        if self.lifecycles is not None:
            added.extend(self.lifecycles.headers_for(path_of(environ)))
        for name, value in added:
            if name not in response.headers:
                response.headers[name] = value
        return response


def _options(config: object) -> dict[str, Any]:
    """``settings.APISEC`` checked against the options, dotted paths imported."""
    from django.utils.module_loading import import_string

    if config is None:
        return {}
    if not isinstance(config, Mapping):
        raise ConfigurationError("settings.APISEC must be a dict")
    known = set(inspect.signature(ApiSecMiddleware._configure).parameters) - {"self"}
    unknown = sorted(set(config) - known)
    if unknown:
        raise ConfigurationError(f"unknown APISEC settings {unknown}; known: {sorted(known)}")
    options = dict(config)
    for name in _OBJECTS & set(options):
        if isinstance(options[name], str):
            try:
                options[name] = import_string(options[name])
            except ImportError as exc:
                raise ConfigurationError(f"APISEC[{name!r}]: cannot import it") from exc
    return options


def _with_limits(
    environ: dict[str, Any], response: HttpResponseBase, client: Decision | None
) -> HttpResponseBase:
    """Rate-limit headers of the tightest budget: the view's, the client's, or the response's."""
    for decision in (environ.get(LIMIT_KEY), client):
        current = response.headers.get("X-RateLimit-Remaining")
        for name, value in limit_headers(decision, current):
            response.headers[name] = value
    return response


def _rewritten(environ: dict[str, Any], response: HttpResponseBase) -> HttpResponseBase:
    """Django's own error pages (HTML 404, 405, CSRF 403, 500...) as problems."""
    if response.status_code < 400 or response.streaming:
        return response
    if is_problem_or_json(response.headers.get("Content-Type")):
        return response
    problem = _response(render_status(environ, response.status_code, list(response.items())))
    problem.cookies = response.cookies
    return problem


def _response(rendered: Rendered) -> HttpResponse:
    """A Django response; repeated fields (two challenges) joined into one, as RFC 9110 allows."""
    from django.http import HttpResponse

    status, headers, body = rendered
    response = HttpResponse(body, status=status)
    joined: dict[str, list[str]] = {}
    for name, value in headers:
        joined.setdefault(name.lower(), []).append(value)
    for name, values in joined.items():
        response.headers[name] = ", ".join(values)
    return response


def _verified_body(request: HttpRequest, verifier: WebhookVerifier, max_bytes: int) -> bytes:
    declared = declared_length(header_values(request.META, "content-length"))
    if declared is not None and declared > max_bytes:
        raise PayloadTooLarge(f"declared {declared} > {max_bytes}")
    body: bytes = request.body  # Django's own read, cached for the view
    if len(body) > max_bytes:
        raise PayloadTooLarge(f"webhook body over {max_bytes} bytes")
    verifier.verify(body, request.headers)
    request.META[WEBHOOK_BODY_KEY] = body
    return body


def _no_webhook(verifier: WebhookVerifier, max_bytes: int) -> bytes:
    raise ConfigurationError("no view, no webhook")  # pragma: no cover - default rules


def principal(request: HttpRequest) -> Principal:
    """The authenticated caller (401 problem on a public view without one)."""
    return require_principal(request.META)


def webhook_body(request: HttpRequest) -> bytes:
    """The verified raw body of a :func:`webhook` view (``request.body`` is the same bytes)."""
    body = request.META.get(WEBHOOK_BODY_KEY)
    if not isinstance(body, bytes):
        raise ConfigurationError("webhook_body() is for views decorated with @webhook")
    return body


def _handler(status: int) -> Callable[[HttpRequest, Exception | None], HttpResponse]:
    def handler(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
        return _response(render_status(request.META, status, []))

    handler.__name__ = handler.__qualname__ = f"handler{status}"
    handler.__doc__ = f"Django's ``handler{status}`` as a {status} problem (point urls.py to it)."
    return handler


handler400 = _handler(400)
handler403 = _handler(403)
handler404 = _handler(404)


def handler500(request: HttpRequest) -> HttpResponse:
    """Django's ``handler500`` as a 500 problem whose correlation id is logged with the trace."""
    error = sys.exc_info()[1] or ApiSecError("handler500")
    return _response(render_error(request.META, error))
