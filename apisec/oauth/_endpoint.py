"""A client-credentials token endpoint (RFC 6749 section 4.4) as a pure request handler.

``handle(method, headers, body)`` returns a :class:`TokenResponse` (status,
headers, body bytes) that any adapter writes out as it is. Clients are API
keys: the client id is the key's ``owner`` and the client secret is the key
itself, so secrets are prefixed and checksummed, stored hashed, rotate with
a grace period, and carry the scopes a client may be granted.
"""

from __future__ import annotations

import hmac
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

import attrs

from apisec._flows import Flow, adrive, drive
from apisec.apikeys import ApiKeyRecord, ApiKeyService, AsyncApiKeyService, InvalidApiKey
from apisec.apikeys._format import check_prefix
from apisec.audit import AuditEvent, emit
from apisec.errors import ConfigurationError, StoreError
from apisec.oauth._form import (
    FormError,
    header_pairs,
    header_values,
    parse_basic_authorization,
    parse_form,
)
from apisec.tokens import AsyncTokenService, TokenService

__all__ = ["AsyncClientCredentialsEndpoint", "ClientCredentialsEndpoint", "TokenResponse"]

DEFAULT_MAX_BODY_BYTES = 8 * 1024
_FORM_MEDIA_TYPE = "application/x-www-form-urlencoded"
_SCOPE = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+(?: [\x21\x23-\x5b\x5d-\x7e]+)*")
_MAX_SCOPE_CHARS = 2048
_REALM = re.compile(r"[\x20\x21\x23-\x5b\x5d-\x7e]{1,64}")
_COMMON_HEADERS = (
    ("Content-Type", "application/json"),
    ("Cache-Control", "no-store"),
    ("Pragma", "no-cache"),
)
# Grants RFC 9700 section 2.4 says must not be used, and the implicit flow's
# names (it never reaches a token endpoint): refused with a reason in the logs.
_DEPRECATED = {
    "password": "the resource owner password grant is deprecated (RFC 9700 section 2.4)",
    "implicit": "the implicit grant is deprecated (RFC 9700 section 2.1.2)",
    "token": "the implicit grant is deprecated (RFC 9700 section 2.1.2)",
}


@attrs.frozen
class TokenResponse:
    """What the token endpoint answers: write ``status``, ``headers`` and ``body`` as they are.

    ``error`` is the OAuth error code of a refusal (None on success). The body
    holds the access token, so it never shows in ``repr``.
    """

    status: int
    _headers: tuple[tuple[str, str], ...] = attrs.field(converter=header_pairs)
    body: bytes = attrs.field(repr=False)
    error: str | None = None

    @property
    def headers(self) -> list[tuple[str, str]]:
        """Response headers as (name, value) pairs."""
        return list(self._headers)


class _Refusal(Exception):
    """One RFC 6749 section 5.2 error, raised inside the endpoint and rendered once."""

    def __init__(self, error: str, description: str, cause: str, status: int = 400) -> None:
        super().__init__(cause)
        self.error = error
        self.description = description
        self.cause = cause
        self.status = status


@attrs.frozen
class _Request:
    """A request that passed every check needing no store: who claims to be calling, for what."""

    client_id: str
    secret: str = attrs.field(repr=False)
    scopes: tuple[str, ...] | None
    used_basic: bool


@attrs.define
class _Authenticate:
    """The endpoint's one I/O: the client secret checked by the clients' key service."""

    secret: str = attrs.field(repr=False)

    def run(self, clients: ApiKeyService) -> ApiKeyRecord:
        return clients.authenticate(self.secret)

    async def arun(self, clients: AsyncApiKeyService) -> ApiKeyRecord:
        return await clients.authenticate(self.secret)


def _json(document: Mapping[str, Any]) -> bytes:
    return json.dumps(document, separators=(",", ":"), ensure_ascii=True).encode("ascii")


