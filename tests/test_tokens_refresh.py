"""Refresh tokens: rotation, reuse detection, revocation, expiry, over every store.

The same behaviour runs against the memory store, a real Redis, and a tiny
custom store written here (the store protocol is public API).
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import redis
import redis.asyncio

from apisec import StoreError
from apisec.testing import FakeClock
from apisec.tokens import (
    AsyncTokenService,
    ConsumeResult,
    ConsumeStatus,
    ExpiredToken,
    InvalidToken,
    MemoryRefreshTokenStore,
    RefreshRecord,
    RefreshTokenStore,
    RevokedToken,
    SigningKey,
    TokenReuseDetected,
    TokenService,
)
from apisec.tokens._service import _family_id
from apisec.tokens.redis import AsyncRedisRefreshTokenStore, RedisRefreshTokenStore
from tests.support.redis_server import RedisServer, free_loopback_port

ISS, AUD = "https://auth.example.com", "https://api.example.com"
KEY = SigningKey.hmac(b"r" * 32, kid="k")


class DictStore:
    """A deliberately tiny custom store: one lock, three dicts."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.tokens: dict[str, tuple[RefreshRecord, float | None]] = {}
        self.families: dict[str, dict[str, Any]] = {}

    def add(self, record: RefreshRecord) -> None:
        with self.lock:
            self.tokens[record.token_hash] = (record, None)
            self.families.setdefault(
                record.family_id,
                {"subject": record.subject, "claims": dict(record.claims), "revoked": False},
            )

    def get(self, family_id: str, token_hash: str) -> RefreshRecord | None:
        entry = self.tokens.get(token_hash)
        return entry[0] if entry and entry[0].family_id == family_id else None

    def consume(self, family_id: str, token_hash: str, now: float) -> ConsumeResult:
        with self.lock:
            entry = self.tokens.get(token_hash)
            if entry is None or entry[0].family_id != family_id:
                return ConsumeResult(status=ConsumeStatus.UNKNOWN)
            record, consumed = entry
            family = self.families[family_id]
            if family["revoked"]:
                return ConsumeResult(status=ConsumeStatus.REVOKED, subject=record.subject)
            if record.expires_at <= now:
                return ConsumeResult(status=ConsumeStatus.EXPIRED, subject=record.subject)
            if consumed is not None:
                return ConsumeResult(
                    status=ConsumeStatus.REUSED,
                    subject=record.subject,
                    claims=family["claims"],
                    consumed_at=consumed,
                )
            self.tokens[token_hash] = (record, now)
            return ConsumeResult(
                status=ConsumeStatus.OK, subject=record.subject, claims=family["claims"]
            )

    def revoke_family(self, family_id: str) -> None:
        if family_id in self.families:
            self.families[family_id]["revoked"] = True

    def revoke_subject(self, subject: str) -> None:
        for family in self.families.values():
            if family["subject"] == subject:
                family["revoked"] = True


@pytest.fixture(params=["memory", "redis", "custom"])
def store(request: pytest.FixtureRequest, clock: FakeClock) -> Iterator[RefreshTokenStore]:
    if request.param == "memory":
        yield MemoryRefreshTokenStore(clock=clock)
    elif request.param == "custom":
        yield DictStore()
    else:
        client = request.getfixturevalue("redis_client")
        yield RedisRefreshTokenStore(client, clock=clock)


@pytest.fixture
def service(store: RefreshTokenStore, clock: FakeClock) -> TokenService:
    return TokenService(KEY, issuer=ISS, audience=AUD, store=store, clock=clock, refresh_ttl=3600)


