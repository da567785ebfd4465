"""Rate limiting on a real Redis: one round trip, processes racing, failures, restarts."""

from __future__ import annotations

import multiprocessing
import uuid
from typing import Any

import pytest
import redis
import redis.asyncio
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.retry import Retry

from apisec import StoreError
from apisec.ratelimit import (
    AsyncRateLimiter,
    AsyncTieredRateLimiter,
    FixedWindow,
    LimitRequest,
    RateLimiter,
    SlidingWindow,
    SlidingWindowCounter,
    TokenBucket,
)
from apisec.ratelimit._algorithms import SlidingWindowRelease
from apisec.ratelimit.redis import AsyncRedisStore, RedisStore
from apisec.testing import FakeClock
from tests.support.ratelimit_worker import hammer
from tests.support.redis_server import RedisServer, free_loopback_port


def _evalsha_calls(client: redis.Redis) -> int:
    return int(client.info("commandstats").get("cmdstat_evalsha", {}).get("calls", 0))


@pytest.mark.parametrize(
    "algorithms",
    [
        [FixedWindow(10, 60)],
        [SlidingWindow(10, 60)],
        [TokenBucket(10, 1, name="a"), SlidingWindow(100, 3600, name="b")],
    ],
    ids=["fixed", "sliding", "two-limits"],
)
def test_one_round_trip_per_decision_with_headers(
    redis_client: redis.Redis, algorithms: list[object], monkeypatch: pytest.MonkeyPatch
) -> None:
    """hit() plus headers() is one send from the client and one EVALSHA on the server."""
    limiter = RateLimiter(algorithms, RedisStore(redis_client))  # type: ignore[arg-type]
    limiter.hit("warm-up")  # loads the script once
    sends: list[object] = []
    original = redis.connection.Connection.send_packed_command

    def counting(
        self: redis.connection.Connection, command: object, check_health: bool = True
    ) -> None:
        sends.append(command)
        original(self, command, check_health)  # type: ignore[no-untyped-call]

    before = _evalsha_calls(redis_client)
    monkeypatch.setattr(redis.connection.Connection, "send_packed_command", counting)
    decision = limiter.hit("client-1")
    assert decision.headers
    monkeypatch.undo()
    assert len(sends) == 1
    assert _evalsha_calls(redis_client) - before == 1


@pytest.mark.parametrize("kind", ["fixed", "sliding", "token", "leaky", "counter"])
def test_four_processes_admit_exactly_the_limit(redis_server: RedisServer, kind: str) -> None:
    """Four processes racing on one key admit exactly the quota, for each algorithm."""
    key = uuid.uuid4().hex
    context = multiprocessing.get_context("spawn")
    with context.Pool(4) as pool:
        counts = pool.starmap(hammer, [(redis_server.port, kind, key, 60, 1_000_000.0)] * 4)
    assert sum(counts) == 100
    assert all(c > 0 for c in counts) or sum(counts) == 100


def test_redis_down_is_a_store_error_or_the_chosen_failure_mode() -> None:
    """A closed port raises StoreError quickly, or fails open/closed when configured so."""
    client = redis.Redis(
        port=free_loopback_port(), socket_connect_timeout=0.5, retry=Retry(NoBackoff(), 0)
    )
    store = RedisStore(client)
    with pytest.raises(StoreError):
        RateLimiter(FixedWindow(5, 60), store).hit("k")
    opened = RateLimiter(FixedWindow(5, 60), store, on_store_error="allow").hit("k")
    assert opened.allowed and opened.degraded
    closed = RateLimiter(FixedWindow(5, 60), store, on_store_error="deny").hit("k")
    assert not closed.allowed and closed.degraded and closed.retry_after


def test_script_flush_and_restart_keep_working(redis_server: RedisServer) -> None:
    """After SCRIPT FLUSH (as after a restart) the next hit reloads the script itself."""
    client = redis.Redis(host=redis_server.host, port=redis_server.port)
    limiter = RateLimiter(FixedWindow(3, 60), RedisStore(client), clock=FakeClock(100.0))
    key = uuid.uuid4().hex
    assert limiter.hit(key).remaining == 2
    client.script_flush()
    assert limiter.hit(key).remaining == 1
    client.close()


