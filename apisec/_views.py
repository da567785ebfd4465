"""Per-view rules for the framework integrations: the decorators, and the guard applying them.

:mod:`apisec.flask` and :mod:`apisec.django` re-export the decorators. A
decorated view carries a :class:`ViewRules`; once the framework has routed a
request, the integration hands the rules and the request's WSGI environ
(Flask's ``request.environ``, Django's ``request.META``) to a
:class:`ViewGuard`, which runs the same cores as :mod:`apisec.wsgi`:
authentication (:class:`~apisec._adapter_core.AuthCore`), the per-principal
and per-view limits (:class:`~apisec._adapter_core.LimitCore`) and webhook
signatures. Refusals come back rendered, ready for the framework's response.
"""

from __future__ import annotations

import functools
import inspect
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, TypeVar

import attrs

from apisec._adapter_core import (
    AuthCore,
    LimitCore,
    fewest_left,
    log_unhandled,
    proxies_or_default,
)
from apisec._http import Headers, RequestView, check_limit, render_problem, render_status_problem
from apisec._types import Environ
from apisec.audit import audit_context
from apisec.authz import PRINCIPAL_KEY, Principal, get_principal, require_scopes
from apisec.clientaddr import DEFAULT_IPV6_PREFIX, TrustedProxies
from apisec.errors import ApiSecError, ConfigurationError
from apisec.ratelimit import Decision, RateLimiter
from apisec.tokens import TokenService
from apisec.webhooks import WebhookVerifier
from apisec.wsgi._auth import authenticate
from apisec.wsgi._base import TYPE_BASE_KEY, client_of, getter, path_of
from apisec.wsgi._ratelimit import spend

__all__ = [
    "LIMIT_KEY",
    "ViewGuard",
    "ViewRules",
    "api_key_only",
    "limit",
    "limit_headers",
    "public",
    "rules_of",
    "scopes",
    "webhook",
]

RULES_ATTR = "__apisec_rules__"
#: Where the guard leaves the tightest per-view limit decision for the response headers.
LIMIT_KEY = "apisec.view_limit"

V = TypeVar("V", bound=Callable[..., Any])
Rendered = tuple[int, Headers, bytes]
#: ``verify(verifier, max_bytes) -> body``: reads the raw body once and verifies it.
WebhookCheck = Callable[[WebhookVerifier, int], bytes]


@attrs.frozen
class ViewRules:
    """What the decorators said about one view (the default: authenticated, nothing more)."""

    public: bool = False
    api_key_only: bool = False
    scopes: tuple[str, ...] = ()
    limits: tuple[LimitCore, ...] = ()
    webhook: WebhookVerifier | None = None
    webhook_max: int = 1 << 20


_DEFAULT = ViewRules()


def rules_of(view: object) -> ViewRules:
    """The rules attached to a view function (or to a Django class-based view's class)."""
    found = getattr(view, RULES_ATTR, None)
    if found is None:
        found = getattr(getattr(view, "view_class", None), RULES_ATTR, None)
    return found if isinstance(found, ViewRules) else _DEFAULT


def _tagged(view: V, **changes: Any) -> V:
    """A copy of ``view`` carrying its rules; a class (Django's class-based views) in place.

    Never the function itself: a function shared by two routes must not become
    public on both because one of them was decorated.
    """
    rules = attrs.evolve(rules_of(view), **changes)
    if (rules.public or rules.webhook is not None) and (rules.scopes or rules.api_key_only):
        raise ConfigurationError("a public or webhook view takes no credential rules")
    if isinstance(view, type):
        setattr(view, RULES_ATTR, rules)
        return view
    if inspect.iscoroutinefunction(view):

        @functools.wraps(view)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            return await view(*args, **kwargs)

    else:

        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            return view(*args, **kwargs)

    setattr(wrapper, RULES_ATTR, rules)
    return wrapper  # type: ignore[return-value]


def public(view: V) -> V:
    """Serve this view without authentication (limits, CORS and headers still apply)."""
    return _tagged(view, public=True)


