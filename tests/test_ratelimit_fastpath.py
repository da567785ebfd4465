"""The memory fast paths pinned against the reference: kernels, the flow-free path, the store."""

from __future__ import annotations

import threading
from array import array
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apisec import ConfigurationError
from apisec._flows import drive
from apisec.ratelimit import (
    Algorithm,
    AsyncRateLimiter,
    Decision,
    FixedWindow,
    LeakyBucket,
    LimitRequest,
    MemoryStore,
    Outcome,
    RateLimiter,
    SlidingWindow,
    SlidingWindowCounter,
    TokenBucket,
)
from apisec.ratelimit._algorithms import State
from apisec.testing import FakeClock
from tests.test_ratelimit_properties import DictStore

ALGORITHMS: dict[str, Callable[[], Algorithm]] = {
    "fixed": lambda: FixedWindow(5, 10),
    "sliding": lambda: SlidingWindow(5, 10),
    "token": lambda: TokenBucket(5, 0.5),
    "leaky": lambda: LeakyBucket(5, 0.5),
    "counter": lambda: SlidingWindowCounter(5, 10),
}
KEYS = ["a", "b", "c", "x" * 300]  # the last one is hashed into its store key
#: (operation, key, seconds to move the clock first (back too), cost)
steps = st.lists(
    st.tuples(
        st.sampled_from(["hit", "hit", "hit", "peek", "reset"]),
        st.sampled_from(KEYS),
        # Whole seconds too, so that entries land exactly on window edges.
        st.one_of(st.integers(-3, 6), st.floats(-3, 6).map(lambda x: round(x, 3))),
        st.integers(0, 5),
    ),
    min_size=1,
    max_size=40,
)
PINNED = settings(max_examples=60, deadline=None)


class _EvaluateOnly:
    """A store that is not a MemoryStore: the limiter takes its flow, the store its reference."""

    def __init__(self, inner: MemoryStore) -> None:
        self.inner = inner
        self.clock = inner.clock

    def evaluate(
        self, requests: Sequence[LimitRequest], now: float | None, peek: bool
    ) -> list[Outcome]:
        return self.inner.evaluate(requests, now, peek)

    def clear(self, keys: Sequence[str]) -> None:
        self.inner.clear(keys)


def live_states(store: MemoryStore | DictStore, now: float) -> dict[str, tuple[State, float]]:
    """Every live key's state and expiry, in the reference's form (tuples, logs as tuples)."""
    if isinstance(store, DictStore):
        return {k: (s, e) for k, (s, e) in store.data.items() if e > now}
    found = {}
    for key, entry in store._data.items():
        if entry[0] > now:
            state = tuple(entry[1][entry[2] :]) if type(entry[1]) is array else entry[1:]
            found[key] = (state, entry[0])
    return found


def play(
    script: list[tuple[str, str, float, int]],
    limiters: Sequence[RateLimiter],
    clock: FakeClock,
    check: Callable[[], None],
) -> None:
    """Run each step on every limiter; their decisions must be equal, then ``check()``."""
    for operation, key, delay, cost in script:
        clock.set(clock() + delay)
        if operation == "reset":
            for limiter in limiters:
                limiter.reset(key)
        else:
            found = [
                limiter.peek(key) if operation == "peek" else limiter.hit(key, cost)
                for limiter in limiters
            ]
            assert all(d._asdict() == found[0]._asdict() for d in found), (operation, found)
        check()


