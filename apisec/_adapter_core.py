"""The protocol-free half of each middleware: decisions the ASGI and WSGI twins share.

An adapter reads what the request says (header values, path, client),
asks one of these cores, and renders the answer. Only the calls that may do
I/O (an API-key lookup, a rate-limit hit) differ between the twins, and
those are one line each in the adapters.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Generic, Literal, TypeVar
from urllib.parse import parse_qs

from apisec._async import InPlace, has_async_method
from apisec._http import (
    InvalidRequest,
    PathRules,
    api_key_challenge,
    bearer_challenge,
    bearer_token,
    query_has,
    single_value,
)
from apisec.apikeys import InvalidApiKey, is_well_formed
from apisec.apikeys._stores import MemoryApiKeyStore
from apisec.audit import AuditEvent, emit
from apisec.authz import InsufficientScope, Principal, require_scopes
from apisec.clientaddr import DEFAULT_IPV6_PREFIX, TrustedProxies, client_key
from apisec.errors import ApiSecError, AuthenticationError, ConfigurationError
from apisec.ratelimit import (
    AsyncRateLimiter,
    Decision,
    MemoryStore,
    RateLimiter,
    RateLimitExceeded,
)
from apisec.tokens import AsyncTokenService, InvalidToken, MemoryRefreshTokenStore, TokenService

logger = logging.getLogger("apisec.adapters")

Mode = Literal["asgi", "wsgi"]
GetHeader = Callable[[str], list[str]]
#: Query parameters that carry credentials (RFC 6750 section 2.3 and common API-key spellings).
_TOKEN_PARAMS = ("access_token",)
_KEY_PARAMS = ("api_key", "apikey", "key")

_MEMORY_STORES: tuple[type, ...] = (MemoryStore, MemoryRefreshTokenStore, MemoryApiKeyStore)


def _is_async_service(service: object) -> bool:
    return has_async_method(service, "authenticate" if hasattr(service, "authenticate") else "hit")


def _in_memory(store: object) -> bool:
    inner = store.inner if isinstance(store, InPlace) else store
    return isinstance(inner, _MEMORY_STORES)


def checked_service(service: Any, mode: Mode, what: str, async_name: str) -> Any:
    """Refuse a service that would block the event loop (ASGI) or cannot be awaited (WSGI).

    On ASGI a synchronous service is accepted only over an in-memory store;
    one that does network or file I/O must be its async twin.
    """
    is_async = _is_async_service(service)
    if mode == "wsgi" and is_async:
        raise ConfigurationError(
            f"{what} is async; a WSGI middleware needs the synchronous service"
        )
    if mode == "asgi" and not is_async:
        store = getattr(service, "store", None)
        if store is not None and not _in_memory(store):
            raise ConfigurationError(
                f"{what} over {type(store).__name__} would block the event loop; "
                f"use {async_name} on ASGI"
            )
    return service


K = TypeVar("K")


class AuthCore(Generic[K]):
    """Bearer-token and API-key authentication, and per-route scope rules.

    ``K`` is the API-key service type the adapter takes: ``ApiKeyService``
    on WSGI, either twin on ASGI.
    """

    def __init__(
        self,
        *,
        mode: Mode,
        tokens: TokenService | AsyncTokenService | None,
        keys: K | None,
        api_key_header: str,
        accept_bearer_keys: bool,
        exclude_paths: Iterable[str],
        scopes: Mapping[str, Sequence[str]] | None,
        allow_query_token: bool,
        realm: str,
    ) -> None:
        if tokens is None and keys is None:
            raise ConfigurationError("give tokens=, keys= or both")
        if tokens is not None and not isinstance(tokens, (TokenService, AsyncTokenService)):
            raise ConfigurationError("tokens must be a TokenService or AsyncTokenService")
        if keys is not None:
            if not callable(getattr(keys, "authenticate", None)):
                raise ConfigurationError("keys must be an ApiKeyService or AsyncApiKeyService")
            checked_service(keys, mode, "the API key service", "AsyncApiKeyService")
        if not isinstance(realm, str) or not realm.isascii() or '"' in realm or "\\" in realm:
            raise ConfigurationError("realm must be ASCII without quotes or backslashes")
        if not isinstance(api_key_header, str) or not api_key_header.replace("-", "").isalnum():
            raise ConfigurationError("api_key_header must be a header name")
        self.tokens = tokens
        self.keys = keys
        self.api_key_header = api_key_header
        self.header_lower = api_key_header.lower()
        self.accept_bearer_keys = accept_bearer_keys and keys is not None
        self.exclude: PathRules[bool] = PathRules(list(exclude_paths))
        checked: dict[str, tuple[str, ...]] = {}
        for rule, needed in (scopes or {}).items():
            values = tuple(needed.split() if isinstance(needed, str) else needed)
            if not values or not all(isinstance(s, str) and s for s in values):
                raise ConfigurationError(f"scope rule {rule!r} needs a list of scope names")
            checked[rule] = values
        self.scopes: PathRules[tuple[str, ...]] = PathRules(checked)
        self.allow_query_token = allow_query_token
        self.realm = realm
        self._read_authorization = tokens is not None or self.accept_bearer_keys
        self._query_params = (_TOKEN_PARAMS if self._read_authorization else ()) + (
            _KEY_PARAMS if keys is not None else ()
        )
        challenges = []
        if self._read_authorization:
            challenges.append(("WWW-Authenticate", bearer_challenge(realm)))
        if keys is not None:
            challenges.append(("WWW-Authenticate", api_key_challenge(realm, api_key_header)))
        self._challenges = challenges

    def skips(self, method: str, path: str) -> bool:
        """Whether the path is exempt from authentication."""
        return bool(self.exclude) and self.exclude.match_strict(method, path) is not None

    def credential(self, get: GetHeader, query: str) -> tuple[str, str] | None:
        """``("token" | "api_key", value)`` of the request's one credential, or None.

        Raises :class:`InvalidRequest` for repeated or malformed credential
        headers, for two credentials at once, and for credentials in the
        query string unless ``allow_query_token`` says otherwise.
        """
        found: list[tuple[str, str]] = []
        if self._read_authorization:
            bearer = bearer_token(get("authorization"))
            if bearer is not None:
                found.append(self._classify(bearer))
        if self.keys is not None:
            key = single_value(get(self.header_lower), self.api_key_header)
            if key is not None:
                found.append(("api_key", key))
        if query and self._query_params and query_has(query, self._query_params):
            from_query = self._query_credential(query)
            if from_query is None:
                raise InvalidRequest("credentials in the query string are refused")
            found.append(from_query)
        if len(found) > 1:
            raise InvalidRequest("more than one credential in the request")
        return found[0] if found else None

    def _classify(self, bearer: str) -> tuple[str, str]:
        if self.tokens is None:
            return "api_key", bearer
        if self.accept_bearer_keys and is_well_formed(bearer):
            return "api_key", bearer
        return "token", bearer

    def _query_credential(self, query: str) -> tuple[str, str] | None:
        if not self.allow_query_token or self.tokens is None:
            return None
        values = parse_qs(query, keep_blank_values=True).get("access_token", [])
        others = query_has(query, _KEY_PARAMS) if self.keys is not None else False
        if len(values) != 1 or others:
            return None
        token = bearer_token([f"Bearer {values[0]}"])
        return None if token is None else ("token", token)

    def missing(self) -> AuthenticationError:
        """The 401 for a request with no credential (RFC 6750: no error code)."""
        emit(AuditEvent.AUTH_FAILURE, reason="missing_credentials")
        return AuthenticationError("no credentials")

    def verify_token(self, token: str) -> Principal:
        """The principal of a valid access token (raises ``InvalidToken``)."""
        if self.tokens is None:  # credential() yields tokens only when a service is set
            raise ConfigurationError("no token service configured")
        return Principal.from_claims(self.tokens.verify(token))

    def authorize(self, principal: Principal, method: str, path: str) -> Principal:
        """Apply the per-route scope rules (both readings of the path must be satisfied)."""
        if self.scopes:
            needed = {scope for rule in self.scopes.match_all(method, path) for scope in rule}
            if needed:
                require_scopes(principal, *sorted(needed))
        return principal

    def challenges(self, error: ApiSecError) -> list[tuple[str, str]]:
        """The ``WWW-Authenticate`` fields that go with a refusal (RFC 6750 section 3)."""
        if isinstance(error, InvalidToken):
            return [("WWW-Authenticate", bearer_challenge(self.realm, "invalid_token"))]
        if isinstance(error, InvalidApiKey):
            return [("WWW-Authenticate", api_key_challenge(self.realm, self.api_key_header))]
        if isinstance(error, InsufficientScope):
            return [h for h in error.headers if h[0].lower() == "www-authenticate"]
        if isinstance(error, InvalidRequest) and self._read_authorization:
            return [("WWW-Authenticate", bearer_challenge(self.realm, "invalid_request"))]
        if isinstance(error, AuthenticationError):
            return list(self._challenges)
        return []


def fewest_left(reported: Decision | None, decision: Decision) -> Decision:
    """One step of ``spend`` (both twins): raise at a refusal, else keep the tighter decision.

    The decision with the fewest units left is the one to report.
    """
    if not decision.allowed:
        raise RateLimitExceeded(decision)
    if reported is None or decision.remaining < reported.remaining:
        return decision
    return reported


def reported_of(reported: Decision | None) -> Decision:
    """What ``spend`` reports after its last step (it needs one limiter at least)."""
    if reported is None:
        raise ConfigurationError("spend() needs at least one limiter")
    return reported


class LimitCore:
    """Which limiters apply to a request, and under which key."""

    def __init__(
        self,
        *,
        mode: Mode,
        limiter: RateLimiter | AsyncRateLimiter,
        key: str | Callable[[Any], str | None] | None,
        exclude_paths: Iterable[str],
        routes: Mapping[str, RateLimiter | AsyncRateLimiter] | None,
        cost: int | Callable[[Any], int],
        ipv6_prefix: int,
    ) -> None:
        limiters = [limiter, *(routes or {}).values()]
        for each in limiters:
            if not isinstance(each, (RateLimiter, AsyncRateLimiter)):
                raise ConfigurationError("limiters must be RateLimiter or AsyncRateLimiter")
            checked_service(each, mode, "the rate limiter", "AsyncRateLimiter")
        seen: dict[tuple[int, str], object] = {}
        for each in limiters:
            slot = (id(each.store), each.prefix)
            if slot in seen and seen[slot] is not each:
                raise ConfigurationError(
                    "two limiters share a store and a prefix; give each its own prefix="
                )
            seen[slot] = each
        if key is not None and key != "principal" and not callable(key):
            raise ConfigurationError('key must be None (client address), "principal" or callable')
        if not callable(cost) and (isinstance(cost, bool) or not isinstance(cost, int) or cost < 0):
            raise ConfigurationError("cost must be a non-negative int or a callable")
        client_key("::1", ipv6_prefix=ipv6_prefix)  # validates the prefix
        self.limiter = limiter
        self.key = key
        self.cost = cost
        self.ipv6_prefix = ipv6_prefix
        self.exclude: PathRules[bool] = PathRules(list(exclude_paths))
        self.routes: PathRules[RateLimiter | AsyncRateLimiter] = PathRules(routes or {})

    def limiters(self, method: str, path: str) -> list[RateLimiter | AsyncRateLimiter]:
        """The limiters for this request: the default one plus any route's own."""
        if self.exclude and self.exclude.match_strict(method, path) is not None:
            return []
        found = [self.limiter]
        if self.routes:
            found.extend(self.routes.match_all(method, path))
        return found

    def key_for(self, client: str | None, principal: Principal | None, request: Any) -> str | None:
        """The limiting key: the canonical client (IPv6 by prefix), the principal, or custom."""
        if self.key is None:
            return client_key(client or "", ipv6_prefix=self.ipv6_prefix)
        if self.key == "principal":  # unauthenticated requests are the client limit's job
            return None if principal is None else f"p:{principal.kind}:{principal.id}"
        result = self.key(request)  # type: ignore[operator]
        if result is not None and not isinstance(result, str):
            raise ConfigurationError("a key function returns a string or None")
        return result

    def cost_for(self, request: Any) -> int:
        cost = self.cost(request) if callable(self.cost) else self.cost
        if isinstance(cost, bool) or not isinstance(cost, int) or cost < 0:
            raise ConfigurationError("a cost function returns a non-negative int")
        return cost


def log_unhandled(exc: BaseException, correlation: str | None) -> None:
    """Log an exception the app let escape, with the id its 500 problem shows."""
    logger.error("unhandled exception (correlation id %s)", correlation, exc_info=exc)


#: One shared default, so stacked middleware resolve the client once per request.
_NO_PROXIES = TrustedProxies()


def proxies_or_default(proxies: TrustedProxies | None) -> TrustedProxies:
    """The proxy setting given, or the shared "trust no forwarding header" default."""
    if proxies is None:
        return _NO_PROXIES
    if not isinstance(proxies, TrustedProxies):
        raise ConfigurationError("proxies must be a TrustedProxies")
    return proxies


__all__ = [
    "DEFAULT_IPV6_PREFIX",
    "AuthCore",
    "LimitCore",
    "checked_service",
    "log_unhandled",
    "proxies_or_default",
]
