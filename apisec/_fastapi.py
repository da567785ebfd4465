"""FastAPI integration, built on :mod:`apisec.asgi` (imported lazily by :mod:`apisec.fastapi`)."""

from __future__ import annotations

import inspect
import uuid
from collections.abc import Callable, Sequence
from http import HTTPStatus
from typing import Any, ClassVar

import attrs
from fastapi import FastAPI, Request, Response, Security
from fastapi.exceptions import RequestValidationError
from fastapi.security import APIKeyHeader, HTTPBearer, SecurityScopes
from fastapi.security.base import SecurityBase
from starlette.exceptions import HTTPException

from apisec._adapter_core import AuthCore, LimitCore, log_unhandled, proxies_or_default
from apisec._http import (
    RequestView,
    api_key_challenge,
    bearer_challenge,
    check_limit,
    render_problem,
    render_status_problem,
)
from apisec.asgi._auth import authenticate
from apisec.asgi._base import TYPE_BASE_KEY, client_of, encode, getter
from apisec.asgi._problems import ProblemDetailsMiddleware
from apisec.asgi._ratelimit import spend
from apisec.asgi._webhooks import WEBHOOK_BODY_KEY, verify_async
from apisec.audit import AuditEvent, audit_context, emit
from apisec.authz import PRINCIPAL_KEY, Principal, get_principal, require_scopes
from apisec.clientaddr import DEFAULT_IPV6_PREFIX, TrustedProxies, client_key
from apisec.errors import (
    ApiSecError,
    AuthenticationError,
    ConfigurationError,
    PayloadTooLarge,
    ValidationError,
)
from apisec.problems import FieldError, reason_phrase
from apisec.ratelimit import AsyncRateLimiter, Decision, RateLimiter
from apisec.tokens import AsyncTokenService, TokenService
from apisec.webhooks import AsyncWebhookVerifier, WebhookVerifier

__all__ = ["ApiKey", "Bearer", "RateLimit", "WebhookBody", "install"]

_STATE = "apisec"


@attrs.frozen
class _Installed:
    """What :func:`install` leaves on ``app.state`` for the dependencies."""

    core: AuthCore[Any] | None
    proxies: TrustedProxies


class _Refusal(Exception):
    """An authentication error and the challenges that go with it (rendered by install())."""

    def __init__(self, error: ApiSecError, challenges: list[tuple[str, str]]) -> None:
        super().__init__(error.message)
        self.error = error
        self.challenges = challenges


class _ScopeMarker(SecurityBase):
    """Puts a dependency's scopes in OpenAPI under its scheme's name; does nothing else.

    FastAPI lists scopes only for a scheme reached through ``Security(...,
    scopes=...)``; this marker is that ``Security`` for ``Depends(Bearer("x"))``.
    """

    def __init__(self, owner: SecurityBase) -> None:
        self.model = owner.model
        self.scheme_name = owner.scheme_name

    async def __call__(self) -> None:
        return None


