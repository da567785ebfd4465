"""The client side of the authorization code grant with PKCE (RFC 6749, 7636, 9207, 9700).

No HTTP client is needed: :class:`OAuthClient` builds the authorization URL,
checks the callback, and builds the token request as a
:class:`TokenRequest` (method, URL, headers, body) for whatever transport
you use; :func:`parse_token_response` reads the answer.
"""

from __future__ import annotations

import hmac
import ipaddress
import math
import re
from collections.abc import Iterable, Mapping, MutableMapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import attrs

from apisec import pkce
from apisec._clock import Clock, wall_clock
from apisec.audit import AuditEvent, emit
from apisec.errors import ClientError, ConfigurationError, PayloadTooLarge
from apisec.oauth._errors import (
    AuthorizationError,
    InvalidCallback,
    OAuthError,
    TokenRequestError,
)
from apisec.oauth._form import (
    FormError,
    basic_authorization,
    encode_form,
    header_pairs,
    parse_form,
)
from apisec.validation import parse_json

__all__ = [
    "AuthorizationResponse",
    "OAuthClient",
    "PendingAuthorization",
    "TokenRequest",
    "client_credentials_request",
    "parse_token_response",
]

MAX_CALLBACK_BYTES = 8 * 1024
MAX_TOKEN_RESPONSE_BYTES = 64 * 1024
_VSCHAR = re.compile(r"[\x20-\x7e]+")
_ERROR_CODE = re.compile(r"[\x20\x21\x23-\x5b\x5d-\x7e]{1,128}")
_ERROR_DESCRIPTION = re.compile(r"[\x20\x21\x23-\x5b\x5d-\x7e]{1,1024}")
_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")
_PRIVATE_SCHEME = re.compile(r"[a-z][a-z0-9+\-]*(?:\.[a-z0-9+\-]+)+")
_AUTHORIZATION_PARAMETERS = frozenset(
    {
        "response_type",
        "client_id",
        "redirect_uri",
        "scope",
        "state",
        "code_challenge",
        "code_challenge_method",
    }
)
_MAX_CODE = 2048


# --- configuration checks -------------------------------------------------------------


def _is_loopback(host: str | None) -> bool:
    try:
        return host is not None and ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_endpoint(url: object, name: str, *, query: bool) -> str:
    """An https URL (http only on a loopback address), without fragment or credentials."""
    if not isinstance(url, str) or not url:
        raise ConfigurationError(f"{name} must be a URL")
    parts = urlsplit(url)
    secure = parts.scheme == "https" or (parts.scheme == "http" and _is_loopback(parts.hostname))
    if not secure or not parts.hostname:
        raise ConfigurationError(f"{name} must be https (http only on a loopback address)")
    if parts.fragment or "#" in url or parts.username is not None:
        raise ConfigurationError(f"{name} must not carry a fragment or credentials")
    if parts.query and not query:
        raise ConfigurationError(f"{name} must not carry a query")
    return url


def _check_redirect_uri(url: object) -> str:
    """Exact redirect URIs (RFC 9700 section 2.1): absolute, no fragment, no wildcard."""
    if not isinstance(url, str) or not url or _VSCHAR.fullmatch(url) is None or " " in url:
        raise ConfigurationError("redirect_uri must be an absolute URI")
    parts = urlsplit(url)
    if "*" in url or parts.fragment or "#" in url:
        raise ConfigurationError("redirect_uri must be exact: no wildcard, no fragment")
    if parts.scheme in ("https", "http"):
        return _check_endpoint(url, "redirect_uri", query=True)
    # RFC 8252 section 7.1: native apps may use a reverse-domain private-use scheme.
    if _PRIVATE_SCHEME.fullmatch(parts.scheme) is None:
        raise ConfigurationError(
            "redirect_uri must be https, http on a loopback address, or a reverse-domain"
            " private-use scheme (com.example.app:/callback)"
        )
    return url


def _check_client_id(value: object) -> str:
    # RFC 6749's grammar is printable ASCII, but section 2.3.1 form-encodes ids
    # precisely so that others survive Basic: any printable text is accepted.
    if not isinstance(value, str) or not value or len(value) > 256 or not value.isprintable():
        raise ConfigurationError("client_id is 1-256 printable characters")
    return value