class TestRefreshRotation:
    def test_custom_store_satisfies_the_protocol(self) -> None:
        """The tiny store in this file is a RefreshTokenStore by structure."""
        assert isinstance(DictStore(), RefreshTokenStore)
        assert isinstance(MemoryRefreshTokenStore(), RefreshTokenStore)

    def test_rotation_issues_a_new_pair_and_spends_the_old(self, service: TokenService) -> None:
        """refresh() returns new tokens; the old refresh token is single-use."""
        first = service.issue("alice", scope="read")
        second = service.refresh(first.refresh_token)
        assert second.refresh_token != first.refresh_token
        assert second.access_token != first.access_token
        assert service.verify(second.access_token)["scope"] == "read"  # claims carried over
        third = service.refresh(second.refresh_token)
        assert service.verify(third.access_token)["sub"] == "alice"

    def test_reuse_detection_revokes_the_whole_family(self, service: TokenService) -> None:
        """Replaying a rotated token raises TokenReuseDetected and kills its descendants."""
        first = service.issue("alice")
        second = service.refresh(first.refresh_token)
        with pytest.raises(TokenReuseDetected):
            service.refresh(first.refresh_token)
        with pytest.raises(RevokedToken):
            service.refresh(second.refresh_token)  # the legitimate descendant dies too
        with pytest.raises(RevokedToken):
            service.refresh(first.refresh_token)

    def test_families_are_independent(self, service: TokenService) -> None:
        """Reuse in one login session does not touch another session of the same user."""
        laptop = service.issue("alice")
        phone = service.issue("alice")
        service.refresh(laptop.refresh_token)
        with pytest.raises(TokenReuseDetected):
            service.refresh(laptop.refresh_token)
        assert service.refresh(phone.refresh_token).refresh_token

    def test_revoke_one_family(self, service: TokenService) -> None:
        """revoke() logs one session out; unknown tokens are ignored; other sessions live."""
        a = service.issue("alice")
        b = service.issue("alice")
        service.revoke(a.refresh_token)
        with pytest.raises(RevokedToken):
            service.refresh(a.refresh_token)
        service.refresh(b.refresh_token)
        service.revoke("rt2_" + "A" * 22 + "." + "B" * 43)  # unknown: no error
        with pytest.raises(InvalidToken):
            service.revoke("garbage")

    def test_revoke_subject(self, service: TokenService) -> None:
        """revoke_subject() ends every family of that subject and no one else's."""
        a1, a2, bob = service.issue("alice"), service.issue("alice"), service.issue("bob")
        service.revoke_subject("alice")
        for pair in (a1, a2):
            with pytest.raises(RevokedToken):
                service.refresh(pair.refresh_token)
        service.refresh(bob.refresh_token)

    def test_refresh_token_expiry(self, service: TokenService, clock: FakeClock) -> None:
        """A refresh token is good until refresh_ttl; each rotation starts a new lifetime."""
        pair = service.issue("alice")
        clock.advance(3599)
        pair = service.refresh(pair.refresh_token)
        clock.advance(3599)
        pair = service.refresh(pair.refresh_token)
        clock.advance(3600)
        with pytest.raises((ExpiredToken, InvalidToken)):
            service.refresh(pair.refresh_token)

    @pytest.mark.parametrize(
        "token",
        [
            "",
            "rt_",
            "rt_short.short",
            "rt_" + "A" * 22 + "." + "B" * 42,
            "xx_" + "A" * 22 + "." + "B" * 43,
            "rt_" + "A" * 22 + "." + "B" * 43 + "\n",
        ],
    )
    def test_malformed_refresh_tokens(self, service: TokenService, token: str) -> None:
        """Anything not shaped like our refresh tokens is InvalidToken before the store."""
        with pytest.raises(InvalidToken):
            service.refresh(token)

    def test_unknown_and_forged_refresh_tokens(self, service: TokenService) -> None:
        """A well-formed token the store never saw, or one moved to another family, is unknown."""
        real = service.issue("alice").refresh_token
        other = service.issue("bob").refresh_token
        with pytest.raises(InvalidToken, match="unknown"):
            service.refresh("rt2_" + "A" * 22 + "." + "B" * 43)
        forged = "rt2_" + other[4:26] + real[26:]  # bob's family, alice's secret
        with pytest.raises(InvalidToken):  # unknown, or (one token per family) a reuse
            service.refresh(forged)
        forged = "rt2_" + real[4:26].swapcase() + real[26:]  # alice's secret, another family
        with pytest.raises(InvalidToken, match="unknown"):
            service.refresh(forged)

    def test_grace_interval_allows_an_immediate_retry(
        self, store: RefreshTokenStore, clock: FakeClock
    ) -> None:
        """With refresh_grace, a retry within the grace gets a pair; after it, reuse is detected."""
        service = TokenService(
            KEY, issuer=ISS, audience=AUD, store=store, clock=clock, refresh_grace=10
        )
        first = service.issue("alice")
        service.refresh(first.refresh_token)
        clock.advance(5)
        assert service.refresh(first.refresh_token).access_token
        clock.advance(6)
        with pytest.raises(TokenReuseDetected):
            service.refresh(first.refresh_token)