class _PrincipalScheme:
    """The shared half of :class:`Bearer` and :class:`ApiKey`: find, check, return the principal."""

    kind: ClassVar[str]
    scopes: tuple[str, ...]
    auto_error: bool
    model: Any
    scheme_name: str
    __signature__: inspect.Signature

    def _declare(self, scopes: Sequence[str]) -> None:
        if not all(isinstance(s, str) and s and " " not in s for s in scopes):
            raise ConfigurationError("scopes are non-empty strings without spaces")
        self.scopes = tuple(scopes)
        kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
        parameters = [
            inspect.Parameter("request", kind, annotation=Request),
            inspect.Parameter("security_scopes", kind, annotation=SecurityScopes),
        ]
        if self.scopes:
            marker = Security(_ScopeMarker(self), scopes=list(self.scopes))  # type: ignore[arg-type]
            parameters.append(inspect.Parameter("declared", kind, default=marker))
        self.__signature__ = inspect.Signature(parameters)

    async def __call__(
        self, request: Request, security_scopes: SecurityScopes, declared: None = None
    ) -> Principal | None:
        scope = request.scope
        principal = get_principal(scope)
        if principal is not None:  # apisec.asgi's AuthMiddleware authenticated the request
            return self._admit(principal, security_scopes, None)
        installed = _installed(request)
        with audit_context(client=client_of(scope, installed.proxies)):
            principal = await self._authenticate(request, installed.core)
            return self._admit(principal, security_scopes, installed.core)

    async def _authenticate(self, request: Request, core: AuthCore[Any] | None) -> Principal | None:
        if core is None:
            raise ConfigurationError(
                "no principal was published and no services were given: wrap the app with "
                "apisec.asgi.protect(...) or call apisec.fastapi.install(app, tokens=..., keys=...)"
            )
        self._check(core)
        try:
            principal = await authenticate(core, request.scope, kinds=(self.kind,))
        except ApiSecError as exc:
            raise _Refusal(exc, core.challenges(exc)) from exc
        if principal is not None:
            request.scope.setdefault("state", {})[PRINCIPAL_KEY] = principal
        return principal

    def _admit(
        self,
        principal: Principal | None,
        security_scopes: SecurityScopes,
        core: AuthCore[Any] | None,
    ) -> Principal | None:
        if principal is None or principal.kind != self.kind:
            if not self.auto_error:
                return None
            emit(AuditEvent.AUTH_FAILURE, reason="missing_credentials")
            challenge = self._challenge(core.realm if core is not None else "api")
            raise _Refusal(AuthenticationError("no credentials"), [challenge])
        needed = sorted({*self.scopes, *security_scopes.scopes})
        return require_scopes(principal, *needed) if needed else principal

    def _check(self, core: AuthCore[Any]) -> None:
        raise NotImplementedError

    def _challenge(self, realm: str) -> tuple[str, str]:
        raise NotImplementedError


class Bearer(_PrincipalScheme, HTTPBearer):  # type: ignore[misc]
    """A bearer access token with ``scopes``: ``Depends(Bearer("orders:read"))`` is the principal.

    Shows in OpenAPI as an HTTP bearer scheme, the scopes as the operation's
    requirement (``Security(Bearer(), scopes=[...])`` adds more). The principal
    comes from :mod:`apisec.asgi`'s authentication middleware when it ran;
    otherwise the token is verified here with the services given to
    :func:`install`. No token: 401 with a ``Bearer`` challenge (or None with
    ``auto_error=False``); a bad one: 401 ``invalid_token``; a missing scope:
    403 ``insufficient_scope``. An API-key principal is not a bearer token.
    """

    kind = "token"

    def __init__(
        self,
        *scopes: str,
        scheme_name: str = "BearerAuth",
        bearer_format: str | None = "JWT",
        description: str | None = None,
        auto_error: bool = True,
    ) -> None:
        super().__init__(
            bearerFormat=bearer_format,
            scheme_name=scheme_name,
            description=description,
            auto_error=auto_error,
        )
        self._declare(scopes)

    def _check(self, core: AuthCore[Any]) -> None:
        if core.tokens is None:
            raise ConfigurationError("Bearer needs install(app, tokens=...)")

    def _challenge(self, realm: str) -> tuple[str, str]:
        return ("WWW-Authenticate", bearer_challenge(realm))


class ApiKey(_PrincipalScheme, APIKeyHeader):  # type: ignore[misc]
    """An API key with ``scopes``: ``Depends(ApiKey("reports:read"))`` is the principal.

    Shows in OpenAPI as an ``apiKey`` scheme in ``header`` (which must be the
    header the middleware or :func:`install` reads). Refusals as for
    :class:`Bearer`, with the ``ApiKey`` challenge.
    """

    kind = "api_key"

    def __init__(
        self,
        *scopes: str,
        header: str = "X-API-Key",
        scheme_name: str = "ApiKeyAuth",
        description: str | None = None,
        auto_error: bool = True,
    ) -> None:
        super().__init__(
            name=header, scheme_name=scheme_name, description=description, auto_error=auto_error
        )
        self._declare(scopes)

    def _check(self, core: AuthCore[Any]) -> None:
        if core.keys is None:
            raise ConfigurationError("ApiKey needs install(app, keys=...)")
        if core.header_lower != self.model.name.lower():
            raise ConfigurationError("ApiKey(header=...) differs from install(api_key_header=...)")

    def _challenge(self, realm: str) -> tuple[str, str]:
        return ("WWW-Authenticate", api_key_challenge(realm, self.model.name))


