"""The login guard: growing lockouts per account and per client, on any rate-limit store."""

from __future__ import annotations

import asyncio
import multiprocessing
import threading
import uuid
from typing import Any

import pytest
import redis
import redis.asyncio

from apisec import ConfigurationError
from apisec.login import AsyncLoginGuard, InvalidCredentials, LoginGuard, TooManyLoginAttempts
from apisec.passwords import PasswordHasher
from apisec.ratelimit.redis import AsyncRedisStore, RedisStore
from apisec.testing import FakeClock
from tests.support.redis_server import RedisServer

FAST = PasswordHasher(scrypt_n_log2=10)


def fail(guard: LoginGuard, account: str, client: str = "192.0.2.10") -> str:
    try:
        guard.attempt(account, client, lambda: False)
    except InvalidCredentials:
        return "invalid"
    except TooManyLoginAttempts:
        return "locked"
    return "ok"


class TestLockouts:
    def test_lockout_after_n_failures_and_reset_on_success(self) -> None:
        """Five failures lock the account; the lockout ends; success clears the count."""
        clock = FakeClock()
        guard = LoginGuard(max_failures=5, window=900, clock=clock)
        assert [fail(guard, "ada") for _ in range(6)] == ["invalid"] * 5 + ["locked"]
        with pytest.raises(TooManyLoginAttempts) as caught:
            guard.attempt("ada", "192.0.2.10", lambda: True)  # even the right password waits
        assert caught.value.status == 429
        retry = caught.value.decision.retry_after
        assert retry is not None and 0 < retry <= 900
        assert ("Retry-After", str(int(-(-retry // 1)))) in caught.value.headers
        clock.advance(900)
        guard.attempt("ada", "192.0.2.10", lambda: True)
        assert [fail(guard, "ada") for _ in range(5)] == ["invalid"] * 5  # the count restarted

    def test_lockouts_grow(self) -> None:
        """Who keeps failing after each lockout meets longer ones (1 min, 3 min, then 11)."""
        clock = FakeClock()
        guard = LoginGuard(
            max_failures=2, window=60, steps=3, client_max_failures=1000, clock=clock
        )
        waits = []
        for _ in range(4):
            while fail(guard, "bob") != "locked":
                pass
            try:
                guard.check("bob", "192.0.2.10")
            except TooManyLoginAttempts as err:
                assert err.decision.retry_after is not None
                waits.append(err.decision.retry_after)
                clock.advance(err.decision.retry_after)
        assert waits[0] <= 60 < waits[1] <= 240
        assert max(waits) > 240  # the longest window finally saturates: the longest lockout

    def test_accounts_are_independent_but_clients_have_a_budget(self) -> None:
        """Locking one account leaves others alone; one address spraying many accounts is
        stopped."""
        guard = LoginGuard(max_failures=3, client_max_failures=10, clock=FakeClock())
        for _ in range(3):
            fail(guard, "ada", "203.0.113.1")
        assert fail(guard, "ada", "203.0.113.1") == "locked"
        assert fail(guard, "bob", "203.0.113.2") == "invalid"
        results = [fail(guard, f"user{i}", "203.0.113.66") for i in range(12)]
        assert results[:10] == ["invalid"] * 10
        assert results[10:] == ["locked", "locked"]


class TestKeys:
    def test_account_names_are_keyed_on_nfkc_and_casefold(self) -> None:
        """Full-width, modifier-letter, ligature and one-dot-leader spellings share one lockout."""
        guard = LoginGuard(max_failures=4, client_max_failures=1000, clock=FakeClock())
        spellings = [
            "fiona@example.com",
            "\uff26\uff29\uff2f\uff2e\uff21@example.com",  # full-width FIONA
            "\ufb01ona@example\u2024com",  # the fi ligature, a one-dot leader
            "fiona@exampl\u1d49.com",  # a modifier letter small e
        ]
        assert [fail(guard, name) for name in spellings] == ["invalid"] * 4
        assert fail(guard, "Fiona@Example.COM") == "locked"

    def test_over_long_account_names_are_keyed_without_normalizing(self) -> None:
        """A megabyte of account name is hashed as given, not run through NFKC."""
        guard = LoginGuard(max_failures=1, clock=FakeClock())
        huge = "\ufdfa" * 1_000_000
        assert fail(guard, huge) == "invalid"
        assert fail(guard, huge) == "locked"

    def test_client_addresses_are_keyed_canonically_and_by_ipv6_network(self) -> None:
        """Spellings of one IPv6 address, and addresses of one /64, share one client budget."""
        guard = LoginGuard(max_failures=1, client_max_failures=4, clock=FakeClock())
        spellings = ["2001:db8::1", "2001:DB8::1", "2001:db8:0:0:0:0:0:1", "2001:db8::beef"]
        assert [fail(guard, f"user{i}", c) for i, c in enumerate(spellings)] == ["invalid"] * 4
        assert fail(guard, "user9", "[2001:db8::2]:443") == "locked"
        assert fail(guard, "user10", "2001:db8:0:1::1") == "invalid"  # the next /64

    def test_the_ipv6_grouping_is_configurable(self) -> None:
        """ipv6_prefix=128 keys each address alone; nonsense prefixes are refused at
        construction."""
        guard = LoginGuard(
            max_failures=1, client_max_failures=1, ipv6_prefix=128, clock=FakeClock()
        )
        assert fail(guard, "a", "2001:db8::1") == "invalid"
        assert fail(guard, "b", "2001:DB8:0::1") == "locked"
        assert fail(guard, "c", "2001:db8::2") == "invalid"
        for bad in (0, 129, True, "64"):
            with pytest.raises(ConfigurationError):
                LoginGuard(ipv6_prefix=bad)  # type: ignore[arg-type]

    def test_account_names_are_normalized_and_kept_out_of_keys(self) -> None:
        """'Ada@X.com ' and 'ada@x.com' are one account; the store keys do not contain it."""
        from apisec.ratelimit import MemoryStore

        store = MemoryStore()
        guard = LoginGuard(store, max_failures=2, clock=FakeClock())
        fail(guard, "Ada@Example.com ")
        fail(guard, "ada@example.com")
        assert fail(guard, "ADA@EXAMPLE.COM") == "locked"
        assert not any("example" in key for key in store._data)


class TestConcurrentAttempts:
    """The client's slot is taken before verify: no race lets more checks run than its budget."""

    BUDGET = 10
    ATTEMPTS = 40
    CLIENT = "203.0.113.5"

    def test_threads(self) -> None:
        """Forty threads guessing forty accounts from one client run only its budget of checks."""
        guard = LoginGuard(max_failures=3, client_max_failures=self.BUDGET, clock=FakeClock())
        changed = threading.Condition()
        counts = {"entered": 0, "refused": 0}
        release = threading.Event()

        def bump(name: str) -> None:
            with changed:
                counts[name] += 1
                changed.notify_all()

        def verify() -> bool:
            bump("entered")
            release.wait(30)
            return False

        def worker(index: int) -> None:
            try:
                guard.attempt(f"user{index}", self.CLIENT, verify)
            except TooManyLoginAttempts:
                bump("refused")
            except InvalidCredentials:
                pass

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(self.ATTEMPTS)]
        for thread in threads:
            thread.start()
        with changed:
            changed.wait_for(lambda: sum(counts.values()) == self.ATTEMPTS, timeout=30)
        release.set()
        for thread in threads:
            thread.join()
        assert counts == {"entered": self.BUDGET, "refused": self.ATTEMPTS - self.BUDGET}

    async def test_asyncio_tasks(self) -> None:
        """Forty tasks on one loop, each suspended in verify, run only the budget of checks."""
        await self._race_tasks(None)

    async def test_asyncio_tasks_on_redis(self, async_redis_client: redis.asyncio.Redis) -> None:
        """The same race over the asyncio Redis store, where every store call suspends."""
        await self._race_tasks(AsyncRedisStore(async_redis_client))

    async def _race_tasks(self, store: AsyncRedisStore | None) -> None:
        guard = AsyncLoginGuard(
            store, max_failures=3, client_max_failures=self.BUDGET, clock=FakeClock()
        )
        counts = {"entered": 0, "refused": 0}
        release = asyncio.Event()

        async def verify() -> bool:
            counts["entered"] += 1
            await release.wait()
            return False

        async def worker(index: int) -> None:
            try:
                await guard.attempt(f"user{index}", self.CLIENT, verify)
            except TooManyLoginAttempts:
                counts["refused"] += 1
            except InvalidCredentials:
                pass

        tasks = [asyncio.create_task(worker(i)) for i in range(self.ATTEMPTS)]
        for _ in range(100_000):  # yield until every task is held in verify or refused
            if sum(counts.values()) == self.ATTEMPTS:
                break
            await asyncio.sleep(0)
        release.set()
        await asyncio.gather(*tasks)
        assert counts == {"entered": self.BUDGET, "refused": self.ATTEMPTS - self.BUDGET}

    def test_processes_on_redis(self, redis_server: RedisServer, redis_client: redis.Redis) -> None:
        """Six processes on one Redis, all held inside verify, run only the budget of checks."""
        budget, processes = 2, 6
        context = multiprocessing.get_context("spawn")
        signals = context.Queue()
        release = context.Event()
        prefix = f"race-{uuid.uuid4().hex}"
        workers = [
            context.Process(
                target=_held_attempt,
                args=(redis_server.port, prefix, budget, i, signals, release),
            )
            for i in range(processes)
        ]
        for worker in workers:
            worker.start()
        try:
            seen = [signals.get(timeout=120) for _ in range(processes)]
        finally:
            release.set()
            for worker in workers:
                worker.join(60)
        assert sorted(seen) == ["entered"] * budget + ["refused"] * (processes - budget)

    def test_success_gives_the_client_slot_back(self) -> None:
        """Successful logins do not spend the client's budget; failures and refusals are counted."""
        guard = LoginGuard(max_failures=2, client_max_failures=3, clock=FakeClock())
        for i in range(10):
            guard.attempt(f"ok{i}", self.CLIENT, lambda: True)
        assert fail(guard, "x", self.CLIENT) == "invalid"
        assert fail(guard, "x", self.CLIENT) == "invalid"
        assert fail(guard, "x", self.CLIENT) == "locked"  # the account, not the client
        assert fail(guard, "y", self.CLIENT) == "invalid"  # the refusal cost the client nothing
        assert fail(guard, "z", self.CLIENT) == "locked"  # three failures: the client's budget


def _held_attempt(
    port: int, prefix: str, budget: int, index: int, signals: Any, release: Any
) -> None:
    client = redis.Redis(host="127.0.0.1", port=port)
    guard = LoginGuard(
        RedisStore(client), max_failures=1, client_max_failures=budget, prefix=prefix
    )

    def verify() -> bool:
        signals.put("entered")
        release.wait(120)
        return False

    try:
        guard.attempt(f"user{index}", "203.0.113.77", verify)
    except TooManyLoginAttempts:
        signals.put("refused")
    except InvalidCredentials:
        pass
    finally:
        client.close()


def _redis_failures(port: int, account: str) -> list[str]:
    client = redis.Redis(host="127.0.0.1", port=port)
    guard = LoginGuard(RedisStore(client), max_failures=5, clock=FakeClock(5_000.0))
    out = [fail(guard, account) for _ in range(4)]
    client.close()
    return out


class TestStores:
    def test_a_flood_of_new_accounts_cannot_unlock_a_locked_account(self) -> None:
        """On a small memory store, new accounts from many clients never evict a lockout."""
        from apisec.ratelimit import MemoryStore

        clock = FakeClock()
        guard = LoginGuard(MemoryStore(max_keys=50, clock=clock), max_failures=3, clock=clock)
        while fail(guard, "victim", "192.0.2.1") != "locked":
            pass
        for i in range(2_000):
            fail(guard, f"flood-{i}", f"198.51.{i // 250}.{i % 250}")
        assert fail(guard, "victim", "192.0.2.200") == "locked"

    def test_shared_across_processes_on_redis(self, redis_server: RedisServer) -> None:
        """Three processes failing the same account on one Redis lock it after five in total."""
        account = f"shared-{uuid.uuid4().hex}"
        with multiprocessing.get_context("spawn").Pool(3) as pool:
            results = pool.starmap(_redis_failures, [(redis_server.port, account)] * 3)
        flat = [r for chunk in results for r in chunk]
        assert flat.count("invalid") == 5
        assert flat.count("locked") == 7


class TestAsyncGuard:
    async def test_async_guard(self) -> None:
        """The asyncio twin locks, accepts async verify callbacks and resets on success."""
        clock = FakeClock()
        guard = AsyncLoginGuard(max_failures=2, clock=clock)

        async def wrong() -> bool:
            return False

        for _ in range(2):
            with pytest.raises(InvalidCredentials):
                await guard.attempt("eve", "192.0.2.1", wrong)
        with pytest.raises(TooManyLoginAttempts):
            await guard.attempt("eve", "192.0.2.1", wrong)
        clock.advance(900)
        await guard.attempt("eve", "192.0.2.1", lambda: True)


class TestConfiguration:
    def test_guard_configuration(self) -> None:
        """Nonsense budgets are refused."""
        with pytest.raises(ConfigurationError):
            LoginGuard(max_failures=0)
        with pytest.raises(ConfigurationError):
            LoginGuard(max_failures=10, client_max_failures=5)


class TestClientBudget:
    def test_a_locked_client_cannot_burn_other_accounts_budgets(self) -> None:
        """Attempts from a locked-out address are refused before they count against the account."""
        guard = LoginGuard(max_failures=3, client_max_failures=10, clock=FakeClock())
        for i in range(10):
            fail(guard, f"sprayed{i}", "203.0.113.50")
        for _ in range(5):
            assert fail(guard, "victim", "203.0.113.50") == "locked"
        assert [fail(guard, "victim", "198.51.100.7") for _ in range(4)] == ["invalid"] * 3 + [
            "locked"
        ]