def test_a_restarted_server_is_used_again(redis_server: RedisServer) -> None:
    """An outage is a StoreError; after a real restart (scripts gone) hits work again."""
    with RedisServer(redis_server.binary) as other:
        client = redis.Redis(host=other.host, port=other.port, retry=Retry(NoBackoff(), 0))
        limiter = RateLimiter(FixedWindow(3, 60), RedisStore(client))
        assert limiter.hit("k").allowed
        other.stop_process()
        with pytest.raises(StoreError):
            limiter.hit("k")
        other.restart()
        assert limiter.hit("k").remaining == 2  # fresh server: state and scripts are gone
        client.close()


async def test_async_limiter_over_async_redis(async_redis_client: redis.asyncio.Redis) -> None:
    """The asyncio twin gives the same decisions through AsyncRedisStore."""
    clock = FakeClock(500.0)
    limiter = AsyncRateLimiter(TokenBucket(2, 1), AsyncRedisStore(async_redis_client), clock=clock)
    results = [(await limiter.hit("a")).allowed for _ in range(3)]
    assert results == [True, True, False]
    peek = await limiter.peek("a")
    assert not peek.allowed and peek.retry_after == 1.0
    clock.advance(1)
    assert (await limiter.hit("a")).allowed
    await limiter.reset("a")
    assert (await limiter.hit("a")).remaining == 1
    tiers = AsyncTieredRateLimiter(
        {"free": FixedWindow(1, 60), "pro": FixedWindow(5, 60)},
        AsyncRedisStore(async_redis_client),
        clock=clock,
    )
    assert (await tiers.hit("acct", tier="free")).allowed
    assert not (await tiers.hit("acct", tier="free")).allowed
    assert (await tiers.hit("acct", tier="pro")).remaining == 4


def test_keys_expire_when_idle(redis_client: redis.Redis) -> None:
    """Every key the limiter writes carries a TTL."""
    limiter = RateLimiter(
        [FixedWindow(5, 60, name="f"), SlidingWindow(5, 60, name="s"), TokenBucket(5, 1, name="t")],
        RedisStore(redis_client),
    )
    limiter.hit("idle")
    keys = list(redis_client.scan_iter("rl:*"))
    assert len(keys) == 3
    assert all(0 < redis_client.pttl(k) <= 60_000 for k in keys)
    assert all(b"{idle}" in k for k in keys)


def test_redis_cluster_keeps_each_decision_on_one_node(redis_cluster: Any) -> None:
    """On a real three-node cluster, multi-limit decisions work for keys on every node."""
    client = redis_cluster.client()
    try:
        clock = FakeClock(3_000.0)
        limiter = RateLimiter(
            [TokenBucket(3, 1, name="burst"), FixedWindow(5, 60, name="minute")],
            RedisStore(client),
            clock=clock,
        )
        keys = [f"user-{i}" for i in range(30)]
        for key in keys:
            assert [limiter.hit(key).allowed for _ in range(4)] == [True, True, True, False]
        store_keys = limiter._keys("user-0")
        slots = {client.keyslot(k) for k in store_keys}
        assert len(slots) == 1  # the hash tag puts both limits in one slot
        nodes = {client.get_node_from_key(limiter._keys(k)[0]).port for k in keys}
        assert len(nodes) == 3  # and the keys really are spread over the three nodes
        limiter.reset("user-0")
        assert limiter.hit("user-0").allowed
    finally:
        client.close()