class TestStores:
    def test_stores_hold_only_hashes(self, redis_client: redis.Redis, clock: FakeClock) -> None:
        """The Redis keyspace and the memory store never contain the refresh token itself."""
        memory = MemoryRefreshTokenStore(clock=clock)
        for store in (memory, RedisRefreshTokenStore(redis_client, clock=clock)):
            service = TokenService(KEY, issuer=ISS, audience=AUD, store=store, clock=clock)
            token = service.issue("alice").refresh_token
            token = service.refresh(token).refresh_token
            family_secret, secret_part = token.removeprefix("rt2_").split(".")
            if store is memory:
                dump = repr(memory._families)
            else:
                dump = ""
                for key in redis_client.scan_iter("*"):
                    dump += key.decode()
                    if redis_client.type(key) == b"hash":
                        dump += repr(redis_client.hgetall(key))
                    elif redis_client.type(key) == b"set":
                        dump += repr(redis_client.smembers(key))
            assert secret_part not in dump
            assert family_secret not in dump
            assert _family_id(family_secret) in dump
            assert hashlib.sha256(token.encode()).hexdigest() in dump

    def test_redis_keys_expire_and_share_a_hash_tag(
        self, redis_client: redis.Redis, clock: FakeClock
    ) -> None:
        """A family is one key, named with its hash tag (one Cluster slot), with a TTL."""
        service = TokenService(
            KEY,
            issuer=ISS,
            audience=AUD,
            clock=clock,
            refresh_ttl=3600,
            store=RedisRefreshTokenStore(redis_client, clock=clock),
        )
        token = service.issue("alice").refresh_token
        family = _family_id(token[4:26])
        keys = [k.decode() for k in redis_client.scan_iter(f"apisec:rt:{{{family}}}*")]
        assert len(keys) == 1
        for key in keys:
            assert f"{{{family}}}" in key
            assert redis_client.pttl(key) > 0

    def test_memory_store_is_bounded(self, clock: FakeClock) -> None:
        """Past max_tokens, expired entries and then the soonest-expiring ones are dropped."""
        store = MemoryRefreshTokenStore(clock=clock, max_tokens=10)
        service = TokenService(KEY, issuer=ISS, audience=AUD, store=store, clock=clock)
        for i in range(25):
            service.issue(f"user{i}")
        assert len(store) <= 10

    def test_sixteen_threads_refreshing_one_token_on_redis(self, redis_server: RedisServer) -> None:
        """Exactly one of 16 concurrent refreshes wins; the others see reuse or revocation."""
        pool = redis.ConnectionPool(
            host=redis_server.host, port=redis_server.port, max_connections=32
        )
        client = redis.Redis(connection_pool=pool)
        client.flushdb()
        service = TokenService(KEY, issuer=ISS, audience=AUD, store=RedisRefreshTokenStore(client))
        token = service.issue("alice").refresh_token
        barrier = threading.Barrier(16)

        def attempt(_: int) -> str:
            barrier.wait()
            try:
                service.refresh(token)
            except TokenReuseDetected:
                return "reuse"
            except RevokedToken:
                return "revoked"
            return "won"

        with ThreadPoolExecutor(16) as executor:
            outcomes = list(executor.map(attempt, range(16)))
        assert outcomes.count("won") == 1
        assert outcomes.count("reuse") + outcomes.count("revoked") == 15
        client.close()

    def test_store_failure_fails_closed(self) -> None:
        """A dead Redis makes refresh raise StoreError (503) — never a silent pass."""
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        client = redis.Redis(
            port=free_loopback_port(), socket_connect_timeout=1, retry=Retry(NoBackoff(), 0)
        )
        service = TokenService(KEY, issuer=ISS, audience=AUD, store=RedisRefreshTokenStore(client))
        with pytest.raises(StoreError):
            service.issue("alice")
        with pytest.raises(StoreError):
            service.refresh("rt2_" + "A" * 22 + "." + "B" * 43)