def _check_issuer(value: object) -> str | None:
    if value is None:
        return None
    return _check_endpoint(value, "issuer", query=False)


def _scope_text(scope: str | Iterable[str] | None) -> str | None:
    if scope is None:
        return None
    tokens = scope.split(" ") if isinstance(scope, str) else list(scope)
    if not tokens or not all(
        isinstance(t, str) and _SCOPE_TOKEN.fullmatch(t) is not None for t in tokens
    ):
        raise ConfigurationError("scopes are non-empty tokens without spaces, quotes or '\\'")
    return " ".join(dict.fromkeys(tokens))


def _reserved_query_names(endpoint: str) -> None:
    query = urlsplit(endpoint).query
    if not query:
        return
    try:
        names = parse_form(query)
    except FormError as exc:
        raise ConfigurationError(f"authorization_endpoint has a malformed query: {exc}") from None
    clash = _AUTHORIZATION_PARAMETERS.intersection(names)
    if clash:
        raise ConfigurationError(f"authorization_endpoint's query already sets {sorted(clash)}")


# --- values -----------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class PendingAuthorization:
    """One authorization request in flight: keep it in the user's session, use it once.

    ``url`` is where to send the browser. ``state`` and ``code_verifier`` are
    secrets bound to this session; neither shows in ``repr``. ``to_dict()``
    gives JSON-ready values for a session, ``from_dict()`` reads them back.
    """

    url: str = attrs.field(repr=False)
    state: str = attrs.field(repr=False)
    code_verifier: str = attrs.field(repr=False)
    redirect_uri: str
    scope: str | None
    issuer: str | None
    created_at: float

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)

    @classmethod
    def from_dict(cls, data: object) -> PendingAuthorization:
        """Read a stored pending authorization back; anything unexpected is refused.

        Raises:
            InvalidCallback: ``malformed_session``.
        """
        fields = {f.name for f in attrs.fields(cls)}
        if not isinstance(data, Mapping) or set(data) != fields:
            raise InvalidCallback("malformed_session")
        texts = ("url", "state", "code_verifier", "redirect_uri")
        optional = ("scope", "issuer")
        created = data["created_at"]
        if (
            not all(isinstance(data[name], str) and data[name] for name in texts)
            or not all(data[name] is None or isinstance(data[name], str) for name in optional)
            or isinstance(created, bool)
            or not isinstance(created, (int, float))
            or not math.isfinite(created)
        ):
            raise InvalidCallback("malformed_session")
        return cls(**{name: data[name] for name in fields})


@attrs.frozen(kw_only=True)
class AuthorizationResponse:
    """A callback that passed every check: the code to exchange (hidden from ``repr``)."""

    code: str = attrs.field(repr=False)
    issuer: str | None = None


@attrs.frozen
class TokenRequest:
    """A request for the token endpoint: send ``method`` to ``url`` with ``headers`` and ``body``.

    The body and headers carry secrets (the code, the verifier, client
    credentials): they never show in ``repr``.
    """

    url: str
    _headers: tuple[tuple[str, str], ...] = attrs.field(converter=header_pairs, repr=False)
    body: bytes = attrs.field(repr=False)
    method: str = "POST"

    @property
    def headers(self) -> list[tuple[str, str]]:
        """Request headers as (name, value) pairs."""
        return list(self._headers)


def _token_request(
    token_endpoint: str,
    params: list[tuple[str, str]],
    client_id: str,
    client_secret: str | None,
    use_basic: bool,
) -> TokenRequest:
    headers = [
        ("Content-Type", "application/x-www-form-urlencoded"),
        ("Accept", "application/json"),
    ]
    if client_secret is None:
        params.append(("client_id", client_id))  # a public client names itself
    elif use_basic:
        headers.append(("Authorization", basic_authorization(client_id, client_secret)))
    else:
        params += [("client_id", client_id), ("client_secret", client_secret)]
    return TokenRequest(token_endpoint, headers, encode_form(params).encode("ascii"))


