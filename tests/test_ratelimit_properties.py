"""Rate-limit algorithms, by property, over the memory store, Redis and a custom store."""

from __future__ import annotations

import hashlib
import math
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apisec.ratelimit import (
    Algorithm,
    FixedWindow,
    LeakyBucket,
    LimitRequest,
    MemoryStore,
    Outcome,
    RateLimiter,
    RateLimitStore,
    SlidingWindow,
    SlidingWindowCounter,
    TokenBucket,
    apply_requests,
)
from apisec.ratelimit.redis import RedisStore
from apisec.testing import FakeClock


class DictStore:
    """A tiny custom store: one dict, one lock, the shared pure logic."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.data: dict[str, tuple[tuple[float, ...], float]] = {}

    def evaluate(
        self, requests: Sequence[LimitRequest], now: float | None, peek: bool
    ) -> list[Outcome]:
        assert now is not None, "this store has no clock of its own"
        with self.lock:
            states = []
            for r in requests:
                entry = self.data.get(r.key)
                states.append(entry[0] if entry and entry[1] > now else None)
            new, outcomes = apply_requests(
                [r.algorithm for r in requests], states, now, [r.cost for r in requests], peek=peek
            )
            for r, state, outcome in zip(requests, new, outcomes, strict=True):
                if state is not None:
                    self.data[r.key] = (state, now + outcome.reset_after)
            return outcomes

    def clear(self, keys: Sequence[str]) -> None:
        with self.lock:
            for key in keys:
                self.data.pop(key, None)


@pytest.fixture(params=["memory", "redis", "custom"])
def store(request: pytest.FixtureRequest) -> Iterator[RateLimitStore]:
    if request.param == "memory":
        yield MemoryStore()
    elif request.param == "custom":
        yield DictStore()
    else:
        yield RedisStore(request.getfixturevalue("redis_client"))


ALGORITHMS: dict[str, Callable[[], Algorithm]] = {
    "fixed": lambda: FixedWindow(5, 10),
    "sliding": lambda: SlidingWindow(5, 10),
    "token": lambda: TokenBucket(5, 0.5),
    "leaky": lambda: LeakyBucket(5, 0.5),
    "counter": lambda: SlidingWindowCounter(5, 10),
}
steps = st.lists(
    st.tuples(st.floats(0, 4, allow_nan=False).map(lambda x: round(x, 3)), st.integers(0, 3)),
    min_size=1,
    max_size=30,
)
PROPERTY = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def run(
    algorithm: Algorithm, store: RateLimitStore, script: list[tuple[float, int]]
) -> list[tuple[float, int]]:
    """Play the hits; check retry_after honesty on every denial; return admissions."""
    clock = FakeClock(1_000_000.0)
    limiter = RateLimiter(algorithm, store, clock=clock)
    key = uuid.uuid4().hex
    admitted: list[tuple[float, int]] = []
    for delay, cost in script:
        clock.advance(delay)
        decision = limiter.hit(key, cost)
        if decision.allowed:
            admitted.append((clock(), cost))
            continue
        assert decision.retry_after is not None and decision.retry_after > 0
        assert decision.remaining < cost
        clock.advance(decision.retry_after)
        retried = limiter.hit(key, cost)
        assert retried.allowed, f"retry_after={decision.retry_after} was not honest"
        admitted.append((clock(), cost))
    return admitted


class TestLimitsHold:
    @PROPERTY
    @given(script=steps)
    def test_fixed_window_never_exceeds_the_limit_per_window(
        self, store: RateLimitStore, script: list[tuple[float, int]]
    ) -> None:
        """Per aligned window, admitted units never exceed the limit."""
        algorithm = ALGORITHMS["fixed"]()
        per_window: dict[float, int] = {}
        for t, cost in run(algorithm, store, script):
            start = math.floor(t / 10) * 10
            per_window[start] = per_window.get(start, 0) + cost
        assert all(total <= 5 for total in per_window.values())

    @PROPERTY
    @given(script=steps)
    def test_sliding_window_is_exact(
        self, store: RateLimitStore, script: list[tuple[float, int]]
    ) -> None:
        """In any interval of window seconds, never more than limit units are admitted."""
        admitted = run(ALGORITHMS["sliding"](), store, script)
        for t, _ in admitted:
            in_window = sum(c for s, c in admitted if t - 10 < s <= t)
            assert in_window <= 5

    @PROPERTY
    @given(script=steps)
    def test_sliding_window_counter_bounds(
        self, store: RateLimitStore, script: list[tuple[float, int]]
    ) -> None:
        """The approximate counter: at most limit per aligned window, 2x limit in any window."""
        admitted = run(ALGORITHMS["counter"](), store, script)
        per_window: dict[float, int] = {}
        for t, cost in admitted:
            start = math.floor(t / 10) * 10
            per_window[start] = per_window.get(start, 0) + cost
            assert sum(c for s, c in admitted if t - 10 < s <= t) <= 10
        assert all(total <= 5 for total in per_window.values())

    @pytest.mark.parametrize("kind", ["token", "leaky"])
    @PROPERTY
    @given(script=steps)
    def test_buckets_bound_every_interval(
        self, store: RateLimitStore, kind: str, script: list[tuple[float, int]]
    ) -> None:
        """Admitted in any interval T is at most capacity + rate * T."""
        admitted = run(ALGORITHMS[kind](), store, script)
        for i, (start, _) in enumerate(admitted):
            total = 0
            for end, cost in admitted[i:]:
                total += cost
                assert total <= 5 + 0.5 * (end - start) + 1e-9


class TestPeekAndCost:
    @pytest.mark.parametrize("kind", sorted(ALGORITHMS))
    def test_peek_does_not_consume_and_reset_restores(
        self, store: RateLimitStore, kind: str
    ) -> None:
        """peek leaves the state alone; reset forgets the key; other keys are independent."""
        clock = FakeClock(5_000.0)
        limiter = RateLimiter(ALGORITHMS[kind](), store, clock=clock)
        key, other = uuid.uuid4().hex, uuid.uuid4().hex
        assert limiter.hit(key, 2).remaining == 3
        first, second = limiter.peek(key), limiter.peek(key)
        assert first == second
        assert first.remaining == 3 and first.allowed
        assert limiter.hit(key, 3).remaining == 0
        denied = limiter.peek(key)
        assert not denied.allowed and denied.retry_after
        assert not limiter.hit(key).allowed
        assert limiter.hit(other).remaining == 4  # keys are independent
        limiter.reset(key)
        assert limiter.hit(key).remaining == 4

    @pytest.mark.parametrize("kind", sorted(ALGORITHMS))
    def test_zero_cost_hits_report_without_spending(self, store: RateLimitStore, kind: str) -> None:
        """cost=0 is allowed and changes nothing."""
        clock = FakeClock(7_000.0)
        limiter = RateLimiter(ALGORITHMS[kind](), store, clock=clock)
        key = uuid.uuid4().hex
        limiter.hit(key, 4)
        assert limiter.hit(key, 0).remaining == 1
        assert limiter.hit(key, 1).allowed


class TestMultipleLimits:
    def test_multiple_limits_are_all_or_nothing(self, store: RateLimitStore) -> None:
        """A hit denied by one limit consumes none of the others."""
        clock = FakeClock(9_000.0)
        small = FixedWindow(3, 100, name="small")
        big = FixedWindow(10, 100, name="big")
        both = RateLimiter([big, small], store, clock=clock)
        only_big = RateLimiter(big, store, clock=clock)  # same key index 0: reads big's state
        key = uuid.uuid4().hex
        for _ in range(3):
            assert both.hit(key).allowed
        denied = both.hit(key)
        assert not denied.allowed
        assert denied.policy == "small"
        assert only_big.peek(key).remaining == 7  # the denied hit did not spend big's quota
        headers = dict(denied.headers)
        assert headers["RateLimit-Policy"] == '"big";q=10;w=100, "small";q=3;w=100'
        assert headers["RateLimit"].startswith('"small";r=0;')

    def test_retry_after_covers_every_denying_limit(self, store: RateLimitStore) -> None:
        """With several limits denying, retry_after is the latest of them, and it is honest."""
        clock = FakeClock(12_000.0)
        limiter = RateLimiter(
            [TokenBucket(2, 1, name="burst"), SlidingWindow(3, 60, name="minute")],
            store,
            clock=clock,
        )
        key = uuid.uuid4().hex
        for _ in range(2):
            assert limiter.hit(key).allowed
        clock.advance(1)
        assert limiter.hit(key).allowed  # burst refilled one token; minute now full (3)
        denied = limiter.hit(key)
        assert not denied.allowed and denied.retry_after is not None
        assert denied.retry_after >= 58
        clock.advance(denied.retry_after)
        assert limiter.hit(key).allowed


class TestConcurrency:
    @pytest.mark.parametrize("kind", sorted(ALGORITHMS))
    def test_threads_on_the_memory_store_admit_exactly_the_limit(self, kind: str) -> None:
        """Eight threads hammering one key admit exactly the quota (no refill: frozen clock)."""
        store = MemoryStore()
        limiter = RateLimiter(ALGORITHMS[kind](), store, clock=FakeClock(50_000.0))
        admitted = []
        barrier = threading.Barrier(8)

        def worker() -> None:
            barrier.wait()
            admitted.append(sum(limiter.hit("shared").allowed for _ in range(20)))

        threads = [threading.Thread(target=worker) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sum(admitted) == 5


class TestStoresAndAlgorithms:
    def test_leaky_bucket_reports_queue_delay(self, store: RateLimitStore) -> None:
        """The leaky bucket says how long a request would queue at the leak rate."""
        clock = FakeClock(20_000.0)
        limiter = RateLimiter(LeakyBucket(10, 2), store, clock=clock)
        key = uuid.uuid4().hex
        delays = [limiter.hit(key).queue_delay for _ in range(4)]
        assert delays == [0.0, 0.5, 1.0, 1.5]
        clock.advance(1)
        assert limiter.hit(key).queue_delay == pytest.approx(1.0)

    def test_memory_store_stays_bounded(self) -> None:
        """Past max_keys the memory store evicts expired keys, then the oldest."""
        clock = FakeClock(0)
        store = MemoryStore(max_keys=50, clock=clock)
        limiter = RateLimiter(FixedWindow(5, 1), store, clock=clock)
        for i in range(500):
            limiter.hit(f"k{i}")
            if i % 100 == 0:
                clock.advance(2)
        assert len(store) <= 50

    def test_redis_uses_the_servers_clock_when_no_clock_is_given(
        self, redis_client: redis.Redis
    ) -> None:
        """Without a clock the script reads TIME: reset_after follows the server's time."""
        limiter = RateLimiter(FixedWindow(5, 3600), RedisStore(redis_client))
        decision = limiter.hit(uuid.uuid4().hex)
        seconds, micros = redis_client.time()
        server_now = seconds + micros / 1e6
        expected = math.floor(server_now / 3600) * 3600 + 3600 - server_now
        assert decision.reset_after == pytest.approx(expected, abs=1.0)

    def test_memory_store_evicts_the_least_recently_used_keys(self) -> None:
        """A flood of new keys pushes out idle keys, not the busy one kept being hit."""
        clock = FakeClock(0)
        store = MemoryStore(max_keys=100, clock=clock)
        limiter = RateLimiter(FixedWindow(1000, 3600), store, clock=clock)
        for _ in range(5):
            limiter.hit("busy")
        for i in range(400):
            limiter.hit(f"flood-{i}")
            limiter.hit("busy")
        assert limiter.peek("busy").remaining == 1000 - 405

    def test_sliding_window_counter_weights_the_previous_window(
        self, store: RateLimitStore
    ) -> None:
        """Right after a full window the previous count still weighs: 95% of 5 leaves no room."""
        clock = FakeClock(1_000_005.0)  # 5 s into the window [1_000_000, 1_000_010)
        limiter = RateLimiter(SlidingWindowCounter(5, 10), store, clock=clock)
        key = uuid.uuid4().hex
        assert limiter.hit(key, 5).allowed
        clock.set(1_000_010.5)  # new window: the 5 weigh 0.95 * 5 = 4.75
        denied = limiter.hit(key)
        assert not denied.allowed
        assert denied.retry_after == pytest.approx(1.5)
        clock.advance(1.5)  # 5 * 0.8 + 1 = 5: fits exactly
        assert limiter.hit(key).allowed
        assert not limiter.hit(key).allowed