@pytest.fixture(params=["memory", "redis"])
async def async_service(
    request: pytest.FixtureRequest, clock: FakeClock
) -> AsyncIterator[AsyncTokenService]:
    if request.param == "memory":
        yield AsyncTokenService(KEY, issuer=ISS, audience=AUD, clock=clock)
    else:
        server: RedisServer = request.getfixturevalue("redis_server")
        client = redis.asyncio.Redis(host=server.host, port=server.port)
        await client.flushdb()
        store = AsyncRedisRefreshTokenStore(client, clock=clock)
        yield AsyncTokenService(KEY, issuer=ISS, audience=AUD, store=store, clock=clock)
        await client.aclose()


class TestAsyncTwin:
    async def test_async_rotation_and_reuse(self, async_service: AsyncTokenService) -> None:
        """The async twin rotates, detects reuse and revokes like the sync one."""
        first = await async_service.issue("alice", scope="x")
        second = await async_service.refresh(first.refresh_token)
        assert async_service.verify(second.access_token)["scope"] == "x"
        with pytest.raises(TokenReuseDetected):
            await async_service.refresh(first.refresh_token)
        with pytest.raises(RevokedToken):
            await async_service.refresh(second.refresh_token)
        other = await async_service.issue("bob")
        await async_service.revoke_subject("bob")
        with pytest.raises(RevokedToken):
            await async_service.refresh(other.refresh_token)
        third = await async_service.issue("carol")
        await async_service.revoke(third.refresh_token)
        with pytest.raises(RevokedToken):
            await async_service.refresh(third.refresh_token)

    async def test_asyncio_tasks_refreshing_one_token_on_redis(
        self,
        async_redis_client: redis.asyncio.Redis,
    ) -> None:
        """Of 16 concurrent tasks presenting one token, exactly one wins."""
        service = AsyncTokenService(
            KEY, issuer=ISS, audience=AUD, store=AsyncRedisRefreshTokenStore(async_redis_client)
        )
        token = (await service.issue("alice")).refresh_token

        async def attempt() -> str:
            try:
                await service.refresh(token)
            except (TokenReuseDetected, RevokedToken):
                return "lost"
            return "won"

        outcomes = await asyncio.gather(*(attempt() for _ in range(16)))
        assert outcomes.count("won") == 1

    def test_sync_and_async_stores_are_not_mixed(self, redis_client: redis.Redis) -> None:
        """Giving a sync service an async store (or the reverse) is a ConfigurationError."""
        from apisec import ConfigurationError

        async_store = AsyncRedisRefreshTokenStore(redis.asyncio.Redis())
        with pytest.raises(ConfigurationError, match="AsyncTokenService"):
            TokenService(KEY, issuer=ISS, audience=AUD, store=async_store)  # type: ignore[arg-type]
        with pytest.raises(ConfigurationError, match="TokenService"):
            AsyncTokenService(
                KEY,
                issuer=ISS,
                audience=AUD,
                store=RedisRefreshTokenStore(redis_client),  # type: ignore[arg-type]
            )


class TestRedisCluster:
    def test_redis_cluster_store(self, redis_cluster: Any) -> None:
        """On a real three-node cluster, rotation, reuse detection and revoke_subject work."""
        client = redis_cluster.client()
        try:
            service = TokenService(
                KEY, issuer=ISS, audience=AUD, store=RedisRefreshTokenStore(client, prefix="ct:")
            )
            pairs = [service.issue(f"user{i}") for i in range(12)]
            rotated = [service.refresh(p.refresh_token) for p in pairs]
            with pytest.raises(TokenReuseDetected):
                service.refresh(pairs[0].refresh_token)
            with pytest.raises(RevokedToken):
                service.refresh(rotated[0].refresh_token)
            service.revoke_subject("user1")
            with pytest.raises(RevokedToken):
                service.refresh(rotated[1].refresh_token)
            assert service.refresh(rotated[2].refresh_token).access_token
            families = {_family_id(p.refresh_token[4:26]) for p in pairs}
            nodes = {client.get_node_from_key(f"ct:{{{f}}}:f").port for f in families}
            assert len(nodes) > 1  # the families really live on different nodes
        finally:
            client.close()


