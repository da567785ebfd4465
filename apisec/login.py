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

Account names are keyed on their NFKC normalization, case-folded and
stripped, so a full-width ``ada@example.com`` and the ASCII one share one
lockout. Client addresses are keyed through :func:`apisec.clientaddr.client_key`:
canonical IPv4, and IPv6 grouped by ``ipv6_prefix`` (a /64 by default).
"""

from __future__ import annotations

import asyncio
import hashlib
import unicodedata
from collections.abc import Awaitable, Callable

from apisec._async import is_async_callable, resolved
from apisec._clock import Clock
from apisec.audit import AuditEvent, emit
from apisec.clientaddr import DEFAULT_IPV6_PREFIX, client_key
from apisec.errors import AuthenticationError, ConfigurationError
from apisec.ratelimit import (
    AsyncRateLimiter,
    AsyncRateLimitStore,
    Decision,
    RateLimiter,
    RateLimitExceeded,
    RateLimitStore,
    SlidingWindow,
)

__all__ = ["AsyncLoginGuard", "InvalidCredentials", "LoginGuard", "TooManyLoginAttempts"]

#: Longer account names are keyed as given: no real account has one, and
#: normalizing megabytes of text would cost more than the check it guards.
_MAX_ACCOUNT_NORMALIZED = 1024


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
    """The store key of an account name: NFKC, case-folded, stripped, then hashed.

    Names that read the same after Unicode compatibility normalization (full-width
    letters, modifier letters, one-dot leaders) share one key, and account
    names stay out of the store's key names.
    """
    if len(account) <= _MAX_ACCOUNT_NORMALIZED:
        # NFKC again after casefold: folding can leave text that is not NFKC.
        account = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", account).casefold())
        account = account.strip()
    return "a:" + hashlib.sha256(account.encode("utf-8", "surrogatepass")).hexdigest()[:40]


class _GuardCore:
    """The limits, the keys and the lockout check, shared by both twins."""

    def __init__(
        self,
        *,
        max_failures: int,
        window: float,
        steps: int,
        client_max_failures: int,
        client_window: float,
        ipv6_prefix: int,
    ) -> None:
        if max_failures < 1 or steps < 1 or client_max_failures < max_failures:
            raise ConfigurationError(
                "need max_failures >= 1, steps >= 1 and client_max_failures >= max_failures"
            )
        if isinstance(ipv6_prefix, bool):
            raise ConfigurationError("ipv6_prefix must be between 1 and 128")
        client_key("::", ipv6_prefix=ipv6_prefix)  # validates it now, not on the first login
        self.ipv6_prefix = ipv6_prefix
        self.account_limits = [
            SlidingWindow(max_failures * 2**i, window * 4**i, name=f"account-{i}")
            for i in range(steps)
        ]
        self.client_limits = [SlidingWindow(client_max_failures, client_window, name="client")]

    def _keys(self, account: str, client: str) -> tuple[str, str]:
        if not isinstance(account, str) or not isinstance(client, str) or not client:
            raise ConfigurationError("account and client must be strings")
        return _account_key(account), "c:" + client_key(client, ipv6_prefix=self.ipv6_prefix)

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
        ipv6_prefix: IPv6 clients share one budget per network of this length.
    """

    def __init__(
        self,
        store: RateLimitStore | None = None,
        *,
        max_failures: int = 5,
        window: float = 900,
        steps: int = 3,
        client_max_failures: int = 50,
        client_window: float = 900,
        prefix: str = "login",
        clock: Clock | None = None,
        ipv6_prefix: int = DEFAULT_IPV6_PREFIX,
    ) -> None:
        super().__init__(
            max_failures=max_failures,
            window=window,
            steps=steps,
            client_max_failures=client_max_failures,
            client_window=client_window,
            ipv6_prefix=ipv6_prefix,
        )
        self._accounts = RateLimiter(self.account_limits, store, f"{prefix}:acct", clock)
        self._clients = RateLimiter(self.client_limits, self._accounts.store, f"{prefix}:ip", clock)

    def check(self, account: str, client: str) -> None:
        """Raise :class:`TooManyLoginAttempts` if this account or client is locked out."""
        account_key, client_key = self._keys(account, client)
        self._locked(
            (self._accounts.peek(account_key), self._clients.peek(client_key)), account, client
        )

    def record_failure(self, account: str, client: str) -> None:
        """Count one failed login against the account and the client (for custom flows)."""
        account_key, client_key = self._keys(account, client)
        self._accounts.hit(account_key)
        self._clients.hit(client_key)
        emit(AuditEvent.LOGIN_FAILURE, principal=account, client=client)

    def record_success(self, account: str, client: str) -> None:
        """Clear the account's failures (the client's budget is left alone)."""
        account_key, _ = self._keys(account, client)
        self._accounts.reset(account_key)

    def attempt(self, account: str, client: str, verify: Callable[[], bool]) -> None:
        """Take a slot, run ``verify()``, record the outcome.

        The client's slot and then the account's are taken *before*
        ``verify()`` runs: concurrent attempts, in any number of threads or
        processes, never run more password checks than the budgets allow. On
        success the account is reset and the client's slot given back; a
        refused account gives the client's slot back too (no guess was made).
        If ``verify()`` raises, both slots stay taken.

        Raises:
            TooManyLoginAttempts: locked out (``verify`` is not even called).
            InvalidCredentials: ``verify()`` returned False.
        """
        account_key, client_key = self._keys(account, client)
        # A locked-out client spends nothing of the account's budget.
        self._locked((self._clients.hit(client_key),), account, client)
        taken = self._accounts.hit(account_key)
        if not taken.allowed:
            self._clients._release(client_key)
            self._locked((taken,), account, client)
        if verify():
            self._accounts.reset(account_key)
            self._clients._release(client_key)
            return
        emit(AuditEvent.LOGIN_FAILURE, principal=account, client=client)
        raise InvalidCredentials("login failed")