def client_credentials_request(
    token_endpoint: str,
    client_id: str,
    client_secret: str,
    scope: str | Iterable[str] | None = None,
    *,
    use_basic: bool = True,
) -> TokenRequest:
    """A client credentials token request (RFC 6749 section 4.4.2), Basic auth by default.

    >>> request = client_credentials_request(
    ...     "https://server.example.com/token", "s6BhdRkqt3", "gX1fBat3bV")
    >>> request.body, dict(request.headers)["Authorization"]
    (b'grant_type=client_credentials', 'Basic czZCaGRSa3F0MzpnWDFmQmF0M2JW')
    """
    _check_endpoint(token_endpoint, "token_endpoint", query=True)
    if not isinstance(client_secret, str) or not client_secret:
        raise ConfigurationError("client_secret must be a non-empty string")
    params = [("grant_type", "client_credentials")]
    scope_text = _scope_text(scope)
    if scope_text is not None:
        params.append(("scope", scope_text))
    return _token_request(
        token_endpoint, params, _check_client_id(client_id), client_secret, use_basic
    )


def _reject(reason: str, client_id: str) -> InvalidCallback:
    emit(AuditEvent.OAUTH_CALLBACK_REJECTED, reason=reason, client_id=client_id)
    return InvalidCallback(reason)


def _callback_params(callback: str | bytes | Mapping[str, str], client_id: str) -> dict[str, str]:
    if isinstance(callback, Mapping):
        params = dict(callback)
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in params.items()):
            raise _reject("malformed", client_id)
        if sum(len(k) + len(v) for k, v in params.items()) > MAX_CALLBACK_BYTES:
            raise _reject("malformed", client_id)
        return params
    if isinstance(callback, (bytes, bytearray)):
        callback = bytes(callback)
    if len(callback) > MAX_CALLBACK_BYTES:
        raise _reject("malformed", client_id)
    if isinstance(callback, bytes):
        callback = callback.removeprefix(b"?")
    else:
        callback = callback.removeprefix("?")
    try:
        return parse_form(callback)
    except FormError:
        raise _reject("malformed", client_id) from None