@pytest.fixture(params=["memory", "redis"])
def family_store(request: pytest.FixtureRequest, clock: FakeClock) -> Iterator[RefreshTokenStore]:
    """The built-in stores, which keep one token per family."""
    if request.param == "memory":
        yield MemoryRefreshTokenStore(clock=clock)
    else:
        yield RedisRefreshTokenStore(request.getfixturevalue("redis_client"), clock=clock)


def _service(store: RefreshTokenStore, clock: FakeClock, **kw: Any) -> TokenService:
    return TokenService(
        KEY, issuer=ISS, audience=AUD, store=store, clock=clock, refresh_ttl=3600, **kw
    )


class TestOneTokenPerFamily:
    """The built-in stores keep each family's newest token only, and reuse stays exact."""

    def test_a_session_costs_the_same_after_many_rotations(
        self, family_store: RefreshTokenStore, clock: FakeClock
    ) -> None:
        """Thousands of rotations leave one family entry (memory: its expiry order stays
        bounded too), two hundred one family key (Redis)."""
        service = _service(family_store, clock)
        token = service.issue("alice").refresh_token
        memory = isinstance(family_store, MemoryRefreshTokenStore)
        for _ in range(2100 if memory else 200):
            clock.advance(1)
            token = service.refresh(token).refresh_token
        if isinstance(family_store, MemoryRefreshTokenStore):
            assert len(family_store) == 1
            assert len(family_store._expiry) <= 2 * 1 + 1024
        else:
            assert isinstance(family_store, RedisRefreshTokenStore)
            client = family_store._client
            assert len(list(client.scan_iter("apisec:rt:{*"))) == 1
            assert client.scard(family_store._keys.subject("alice")) == 1

    def test_every_spent_token_is_a_reuse_while_the_family_lives(
        self, family_store: RefreshTokenStore, clock: FakeClock
    ) -> None:
        """The first token, replayed fifty rotations and more than its own lifetime later,
        is still recognised: the family is revoked."""
        service = _service(family_store, clock)
        first = service.issue("alice").refresh_token
        token = first
        for _ in range(50):
            clock.advance(100)  # 5,000 s in all: past the first token's 3,600
            token = service.refresh(token).refresh_token
        with pytest.raises(TokenReuseDetected):
            service.refresh(first)
        with pytest.raises(RevokedToken):
            service.refresh(token)

    def test_a_token_forged_with_a_family_secret_is_a_reuse(
        self, family_store: RefreshTokenStore, clock: FakeClock
    ) -> None:
        """Whoever holds a token of a family can name the family but not its newest token:
        anything they make of it revokes the family."""
        service = _service(family_store, clock)
        token = service.issue("alice").refresh_token
        forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
        with pytest.raises(TokenReuseDetected):
            service.refresh(forged)
        with pytest.raises(RevokedToken):
            service.refresh(token)

    def test_a_grace_retry_replaces_the_pair_it_retried_for(
        self, family_store: RefreshTokenStore, clock: FakeClock
    ) -> None:
        """Within refresh_grace a retry gets a new pair, and may retry again; the pair it
        replaced is then spent: presenting it is a reuse."""
        service = _service(family_store, clock, refresh_grace=10)
        first = service.issue("alice").refresh_token
        lost = service.refresh(first).refresh_token  # the response that never arrived
        clock.advance(2)
        retried = service.refresh(first).refresh_token
        clock.advance(2)
        again = service.refresh(first).refresh_token  # a second retry, still in the grace
        assert len({lost, retried, again}) == 3
        assert service.refresh(again).refresh_token
        with pytest.raises(TokenReuseDetected):
            service.refresh(lost)

    def test_a_family_ends_with_its_newest_token(
        self, family_store: RefreshTokenStore, clock: FakeClock
    ) -> None:
        """Once the newest token has expired, every token of the family is expired (or,
        once the store has let the family go, unknown): nothing is revoked."""
        service = _service(family_store, clock)
        first = service.issue("alice").refresh_token
        newest = service.refresh(first).refresh_token
        clock.advance(3600)
        for token in (newest, first):
            with pytest.raises((ExpiredToken, InvalidToken)) as caught:
                service.refresh(token)
            assert not isinstance(caught.value, RevokedToken)

    def test_revoke_with_any_token_of_the_family(
        self, family_store: RefreshTokenStore, clock: FakeClock
    ) -> None:
        """A logout with a spent token of the family still ends the family."""
        service = _service(family_store, clock)
        first = service.issue("alice").refresh_token
        newest = service.refresh(first).refresh_token
        service.revoke(first)
        with pytest.raises(RevokedToken):
            service.refresh(newest)


