"""Password hashing and the login guard."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import multiprocessing
import threading
import time
import unicodedata
import uuid
from typing import Any

import pytest
import redis
import redis.asyncio

from apisec import ConfigurationError, ValidationError
from apisec.login import AsyncLoginGuard, InvalidCredentials, LoginGuard, TooManyLoginAttempts
from apisec.passwords import PasswordHasher, hash_password, needs_rehash, verify_password
from apisec.ratelimit.redis import AsyncRedisStore, RedisStore
from apisec.testing import FakeClock
from tests.support.binaries import in_ci
from tests.support.redis_server import RedisServer

FAST = PasswordHasher(scrypt_n_log2=10)
PASSWORD = "correct horse battery staple"


def test_round_trip_and_wrong_password() -> None:
    """A hash verifies its password and nothing else; salts make each hash unique."""
    stored = FAST.hash(PASSWORD)
    assert FAST.verify(PASSWORD, stored)
    assert not FAST.verify(PASSWORD + " ", stored)
    assert not FAST.verify("", stored)
    assert FAST.hash(PASSWORD) != stored
    assert PASSWORD not in stored


def test_default_hasher_uses_scrypt_n_2_15() -> None:
    """The module functions use scrypt with N=2**15, r=8, p=1 and round-trip."""
    stored = hash_password(PASSWORD)
    assert stored.startswith("$scrypt$ln=15,r=8,p=1$")
    assert verify_password(PASSWORD, stored)
    assert not verify_password("nope", stored)
    assert not needs_rehash(stored)


def test_needs_rehash_on_parameter_change() -> None:
    """A hash made with other parameters (or another scheme) asks to be rehashed."""
    old = PasswordHasher(scrypt_n_log2=10).hash(PASSWORD)
    stronger = PasswordHasher(scrypt_n_log2=11)
    assert stronger.verify(PASSWORD, old)  # old hashes keep working
    assert stronger.needs_rehash(old)
    assert not stronger.needs_rehash(stronger.hash(PASSWORD))
    assert stronger.needs_rehash("$pbkdf2$whatever")


def test_unicode_is_normalized() -> None:
    """NFKC: the same password typed in composed or decomposed form verifies."""
    stored = FAST.hash("pässwörd")
    assert FAST.verify("pa\u0308sswo\u0308rd", stored)


@pytest.mark.parametrize(
    "stored",
    [
        "",
        "garbage",
        "$scrypt$ln=10,r=8,p=1$!!!$abc",
        "$scrypt$ln=40,r=8,p=1$AAAA$AAAA",
        "$scrypt$ln=10,r=8,p=1$AAAA",
        "$argon2id$v=19$m=65536,t=3,p=4$bad$bad",
    ],
)
def test_malformed_or_abusive_hashes_verify_false(stored: str) -> None:
    """Broken hashes, and ones asking for absurd cost (N=2**40), just fail."""
    assert FAST.verify(PASSWORD, stored) is False


def test_empty_and_huge_passwords() -> None:
    """Empty passwords cannot be hashed; over-long ones are refused and never verify."""
    with pytest.raises(ValidationError):
        FAST.hash("")
    with pytest.raises(ValidationError):
        FAST.hash("x" * 2000)
    assert not FAST.verify("x" * 2000, FAST.hash(PASSWORD))


class TestCheapRefusals:
    def test_huge_passwords_are_refused_before_normalization(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A password longer than the cap in raw characters never reaches NFKC (18x expansion)."""
        calls: list[int] = []
        real = unicodedata.normalize

        def spy(form: Any, text: str) -> str:
            calls.append(len(text))
            return real(form, text)

        monkeypatch.setattr(unicodedata, "normalize", spy)
        huge = "\ufdfa" * 1_000_000  # NFKC makes each of these 18 characters
        assert FAST.verify(huge, None) is False
        with pytest.raises(ValidationError):
            FAST.hash(huge)
        assert FAST.verify("\ufdfa" * (FAST.max_password_bytes + 1), None) is False
        assert all(n <= FAST.max_password_bytes for n in calls)

    def test_the_dummy_hash_is_built_at_construction(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """The first unknown-user check runs one scrypt, like a known-user check, not two."""
        runs: list[int] = []
        real = hashlib.scrypt

        def counting(*args: Any, **kwargs: Any) -> bytes:
            runs.append(1)
            return real(*args, **kwargs)

        monkeypatch.setattr(hashlib, "scrypt", counting)
        hasher = PasswordHasher(scrypt_n_log2=10)
        built = len(runs)
        assert hasher.verify("guess", None) is False
        assert len(runs) - built == 1

    def test_importing_passwords_hashes_nothing(self) -> None:
        """The module's default hasher (and its dummy) is built on first use, not at import."""
        import subprocess
        import sys

        code = (
            "import hashlib; calls = []; real = hashlib.scrypt;"
            "hashlib.scrypt = lambda *a, **k: calls.append(1) or real(*a, **k);"
            "import apisec.passwords as p; before = len(calls);"
            "p.verify_password('x', None); print(before, len(calls))"
        )
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        )
        assert out.stdout.split() == ["0", "2"]  # the dummy, then the check itself