@attrs.frozen(kw_only=True)
class OAuthClient:
    """An OAuth 2.0 client of one authorization server: authorization code with PKCE.

    Args:
        client_id: the id the authorization server gave this client.
        authorization_endpoint: where the browser goes (https; a query is kept).
        token_endpoint: where the code is exchanged.
        redirect_uri: the exact callback URI registered with the server.
        client_secret: for a confidential client (sent with HTTP Basic);
            None for a public client (it names itself with ``client_id``).
        issuer: the server's issuer identifier (RFC 8414). When set, a
            callback's ``iss`` must equal it (RFC 9207).
        require_issuer: the server's metadata has
            ``authorization_response_iss_parameter_supported: true``, so a
            callback without ``iss`` is refused. Needs ``issuer``.
        max_age: seconds a pending authorization stays usable.
        clock: the time source.
        session_key: where :meth:`start` and :meth:`finish` keep the pending
            authorization in the session (one per client at a time).
    """

    client_id: str = attrs.field(converter=_check_client_id)
    authorization_endpoint: str = attrs.field()
    token_endpoint: str = attrs.field()
    redirect_uri: str = attrs.field(converter=_check_redirect_uri)
    client_secret: str | None = attrs.field(default=None, repr=False)
    issuer: str | None = attrs.field(default=None, converter=_check_issuer)
    require_issuer: bool = attrs.field(default=False)
    max_age: float = attrs.field(default=600.0)
    clock: Clock = attrs.field(default=wall_clock, repr=False)
    session_key: str | None = None

    @authorization_endpoint.validator
    def _check_authorization_endpoint(self, _: object, value: object) -> None:
        _check_endpoint(value, "authorization_endpoint", query=True)
        _reserved_query_names(str(value))

    @token_endpoint.validator
    def _check_token_endpoint(self, _: object, value: object) -> None:
        _check_endpoint(value, "token_endpoint", query=True)

    @client_secret.validator
    def _check_secret(self, _: object, value: object) -> None:
        if value is not None and (not isinstance(value, str) or not value):
            raise ConfigurationError("client_secret must be a non-empty string or None")

    @require_issuer.validator
    def _check_require_issuer(self, _: object, value: object) -> None:
        if value and self.issuer is None:
            raise ConfigurationError("require_issuer needs the issuer identifier")

    @max_age.validator
    def _check_max_age(self, _: object, value: object) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 3600:
            raise ConfigurationError("max_age is within 0 and 3600 seconds")

    @property
    def _session_key(self) -> str:
        return self.session_key or f"apisec.oauth:{self.client_id}"

    # --- the authorization request -------------------------------------------------------

    def authorization_request(
        self,
        scope: str | Iterable[str] | None = None,
        *,
        extra: Mapping[str, str] | None = None,
        state: str | None = None,
        pair: pkce.PkcePair | None = None,
    ) -> PendingAuthorization:
        """A fresh authorization request: its URL, and what the callback is checked against.

        Args:
            scope: the scopes to ask for (a space-separated string or a list).
            extra: further parameters (``nonce``, ``prompt``, ``resource``...);
                they cannot replace the ones this method sets.
            state, pair: fixed values for tests and spec examples; leave them
                out and fresh random ones are made.
        """
        state = pkce.state() if state is None else state
        if not isinstance(state, str) or _VSCHAR.fullmatch(state) is None:
            raise ConfigurationError("state is a non-empty string of printable ASCII")
        pair = pkce.create_pair() if pair is None else pair
        if pair.method != "S256":
            raise ConfigurationError("PKCE uses S256, always")
        if not pkce.verify(pair.verifier, pair.challenge, "S256"):
            raise ConfigurationError("the PKCE pair does not match")
        scope_text = _scope_text(scope)
        params = [
            ("response_type", "code"),
            ("client_id", self.client_id),
            ("redirect_uri", self.redirect_uri),
        ]
        if scope_text is not None:
            params.append(("scope", scope_text))
        params += [
            ("state", state),
            ("code_challenge", pair.challenge),
            ("code_challenge_method", "S256"),
        ]
        for name, value in (extra or {}).items():
            if not isinstance(name, str) or not isinstance(value, str) or not name:
                raise ConfigurationError("extra parameters are names and values as strings")
            if name in _AUTHORIZATION_PARAMETERS:
                raise ConfigurationError(f"extra cannot set {name!r}")
            params.append((name, value))
        parts = urlsplit(self.authorization_endpoint)
        query = encode_form(params)
        url = urlunsplit(
            (
                parts.scheme,
                parts.netloc,
                parts.path,
                f"{parts.query}&{query}" if parts.query else query,
                "",
            )
        )
        return PendingAuthorization(
            url=url,
            state=state,
            code_verifier=pair.verifier,
            redirect_uri=self.redirect_uri,
            scope=scope_text,
            issuer=self.issuer,
            created_at=self.clock(),
        )

    # --- the callback --------------------------------------------------------------------

    def parse_callback(
        self, callback: str | bytes | Mapping[str, str], pending: PendingAuthorization
    ) -> AuthorizationResponse:
        """Check the redirect back from the authorization server against ``pending``.

        ``callback`` is the raw query string (preferred: repeated parameters
        are refused) or an already-parsed mapping. This does not make the
        pending authorization single-use: remove it from the session first,
        or use :meth:`finish`, which does.

        Raises:
            InvalidCallback: malformed, state missing or not this session's,
                ``iss`` wrong or missing when required, expired, no code.
            AuthorizationError: the server answered with ``error``.
        """
        params = _callback_params(callback, self.client_id)
        state = params.get("state")
        if not state:
            raise _reject("missing_state", self.client_id)
        if not hmac.compare_digest(
            state.encode("utf-8", "surrogatepass"), pending.state.encode("utf-8", "surrogatepass")
        ):
            raise _reject("state_mismatch", self.client_id)
        issuer = params.get("iss")
        if pending.issuer is not None:
            # RFC 9207 section 2.4: check before anything else in the response is used.
            if issuer is None:
                if self.require_issuer:
                    raise _reject("missing_issuer", self.client_id)
            elif issuer != pending.issuer:
                raise _reject("issuer_mismatch", self.client_id)
        if not 0 <= self.clock() - pending.created_at <= self.max_age:
            raise _reject("expired", self.client_id)
        if "error" in params:
            raise self._authorization_error(params)
        code = params.get("code")
        if not code:
            raise _reject("missing_code", self.client_id)
        if len(code) > _MAX_CODE or _VSCHAR.fullmatch(code) is None:
            raise _reject("malformed", self.client_id)
        return AuthorizationResponse(code=code, issuer=issuer)

    def _authorization_error(self, params: Mapping[str, str]) -> OAuthError:
        error = params["error"]
        if _ERROR_CODE.fullmatch(error) is None:
            return _reject("malformed", self.client_id)
        description = params.get("error_description")
        if description is not None and _ERROR_DESCRIPTION.fullmatch(description) is None:
            description = None  # not the RFC's character set: not worth keeping
        error_uri = params.get("error_uri")
        if error_uri is not None and _VSCHAR.fullmatch(error_uri) is None:
            error_uri = None
        emit(
            AuditEvent.OAUTH_CALLBACK_REJECTED,
            reason="authorization_error",
            error=error,
            client_id=self.client_id,
        )
        return AuthorizationError(
            f"authorization server answered {error}",
            error=error,
            error_description=description,
            error_uri=error_uri,
        )

    def token_request(
        self, response: AuthorizationResponse, pending: PendingAuthorization
    ) -> TokenRequest:
        """The code exchange (RFC 6749 section 4.1.3 with RFC 7636's ``code_verifier``)."""
        params = [
            ("grant_type", "authorization_code"),
            ("code", response.code),
            ("redirect_uri", pending.redirect_uri),
            ("code_verifier", pending.code_verifier),
        ]
        return _token_request(
            self.token_endpoint, params, self.client_id, self.client_secret, use_basic=True
        )

    # --- with a session ------------------------------------------------------------------

    def start(
        self,
        session: MutableMapping[str, Any],
        scope: str | Iterable[str] | None = None,
        *,
        extra: Mapping[str, str] | None = None,
    ) -> str:
        """Begin a login: store a fresh pending authorization in ``session``; return the URL.

        A second ``start`` in the same session replaces the first.
        """
        pending = self.authorization_request(scope, extra=extra)
        session[self._session_key] = pending.to_dict()
        return pending.url

    def finish(
        self, session: MutableMapping[str, Any], callback: str | bytes | Mapping[str, str]
    ) -> TokenRequest:
        """Check the callback against the session's pending authorization and build the exchange.

        The pending authorization leaves the session first, whatever happens
        next: a callback is accepted once.

        Raises:
            InvalidCallback, AuthorizationError: see :meth:`parse_callback`.
        """
        stored = session.pop(self._session_key, None)
        if stored is None:
            raise _reject("no_pending_authorization", self.client_id)
        try:
            pending = PendingAuthorization.from_dict(stored)
        except InvalidCallback:
            raise _reject("malformed_session", self.client_id) from None
        response = self.parse_callback(callback, pending)
        return self.token_request(response, pending)


