"""Who is calling, and what they may do: one ``Principal`` for tokens and API keys.

The adapters authenticate a request and publish a :class:`Principal`;
handlers check it with :func:`require_scopes`, :func:`require_roles` and
:func:`require_owner` (OWASP API1 and API5: object- and function-level
authorization belong in every handler, not only at the edge):

>>> principal = Principal.from_claims({"sub": "user_42", "scope": "orders:read"})
>>> require_scopes(principal, "orders:read").subject
'user_42'
>>> require_scopes(principal, "orders:write")
Traceback (most recent call last):
...
apisec.authz.InsufficientScope: missing scopes ['orders:write']
>>> require_owner(principal, "user_7")
Traceback (most recent call last):
...
apisec.errors.NotFound: user_42 does not own this resource

Every denial is an audit event (``authz.denied``) with the principal, the
reason and what was missing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, MutableMapping
from typing import TYPE_CHECKING, Any, Final, Literal

import attrs

from apisec.audit import AuditEvent, emit
from apisec.errors import AuthenticationError, ConfigurationError, NotFound, PermissionDenied

if TYPE_CHECKING:
    from apisec.apikeys import ApiKeyRecord

__all__ = [
    "PRINCIPAL_KEY",
    "InsufficientScope",
    "Principal",
    "get_principal",
    "require_owner",
    "require_principal",
    "require_roles",
    "require_scopes",
]

#: Where the adapters publish the principal: ``scope["state"][PRINCIPAL_KEY]``
#: (ASGI) and ``environ[PRINCIPAL_KEY]`` (WSGI).
PRINCIPAL_KEY: Final = "apisec.principal"

PrincipalKind = Literal["token", "api_key"]


def _names(value: object) -> frozenset[str]:
    """A claim or metadata value as a set: a list of strings or one space-separated string."""
    if isinstance(value, str):
        return frozenset(value.split())
    if isinstance(value, (list, tuple, set, frozenset)):
        return frozenset(v for v in value if isinstance(v, str) and v)
    return frozenset()


def _frozen(values: Iterable[str]) -> frozenset[str]:
    return frozenset(values)


@attrs.frozen(kw_only=True)
class Principal:
    """The authenticated caller, whichever credential it used.

    Attributes:
        subject: the account acting (a token's ``sub``, an API key's owner).
        kind: ``"token"`` or ``"api_key"``.
        scopes: what the credential may do.
        roles: the caller's roles (a token's ``roles`` claim, an API key's
            ``metadata["roles"]``).
        claims: the verified token claims (tokens only).
        key: the API key record (API keys only; never the key itself).
    """

    subject: str
    kind: PrincipalKind
    scopes: frozenset[str] = attrs.field(default=frozenset(), converter=_frozen)
    roles: frozenset[str] = attrs.field(default=frozenset(), converter=_frozen)
    claims: Mapping[str, Any] | None = attrs.field(default=None, repr=False)
    key: ApiKeyRecord | None = attrs.field(default=None, repr=False)

    @property
    def id(self) -> str:
        """What audit events name: the subject of a token, the id of an API key."""
        return self.key.id if self.key is not None else self.subject

    @classmethod
    def from_claims(cls, claims: Mapping[str, Any], *, roles_claim: str = "roles") -> Principal:
        """The principal of verified access-token claims (``scope`` and ``roles``)."""
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject:
            raise ConfigurationError("token claims have no subject")
        return cls(
            subject=subject,
            kind="token",
            scopes=_names(claims.get("scope")),
            roles=_names(claims.get(roles_claim)),
            claims=claims,
        )

    @classmethod
    def from_api_key(cls, record: ApiKeyRecord) -> Principal:
        """The principal of an authenticated API key record."""
        return cls(
            subject=record.owner,
            kind="api_key",
            scopes=frozenset(record.scopes),
            roles=_names(record.metadata.get("roles")),
            key=record,
        )


def _coerce(principal: object) -> Principal:
    if isinstance(principal, Principal):
        return principal
    if hasattr(principal, "key_hash") and hasattr(principal, "owner"):
        return Principal.from_api_key(principal)  # type: ignore[arg-type]
    if isinstance(principal, Mapping):
        return Principal.from_claims(principal)
    raise ConfigurationError(
        "expected a Principal, verified token claims or an API key record, "
        f"got {type(principal).__name__}"
    )


class InsufficientScope(PermissionDenied):
    """The credential is valid but lacks a required scope (403, RFC 6750 ``insufficient_scope``)."""

    slug = "insufficient-scope"
    title = "Insufficient scope"
    default_detail = "The credentials lack a required scope."


def _bearer_scope_challenge(scopes: Iterable[str]) -> list[tuple[str, str]]:
    scope = " ".join(scopes)
    return [("WWW-Authenticate", f'Bearer error="insufficient_scope", scope="{scope}"')]


def require_scopes(
    principal: Principal | Mapping[str, Any] | ApiKeyRecord, *scopes: str
) -> Principal:
    """Return the principal if it holds every scope, else raise :class:`InsufficientScope`.

    Accepts a :class:`Principal`, verified token claims or an API key record.
    A token's 403 carries ``WWW-Authenticate: Bearer error="insufficient_scope"``
    naming the scopes needed (RFC 6750 section 3.1).
    """
    who = _coerce(principal)
    missing = sorted(set(scopes) - who.scopes)
    if missing:
        emit(
            AuditEvent.PERMISSION_DENIED,
            principal=who.id,
            reason="scope",
            missing=" ".join(missing),
        )
        raise InsufficientScope(
            f"missing scopes {missing}",
            extensions={"required_scopes": missing},
            headers=_bearer_scope_challenge(sorted(scopes)) if who.kind == "token" else (),
        )
    return who


def require_roles(
    principal: Principal | Mapping[str, Any] | ApiKeyRecord, *roles: str, any_of: bool = False
) -> Principal:
    """Return the principal if it has every role (or, with ``any_of``, one of them); else 403."""
    if not roles:
        raise ConfigurationError("name at least one role")
    who = _coerce(principal)
    held = set(roles) & who.roles
    if (any_of and held) or (not any_of and len(held) == len(set(roles))):
        return who
    missing = sorted(set(roles) - who.roles)
    emit(AuditEvent.PERMISSION_DENIED, principal=who.id, reason="role", missing=" ".join(missing))
    raise PermissionDenied(f"missing roles {missing}", detail="A required role is missing.")


def require_owner(
    principal: Principal | Mapping[str, Any] | ApiKeyRecord,
    owner: object,
    *,
    hide: bool = True,
    bypass_roles: Iterable[str] = (),
) -> Principal:
    """Return the principal if it owns the resource (``owner`` is its subject).

    Args:
        owner: the resource owner's id, as stored with the resource.
        hide: raise :class:`~apisec.errors.NotFound` (404, the default) so a
            caller cannot learn that someone else's resource exists (OWASP
            API1 enumeration); ``False`` raises ``PermissionDenied`` (403)
            when existence is not a secret.
        bypass_roles: roles that may act on anyone's resources (support
            staff, administrators).
    """
    who = _coerce(principal)
    if isinstance(owner, str) and owner == who.subject:
        return who
    if not who.roles.isdisjoint(bypass_roles):
        return who
    emit(AuditEvent.PERMISSION_DENIED, principal=who.id, reason="owner")
    message = f"{who.subject} does not own this resource"
    if hide:
        raise NotFound(message)
    raise PermissionDenied(message)


def get_principal(scope_or_environ: MutableMapping[str, Any]) -> Principal | None:
    """The principal an adapter published for this request (ASGI scope or WSGI environ)."""
    found = scope_or_environ.get(PRINCIPAL_KEY)
    if found is None:
        state = scope_or_environ.get("state")
        if isinstance(state, Mapping):
            found = state.get(PRINCIPAL_KEY)
    return found if isinstance(found, Principal) else None


def require_principal(scope_or_environ: MutableMapping[str, Any]) -> Principal:
    """Like :func:`get_principal`, but a request without one is a 401."""
    principal = get_principal(scope_or_environ)
    if principal is None:
        raise AuthenticationError("no authenticated principal for this request")
    return principal