def test_unknown_user_timing_matches_known_user() -> None:
    """verify(pw, None) costs what a real verification costs (within 20%, as a ratio)."""
    hasher = PasswordHasher(scrypt_n_log2=13)
    stored = hasher.hash(PASSWORD)
    hasher.verify("warm", None)

    def one(stored_hash: str | None) -> float:
        start = time.perf_counter()
        hasher.verify("not the password", stored_hash)
        return time.perf_counter() - start

    # Interleaved pairs, so machine noise hits both sides alike; the fastest run of
    # each side is its truest cost. A real difference (a skipped hash) would show in
    # every round, so a round disturbed by other processes may be measured again.
    ratios = []
    for _ in range(3):
        known, unknown = [], []
        for _ in range(30):
            known.append(one(stored))
            unknown.append(one(None))
        ratios.append(min(unknown) / min(known))
        if 0.8 <= ratios[-1] <= 1.2:
            break
    assert 0.8 <= ratios[-1] <= 1.2, ratios


def test_argon2id_when_installed() -> None:
    """With argon2-cffi installed, Argon2id hashes, verifies and is told apart from scrypt."""
    try:
        import argon2  # noqa: F401
    except ImportError:
        if in_ci():
            pytest.fail("CI=true but argon2-cffi is missing (the dev extra installs it)")
        pytest.skip("argon2-cffi not installed: pip install 'apisec[argon2]'")
    hasher = PasswordHasher(
        "argon2id", argon2_memory_cost=8192, argon2_time_cost=1, argon2_parallelism=1
    )
    stored = hasher.hash(PASSWORD)
    assert stored.startswith("$argon2id$")
    assert hasher.verify(PASSWORD, stored)
    assert not hasher.verify("wrong", stored)
    assert not hasher.verify("x", None)
    scrypt_hash = FAST.hash(PASSWORD)
    assert hasher.verify(PASSWORD, scrypt_hash)  # migration: old scrypt hashes still verify
    assert hasher.needs_rehash(scrypt_hash)
    assert FAST.verify(PASSWORD, stored)  # and the reverse
    assert FAST.needs_rehash(stored)


@pytest.mark.parametrize(
    "kwargs", [{"scheme": "md5"}, {"scrypt_n_log2": 8}, {"scrypt_r": 0}, {"scrypt_p": 99}]
)
def test_weak_or_bad_parameters_are_refused(kwargs: dict[str, Any]) -> None:
    """Unknown schemes and out-of-range costs are configuration errors."""
    with pytest.raises(ConfigurationError):
        PasswordHasher(**kwargs)


def test_passwords_never_reach_logs_or_errors(audit_records: list[logging.LogRecord]) -> None:
    """Neither a failed login's audit record nor its error mentions the password."""
    guard = LoginGuard(clock=FakeClock())
    stored = FAST.hash(PASSWORD)
    with pytest.raises(InvalidCredentials) as caught:
        guard.attempt("ada", "198.51.100.1", lambda: FAST.verify("hunter2-wrong", stored))
    everything = repr([r.__dict__ for r in audit_records]) + repr(caught.value.__dict__)
    assert "hunter2-wrong" not in everything
    assert caught.value.to_problem().to_dict()["detail"] == "Invalid credentials."


# --- the login guard ---------------------------------------------------------------


def fail(guard: LoginGuard, account: str, client: str = "192.0.2.10") -> str:
    try:
        guard.attempt(account, client, lambda: False)
    except InvalidCredentials:
        return "invalid"
    except TooManyLoginAttempts:
        return "locked"
    return "ok"


def test_lockout_after_n_failures_and_reset_on_success() -> None:
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


def test_lockouts_grow() -> None:
    """Who keeps failing after each lockout meets longer ones (1 min, 3 min, then 11)."""
    clock = FakeClock()
    guard = LoginGuard(max_failures=2, window=60, steps=3, client_max_failures=1000, clock=clock)
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