def test_one_limit_hits_on_a_cluster_load_their_script_on_every_node(
    redis_cluster: Any,
) -> None:
    """One-limit hits on keys spread over three nodes load each script where it runs."""
    client = redis_cluster.client()
    try:
        clock = FakeClock(3_000.0)
        for algorithm in (FixedWindow(3, 60), TokenBucket(3, 1), SlidingWindow(3, 60)):
            limiter = RateLimiter(algorithm, RedisStore(client), clock=clock)
            keys = [f"one-{algorithm.lua_id}-{i}" for i in range(30)]
            for key in keys:
                assert [limiter.hit(key).allowed for _ in range(4)] == [True, True, True, False]
            nodes = {client.get_node_from_key(limiter._keys(k)[0]).port for k in keys}
            assert len(nodes) == 3
    finally:
        client.close()


def test_store_prefix_namespaces_every_key(redis_client: redis.Redis) -> None:
    """A store prefix keeps two applications on one Redis apart."""
    clock = FakeClock(100.0)
    a = RateLimiter(FixedWindow(1, 60), RedisStore(redis_client, prefix="app-a:"), clock=clock)
    b = RateLimiter(FixedWindow(1, 60), RedisStore(redis_client, prefix="app-b:"), clock=clock)
    assert a.hit("k").allowed and b.hit("k").allowed
    assert not a.hit("k").allowed
    assert sorted(k.decode()[:6] for k in redis_client.scan_iter("*")) == ["app-a:", "app-b:"]
    a.reset("k")
    assert a.hit("k").allowed and not b.hit("k").allowed
    from apisec import ConfigurationError

    with pytest.raises(ConfigurationError):
        RedisStore(redis_client, prefix="{tag}")


def _commands(client: redis.Redis) -> dict[str, int]:
    stats = client.info("commandstats")
    return {name.removeprefix("cmdstat_"): int(s["calls"]) for name, s in stats.items()}


class TestScriptWrites:
    @pytest.mark.parametrize(
        "algorithm",
        [FixedWindow(10, 60), SlidingWindowCounter(10, 60)],
        ids=["fixed", "counter"],
    )
    def test_a_hit_in_an_open_window_is_one_increment(
        self, redis_client: redis.Redis, algorithm: Any
    ) -> None:
        """In a window already counting, a hit is one HINCRBY: its expiry was set when it began."""
        clock = FakeClock(6_000.0)
        limiter = RateLimiter(algorithm, RedisStore(redis_client), clock=clock)
        assert limiter.hit("k").remaining == 9
        (store_key,) = limiter._keys("k")
        ttl = redis_client.pttl(store_key)
        redis_client.config_resetstat()
        clock.advance(10)
        assert limiter.hit("k", 2).remaining == 7
        calls = _commands(redis_client)
        assert calls.get("hincrby") == 1
        assert "hset" not in calls and "pexpire" not in calls
        assert 0 < redis_client.pttl(store_key) <= ttl
        assert redis_client.hget(store_key, "c") == b"3"

    @pytest.mark.parametrize(
        "algorithm",
        [FixedWindow(10, 60), SlidingWindowCounter(10, 60)],
        ids=["fixed", "counter"],
    )
    def test_a_new_window_rewrites_the_state_and_its_expiry(
        self, redis_client: redis.Redis, algorithm: Any
    ) -> None:
        """The first hit of a window writes the whole state and sets the expiry again."""
        clock = FakeClock(6_000.0)
        limiter = RateLimiter(algorithm, RedisStore(redis_client), clock=clock)
        limiter.hit("k", 4)
        clock.advance(60)
        redis_client.config_resetstat()
        limiter.hit("k")
        calls = _commands(redis_client)
        assert calls.get("hset") == 1 and calls.get("pexpire") == 1
        assert "hincrby" not in calls
        (store_key,) = limiter._keys("k")
        assert redis_client.hget(store_key, "c") == b"1"
        assert redis_client.hget(store_key, "w") == b"6060"

    def test_a_denied_hit_writes_nothing(self, redis_client: redis.Redis) -> None:
        """A hit over the limit leaves the count and the expiry alone."""
        clock = FakeClock(6_000.0)
        limiter = RateLimiter(FixedWindow(2, 60), RedisStore(redis_client), clock=clock)
        limiter.hit("k", 2)
        redis_client.config_resetstat()
        assert not limiter.hit("k").allowed
        calls = _commands(redis_client)
        assert not {"hincrby", "hset", "pexpire"} & set(calls)
        assert redis_client.hget(limiter._keys("k")[0], "c") == b"2"

    async def test_the_async_store_reloads_the_script_after_a_flush(
        self, async_redis_client: redis.asyncio.Redis
    ) -> None:
        """After SCRIPT FLUSH the asyncio store loads the script again and decides as before."""
        limiter = AsyncRateLimiter(
            FixedWindow(3, 60), AsyncRedisStore(async_redis_client), clock=FakeClock(100.0)
        )
        assert (await limiter.hit("k")).remaining == 2
        await async_redis_client.script_flush()
        assert (await limiter.hit("k")).remaining == 1
        assert (await limiter.peek("k")).remaining == 1

    async def test_the_async_store_maps_failures_to_store_errors(self) -> None:
        """A closed port is a StoreError from the asyncio store too (or the failure mode)."""
        client = redis.asyncio.Redis(
            port=free_loopback_port(), socket_connect_timeout=0.5, retry=AsyncRetry(NoBackoff(), 0)
        )
        store = AsyncRedisStore(client)
        with pytest.raises(StoreError):
            await AsyncRateLimiter(FixedWindow(5, 60), store).hit("k")
        with pytest.raises(StoreError):
            await AsyncRateLimiter([FixedWindow(5, 60), TokenBucket(5, 1)], store).peek("k")
        opened = await AsyncRateLimiter(FixedWindow(5, 60), store, on_store_error="allow").hit("k")
        assert opened.allowed and opened.degraded
        await client.aclose()