def api_key_only(view: V) -> V:
    """Accept only an API key here: a bearer token is no credential for this view (401)."""
    return _tagged(view, api_key_only=True)


def scopes(*names: str) -> Callable[[V], V]:
    """Require every scope in ``names`` (403 ``insufficient_scope``), on top of path rules."""
    if not names or not all(isinstance(n, str) and n and " " not in n for n in names):
        raise ConfigurationError("scopes() takes one or more scope names")

    def decorate(view: V) -> V:
        return _tagged(view, scopes=(*rules_of(view).scopes, *names))

    return decorate


def limit(
    limiter: RateLimiter,
    *,
    key: str | Callable[[RequestView], str | None] | None = None,
    cost: int | Callable[[RequestView], int] = 1,
    ipv6_prefix: int = DEFAULT_IPV6_PREFIX,
) -> Callable[[V], V]:
    """Add a rate limit to this view, on top of the app-wide ones.

    ``key`` as in :class:`apisec.wsgi.RateLimitMiddleware`: None for the
    client address, ``"principal"`` for the authenticated caller, or a
    function of the request. One limiter is one budget: give each view its
    own (its own ``prefix=`` when they share a store).
    """
    core = LimitCore(
        mode="wsgi",
        limiter=limiter,
        key=key,
        exclude_paths=(),
        routes=None,
        cost=cost,
        ipv6_prefix=ipv6_prefix,
    )

    def decorate(view: V) -> V:
        return _tagged(view, limits=(*rules_of(view).limits, core))

    return decorate


def webhook(verifier: WebhookVerifier, *, max_bytes: int = 1 << 20) -> Callable[[V], V]:
    """Authenticate this view by the delivery's signature over the raw body, not a credential.

    A delivery that fails verification is refused before the view runs; the
    view reads the verified bytes (``webhook_body()`` in each integration).
    """
    if not isinstance(verifier, WebhookVerifier):
        raise ConfigurationError("webhook() takes a WebhookVerifier")
    checked = check_limit(max_bytes)

    def decorate(view: V) -> V:
        tagged = _tagged(view, webhook=verifier, webhook_max=checked)
        # Django: the signature, not a session cookie, authenticates the sender, so CSRF
        # protection (which would refuse every delivery) does not apply.
        tagged.csrf_exempt = True  # type: ignore[attr-defined]
        return tagged

    return decorate


