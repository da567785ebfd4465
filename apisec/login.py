"""Login protection: failure counting per account and per client, growing lockouts.

>>> from apisec.passwords import PasswordHasher
>>> from apisec.testing import FakeClock
>>> guard = LoginGuard(max_failures=3, clock=FakeClock())
>>> hasher = PasswordHasher(scrypt_n_log2=10)
>>> stored = hasher.hash("s3cret!")
>>> for attempt in ["a", "b", "c"]:
...     try:
...         guard.attempt("ada@example.com", "203.0.113.9", lambda: hasher.verify(attempt, stored))
...     except InvalidCredentials:
...         pass
>>> guard.attempt("ada@example.com", "203.0.113.9", lambda: hasher.verify("s3cret!", stored))
Traceback (most recent call last):
...
apisec.login.TooManyLoginAttempts: too many failed logins

The guard counts failures on any rate-limit store (memory, Redis, yours),
so every process behind a load balancer sees the same counts. An account is
locked after ``max_failures`` failures in ``window`` seconds; whoever keeps
trying meets longer windows (``2x`` the failures in ``4x`` the time, then
``4x`` in ``16x``...), so lockouts grow. A client address has its own,
larger budget across all accounts (password spraying). Success resets the
account, not the client. Failures answer one generic 401 whatever went
wrong; lockouts answer 429 with ``Retry-After``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from typing import Any

from apisec._clock import Clock
from apisec.audit import AuditEvent, emit
from apisec.errors import AuthenticationError, ConfigurationError
from apisec.ratelimit import (
    AsyncRateLimiter,
    Decision,
    RateLimiter,
    RateLimitExceeded,
    SlidingWindow,
)

__all__ = ["AsyncLoginGuard", "InvalidCredentials", "LoginGuard", "TooManyLoginAttempts"]


class InvalidCredentials(AuthenticationError):
    """Wrong password, unknown account, whatever it was: one answer (401)."""

    slug = "invalid-credentials"
    title = "Invalid credentials"
    default_detail = "Invalid credentials."


class TooManyLoginAttempts(RateLimitExceeded):
    """Locked out for now (429, with ``Retry-After``)."""

    slug = "too-many-login-attempts"
    title = "Too many login attempts"
    default_detail = "Too many failed attempts; try again later."

    def __init__(self, decision: Decision) -> None:
        super().__init__(decision, "too many failed logins")


def _account_key(account: str) -> str:
    # Account names (often emails) stay out of the store's key names.
    normalized = account.strip().casefold()
    return "a:" + hashlib.sha256(normalized.encode("utf-8", "surrogatepass")).hexdigest()[:40]


class _GuardCore:
    _limiter_class: Any

    def __init__(
        self,
        store: Any = None,
        *,
        max_failures: int = 5,
        window: float = 900,
        steps: int = 3,
        client_max_failures: int = 50,
        client_window: float = 900,
        prefix: str = "login",
        clock: Clock | None = None,
    ) -> None:
        if max_failures < 1 or steps < 1 or client_max_failures < max_failures:
            raise ConfigurationError(
                "need max_failures >= 1, steps >= 1 and client_max_failures >= max_failures"
            )
        self.account_limits = [
            SlidingWindow(max_failures * 2**i, window * 4**i, name=f"account-{i}")
            for i in range(steps)
        ]
        self.client_limits = [SlidingWindow(client_max_failures, client_window, name="client")]
        make = self._limiter_class
        self._accounts = make(self.account_limits, store, f"{prefix}:acct", clock)
        self._clients = make(self.client_limits, self._accounts.store, f"{prefix}:ip", clock)

    @staticmethod
    def _keys(account: str, client: str) -> tuple[str, str]:
        if not isinstance(account, str) or not isinstance(client, str) or not client:
            raise ConfigurationError("account and client must be strings")
        return _account_key(account), "c:" + client

    @staticmethod
    def _locked(decisions: tuple[Decision, ...], account: str, client: str) -> None:
        for decision in decisions:
            if not decision.allowed:
                emit(
                    AuditEvent.LOGIN_LOCKED,
                    principal=account,
                    client=client,
                    reason=decision.policy,
                )
                raise TooManyLoginAttempts(decision)


class LoginGuard(_GuardCore):
    """Brute-force protection for a login endpoint.

    Args:
        store: a rate-limit store (memory by default; Redis to share across processes).
        max_failures: failures per account before the first lockout.
        window: seconds over which they count (the first lockout's length at most).
        steps: how many growing lockout levels.
        client_max_failures / client_window: the budget of one client address.
        prefix: key prefix in the store.
        clock: the time source (the store's own when None).
    """

    _limiter_class = RateLimiter
    _accounts: RateLimiter
    _clients: RateLimiter

    def check(self, account: str, client: str) -> None:
        """Raise :class:`TooManyLoginAttempts` if this account or client is locked out."""
        account_key, client_key = self._keys(account, client)
        self._locked(
            (self._accounts.peek(account_key), self._clients.peek(client_key)), account, client
        )

    def record_failure(self, account: str, client: str) -> None:
        account_key, client_key = self._keys(account, client)
        self._accounts.hit(account_key)
        self._clients.hit(client_key)
        emit(AuditEvent.LOGIN_FAILURE, principal=account, client=client)

    def record_success(self, account: str, client: str) -> None:
        """Clear the account's failures (the client's budget is left alone)."""
        account_key, _ = self._keys(account, client)
        self._accounts.reset(account_key)

    def attempt(self, account: str, client: str, verify: Callable[[], bool]) -> None:
        """Check the lockout, run ``verify()``, record the outcome.

        The account's slot is taken *before* ``verify()`` runs and given back
        on success, so concurrent attempts in other processes can never
        squeeze in more than ``max_failures`` guesses.

        Raises:
            TooManyLoginAttempts: locked out (``verify`` is not even called).
            InvalidCredentials: ``verify()`` returned False.
        """
        account_key, client_key = self._keys(account, client)
        # A locked-out client spends nothing of the account's budget.
        self._locked((self._clients.peek(client_key),), account, client)
        self._locked((self._accounts.hit(account_key),), account, client)
        if verify():
            self._accounts.reset(account_key)
            return
        self._clients.hit(client_key)
        emit(AuditEvent.LOGIN_FAILURE, principal=account, client=client)
        raise InvalidCredentials("login failed")


class AsyncLoginGuard(_GuardCore):
    """The asyncio twin of :class:`LoginGuard` (``verify`` may be sync or async)."""

    _limiter_class = AsyncRateLimiter
    _accounts: AsyncRateLimiter
    _clients: AsyncRateLimiter

    async def check(self, account: str, client: str) -> None:
        account_key, client_key = self._keys(account, client)
        decisions = (await self._accounts.peek(account_key), await self._clients.peek(client_key))
        self._locked(decisions, account, client)

    async def record_failure(self, account: str, client: str) -> None:
        account_key, client_key = self._keys(account, client)
        await self._accounts.hit(account_key)
        await self._clients.hit(client_key)
        emit(AuditEvent.LOGIN_FAILURE, principal=account, client=client)

    async def record_success(self, account: str, client: str) -> None:
        account_key, _ = self._keys(account, client)
        await self._accounts.reset(account_key)

    async def attempt(
        self, account: str, client: str, verify: Callable[[], bool | Awaitable[bool]]
    ) -> None:
        """See :meth:`LoginGuard.attempt`; ``verify`` may be sync or async."""
        account_key, client_key = self._keys(account, client)
        self._locked((await self._clients.peek(client_key),), account, client)
        self._locked((await self._accounts.hit(account_key),), account, client)
        result = verify()
        ok = await result if isinstance(result, Awaitable) else result
        if ok:
            await self._accounts.reset(account_key)
            return
        await self._clients.hit(client_key)
        emit(AuditEvent.LOGIN_FAILURE, principal=account, client=client)
        raise InvalidCredentials("login failed")