class _EndpointCore:
    """Everything but the one store call (authenticating the secret), shared by both twins."""

    _async_clients: ClassVar[bool]

    def __init__(
        self,
        clients: ApiKeyService | AsyncApiKeyService,
        tokens: TokenService | AsyncTokenService,
        *,
        realm: str,
        max_body_bytes: int,
        secret_prefix: str | None,
        allow_body_credentials: bool,
        refuse_unknown_scopes: bool,
    ) -> None:
        wanted = AsyncApiKeyService if self._async_clients else ApiKeyService
        if not isinstance(clients, wanted):
            twin = "Async" if self._async_clients else ""
            raise ConfigurationError(
                f"{type(self).__name__} takes an {twin}ApiKeyService as its clients"
            )
        if not isinstance(tokens, (TokenService, AsyncTokenService)):
            raise ConfigurationError("tokens must be a TokenService or an AsyncTokenService")
        if not isinstance(realm, str) or _REALM.fullmatch(realm) is None:
            raise ConfigurationError("realm is 1-64 printable ASCII characters without quotes")
        if isinstance(max_body_bytes, bool) or not isinstance(max_body_bytes, int):
            raise ConfigurationError("max_body_bytes must be an int")
        if not 256 <= max_body_bytes <= 1024 * 1024:
            raise ConfigurationError("max_body_bytes must be within 256 and 1048576")
        self.clients = clients
        self.tokens = tokens
        self.realm = realm
        self.max_body_bytes = max_body_bytes
        self.secret_prefix = None if secret_prefix is None else check_prefix(secret_prefix)
        self.allow_body_credentials = bool(allow_body_credentials)
        self.refuse_unknown_scopes = bool(refuse_unknown_scopes)

    # --- before the store ------------------------------------------------------------

    def _prepare(
        self,
        method: str,
        headers: Mapping[str, str] | Iterable[tuple[str | bytes, str | bytes]],
        body: bytes,
    ) -> _Request:
        if method != "POST":  # methods are case-sensitive (RFC 9110 section 9.1)
            raise _Refusal(
                "invalid_request", "The token endpoint accepts POST only.", "method", 405
            )
        self._check_content_type(header_values(headers, "content-type"))
        if not isinstance(body, (bytes, bytearray, memoryview)):
            raise ConfigurationError("the body must be bytes")
        if len(body) > self.max_body_bytes:
            raise _Refusal("invalid_request", "The request body is too large.", "body_size", 413)
        try:
            form = parse_form(body)
        except FormError as exc:
            raise _Refusal(
                "invalid_request", "The request body is not a valid form.", f"form: {exc}"
            ) from None
        params = {name: value for name, value in form.items() if value}  # empty = omitted
        self._check_grant_type(params)
        scopes = self._requested_scopes(params.get("scope"))
        client_id, secret, used_basic = self._credentials(
            header_values(headers, "authorization"), params
        )
        if self.secret_prefix is not None and not secret.startswith(self.secret_prefix + "_"):
            raise self._invalid_client(used_basic, "secret_prefix")
        return _Request(client_id=client_id, secret=secret, scopes=scopes, used_basic=used_basic)

    @staticmethod
    def _check_content_type(values: list[str]) -> None:
        if len(values) != 1:
            raise _Refusal(
                "invalid_request",
                "The request must be application/x-www-form-urlencoded.",
                "content_type_count",
            )
        media_type, *parameters = (part.strip() for part in values[0].split(";"))
        charsets = [p for p in parameters if p.lower().startswith("charset=")]
        if media_type.lower() != _FORM_MEDIA_TYPE or any(
            c.lower() not in ("charset=utf-8", 'charset="utf-8"') for c in charsets
        ):
            raise _Refusal(
                "invalid_request",
                "The request must be application/x-www-form-urlencoded.",
                "content_type",
            )

    @staticmethod
    def _check_grant_type(params: Mapping[str, str]) -> None:
        grant_type = params.get("grant_type")
        if grant_type is None:
            if params.get("response_type") == "token":
                raise _Refusal(
                    "unsupported_grant_type",
                    "The implicit grant is not supported.",
                    _DEPRECATED["token"],
                )
            raise _Refusal("invalid_request", "The grant_type parameter is missing.", "grant_type")
        if grant_type == "client_credentials":
            return
        deprecated = _DEPRECATED.get(grant_type)
        raise _Refusal(
            "unsupported_grant_type",
            "This endpoint supports the client_credentials grant only.",
            deprecated or "grant_type",
        )

    def _requested_scopes(self, scope: str | None) -> tuple[str, ...] | None:
        if scope is None:
            return None
        if len(scope) > _MAX_SCOPE_CHARS or _SCOPE.fullmatch(scope) is None:
            raise _Refusal("invalid_scope", "The scope parameter is malformed.", "scope_syntax")
        return tuple(dict.fromkeys(scope.split(" ")))

    def _credentials(
        self, authorization: list[str], params: Mapping[str, str]
    ) -> tuple[str, str, bool]:
        body_id, body_secret = params.get("client_id"), params.get("client_secret")
        if len(authorization) > 1:
            raise _Refusal(
                "invalid_request", "The Authorization header is repeated.", "authorization_count"
            )
        if authorization:
            if body_secret is not None:
                raise _Refusal(
                    "invalid_request",
                    "Client credentials were sent both in the Authorization header and the body.",
                    "two_methods",
                )
            try:
                client_id, secret = parse_basic_authorization(authorization[0])
            except FormError as exc:
                raise self._invalid_client(True, f"basic: {exc}") from None
            # RFC 6749 section 3.2.1 lets a client name itself in the body too: same name only.
            if body_id is not None and not _same(body_id, client_id):
                raise _Refusal(
                    "invalid_request",
                    "The client_id parameter differs from the authenticated client.",
                    "client_id_mismatch",
                )
            if not secret:
                raise self._invalid_client(True, "empty_secret")
            return client_id, secret, True
        if body_id is None or body_secret is None:
            raise self._invalid_client(False, "no_credentials")
        if not self.allow_body_credentials:
            raise self._invalid_client(False, "body_credentials_disabled")
        return body_id, body_secret, False

    def _invalid_client(self, used_basic: bool, cause: str) -> _Refusal:
        # RFC 6749 section 5.2: 401 with a challenge when the client used the
        # Authorization header; otherwise 400 (a 401 must carry WWW-Authenticate).
        return _Refusal(
            "invalid_client",
            "Client authentication failed.",
            cause,
            401 if used_basic else 400,
        )

    # --- after the store -------------------------------------------------------------

    def _grant(self, request: _Request, record: ApiKeyRecord) -> TokenResponse:
        if not _same(record.owner, request.client_id):
            raise self._invalid_client(request.used_basic, "client_id_not_owner")
        granted = set(record.scopes)
        if request.scopes is None:
            issued = sorted(granted)
        else:
            unknown = [s for s in request.scopes if s not in granted]
            if unknown and self.refuse_unknown_scopes:
                raise _Refusal(
                    "invalid_scope", "A requested scope is not granted to this client.", "scope"
                )
            issued = sorted(s for s in request.scopes if s in granted)
            if not issued:
                raise _Refusal(
                    "invalid_scope", "No requested scope is granted to this client.", "scope"
                )
        claims: dict[str, Any] = {"client_id": request.client_id}
        if issued:
            claims["scope"] = " ".join(issued)
        token = self.tokens.issue_access_token(request.client_id, **claims)
        document: dict[str, Any] = token.to_dict()
        # RFC 6749 section 5.1: scope is required when it differs from the request.
        if set(issued) != set(request.scopes or ()):
            document["scope"] = " ".join(issued)
        return TokenResponse(status=200, headers=_COMMON_HEADERS, body=_json(document))

    def _refused(self, refusal: _Refusal, client_id: str | None) -> TokenResponse:
        emit(
            AuditEvent.OAUTH_TOKEN_DENIED,
            principal=client_id,
            reason=refusal.error,
            cause=refusal.cause,
            status=refusal.status,
        )
        headers = list(_COMMON_HEADERS)
        if refusal.status == 401:
            headers.append(("WWW-Authenticate", f'Basic realm="{self.realm}"'))
        elif refusal.status == 405:
            headers.append(("Allow", "POST"))
        body = _json({"error": refusal.error, "error_description": refusal.description})
        return TokenResponse(status=refusal.status, headers=headers, body=body, error=refusal.error)

    def _flow(
        self,
        method: str,
        headers: Mapping[str, str] | Iterable[tuple[str | bytes, str | bytes]],
        body: bytes,
    ) -> Flow[ApiKeyService, AsyncApiKeyService, TokenResponse]:
        """The whole exchange; its one I/O, the secret's check, goes to the sync or async driver."""
        request: _Request | None = None
        try:
            request = self._prepare(method, headers, body)
            try:
                record: ApiKeyRecord = yield _Authenticate(request.secret)
            except InvalidApiKey:
                raise self._invalid_client(request.used_basic, "secret") from None
            except StoreError as exc:  # a 503 for the adapter; audited here, as a refusal is
                emit(
                    AuditEvent.OAUTH_TOKEN_DENIED,
                    principal=request.client_id,
                    reason="store_error",
                    cause=exc.message[:120],
                    status=exc.status,
                )
                raise
            return self._grant(request, record)
        except _Refusal as refusal:
            return self._refused(refusal, None if request is None else request.client_id)


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(
        a.encode("utf-8", "surrogatepass"), b.encode("utf-8", "surrogatepass")
    )