class TestFloods:
    """A flood of new keys can never hand a limited key its quota back."""

    @pytest.mark.parametrize("kind", sorted(ALGORITHMS))
    def test_a_limited_key_survives_a_flood(self, kind: str) -> None:
        """Exhaust a key, then flood a small store with ten times its size of new keys."""
        clock = FakeClock(1_000_000.0)
        store = MemoryStore(max_keys=100, clock=clock)
        limiter = RateLimiter(ALGORITHMS[kind](), store, clock=clock)
        while limiter.hit("victim").allowed:
            pass
        for i in range(1_000):
            limiter.hit(f"flood-{i}")
        assert not limiter.hit("victim").allowed
        assert not limiter.peek("victim").allowed
        assert len(store) <= 100

    @pytest.mark.parametrize("kind", sorted(ALGORITHMS))
    def test_a_full_store_fails_closed_for_new_keys_only(
        self, kind: str, audit_records: list[Any]
    ) -> None:
        """Full of debtors: new keys are denied, with an honest retry_after; known keys pass."""
        clock = FakeClock(1_000_000.0)
        store = MemoryStore(max_keys=10, clock=clock)
        limiter = RateLimiter(ALGORITHMS[kind](), store, clock=clock)
        for i in range(10):
            assert limiter.hit(f"k{i}").allowed
        denied = limiter.hit("newcomer")
        assert not denied.allowed and denied.retry_after is not None and denied.remaining == 0
        assert limiter.peek("newcomer").allowed  # a peek needs no room
        assert limiter.hit("k0").allowed  # known keys keep being served
        assert any(r.event == "store.failure" for r in audit_records)
        clock.advance(denied.retry_after)
        assert limiter.hit("newcomer").allowed  # a debt cleared, its key was swept
        assert len(store) <= 10

    def test_multi_limit_hits_fail_closed_too(self) -> None:
        """A multi-limit hit on a new key in a full store is denied and writes nothing."""
        clock = FakeClock(1_000_000.0)
        store = MemoryStore(max_keys=4, clock=clock)
        limiter = RateLimiter([FixedWindow(5, 10), SlidingWindow(6, 10)], store, clock=clock)
        assert limiter.hit("a").allowed and limiter.hit("b").allowed
        assert not limiter.hit("c").allowed
        assert len(store) == 4