class TestKernelsMatchTheReference:
    @pytest.mark.parametrize("kind", sorted(ALGORITHMS))
    @PINNED
    @given(script=steps)
    def test_decisions_and_states_equal_the_pure_transitions(
        self, kind: str, script: list[tuple[str, str, float, int]]
    ) -> None:
        """Hit by hit, the kernel decides and stores what apply_requests gives (time wobbling)."""
        clock = FakeClock(1_000_000.0)
        memory = MemoryStore(clock=clock)
        reference = DictStore()
        fast = RateLimiter(ALGORITHMS[kind](), memory, clock=clock)
        slow = RateLimiter(ALGORITHMS[kind](), reference, clock=clock)
        assert fast._fast is not None and fast.hit == fast._fast

        def same_states() -> None:
            assert live_states(memory, clock()) == live_states(reference, clock())

        play(script, [fast, slow], clock, same_states)

    @pytest.mark.parametrize("kind", sorted(ALGORITHMS))
    @pytest.mark.parametrize("reset_format", ["delta", "epoch"])
    @PINNED
    @given(script=steps)
    def test_on_the_stores_clock_and_in_a_small_store(
        self, kind: str, reset_format: Any, script: list[tuple[str, str, float, int]]
    ) -> None:
        """Without a limiter clock, in a store of two keys, the kernel equals the general path."""
        clock = FakeClock(1_000_000.0)
        fast_store = MemoryStore(max_keys=2, clock=clock)
        slow_store = MemoryStore(max_keys=2, clock=clock)
        fast = RateLimiter(ALGORITHMS[kind](), fast_store, reset_format=reset_format)
        slow = RateLimiter(ALGORITHMS[kind](), _EvaluateOnly(slow_store), reset_format=reset_format)
        assert fast._fast is not None and slow._fast is None and slow._memory is None

        def same_states() -> None:
            assert live_states(fast_store, clock()) == live_states(slow_store, clock())
            assert len(fast_store) <= 2

        play(script, [fast, slow], clock, same_states)

    @pytest.mark.parametrize("kind", sorted(ALGORITHMS))
    def test_denials_are_audited_like_the_general_path(
        self, kind: str, audit_records: list[Any]
    ) -> None:
        """A denied kernel hit emits ratelimit.denied with the caller's key and the policy."""
        limiter = RateLimiter(ALGORITHMS[kind](), clock=FakeClock(0))
        assert limiter._fast is not None
        while limiter.hit("203.0.113.9").allowed:
            pass
        assert [(r.event, r.principal) for r in audit_records] == [
            ("ratelimit.denied", "203.0.113.9")
        ]

    @pytest.mark.parametrize("cost", [True, 1.0, -1, 6, "1"])
    def test_odd_costs_take_the_general_path(self, cost: Any) -> None:
        """A cost that is not an int within the quota is refused as the general path does."""
        limiter = RateLimiter(FixedWindow(5, 10), clock=FakeClock(0))
        with pytest.raises(ConfigurationError, match="cost"):
            limiter.hit("k", cost)

    def test_keys_of_another_type_are_refused_and_str_subclasses_served(self) -> None:
        """Non-strings are refused; a str subclass is served but never cached."""

        class Tagged(str):
            pass

        limiter = RateLimiter(FixedWindow(2, 10), clock=FakeClock(0))
        for bad in (None, 5, b"k", ["k"]):
            with pytest.raises(ConfigurationError, match="non-empty string"):
                limiter.hit(bad)  # type: ignore[arg-type]
        assert limiter.hit(Tagged("k")).remaining == 1
        assert limiter.hit("k").remaining == 0
        hit: Any = limiter._fast
        cells = dict(zip(hit.__code__.co_freevars, hit.__closure__, strict=True))
        places = cells["places"].cell_contents
        assert list(places) == ["k"] and all(type(key) is str for key in places)

    def test_subclasses_keep_the_general_path(self) -> None:
        """A subclass of MemoryStore, of an algorithm or of the limiter's hit gets no kernel."""

        class Store(MemoryStore):
            pass

        class Window(FixedWindow):
            pass

        class Limiter(RateLimiter):
            def hit(self, key: str, cost: int = 1) -> Decision:
                return super().hit(key, cost)

        assert RateLimiter(FixedWindow(1, 1), Store())._fast is None
        assert RateLimiter(Window(1, 1))._fast is None
        mine = Limiter(FixedWindow(1, 1))
        assert mine._fast is not None and "hit" not in vars(mine)
        assert mine.hit("k").allowed and not mine.hit("k").allowed

    async def test_the_async_twin_uses_the_kernel_too(self) -> None:
        """AsyncRateLimiter over its default memory store decides through the same kernel."""
        clock = FakeClock(0)
        limiter = AsyncRateLimiter(TokenBucket(2, 1), clock=clock)
        assert limiter._fast is not None
        assert [(await limiter.hit("k")).allowed for _ in range(3)] == [True, True, False]
        assert (await limiter.peek("k")).remaining == 0


