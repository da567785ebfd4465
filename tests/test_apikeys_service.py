"""The API key lifecycle over every store: memory, SQLite, Redis and a custom store."""

from __future__ import annotations

import logging
import multiprocessing
import threading
from collections.abc import AsyncIterator, Iterator, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import attrs
import pytest
import redis
import redis.asyncio

from apisec import ConfigurationError
from apisec.apikeys import (
    ApiKeyNotFound,
    ApiKeyRecord,
    ApiKeyService,
    ApiKeyStore,
    AsyncApiKeyService,
    AsyncSQLiteApiKeyStore,
    InsufficientScope,
    InvalidApiKey,
    MemoryApiKeyStore,
    Peppers,
    SQLiteApiKeyStore,
    generate_api_key,
    require_scopes,
)
from apisec.apikeys.redis import AsyncRedisApiKeyStore, RedisApiKeyStore
from apisec.testing import FakeClock
from tests.support.redis_server import RedisServer


class ListStore:
    """A deliberately tiny custom store: a list and a lock."""

    def __init__(self) -> None:
        self.records: list[ApiKeyRecord] = []
        self.lock = threading.Lock()

    def add(self, record: ApiKeyRecord) -> None:
        with self.lock:
            self.records.append(record)

    def get(self, key_id: str) -> ApiKeyRecord | None:
        return next((r for r in self.records if r.id == key_id), None)

    def find(self, key_hash: str) -> ApiKeyRecord | None:
        return next((r for r in self.records if r.key_hash == key_hash), None)

    def update(self, key_id: str, changes: Mapping[str, Any]) -> ApiKeyRecord | None:
        with self.lock:
            for index, record in enumerate(self.records):
                if record.id == key_id:
                    self.records[index] = attrs.evolve(record, **changes)
                    return self.records[index]
        return None

    def list(self, owner: str) -> list[ApiKeyRecord]:
        return sorted((r for r in self.records if r.owner == owner), key=lambda r: r.created_at)