class TestRetiredFormat:
    def test_rt_tokens_are_refused_by_name(
        self, store: RefreshTokenStore, clock: FakeClock, audit_records: list[Any]
    ) -> None:
        """A refresh token of the retired rt_<family>.<secret> form is refused before the
        store, with a message saying so."""
        service = _service(store, clock)
        retired = "rt_" + "A" * 22 + "." + "B" * 43
        for call in (service.refresh, service.revoke):
            with pytest.raises(InvalidToken, match="retired rt_ format"):
                call(retired)
        assert [r.event for r in audit_records] == ["auth.failure"]


class TestMemoryBound:
    def test_past_the_bound_the_soonest_to_expire_go_first(self, clock: FakeClock) -> None:
        """Families are dropped in expiry order: expired ones, then the closest to expiry,
        whatever order they were written in."""
        store = MemoryRefreshTokenStore(clock=clock, max_tokens=3)
        long_lived = _service(store, clock)  # 3,600 s
        short_lived = TokenService(
            KEY, issuer=ISS, audience=AUD, store=store, clock=clock, refresh_ttl=900
        )
        a = long_lived.issue("a").refresh_token
        b = short_lived.issue("b").refresh_token
        c = long_lived.issue("c").refresh_token
        d = long_lived.issue("d").refresh_token  # over the bound: b expires first
        assert len(store) == 3
        with pytest.raises(InvalidToken, match="unknown"):
            short_lived.refresh(b)
        a = long_lived.refresh(a).refresh_token  # written last, so the tie goes to c
        clock.advance(10)
        f = long_lived.issue("f").refresh_token  # c, a and d expire at once: c goes
        with pytest.raises(InvalidToken, match="unknown"):
            long_lived.refresh(c)
        for token in (a, d, f):
            assert long_lived.refresh(token).refresh_token

    def test_expired_families_are_dropped_as_time_passes(self, clock: FakeClock) -> None:
        """A store that only grows by new logins still lets its expired families go."""
        store = MemoryRefreshTokenStore(clock=clock)
        service = _service(store, clock)
        for i in range(10):
            service.issue(f"user{i}")
        clock.advance(3600)
        service.issue("late")
        assert len(store) == 1
        assert store._subjects.keys() == {"late"}

    def test_a_flood_of_logins_never_revives_an_evicted_family(self, clock: FakeClock) -> None:
        """Logins that push a family out take all its tokens: its spent one, its newest one
        and its revoked one are refused afterwards (unknown), never accepted."""
        store = MemoryRefreshTokenStore(clock=clock, max_tokens=4)
        service = _service(store, clock)
        spent = service.issue("victim").refresh_token
        newest = service.refresh(spent).refresh_token
        revoked = service.issue("victim").refresh_token
        service.revoke(revoked)
        clock.advance(1)
        for i in range(8):  # later expiries: the victim's families are dropped first
            service.issue(f"attacker{i}")
        assert len(store) == 4
        for token in (spent, newest, revoked):
            with pytest.raises(InvalidToken, match="unknown"):
                service.refresh(token)
        assert "victim" not in store._subjects

    def test_revoked_families_go_before_live_ones(self, clock: FakeClock) -> None:
        """At the bound a revoked family is dropped before any live one, even a live one
        closer to expiry; expired families still go before either."""
        store = MemoryRefreshTokenStore(clock=clock, max_tokens=2)
        short = TokenService(
            KEY, issuer=ISS, audience=AUD, store=store, clock=clock, refresh_ttl=900
        )
        live = short.issue("a").refresh_token  # expires first
        clock.advance(1)
        long_lived = _service(store, clock)
        gone = long_lived.issue("b").refresh_token
        long_lived.revoke(gone)
        fresh = long_lived.issue("c").refresh_token  # over the bound: b, not a, goes
        with pytest.raises(InvalidToken, match="unknown"):
            long_lived.refresh(gone)
        live = short.refresh(live).refresh_token  # a, the short one, is live
        long_lived.revoke(fresh)
        clock.advance(901)  # a has expired: it goes, and the revoked c may stay
        d = long_lived.issue("d").refresh_token
        with pytest.raises(InvalidToken, match="unknown"):
            short.refresh(live)
        with pytest.raises(RevokedToken):
            long_lived.refresh(fresh)
        assert long_lived.refresh(d).refresh_token

    def test_adds_at_the_bound_never_scan_the_store(self, clock: FakeClock) -> None:
        """At the bound, rotations and logins (each evicting a family) read no family but
        their own and the evicted one: no add walks the store."""

        class Watched(dict[str, Any]):
            walks = 0

            def items(self) -> Any:
                Watched.walks += 1
                return super().items()

            def values(self) -> Any:
                Watched.walks += 1
                return super().values()

            def __iter__(self) -> Any:
                Watched.walks += 1
                return super().__iter__()

        store = MemoryRefreshTokenStore(clock=clock, max_tokens=500)
        service = _service(store, clock)
        for i in range(500):
            service.issue(f"user{i}")
        token = service.issue("alice").refresh_token
        store._families = Watched(store._families)
        for i in range(200):
            token = service.refresh(token).refresh_token
            service.issue(f"late{i}")
        assert len(store) == 500
        assert Watched.walks == 0