class RateLimit:
    """A route's own limit: ``dependencies=[Depends(RateLimit(limiter))]``.

    ``key`` as for :class:`apisec.asgi.RateLimitMiddleware`: None per client
    address (through ``proxies``), ``"principal"`` per authenticated principal
    (per client when there is none: list it after the authentication
    dependency), or a function of a :class:`~apisec._http.RequestView`. A
    refusal is a 429 problem with ``Retry-After``; allowed responses carry the
    rate-limit headers (unless the handler returns a ``Response`` itself).
    Returns the :class:`~apisec.ratelimit.Decision`.
    """

    def __init__(
        self,
        limiter: RateLimiter | AsyncRateLimiter,
        key: str | Callable[[RequestView], str | None] | None = None,
        *,
        cost: int | Callable[[RequestView], int] = 1,
        proxies: TrustedProxies | None = None,
        ipv6_prefix: int = DEFAULT_IPV6_PREFIX,
        send_headers: bool = True,
    ) -> None:
        self.core = LimitCore(
            mode="asgi",
            limiter=limiter,
            key=key,
            exclude_paths=(),
            routes=None,
            cost=cost,
            ipv6_prefix=ipv6_prefix,
        )
        self.proxies = proxies_or_default(proxies)
        self.send_headers = send_headers

    async def __call__(self, request: Request, response: Response) -> Decision | None:
        core, scope = self.core, request.scope
        client = client_of(scope, self.proxies)
        principal = get_principal(scope)
        view: Any = None
        if callable(core.key) or callable(core.cost):
            view = RequestView(request.method, scope["path"], client, principal, getter(scope))
        key = core.key_for(client, principal, view)
        if key is None and core.key == "principal":
            key = client_key(client or "", ipv6_prefix=core.ipv6_prefix)
        if key is None:
            return None
        with audit_context(client=client):
            decision = await spend([core.limiter], key, core.cost_for(view))
        if self.send_headers:
            for name, value in decision.headers:
                response.headers[name] = value
        return decision


class WebhookBody:
    """The raw body of a verified webhook: ``body: bytes = Depends(WebhookBody(verifier))``.

    Reads the body once (refusing past ``max_bytes`` with 413), verifies it
    with an :class:`~apisec.webhooks.AsyncWebhookVerifier` (or a
    ``WebhookVerifier``, its replay guard kept off the loop) and returns the very
    bytes that were signed; later ``request.body()`` reads see the same bytes.
    A failed verification is the verifier's problem (400/401/409). On a path
    :class:`apisec.asgi.WebhookMiddleware` already verified, its bytes are
    returned as they are (a second check would trip the replay guard).
    """

    def __init__(
        self, verifier: AsyncWebhookVerifier | WebhookVerifier, *, max_bytes: int = 1 << 20
    ) -> None:
        if not isinstance(verifier, (AsyncWebhookVerifier, WebhookVerifier)):
            raise ConfigurationError("WebhookBody needs an AsyncWebhookVerifier")
        self.verifier = verifier
        self.max_bytes = check_limit(max_bytes)

    async def __call__(self, request: Request) -> bytes:
        verified = (request.scope.get("state") or {}).get(WEBHOOK_BODY_KEY)
        if isinstance(verified, bytes):
            return verified
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > self.max_bytes:
                raise PayloadTooLarge(f"webhook body over {self.max_bytes} bytes")
            chunks.append(chunk)
        body = b"".join(chunks)
        request._body = body  # what Starlette's request.body() caches: later reads agree
        await verify_async(self.verifier, body, request.scope.get("headers") or [])
        return body