class TestClockStepsBack:
    """A stored window newer than now stays the current one."""

    @pytest.mark.parametrize("kind", ["fixed", "counter"])
    def test_no_fresh_quota_across_a_boundary(self, store: RateLimitStore, kind: str) -> None:
        """Exhausted just after a boundary, the key stays limited when the clock steps back."""
        clock = FakeClock(1_000_010.5)
        limiter = RateLimiter(ALGORITHMS[kind](), store, clock=clock)
        key = uuid.uuid4().hex
        while limiter.hit(key).allowed:
            pass
        clock.set(1_000_009.5)  # one second back, into the previous window
        denied = limiter.hit(key)
        assert not denied.allowed and denied.retry_after is not None
        assert not limiter.peek(key).allowed
        clock.advance(denied.retry_after)
        assert limiter.hit(key).allowed  # and the retry hint stays honest

    @pytest.mark.parametrize("kind", ["fixed", "counter"])
    @PROPERTY
    @given(
        script=st.lists(
            st.tuples(st.floats(-6, 6).map(lambda x: round(x, 3)), st.integers(0, 3)),
            min_size=1,
            max_size=30,
        )
    )
    def test_retry_after_stays_honest_when_time_wobbles(
        self, store: RateLimitStore, kind: str, script: list[tuple[float, int]]
    ) -> None:
        """With the clock moving both ways, a denied hit retried after retry_after passes."""
        clock = FakeClock(1_000_000.0)
        limiter = RateLimiter(ALGORITHMS[kind](), store, clock=clock)
        key = uuid.uuid4().hex
        for delay, cost in script:
            clock.set(clock() + delay)
            decision = limiter.hit(key, cost)
            if not decision.allowed:
                assert decision.retry_after is not None and decision.retry_after > 0
                clock.advance(decision.retry_after)
                assert limiter.hit(key, cost).allowed