class TestOneLimitScripts:
    def test_each_algorithm_has_a_script_with_only_its_own_function(self) -> None:
        """A one-limit hit runs a script that holds its own algorithm alone (it runs faster)."""
        from apisec.ratelimit import redis as module

        names = {1: "fixed", 2: "sliding", 3: "token", 4: "leaky", 5: "counter"}
        for lua_id, script in module.ONE_SCRIPTS.items():
            defined = {n for n in names.values() if f"local function {n}(" in script}
            assert defined == {names[lua_id]}
            assert f"local function {names[lua_id]}(" in module.SCRIPT

    @pytest.mark.parametrize("kind", ["fixed", "sliding", "token", "leaky", "counter"])
    def test_one_limit_and_generic_scripts_agree(
        self, redis_client: redis.Redis, kind: str
    ) -> None:
        """The one-limit script and the generic one give the same outcomes and states."""
        from tests.test_ratelimit_properties import ALGORITHMS

        algorithm = ALGORITHMS[kind]()
        store = RedisStore(redis_client)
        clock = FakeClock(7_000.0)
        for step, cost in enumerate([1, 2, 0, 3, 1, 1, 4, 1]):
            clock.advance(step * 0.7)
            one = store.evaluate_one("one", algorithm, cost, clock())
            (generic,) = store.evaluate(
                [LimitRequest(key="generic", algorithm=algorithm, cost=cost)], clock(), False
            )
            assert one == generic
        assert redis_client.type("one") == redis_client.type("generic")
        if redis_client.type("one") == b"hash":
            assert redis_client.hgetall("one") == redis_client.hgetall("generic")
        else:
            assert redis_client.zrange("one", 0, -1, withscores=True) == redis_client.zrange(
                "generic", 0, -1, withscores=True
            )

    def test_an_algorithm_without_a_script_of_its_own_takes_the_generic_one(
        self, redis_client: redis.Redis
    ) -> None:
        """evaluate_one with a sliding-window release goes through the generic script."""
        window = SlidingWindow(5, 60)
        store = RedisStore(redis_client)
        store.evaluate_one("k", window, 3, 100.0)
        released = store.evaluate_one("k", SlidingWindowRelease(window), 2, 101.0)
        assert released.allowed and released.remaining == 4
        assert store.evaluate_one("k", window, 1, 102.0).remaining == 3