class TestTheFlowFreePath:
    @PINNED
    @given(script=steps)
    def test_multi_limit_decisions_equal_the_flow(
        self, script: list[tuple[str, str, float, int]]
    ) -> None:
        """Several limits over a memory store skip the flow and still decide as it does."""
        clock = FakeClock(1_000_000.0)

        def limits() -> list[Algorithm]:
            return [
                SlidingWindow(5, 10, name="s"),
                TokenBucket(5, 1, name="t"),
                FixedWindow(8, 30, name="f"),
            ]

        memory = MemoryStore(clock=clock)
        direct = RateLimiter(limits(), memory, clock=clock)
        flow = RateLimiter(limits(), _EvaluateOnly(MemoryStore(clock=clock)), clock=clock)
        assert direct._memory is memory and direct._fast is None and flow._memory is None
        play(script, [direct, flow], clock, lambda: None)
        assert direct.hit("a") == drive(flow._evaluate_flow("a", 1, False), flow.store)

    @PINNED
    @given(script=steps)
    def test_the_memory_store_equals_apply_requests(
        self, script: list[tuple[str, str, float, int]]
    ) -> None:
        """The store's own evaluate (logs changed in place) matches the pure reference."""
        clock = FakeClock(1_000_000.0)

        def limits() -> list[Algorithm]:
            return [SlidingWindow(5, 10, name="s"), SlidingWindow(7, 30, name="l")]

        memory, reference = MemoryStore(clock=clock), DictStore()
        ours = RateLimiter(limits(), memory, clock=clock)
        theirs = RateLimiter(limits(), reference, clock=clock)
        for i, (operation, key, delay, cost) in enumerate(script):
            if operation == "reset" and i % 2:  # sometimes give units back instead
                clock.advance(max(delay, 0))
                ours._release(key, cost)
                theirs._release(key, cost)
                continue
            play([(operation, key, delay, cost)], [ours, theirs], clock, lambda: None)
            assert live_states(memory, clock()) == live_states(reference, clock())


class TestSlidingLogInPlace:
    def test_a_hit_changes_the_log_in_place(self) -> None:
        """The exact window's log is one array per key, appended to, never copied."""
        clock = FakeClock(100.0)
        store = MemoryStore(clock=clock)
        limiter = RateLimiter(SlidingWindow(1000, 10), store, clock=clock)
        limiter.hit("k")
        (key,) = store._data
        log = store._data[key][1]
        for _ in range(25):
            clock.advance(1)
            limiter.hit("k")
        _, stored, head = store._data[key]
        assert stored is log and type(log) is array
        assert list(log[head:]) == [float(t) for t in range(116, 126)]  # 100..115 have left
        assert head <= len(log) - head  # the dropped prefix never outgrows the live part

    @pytest.mark.parametrize(("limit", "step"), [(50, 0.13), (1_000, 0.007), (40, 0.5)])
    def test_long_logs_match_the_transition(self, limit: int, step: float) -> None:
        """Thousands of hits on full logs (heads far along, compactions): same as the reference."""
        clock = FakeClock(1_000_000.0)
        memory, reference = MemoryStore(clock=clock), DictStore()
        fast = RateLimiter(SlidingWindow(limit, 10), memory, clock=clock)
        slow = RateLimiter(SlidingWindow(limit, 10), reference, clock=clock)
        for i in range(4_000):
            clock.advance(step * (3 if i % 97 == 0 else 1))
            cost = 1 if i % 5 else 3
            assert fast.hit("k", cost) == slow.hit("k", cost)
        assert live_states(memory, clock()) == live_states(reference, clock())

    def test_an_entry_one_window_old_has_left(self) -> None:
        """At exactly t + window the admission made at t no longer counts."""
        clock = FakeClock(100.0)
        limiter = RateLimiter(SlidingWindow(2, 10), clock=clock)
        assert limiter.hit("k").allowed
        clock.set(105.0)
        assert limiter.hit("k").allowed
        clock.set(110.0)
        assert limiter.hit("k").remaining == 0
        assert not limiter.hit("k").allowed

    def test_the_clock_stepping_back_keeps_the_log_sorted(self) -> None:
        """Admissions at 100, 104 then 102 are stored in order, as the transition does."""
        clock = FakeClock(100.0)
        store = MemoryStore(clock=clock)
        limiter = RateLimiter(SlidingWindow(3, 10), store, clock=clock)
        for t in (100.0, 104.0, 102.0):
            clock.set(t)
            assert limiter.hit("k").allowed
        (entry,) = store._data.values()
        assert tuple(entry[1][entry[2] :]) == (100.0, 102.0, 104.0)
        clock.set(103.0)
        assert limiter.hit("k").retry_after == pytest.approx(7.0)