class TestKeyNamespaces:
    def test_a_literal_key_cannot_name_a_hashed_one(self) -> None:
        """'h:<sha256 of a long key>' given literally has its own budget, not the long key's."""
        store = MemoryStore()
        limiter = RateLimiter(FixedWindow(1, 60), store, clock=FakeClock(0))
        long_key = "x" * 10_000
        assert limiter.hit(long_key).allowed
        literal = "h:" + hashlib.sha256(long_key.encode()).hexdigest()
        assert limiter.hit(literal).allowed
        assert not limiter.hit(long_key).allowed and not limiter.hit(literal).allowed
        assert len(store) == 2

    def test_braces_never_reach_the_hash_tag(self) -> None:
        """Keys with braces are hashed, so each store key has exactly one {hash tag}."""
        store = MemoryStore()
        limiter = RateLimiter([FixedWindow(1, 60), SlidingWindow(2, 60)], store, clock=FakeClock(0))
        for key in ["}x", "a}b", "{c}", "plain"]:
            assert limiter.hit(key).allowed
        assert len(store) == 8
        assert all(k.count("{") == 1 and k.count("}") == 1 for k in store._data)


class TestRelease:
    def test_released_units_come_back_oldest_first(self, store: RateLimitStore) -> None:
        """A give-back frees the oldest admissions of a sliding window, on every store."""
        clock = FakeClock(3_000.0)
        limiter = RateLimiter(SlidingWindow(3, 10), store, clock=clock)
        key = uuid.uuid4().hex
        for _ in range(3):
            assert limiter.hit(key).allowed
            clock.advance(1)
        limiter._release(key)  # the admission at 3000 goes
        assert limiter.peek(key).remaining == 1
        assert limiter.hit(key).allowed
        denied = limiter.hit(key)
        assert not denied.allowed
        assert denied.retry_after == pytest.approx(8.0)  # the one at 3001 leaves at 3011