class AsyncLoginGuard(_GuardCore):
    """The asyncio twin of :class:`LoginGuard`.

    ``verify`` may be a coroutine function (or return an awaitable, as
    ``lambda: hasher.verify(password, stored)`` with an
    :class:`~apisec.passwords.AsyncPasswordHasher` does), awaited on the loop;
    a plain function runs in a worker thread, so a password hash never
    blocks the event loop.
    """

    def __init__(
        self,
        store: AsyncRateLimitStore | None = None,
        *,
        max_failures: int = 5,
        window: float = 900,
        steps: int = 3,
        client_max_failures: int = 50,
        client_window: float = 900,
        prefix: str = "login",
        clock: Clock | None = None,
        ipv6_prefix: int = DEFAULT_IPV6_PREFIX,
    ) -> None:
        super().__init__(
            max_failures=max_failures,
            window=window,
            steps=steps,
            client_max_failures=client_max_failures,
            client_window=client_window,
            ipv6_prefix=ipv6_prefix,
        )
        self._accounts = AsyncRateLimiter(self.account_limits, store, f"{prefix}:acct", clock)
        self._clients = AsyncRateLimiter(
            self.client_limits, self._accounts.store, f"{prefix}:ip", clock
        )

    async def check(self, account: str, client: str) -> None:
        """Same as :meth:`LoginGuard.check`, awaiting the store."""
        account_key, client_key = self._keys(account, client)
        decisions = (await self._accounts.peek(account_key), await self._clients.peek(client_key))
        self._locked(decisions, account, client)

    async def record_failure(self, account: str, client: str) -> None:
        """Same as :meth:`LoginGuard.record_failure`, awaiting the store."""
        account_key, client_key = self._keys(account, client)
        await self._accounts.hit(account_key)
        await self._clients.hit(client_key)
        emit(AuditEvent.LOGIN_FAILURE, principal=account, client=client)

    async def record_success(self, account: str, client: str) -> None:
        """Same as :meth:`LoginGuard.record_success`, awaiting the store."""
        account_key, _ = self._keys(account, client)
        await self._accounts.reset(account_key)

    async def attempt(
        self, account: str, client: str, verify: Callable[[], bool | Awaitable[bool]]
    ) -> None:
        """See :meth:`LoginGuard.attempt`; ``verify`` may be sync or async."""
        account_key, client_key = self._keys(account, client)
        self._locked((await self._clients.hit(client_key),), account, client)
        taken = await self._accounts.hit(account_key)
        if not taken.allowed:
            await self._clients._release(client_key)
            self._locked((taken,), account, client)
        if await _run(verify):
            await self._accounts.reset(account_key)
            await self._clients._release(client_key)
            return
        emit(AuditEvent.LOGIN_FAILURE, principal=account, client=client)
        raise InvalidCredentials("login failed")


async def _run(verify: Callable[[], bool | Awaitable[bool]]) -> bool:
    """Await an async ``verify``; run a sync one in a worker thread."""
    if is_async_callable(verify):
        return bool(await verify())
    return bool(await resolved(await asyncio.to_thread(verify)))