def install(
    app: FastAPI,
    *,
    tokens: TokenService | AsyncTokenService | None = None,
    keys: Any = None,
    api_key_header: str = "X-API-Key",
    accept_bearer_keys: bool = False,
    realm: str = "api",
    proxies: TrustedProxies | None = None,
    type_base: str | None = None,
    rewrite_errors: bool = True,
) -> FastAPI:
    """Make every error of ``app`` a problem; give the dependencies their services.

    * FastAPI's and Starlette's ``HTTPException`` (their own 404 and 405
      included) become problems with the same status and headers (a 4xx's
      string ``detail`` is kept; a 5xx gets a logged correlation id instead);
    * request validation errors become 422 problems listing each field;
    * every other exception, ``ApiSecError`` or not, reaches
      :class:`apisec.asgi.ProblemDetailsMiddleware`, added inside the app so a
      crash is a 500 problem with a logged correlation id and no detail,
      answered by the app itself (not by Starlette's outermost error layer);
    * ``tokens``/``keys`` let :class:`Bearer` and :class:`ApiKey` verify
      credentials on requests :mod:`apisec.asgi`'s middleware did not
      authenticate (the same ``AuthCore`` the middleware uses).

    Call it before the app starts; returns ``app``.
    """
    core = None
    if tokens is not None or keys is not None:
        core = AuthCore(
            mode="asgi",
            tokens=tokens,
            keys=keys,
            api_key_header=api_key_header,
            accept_bearer_keys=accept_bearer_keys,
            exclude_paths=(),
            scopes=None,
            allow_query_token=False,
            realm=realm,
        )
    setattr(app.state, _STATE, _Installed(core, proxies_or_default(proxies)))
    app.add_exception_handler(_Refusal, _refusal_handler)
    app.add_exception_handler(HTTPException, _http_exception_handler)
    app.add_exception_handler(RequestValidationError, _validation_handler)
    app.add_middleware(ProblemDetailsMiddleware, type_base=type_base, rewrite_errors=rewrite_errors)
    return app


def _installed(request: Request) -> _Installed:
    found = getattr(request.app.state, _STATE, None)
    return found if isinstance(found, _Installed) else _Installed(None, TrustedProxies())


def _respond(rendered: tuple[int, list[tuple[str, str]], bytes]) -> Response:
    status, headers, body = rendered
    response = Response(body, status_code=status)
    response.raw_headers = encode(headers)
    return response


def _problem(
    request: Request, error: ApiSecError, extra: Sequence[tuple[str, str]] = ()
) -> Response:
    head = request.method == "HEAD"
    rendered = render_problem(
        error, type_base=request.scope.get(TYPE_BASE_KEY), head=head, extra=extra
    )
    return _respond(rendered)


async def _refusal_handler(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, _Refusal):  # pragma: no cover - registered for _Refusal only
        raise exc
    return _problem(request, exc.error, exc.challenges)


async def _http_exception_handler(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, HTTPException):  # pragma: no cover - registered for HTTPException only
        raise exc
    status = exc.status_code
    detail: str | None = exc.detail if isinstance(exc.detail, str) else None
    if detail in (reason_phrase(status), _phrase(status)):
        detail = None  # the framework's default says no more than the title
    instance = None
    if status >= 500:
        instance = uuid.uuid4().urn
        log_unhandled(exc, instance)
    rendered = render_status_problem(
        status,
        list((exc.headers or {}).items()),
        type_base=request.scope.get(TYPE_BASE_KEY),
        head=request.method == "HEAD",
        instance=instance,
        detail=detail,
    )
    return _respond(rendered)


async def _validation_handler(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, RequestValidationError):  # pragma: no cover
        raise exc
    errors = [
        FieldError(
            ".".join(str(part) for part in item.get("loc", ())) or "$",
            str(item.get("msg", "is invalid")),
            str(item.get("type", "invalid")),
        )
        for item in exc.errors()  # never the input: it may hold a secret
    ]
    return _problem(request, ValidationError(errors or [FieldError("$", "is invalid", "invalid")]))


def _phrase(status: int) -> str | None:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return None