class ViewGuard:
    """Applies a view's rules to a request, over its WSGI environ."""

    def __init__(
        self,
        *,
        tokens: TokenService | None = None,
        keys: Any = None,
        api_key_header: str = "X-API-Key",
        accept_bearer_keys: bool = False,
        scopes: Mapping[str, Sequence[str]] | None = None,
        public_paths: Iterable[str] = (),
        principal_limiter: RateLimiter | None = None,
        proxies: TrustedProxies | None = None,
        realm: str = "api",
    ) -> None:
        options: dict[str, Any] = {
            "mode": "wsgi",
            "api_key_header": api_key_header,
            "accept_bearer_keys": accept_bearer_keys,
            "exclude_paths": list(public_paths),
            "scopes": scopes,
            "allow_query_token": False,
            "realm": realm,
        }
        self.auth = (
            AuthCore(tokens=tokens, keys=keys, **options)
            if tokens is not None or keys is not None
            else None
        )
        # API-key-only views: the same checks with no token service, so a bearer token is
        # no credential there and the challenge names only the API key.
        self.key_auth = AuthCore(tokens=None, keys=keys, **options) if keys is not None else None
        self.principal_limit = (
            None
            if principal_limiter is None
            else LimitCore(
                mode="wsgi",
                limiter=principal_limiter,
                key="principal",
                exclude_paths=(),
                routes=None,
                cost=1,
                ipv6_prefix=DEFAULT_IPV6_PREFIX,
            )
        )
        self.proxies = proxies_or_default(proxies)

    def check(self, environ: Environ, rules: ViewRules, verify: WebhookCheck) -> Rendered | None:
        """Authenticate, limit and verify; a rendered refusal, or None to run the view.

        On success the principal is at ``environ["apisec.principal"]`` and the
        tightest limit decision at ``environ[LIMIT_KEY]``.
        """
        method, path = environ.get("REQUEST_METHOD", "GET"), path_of(environ)
        with audit_context(client=client_of(environ, self.proxies)):
            core = self._core_for(rules, method, path)
            if core is not None:
                try:
                    principal = authenticate(core, environ)
                    if principal is None:
                        raise core.missing()
                    principal = core.authorize(principal, method, path)
                    if rules.scopes:
                        require_scopes(principal, *rules.scopes)
                except ApiSecError as exc:
                    return render_error(environ, exc, core.challenges(exc))
                environ[PRINCIPAL_KEY] = principal
            with self.audit(environ):
                try:
                    decision = self._limit(environ, rules, method, path)
                    if rules.webhook is not None:
                        verify(rules.webhook, rules.webhook_max)
                except ApiSecError as exc:
                    return render_error(environ, exc)
        if decision is not None:
            environ[LIMIT_KEY] = decision
        return None

    def _core_for(self, rules: ViewRules, method: str, path: str) -> AuthCore[Any] | None:
        if rules.public or rules.webhook is not None:
            return None
        if rules.api_key_only:
            if self.key_auth is None:
                raise ConfigurationError("an api_key_only view needs keys= configured")
            return self.key_auth
        if self.auth is None:
            if rules.scopes:
                raise ConfigurationError("a view with scopes needs tokens= or keys= configured")
            return None
        return None if self.auth.skips(method, path) else self.auth

    def _limit(self, environ: Environ, rules: ViewRules, method: str, path: str) -> Decision | None:
        cores = list(rules.limits)
        if self.principal_limit is not None:
            cores.insert(0, self.principal_limit)
        if not cores:
            return None
        client = client_of(environ, self.proxies)
        principal = get_principal(environ)
        reported: Decision | None = None
        for core in cores:
            view = None
            if callable(core.key) or callable(core.cost):
                view = RequestView(method, path, client, principal, getter(environ))
            key = core.key_for(client, principal, view)
            if key is None:
                continue
            reported = fewest_left(
                reported, spend(core.limiters(method, path), key, core.cost_for(view))
            )
        return reported

    def audit(self, environ: Environ) -> AbstractContextManager[None]:
        """The audit context of this request: its client and, once known, its principal."""
        principal: Principal | None = get_principal(environ)
        return audit_context(
            client=client_of(environ, self.proxies),
            principal=None if principal is None else principal.id,
        )


def limit_headers(decision: Decision | None, current: str | None) -> list[tuple[str, str]]:
    """A decision's rate-limit headers, unless the response already reports a budget as tight.

    ``current`` is the response's ``X-RateLimit-Remaining``: an inner limit's
    smaller budget, or a 429's, is what the client must respect.
    """
    if decision is None:
        return []
    if current is not None and current.isdigit() and int(current) <= decision.remaining:
        return []
    return decision.headers


def render_error(
    environ: Environ, error: BaseException, extra: Sequence[tuple[str, str]] = ()
) -> Rendered:
    """A problem response for an exception; a 5xx gets a correlation id that is also logged."""
    problem = error if isinstance(error, ApiSecError) else ApiSecError(type(error).__name__)
    correlation = None
    if problem.status >= 500:
        correlation = uuid.uuid4().urn
        log_unhandled(error, correlation)
    return render_problem(
        problem, type_base=environ.get(TYPE_BASE_KEY), instance=correlation, extra=extra
    )


def render_status(
    environ: Environ,
    status: int,
    kept: Headers,
    *,
    detail: str | None = None,
    error: BaseException | None = None,
) -> Rendered:
    """A problem for a framework's own error response (404, 405...), keeping ``Allow`` & co."""
    correlation = None
    if status >= 500:
        correlation = uuid.uuid4().urn
        if error is not None:
            log_unhandled(error, correlation)
    return render_status_problem(
        status,
        kept,
        type_base=environ.get(TYPE_BASE_KEY),
        instance=correlation,
        detail=detail,
    )