def parse_token_response(status: int, body: bytes) -> dict[str, Any]:
    """The members of a token endpoint's answer (RFC 6749 sections 5.1 and 5.2).

    Returns the JSON object of a 200 answer that carries a string
    ``access_token`` and ``token_type``.

    Raises:
        TokenRequestError: an error answer (its ``error`` code), or anything
            unusable (``invalid_response``).
    """
    try:
        document = parse_json(body, max_bytes=MAX_TOKEN_RESPONSE_BYTES)
    except (ClientError, PayloadTooLarge):
        raise TokenRequestError("token response is not JSON", http_status=status) from None
    if not isinstance(document, dict):
        raise TokenRequestError("token response is not a JSON object", http_status=status)
    if status == 200:
        if not isinstance(document.get("access_token"), str) or not document["access_token"]:
            raise TokenRequestError("token response without access_token", http_status=status)
        if not isinstance(document.get("token_type"), str):
            raise TokenRequestError("token response without token_type", http_status=status)
        return document
    error = document.get("error")
    if not isinstance(error, str) or _ERROR_CODE.fullmatch(error) is None:
        raise TokenRequestError(f"token endpoint answered {status}", http_status=status)
    description = document.get("error_description")
    error_uri = document.get("error_uri")
    raise TokenRequestError(
        f"token endpoint answered {status} {error}",
        error=error,
        error_description=description if isinstance(description, str) else None,
        error_uri=error_uri if isinstance(error_uri, str) else None,
        http_status=status,
    )