class TestRedisRoundTrips:
    def test_round_trips_per_operation(self, redis_server: RedisServer) -> None:
        """On a real server: issue is one round trip, a rotation two (consume, then the
        family and the subject's index together), revoke two, revoke_subject two; the
        asyncio store makes the same number. Client and server counts agree."""
        from tests.support.roundtrips import CountingClient, Trips

        client = CountingClient(redis_server.host, redis_server.port)
        try:
            client.sync.flushdb()
            service = TokenService(
                KEY, issuer=ISS, audience=AUD, store=RedisRefreshTokenStore(client.sync)
            )
            service.refresh(service.issue("warm").refresh_token)  # connection and scripts
            counted: dict[str, tuple[int, int]] = {}

            def count(name: str, call: Any) -> Any:
                with Trips(client) as trips:
                    result = call()
                counted[name] = (trips.client_side, trips.server_side)
                return result

            pair = count("issue", lambda: service.issue("alice"))
            pair = count("refresh", lambda: service.refresh(pair.refresh_token))
            count("revoke", lambda: service.revoke(pair.refresh_token))
            service.issue("bob")
            service.issue("bob")
            count("revoke_subject", lambda: service.revoke_subject("bob"))
            assert counted == {
                "issue": (1, 1),
                "refresh": (2, 2),
                "revoke": (2, 2),
                "revoke_subject": (2, 2),
            }

            async def rotate() -> tuple[int, int]:
                store = AsyncRedisRefreshTokenStore(client.aio)
                twin = AsyncTokenService(KEY, issuer=ISS, audience=AUD, store=store)
                token = (await twin.issue("carol")).refresh_token
                token = (await twin.refresh(token)).refresh_token
                with Trips(client) as trips:
                    await twin.refresh(token)
                await client.aclose()
                return trips.client_side, trips.server_side

            assert asyncio.run(rotate()) == (2, 2)
        finally:
            client.close()

    def test_a_flushed_script_cache_is_reloaded(self, redis_client: redis.Redis) -> None:
        """After SCRIPT FLUSH (a restarted server), rotations load the scripts again."""
        service = TokenService(
            KEY, issuer=ISS, audience=AUD, store=RedisRefreshTokenStore(redis_client)
        )
        token = service.issue("alice").refresh_token
        redis_client.script_flush()
        token = service.refresh(token).refresh_token
        redis_client.script_flush()
        service.revoke_subject("alice")
        with pytest.raises(RevokedToken):
            service.refresh(token)

    async def test_a_flushed_script_cache_is_reloaded_asyncio(
        self, async_redis_client: redis.asyncio.Redis
    ) -> None:
        """The asyncio store, too, loads its scripts again after SCRIPT FLUSH."""
        service = AsyncTokenService(
            KEY, issuer=ISS, audience=AUD, store=AsyncRedisRefreshTokenStore(async_redis_client)
        )
        token = (await service.issue("alice")).refresh_token
        await async_redis_client.script_flush()
        token = (await service.refresh(token)).refresh_token
        await async_redis_client.script_flush()
        await service.revoke_subject("alice")
        with pytest.raises(RevokedToken):
            await service.refresh(token)