class ClientCredentialsEndpoint(_EndpointCore):
    """The token endpoint of the client credentials grant, over an :class:`ApiKeyService`.

    Args:
        clients: the API keys that are client secrets. The client id is the
            key's ``owner``; the key's scopes are what the client may get.
            Rotating a key (``clients.rotate(key_id, grace=...)``) keeps the
            client id and lets both secrets work during the grace period.
        tokens: issues the access tokens (``issue_access_token``: no refresh
            token for this grant). An :class:`AsyncTokenService` works too.
        realm: the Basic ``realm`` of the 401 challenge.
        max_body_bytes: larger bodies are refused (413); adapters should stop
            reading past it.
        secret_prefix: when given, only keys of this prefix are client
            secrets (keep them apart from plain API keys, e.g. ``"cs_live"``).
        allow_body_credentials: accept ``client_id``/``client_secret`` in the
            body (RFC 6749 section 2.3.1 allows it for clients that cannot use
            Basic); False refuses them with ``invalid_client``.
        refuse_unknown_scopes: by default requested scopes are narrowed to the
            granted ones (``invalid_scope`` only when none is left); True refuses
            a request that names any scope the client lacks.
    """

    _async_clients = False

    def __init__(
        self,
        clients: ApiKeyService,
        tokens: TokenService | AsyncTokenService,
        *,
        realm: str = "token",
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        secret_prefix: str | None = None,
        allow_body_credentials: bool = True,
        refuse_unknown_scopes: bool = False,
    ) -> None:
        super().__init__(
            clients,
            tokens,
            realm=realm,
            max_body_bytes=max_body_bytes,
            secret_prefix=secret_prefix,
            allow_body_credentials=allow_body_credentials,
            refuse_unknown_scopes=refuse_unknown_scopes,
        )
        self.clients: ApiKeyService = clients

    def handle(
        self,
        method: str,
        headers: Mapping[str, str] | Iterable[tuple[str | bytes, str | bytes]],
        body: bytes,
    ) -> TokenResponse:
        """Answer one token request.

        Raises:
            StoreError: the client store failed (a 503 for the adapter to render).
        """
        return drive(self._flow(method, headers, body), self.clients)


class AsyncClientCredentialsEndpoint(_EndpointCore):
    """The asyncio twin of :class:`ClientCredentialsEndpoint`, over an ``AsyncApiKeyService``."""

    _async_clients = True

    def __init__(
        self,
        clients: AsyncApiKeyService,
        tokens: TokenService | AsyncTokenService,
        *,
        realm: str = "token",
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        secret_prefix: str | None = None,
        allow_body_credentials: bool = True,
        refuse_unknown_scopes: bool = False,
    ) -> None:
        super().__init__(
            clients,
            tokens,
            realm=realm,
            max_body_bytes=max_body_bytes,
            secret_prefix=secret_prefix,
            allow_body_credentials=allow_body_credentials,
            refuse_unknown_scopes=refuse_unknown_scopes,
        )
        self.clients: AsyncApiKeyService = clients

    async def handle(
        self,
        method: str,
        headers: Mapping[str, str] | Iterable[tuple[str | bytes, str | bytes]],
        body: bytes,
    ) -> TokenResponse:
        """Answer one token request (see :meth:`ClientCredentialsEndpoint.handle`)."""
        return await adrive(self._flow(method, headers, body), self.clients)