def test_accounts_are_independent_but_clients_have_a_budget() -> None:
    """Locking one account leaves others alone; one address spraying many accounts is stopped."""
    guard = LoginGuard(max_failures=3, client_max_failures=10, clock=FakeClock())
    for _ in range(3):
        fail(guard, "ada", "203.0.113.1")
    assert fail(guard, "ada", "203.0.113.1") == "locked"
    assert fail(guard, "bob", "203.0.113.2") == "invalid"
    results = [fail(guard, f"user{i}", "203.0.113.66") for i in range(12)]
    assert results[:10] == ["invalid"] * 10
    assert results[10:] == ["locked", "locked"]


def test_account_names_are_keyed_on_nfkc_and_casefold() -> None:
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


def test_over_long_account_names_are_keyed_without_normalizing() -> None:
    """A megabyte of account name is hashed as given, not run through NFKC."""
    guard = LoginGuard(max_failures=1, clock=FakeClock())
    huge = "\ufdfa" * 1_000_000
    assert fail(guard, huge) == "invalid"
    assert fail(guard, huge) == "locked"


def test_client_addresses_are_keyed_canonically_and_by_ipv6_network() -> None:
    """Spellings of one IPv6 address, and addresses of one /64, share one client budget."""
    guard = LoginGuard(max_failures=1, client_max_failures=4, clock=FakeClock())
    spellings = ["2001:db8::1", "2001:DB8::1", "2001:db8:0:0:0:0:0:1", "2001:db8::beef"]
    assert [fail(guard, f"user{i}", c) for i, c in enumerate(spellings)] == ["invalid"] * 4
    assert fail(guard, "user9", "[2001:db8::2]:443") == "locked"
    assert fail(guard, "user10", "2001:db8:0:1::1") == "invalid"  # the next /64


def test_the_ipv6_grouping_is_configurable() -> None:
    """ipv6_prefix=128 keys each address alone; nonsense prefixes are refused at construction."""
    guard = LoginGuard(max_failures=1, client_max_failures=1, ipv6_prefix=128, clock=FakeClock())
    assert fail(guard, "a", "2001:db8::1") == "invalid"
    assert fail(guard, "b", "2001:DB8:0::1") == "locked"
    assert fail(guard, "c", "2001:db8::2") == "invalid"
    for bad in (0, 129, True, "64"):
        with pytest.raises(ConfigurationError):
            LoginGuard(ipv6_prefix=bad)  # type: ignore[arg-type]


def test_account_names_are_normalized_and_kept_out_of_keys() -> None:
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


def test_a_flood_of_new_accounts_cannot_unlock_a_locked_account() -> None:
    """On a small memory store, new accounts from many clients never evict a lockout."""
    from apisec.ratelimit import MemoryStore

    clock = FakeClock()
    guard = LoginGuard(MemoryStore(max_keys=50, clock=clock), max_failures=3, clock=clock)
    while fail(guard, "victim", "192.0.2.1") != "locked":
        pass
    for i in range(2_000):
        fail(guard, f"flood-{i}", f"198.51.{i // 250}.{i % 250}")
    assert fail(guard, "victim", "192.0.2.200") == "locked"


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


def test_shared_across_processes_on_redis(redis_server: RedisServer) -> None:
    """Three processes failing the same account on one Redis lock it after five in total."""
    account = f"shared-{uuid.uuid4().hex}"
    with multiprocessing.get_context("spawn").Pool(3) as pool:
        results = pool.starmap(_redis_failures, [(redis_server.port, account)] * 3)
    flat = [r for chunk in results for r in chunk]
    assert flat.count("invalid") == 5
    assert flat.count("locked") == 7


async def test_async_guard() -> None:
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


def test_guard_configuration() -> None:
    """Nonsense budgets are refused."""
    with pytest.raises(ConfigurationError):
        LoginGuard(max_failures=0)
    with pytest.raises(ConfigurationError):
        LoginGuard(max_failures=10, client_max_failures=5)


def test_a_locked_client_cannot_burn_other_accounts_budgets() -> None:
    """Attempts from a locked-out address are refused before they count against the account."""
    guard = LoginGuard(max_failures=3, client_max_failures=10, clock=FakeClock())
    for i in range(10):
        fail(guard, f"sprayed{i}", "203.0.113.50")
    for _ in range(5):
        assert fail(guard, "victim", "203.0.113.50") == "locked"
    assert [fail(guard, "victim", "198.51.100.7") for _ in range(4)] == ["invalid"] * 3 + ["locked"]
