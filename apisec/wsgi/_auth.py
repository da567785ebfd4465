"""Authentication middleware (WSGI): bearer tokens, API keys, or either."""

from __future__ import annotations

from collections.abc import Container, Iterable, Mapping, Sequence

from apisec._adapter_core import AuthCore, proxies_or_default
from apisec._types import Environ, StartResponse, WSGIApp
from apisec.apikeys import ApiKeyService
from apisec.audit import audit_context
from apisec.authz import PRINCIPAL_KEY, Principal
from apisec.clientaddr import TrustedProxies
from apisec.errors import ApiSecError
from apisec.tokens import TokenService
from apisec.wsgi._base import client_of, getter, path_of, problem_response

__all__ = ["ApiKeyAuthMiddleware", "AuthMiddleware", "BearerAuthMiddleware", "authenticate"]


class AuthMiddleware:
    """The WSGI twin of :class:`apisec.asgi.AuthMiddleware`.

    The principal lands in ``environ["apisec.principal"]``. Takes the
    synchronous services (:class:`~apisec.tokens.TokenService`,
    :class:`~apisec.apikeys.ApiKeyService`).
    """

    def __init__(
        self,
        app: WSGIApp,
        *,
        tokens: TokenService | None = None,
        keys: ApiKeyService | None = None,
        api_key_header: str = "X-API-Key",
        accept_bearer_keys: bool = False,
        exclude_paths: Iterable[str] = (),
        scopes: Mapping[str, Sequence[str]] | None = None,
        allow_query_token: bool = False,
        realm: str = "api",
        proxies: TrustedProxies | None = None,
    ) -> None:
        self.app = app
        self.core: AuthCore[ApiKeyService] = AuthCore(
            mode="wsgi",
            tokens=tokens,
            keys=keys,
            api_key_header=api_key_header,
            accept_bearer_keys=accept_bearer_keys,
            exclude_paths=exclude_paths,
            scopes=scopes,
            allow_query_token=allow_query_token,
            realm=realm,
        )
        self.proxies = proxies_or_default(proxies)

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        core = self.core
        method = environ.get("REQUEST_METHOD", "GET")
        path = path_of(environ)
        if core.skips(method, path):
            return self.app(environ, start_response)
        client = client_of(environ, self.proxies)
        with audit_context(client=client):
            try:
                principal = self._authenticate(environ, method, path)
            except ApiSecError as exc:
                return problem_response(environ, start_response, exc, core.challenges(exc))
        environ[PRINCIPAL_KEY] = principal
        with audit_context(client=client, principal=principal.id):
            return self.app(environ, start_response)

    def _authenticate(self, environ: Environ, method: str, path: str) -> Principal:
        principal = authenticate(self.core, environ)
        if principal is None:
            raise self.core.missing()
        return self.core.authorize(principal, method, path)


def authenticate(
    core: AuthCore[ApiKeyService], environ: Environ, kinds: Container[str] = ("token", "api_key")
) -> Principal | None:
    """The principal of the request's one credential; None when it carries none of ``kinds``.

    The twin of :func:`apisec.asgi._auth.authenticate`, shared by the middleware
    and the framework integrations (``apisec.flask``, ``apisec.django``). Raises
    the credential's ``ApiSecError`` (malformed, repeated, invalid, expired).
    """
    credential = core.credential(getter(environ), environ.get("QUERY_STRING", ""))
    if credential is None or credential[0] not in kinds:
        return None
    kind, value = credential
    if kind == "token" or core.keys is None:  # API keys come only with a key service
        return core.verify_token(value)
    return Principal.from_api_key(core.keys.authenticate(value))


class BearerAuthMiddleware(AuthMiddleware):
    """:class:`AuthMiddleware` for bearer access tokens only (same options)."""

    def __init__(
        self,
        app: WSGIApp,
        tokens: TokenService,
        *,
        exclude_paths: Iterable[str] = (),
        scopes: Mapping[str, Sequence[str]] | None = None,
        allow_query_token: bool = False,
        realm: str = "api",
        proxies: TrustedProxies | None = None,
    ) -> None:
        super().__init__(
            app,
            tokens=tokens,
            exclude_paths=exclude_paths,
            scopes=scopes,
            allow_query_token=allow_query_token,
            realm=realm,
            proxies=proxies,
        )


class ApiKeyAuthMiddleware(AuthMiddleware):
    """:class:`AuthMiddleware` for API keys only, in ``header`` (same options)."""

    def __init__(
        self,
        app: WSGIApp,
        keys: ApiKeyService,
        header: str = "X-API-Key",
        *,
        accept_bearer_keys: bool = False,
        exclude_paths: Iterable[str] = (),
        scopes: Mapping[str, Sequence[str]] | None = None,
        realm: str = "api",
        proxies: TrustedProxies | None = None,
    ) -> None:
        super().__init__(
            app,
            keys=keys,
            api_key_header=header,
            accept_bearer_keys=accept_bearer_keys,
            exclude_paths=exclude_paths,
            scopes=scopes,
            realm=realm,
            proxies=proxies,
        )