class TestSweeping:
    def test_every_key_sits_once_in_the_ring(self) -> None:
        """After hits, clears, expiries and sweeps the ring holds exactly the store's keys."""
        clock = FakeClock(0)
        store = MemoryStore(max_keys=64, clock=clock)
        limiter = RateLimiter(TokenBucket(3, 1), store, clock=clock)
        for i in range(2_000):
            limiter.hit(f"k{i % 97}")
            if i % 7 == 0:
                limiter.reset(f"k{i % 13}")
            clock.advance(0.05)
        assert sorted(store._ring) == sorted(store._data)
        assert len(store) <= 64

    def test_a_new_key_sweeps_a_bounded_slice(self) -> None:
        """One slice looks at 32 keys of the ring, however many the store holds."""
        clock = FakeClock(0)
        store = MemoryStore(max_keys=1_000_000, clock=clock)
        limiter = RateLimiter(FixedWindow(5, 10), store, clock=clock)
        for i in range(10_000):
            limiter.hit(f"old-{i}")
        clock.advance(20)  # every old key's debt has cleared
        before, added = len(store), 0
        while store._sweep_every != MemoryStore._SWEEP_EVERY:  # until the first slice ran
            limiter.hit(f"new-{added}")
            added += 1
        assert added <= MemoryStore._SWEEP_EVERY_MAX
        assert before + added - len(store) == MemoryStore._SWEEP_SLICE

    def test_the_sweep_backs_off_while_nothing_clears_and_resumes_when_it_does(self) -> None:
        """Slices that find only debtors come ever more rarely; one that evicts resets the pace."""
        clock = FakeClock(0)
        store = MemoryStore(clock=clock)
        limiter = RateLimiter(FixedWindow(5, 10), store, clock=clock)
        for i in range(20_000):
            limiter.hit(f"live-{i}")
        assert store._sweep_every == MemoryStore._SWEEP_EVERY_MAX
        clock.advance(20)  # every key's debt has cleared
        for i in range(MemoryStore._SWEEP_EVERY_MAX):
            limiter.hit(f"new-{i}")
        assert store._sweep_every == MemoryStore._SWEEP_EVERY
        before = len(store)
        for i in range(4_096):
            limiter.hit(f"more-{i}")
        assert len(store) <= before - 4_096  # two evicted per new key again

    def test_keys_without_debt_all_go_as_new_keys_come(self) -> None:
        """Expired keys are evicted while the store is far from full."""
        clock = FakeClock(0)
        store = MemoryStore(clock=clock)
        limiter = RateLimiter(FixedWindow(5, 10), store, clock=clock)
        for i in range(3_000):
            limiter.hit(f"old-{i}")
        clock.advance(20)
        for i in range(3_000):
            limiter.hit(f"new-{i}")
        assert not any("old-" in key for key in store._data)

    def test_a_cleared_key_is_fresh_and_swept_like_any(self) -> None:
        """reset() forgets the key at once; the sweep evicts its entry later."""
        clock = FakeClock(0)
        store = MemoryStore(clock=clock)
        limiter = RateLimiter(FixedWindow(1, 3600), store, clock=clock)
        assert limiter.hit("k").allowed and not limiter.hit("k").allowed
        limiter.reset("k")
        assert limiter.peek("k").remaining == 1
        for i in range(64):
            limiter.hit(f"new-{i}")
        assert not any("{k}" in key for key in store._data)
        assert limiter.hit("k").allowed

    def test_threads_keep_the_ring_and_the_bound(self) -> None:
        """Four threads adding keys while the clock moves: ring and store agree, bound held."""
        clock = FakeClock(0)
        store = MemoryStore(max_keys=500, clock=clock)
        limiter = RateLimiter(TokenBucket(2, 1), store, clock=clock)
        barrier = threading.Barrier(4)

        def worker(n: int) -> None:
            barrier.wait()
            for i in range(3_000):
                limiter.hit(f"{n}-{i % 700}")
                if i % 50 == 0:
                    clock.advance(0.5)

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(store._ring) == sorted(store._data)
        assert len(store) <= 500 + 4


class TestNewKeyRaces:
    @pytest.mark.parametrize("kind", sorted(ALGORITHMS))
    def test_two_first_hits_on_one_new_key_never_deadlock(self, kind: str) -> None:
        """A first hit whose new key another hit writes meanwhile (between its read and its
        write) finishes, counted once each, instead of waiting forever on its own lock."""
        clock = FakeClock(1000.0)
        store = MemoryStore(clock=clock)
        limiter = RateLimiter(ALGORITHMS[kind](), store, clock=clock)
        raced: list[Decision] = []
        armed: list[bool] = []

        class Racing(dict[str, Any]):
            """The store's dict: the first size check once armed lets another first hit in."""

            def __len__(self) -> int:
                if armed:
                    armed.clear()
                    raced.append(limiter.hit("new"))
                return super().__len__()

        store._data = Racing()
        limiter = RateLimiter(ALGORITHMS[kind](), store, clock=clock)
        armed.append(True)
        assert limiter._fast is not None
        decisions: list[Decision] = []
        thread = threading.Thread(target=lambda: decisions.append(limiter.hit("new")), daemon=True)
        thread.start()
        thread.join(timeout=5)
        assert not thread.is_alive(), "the racing first hit deadlocked on its stripe lock"
        assert raced[0].allowed and decisions[0].allowed
        assert decisions[0].remaining == raced[0].remaining - 1