class _PausingMemoryStore(MemoryRefreshTokenStore):
    """The memory store, running ``between`` once right after a consume answers OK or
    REUSED: the point where a rotation has used its token and not yet added the next."""

    between: Any = None

    def consume(self, family_id: str, token_hash: str, now: float) -> ConsumeResult:
        result = super().consume(family_id, token_hash, now)
        hook, self.between = self.between, None
        if hook is not None and result.status in (ConsumeStatus.OK, ConsumeStatus.REUSED):
            hook()
        return result


class TestRotationRacingLogout:
    def test_a_logout_and_a_flood_during_a_rotation_never_revive_the_family(
        self, clock: FakeClock
    ) -> None:
        """A logout that returns while a rotation of the family is in flight, followed by
        logins that push the revoked family out, leaves the rotation's new refresh token
        refused: the in-flight add never re-creates the family live."""
        store = _PausingMemoryStore(clock=clock, max_tokens=4)
        service = _service(store, clock)
        stolen = service.issue("victim").refresh_token

        def logout_then_flood() -> None:
            service.revoke(stolen)
            for i in range(4):
                service.issue(f"other{i}")
            assert _family_id(stolen[4:26]) not in store._families

        store.between = logout_then_flood
        try:
            survivor = service.refresh(stolen).refresh_token
        except (InvalidToken, RevokedToken):
            return
        with pytest.raises((InvalidToken, RevokedToken)):
            service.refresh(survivor)

    def test_a_flood_then_a_logout_during_a_rotation_never_revive_the_family(
        self, clock: FakeClock
    ) -> None:
        """A family pushed out while its rotation is in flight, then logged out (a no-op:
        the family is unknown), stays gone: the rotation's add does not re-create it."""
        store = _PausingMemoryStore(clock=clock, max_tokens=4)
        service = _service(store, clock)
        stolen = service.issue("victim").refresh_token
        clock.advance(1)

        def flood_then_logout() -> None:
            for i in range(4):
                service.issue(f"other{i}")
            service.revoke(stolen)

        store.between = flood_then_logout
        try:
            survivor = service.refresh(stolen).refresh_token
        except (InvalidToken, RevokedToken):
            return
        with pytest.raises((InvalidToken, RevokedToken)):
            service.refresh(survivor)

    def test_a_grace_retry_racing_a_logout_never_revives_the_family(self, clock: FakeClock) -> None:
        """A grace retry of a spent token, in flight while the family is logged out and
        pushed out of the store, never re-creates it live."""
        store = _PausingMemoryStore(clock=clock, max_tokens=4)
        service = _service(store, clock, refresh_grace=10)
        stolen = service.issue("victim").refresh_token
        newest = service.refresh(stolen).refresh_token

        def logout_then_flood() -> None:
            service.revoke(newest)
            for i in range(4):
                service.issue(f"other{i}")

        store.between = logout_then_flood
        try:
            survivor = service.refresh(stolen).refresh_token
        except (InvalidToken, RevokedToken):
            return
        with pytest.raises((InvalidToken, RevokedToken)):
            service.refresh(survivor)

    def test_a_logout_during_a_rotation_on_redis_never_revives_an_expired_family(
        self, redis_client: redis.Redis, clock: FakeClock
    ) -> None:
        """On Redis, a family logged out while its rotation is in flight and gone from
        Redis (its key expired) before the rotation's add is not re-created live."""
        store = RedisRefreshTokenStore(redis_client, clock=clock)
        service = _service(store, clock)
        stolen = service.issue("victim").refresh_token
        key = store._keys.family(_family_id(stolen[4:26]))
        original = store.consume

        def consume(family_id: str, token_hash: str, now: float) -> ConsumeResult:
            result = original(family_id, token_hash, now)
            service.revoke(stolen)
            redis_client.delete(key)  # its TTL ran out (or maxmemory evicted it)
            return result

        store.consume = consume  # type: ignore[method-assign]
        try:
            survivor = service.refresh(stolen).refresh_token
        except (InvalidToken, RevokedToken):
            return
        store.consume = original  # type: ignore[method-assign]
        with pytest.raises((InvalidToken, RevokedToken)):
            service.refresh(survivor)