@pytest.fixture(params=["memory", "sqlite", "redis", "custom"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ApiKeyStore]:
    if request.param == "memory":
        yield MemoryApiKeyStore()
    elif request.param == "sqlite":
        sqlite = SQLiteApiKeyStore(tmp_path / "keys.db")
        yield sqlite
        sqlite.close()
    elif request.param == "custom":
        yield ListStore()
    else:
        yield RedisApiKeyStore(request.getfixturevalue("redis_client"))


@pytest.fixture
def service(store: ApiKeyStore, clock: FakeClock) -> ApiKeyService:
    return ApiKeyService(store, clock)


class TestLifecycle:
    def test_protocol_is_structural(self) -> None:
        """The custom store in this file is an ApiKeyStore by shape alone."""
        assert isinstance(ListStore(), ApiKeyStore)

    def test_create_and_authenticate(self, service: ApiKeyService, clock: FakeClock) -> None:
        """A created key authenticates to its record; the record holds only a hash and a hint."""
        new = service.create(
            "acct_1", scopes=["orders:read", "orders:write"], metadata={"env": "ci"}
        )
        record = service.authenticate(new.plaintext)
        assert record.id == new.record.id
        assert record.owner == "acct_1"
        assert record.scopes == ("orders:read", "orders:write")
        assert record.metadata == {"env": "ci"}
        assert record.hint == new.plaintext[:12]
        assert new.plaintext not in repr(new) and new.plaintext not in repr(record)
        assert record.last_used_at == clock()

    def test_scopes(self, service: ApiKeyService) -> None:
        """require_scopes passes with every scope held and raises 403 naming the missing ones."""
        record = service.authenticate(service.create("acct", scopes=["read"]).plaintext)
        assert require_scopes(record, "read") is record
        with pytest.raises(InsufficientScope) as caught:
            require_scopes(record, "read", "admin")
        assert caught.value.status == 403
        assert caught.value.to_problem().to_dict()["required_scopes"] == ["admin"]

    def test_expiry(self, service: ApiKeyService, clock: FakeClock) -> None:
        """A key with expires_in works until then and not after."""
        new = service.create("acct", expires_in=timedelta(hours=1))
        clock.advance(3599)
        service.authenticate(new.plaintext)
        clock.advance(1)
        with pytest.raises(InvalidApiKey, match="expired"):
            service.authenticate(new.plaintext)

    def test_revoke(self, service: ApiKeyService) -> None:
        """A revoked key stops working at once; unknown ids are a 404."""
        new = service.create("acct")
        service.revoke(new.record.id)
        with pytest.raises(InvalidApiKey, match="revoked"):
            service.authenticate(new.plaintext)
        with pytest.raises(ApiKeyNotFound):
            service.revoke("key_nope")

    def test_rotate_with_grace(self, service: ApiKeyService, clock: FakeClock) -> None:
        """Rotation returns a new key; the old one works through the grace period, then expires."""
        old = service.create("acct", scopes=["read"])
        new = service.rotate(old.record.id, grace=timedelta(minutes=10))
        assert new.plaintext != old.plaintext
        assert new.record.scopes == ("read",) and new.record.owner == "acct"
        clock.advance(599)
        service.authenticate(old.plaintext)
        service.authenticate(new.plaintext)
        clock.advance(1)
        with pytest.raises(InvalidApiKey, match="expired"):
            service.authenticate(old.plaintext)
        service.authenticate(new.plaintext)
        revoked = service.create("acct")
        service.revoke(revoked.record.id)
        with pytest.raises(ConfigurationError):
            service.rotate(revoked.record.id)
        with pytest.raises(ApiKeyNotFound):
            service.rotate("key_missing")

    def test_several_active_keys_per_owner_and_listing(
        self, service: ApiKeyService, clock: FakeClock
    ) -> None:
        """An owner may hold several keys; list() returns them oldest first, others excluded."""
        first = service.create("acct")
        clock.advance(1)
        second = service.create("acct", prefix="sk_test")
        service.create("someone-else")
        service.authenticate(first.plaintext)
        service.authenticate(second.plaintext)
        assert [r.id for r in service.list("acct")] == [first.record.id, second.record.id]
        assert service.list("nobody") == []

    def test_last_used_is_throttled(
        self, service: ApiKeyService, store: ApiKeyStore, clock: FakeClock
    ) -> None:
        """last_used_at is written at most once a minute, so authentication stays a read."""
        new = service.create("acct")
        service.authenticate(new.plaintext)
        first_use = clock()
        clock.advance(30)
        service.authenticate(new.plaintext)
        stored = store.get(new.record.id)
        assert stored is not None and stored.last_used_at == first_use
        clock.advance(30)
        service.authenticate(new.plaintext)
        stored = store.get(new.record.id)
        assert stored is not None and stored.last_used_at == clock()

    def test_pepper_rotation(self, store: ApiKeyStore, clock: FakeClock) -> None:
        """Keys hashed under an old pepper still work and are re-hashed with the new one."""
        v1 = Peppers({"v1": b"1" * 32}, current="v1")
        old_service = ApiKeyService(store, clock, pepper=v1)
        new = old_service.create("acct")
        assert new.record.key_hash.startswith("hmac-sha256$v1$")
        v2 = Peppers({"v1": b"1" * 32, "v2": b"2" * 32}, current="v2")
        service = ApiKeyService(store, clock, pepper=v2)
        record = service.authenticate(new.plaintext)
        assert record.key_hash.startswith("hmac-sha256$v2$")
        stored = store.get(new.record.id)
        assert stored is not None and stored.key_hash.startswith("hmac-sha256$v2$")
        only_v2 = ApiKeyService(store, clock, pepper=Peppers({"v2": b"2" * 32}, current="v2"))
        assert only_v2.authenticate(new.plaintext).id == new.record.id
        with pytest.raises(InvalidApiKey):
            ApiKeyService(store, clock).authenticate(new.plaintext)  # no pepper: hashes differ

    def test_revocation_survives_a_concurrent_touch(
        self, service: ApiKeyService, store: ApiKeyStore
    ) -> None:
        """A last-used update carries only its own field, so it cannot undo a revocation."""
        new = service.create("acct")
        service.revoke(new.record.id)
        store.update(new.record.id, {"last_used_at": 123.0})
        stored = store.get(new.record.id)
        assert stored is not None and stored.revoked_at is not None

    def test_all_failures_look_the_same_to_clients(
        self, service: ApiKeyService, clock: FakeClock
    ) -> None:
        """Unknown, malformed, expired and revoked keys give identical 401 problems."""
        expired = service.create("a", expires_in=1)
        revoked = service.create("a")
        service.revoke(revoked.record.id)
        clock.advance(2)
        unknown = generate_api_key("sk_live").plaintext
        problems = []
        for key in (unknown, "sk_live_garbage", expired.plaintext, revoked.plaintext, ""):
            with pytest.raises(InvalidApiKey) as caught:
                service.authenticate(key)
            problems.append(caught.value.to_problem().to_json())
        assert len(set(problems)) == 1
        assert b'"status":401' in problems[0]

    def test_failures_are_audited_with_their_reason(
        self, service: ApiKeyService, audit_records: list[logging.LogRecord]
    ) -> None:
        """The server-side reason reaches the audit log; the key never does."""
        new = service.create("acct")
        service.revoke(new.record.id)
        with pytest.raises(InvalidApiKey):
            service.authenticate(new.plaintext)
        record = next(r for r in reversed(audit_records) if r.event == "auth.failure")  # type: ignore[attr-defined]
        assert record.reason == "api_key_revoked"  # type: ignore[attr-defined]
        assert new.plaintext not in repr(record.__dict__)

    @pytest.mark.parametrize(
        "kwargs",
        [
            {"owner": ""},
            {"owner": "x" * 300},
            {"scopes": ["has space"]},
            {"scopes": [""]},
            {"prefix": "bad-prefix"},
            {"expires_in": 0},
            {"expires_in": -5},
        ],
    )
    def test_bad_create_arguments(self, service: ApiKeyService, kwargs: dict[str, Any]) -> None:
        """Invalid owners, scopes, prefixes and lifetimes are refused."""
        args: dict[str, Any] = {"owner": "acct", **kwargs}
        with pytest.raises(ConfigurationError):
            service.create(**args)


def _hammer_sqlite(path: str, worker: int) -> int:
    store = SQLiteApiKeyStore(path)
    service = ApiKeyService(store)
    done = 0
    for i in range(25):
        new = service.create(f"proc{worker}", scopes=[f"s{i}"])
        service.authenticate(new.plaintext)
        service.revoke(new.record.id)
        done += 1
    store.close()
    return done


class TestWhatIsStored:
    def test_sqlite_file_never_contains_a_key(self, tmp_path: Path) -> None:
        """The database file (and its WAL) hold hashes, never key text."""
        path = tmp_path / "keys.db"
        store = SQLiteApiKeyStore(path)
        service = ApiKeyService(store)
        keys = [service.create(f"acct{i}").plaintext for i in range(20)]
        for key in keys:
            service.authenticate(key)
        store.close()
        blob = b"".join(p.read_bytes() for p in tmp_path.iterdir())
        for key in keys:
            assert key.encode() not in blob
            assert key[8:40].encode() not in blob  # nor the random part alone
        assert b"sha256$" in blob

    def test_redis_keyspace_never_contains_a_key(self, redis_client: redis.Redis) -> None:
        """No Redis key name or value holds key text."""
        service = ApiKeyService(RedisApiKeyStore(redis_client))
        keys = [service.create("acct").plaintext for _ in range(10)]
        dump = ""
        for name in redis_client.scan_iter("*"):
            dump += repr(name)
            kind = redis_client.type(name)
            if kind == b"hash":
                dump += repr(redis_client.hgetall(name))
            elif kind == b"string":
                dump += repr(redis_client.get(name))
            elif kind == b"set":
                dump += repr(redis_client.smembers(name))
        assert "sha256$" in dump
        for key in keys:
            assert key[8:40] not in dump

    def test_sqlite_from_four_processes(self, tmp_path: Path) -> None:
        """Four processes writing at once never hit "database is locked"."""
        path = str(tmp_path / "shared.db")
        SQLiteApiKeyStore(path).list("warm-up")  # create the schema once
        with multiprocessing.get_context("spawn").Pool(4) as pool:
            results = pool.starmap(_hammer_sqlite, [(path, w) for w in range(4)])
        assert results == [25, 25, 25, 25]
        store = SQLiteApiKeyStore(path)
        assert sum(len(store.list(f"proc{w}")) for w in range(4)) == 100
        store.close()


@pytest.fixture(params=["redis", "sqlite"])
async def async_service(
    request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock
) -> AsyncIterator[AsyncApiKeyService]:
    if request.param == "sqlite":
        yield AsyncApiKeyService(AsyncSQLiteApiKeyStore(tmp_path / "async.db"), clock)
    else:
        server: RedisServer = request.getfixturevalue("redis_server")
        client = redis.asyncio.Redis(host=server.host, port=server.port)
        await client.flushdb()
        yield AsyncApiKeyService(AsyncRedisApiKeyStore(client), clock)
        await client.aclose()


class TestAsyncTwin:
    async def test_async_lifecycle(
        self, async_service: AsyncApiKeyService, clock: FakeClock
    ) -> None:
        """The asyncio service runs the same lifecycle over async stores."""
        new = await async_service.create("acct", scopes=["read"])
        assert (await async_service.authenticate(new.plaintext)).owner == "acct"
        rotated = await async_service.rotate(new.record.id, grace=0)
        with pytest.raises(InvalidApiKey):
            await async_service.authenticate(new.plaintext)
        assert (await async_service.authenticate(rotated.plaintext)).scopes == ("read",)
        await async_service.revoke(rotated.record.id)
        with pytest.raises(InvalidApiKey):
            await async_service.authenticate(rotated.plaintext)
        assert len(await async_service.list("acct")) == 2

    def test_sync_and_async_stores_do_not_mix(self, tmp_path: Path) -> None:
        """A sync service refuses an async store and the reverse."""
        with pytest.raises(ConfigurationError):
            ApiKeyService(AsyncSQLiteApiKeyStore(tmp_path / "a.db"))  # type: ignore[arg-type]
        with pytest.raises(ConfigurationError):
            AsyncApiKeyService(MemoryApiKeyStore())  # type: ignore[arg-type]


class TestRecordsAndFailures:
    def test_record_exposes_the_contract_short_names(self, clock: FakeClock) -> None:
        """record.hash, .created, .expires and .revoked mirror the stored fields."""
        service = ApiKeyService(clock=clock)
        new = service.create("acct", expires_in=60)
        record = new.record
        assert record.hash == record.key_hash and record.hash.startswith("sha256$")
        assert record.created == clock() and record.expires == clock() + 60
        assert record.revoked is False
        assert service.revoke(record.id).revoked is True

    def test_a_dead_redis_fails_closed(self) -> None:
        """With Redis unreachable, authenticate raises StoreError (503), never lets a key
        through."""
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        from apisec import StoreError
        from tests.support.redis_server import free_loopback_port

        client = redis.Redis(
            port=free_loopback_port(), socket_connect_timeout=0.5, retry=Retry(NoBackoff(), 0)
        )
        service = ApiKeyService(RedisApiKeyStore(client))
        with pytest.raises(StoreError) as caught:
            service.authenticate(generate_api_key().plaintext)
        assert caught.value.status == 503


class _CountingStore(ListStore):
    """The custom store, counting lookups by hash (what would be round trips over a network)."""

    def __init__(self) -> None:
        super().__init__()
        self.finds = 0

    def find(self, key_hash: str) -> ApiKeyRecord | None:
        self.finds += 1
        return super().find(key_hash)


def _outcome(service: ApiKeyService, key: Any) -> tuple[object, list[tuple[object, ...]]]:
    """What one authentication returned or raised, and the audit events it emitted."""
    from apisec.testing import capture_audit

    with capture_audit() as events:
        try:
            result: object = service.authenticate(key)
        except InvalidApiKey as exc:
            result = ("InvalidApiKey", exc.message)
    return result, [
        (e.event, e.reason, e.principal)  # type: ignore[attr-defined]
        for e in events
    ]


class TestFastPathIsPinned:
    """The memory fast path of authenticate answers exactly as the general flow does."""

    @pytest.mark.parametrize(
        "pepper",
        [None, Peppers({"old": b"o" * 32, "new": b"n" * 32}, current="new")],
        ids=["plain", "peppered"],
    )
    def test_every_case_matches_the_general_flow(
        self, clock: FakeClock, pepper: Peppers | None
    ) -> None:
        """Fresh, due-for-touch, expired, revoked, rotated, older-pepper, unknown, malformed,
        oversized and non-text keys: same record or error, same audit events, same store."""
        fast = ApiKeyService(MemoryApiKeyStore(), clock, pepper=pepper)
        general = ApiKeyService(MemoryApiKeyStore(), clock, pepper=pepper)
        general._find_in_memory = None  # the general flow only
        assert fast._find_in_memory is not None
        keys: dict[str, str] = {}
        for name, expires in (("live", None), ("short", 30.0), ("revoked", None)):
            new = fast.create("acct", scopes=["read"], expires_in=expires)
            general.store.add(new.record)
            keys[name] = new.plaintext
        if pepper is not None:  # a key hashed with the older pepper, upgraded on its next use
            older = ApiKeyService(clock=clock, pepper=Peppers(pepper.secrets, current="old"))
            new = older.create("acct")
            fast.store.add(new.record)
            general.store.add(new.record)
            keys["older pepper"] = new.plaintext
        live = keys["live"]
        well_formed_unknown = generate_api_key("sk_live").plaintext
        # (what, key, when): every record is used within the touch interval before it turns
        # revoked or expired, so the fast path sees those states too.
        script: list[tuple[str, Any, float]] = [
            ("first use (touch)", live, 0),
            ("short-lived, first use", keys["short"], 0),
            ("to be revoked, first use", keys["revoked"], 0),
            ("fresh", live, 10),
            ("short-lived, fresh", keys["short"], 20),
            ("unknown", well_formed_unknown, 21),
            ("malformed", "sk_live_garbage", 21),
            ("one character off", live[:-1] + ("A" if live[-1] != "A" else "B"), 21),
            ("empty", "", 21),
            ("not text", b"sk_live_x", 21),
            ("oversized", live + "x" * 5000, 21),
            ("lone surrogate", "sk_live_\udc80", 21),
            ("expired", keys["short"], 35),
            ("revoked", keys["revoked"], 36),
            ("fresh again", live, 59),
            ("touch due", live, 60),
        ]
        if pepper is not None:
            script.append(("older pepper", keys["older pepper"], 61))
            script.append(("older pepper, upgraded", keys["older pepper"], 62))
        start = clock()
        for what, key, when in script:
            clock.set(start + when)
            if what == "revoked":
                for service in (fast, general):
                    record = service.store.find(service._current_hash(key))
                    assert record is not None
                    service.revoke(record.id)
            assert _outcome(fast, key) == _outcome(general, key), what
        assert fast.store._by_id == general.store._by_id  # type: ignore[attr-defined]

    async def test_the_async_twin_takes_it_too(self, clock: FakeClock) -> None:
        """AsyncApiKeyService over its default memory store answers fresh keys by the fast
        path, and everything else by the general flow."""
        service = AsyncApiKeyService(clock=clock)
        assert service._find_in_memory is not None
        new = await service.create("acct")
        assert (await service.authenticate(new.plaintext)).last_used_at == clock()
        clock.advance(5)
        assert service._authenticated_in_memory(new.plaintext) is not None
        assert (await service.authenticate(new.plaintext)).id == new.record.id
        with pytest.raises(InvalidApiKey, match="malformed"):
            await service.authenticate("sk_live_garbage")

    def test_checksum_first_for_other_stores_lookup_first_in_memory(self) -> None:
        """Over a store that may be remote, a malformed key is refused before any lookup;
        both orders give the same labels."""
        remote = ApiKeyService(_CountingStore())
        memory = ApiKeyService()
        assert remote._find_in_memory is None and not remote._lookup_first
        assert memory._lookup_first
        for key, label in (
            ("sk_live_garbage", "malformed"),
            (generate_api_key().plaintext, "unknown"),
        ):
            for service in (remote, memory):
                with pytest.raises(InvalidApiKey, match=label):
                    service.authenticate(key)
        assert remote.store.finds == 1  # type: ignore[attr-defined]  # the unknown key only

    def test_a_subclassed_memory_store_gets_the_general_flow(self) -> None:
        """Only the memory store itself is read directly; a subclass (which may override
        find) goes through its methods."""

        class Audited(MemoryApiKeyStore):
            pass

        service = ApiKeyService(Audited())
        assert service._find_in_memory is None and not service._lookup_first


class TestRedisRoundTrips:
    def test_authenticate_is_one_round_trip(self, redis_server: RedisServer) -> None:
        """On Redis, authenticating a key is one round trip (sync and asyncio), counted by
        the client and by the server; a touch that is due adds one."""
        import asyncio

        from tests.support.roundtrips import CountingClient, Trips

        client = CountingClient(redis_server.host, redis_server.port)
        try:
            client.sync.flushdb()
            clock = FakeClock()
            service = ApiKeyService(RedisApiKeyStore(client.sync), clock)
            new = service.create("acct")
            service.authenticate(new.plaintext)  # loads the script, touches last_used_at
            with Trips(client) as trips:
                assert service.authenticate(new.plaintext).id == new.record.id
            assert (trips.client_side, trips.server_side) == (1, 1)
            clock.advance(60)
            with Trips(client) as trips:
                service.authenticate(new.plaintext)
            assert (trips.client_side, trips.server_side) == (2, 2)

            async def authenticate() -> None:
                store = AsyncRedisApiKeyStore(client.aio)
                twin = AsyncApiKeyService(store, clock)
                await twin.authenticate(new.plaintext)  # warm: connection and script
                with Trips(client) as trips:
                    await twin.authenticate(new.plaintext)
                assert (trips.client_side, trips.server_side) == (1, 1)
                with pytest.raises(InvalidApiKey, match="unknown"):
                    await twin.authenticate(generate_api_key().plaintext)
                await client.aclose()

            asyncio.run(authenticate())
        finally:
            client.close()

    def test_garbage_costs_no_round_trip(self, redis_server: RedisServer) -> None:
        """A malformed key is refused by its checksum before Redis is asked."""
        from tests.support.roundtrips import CountingClient, Trips

        client = CountingClient(redis_server.host, redis_server.port)
        try:
            service = ApiKeyService(RedisApiKeyStore(client.sync))
            client.sync.ping()
            with Trips(client) as trips, pytest.raises(InvalidApiKey, match="malformed"):
                service.authenticate("sk_live_" + "A" * 38)
            assert (trips.client_side, trips.server_side) == (0, 0)
        finally:
            client.close()

    def test_a_cluster_client_reads_the_two_keys_apart(self, redis_cluster: Any) -> None:
        """On a real Redis Cluster (where one script may not span the id and the record),
        keys are created, found, touched and revoked."""
        client = redis_cluster.client()
        try:
            service = ApiKeyService(RedisApiKeyStore(client, prefix="akc:"))
            assert not service.store._one_trip  # type: ignore[attr-defined]
            keys = [service.create(f"acct{i}") for i in range(6)]
            for new in keys:
                assert service.authenticate(new.plaintext).owner == new.record.owner
            service.revoke(keys[0].record.id)
            with pytest.raises(InvalidApiKey, match="revoked"):
                service.authenticate(keys[0].plaintext)
        finally:
            client.close()
