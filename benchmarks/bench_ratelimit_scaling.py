"""Rate limiting at scale: apisec vs `limits` as stores, limits and clients grow.

Run:  python benchmarks/bench_ratelimit_scaling.py [--quick] [--no-redis] [--json PATH]

Five measurements side by side with `limits`, medians of interleaved rounds
(ratios are apisec / peer, lower is better). A hit on a new key in a memory
store already holding 10k, 100k or 1M keys. An exact sliding-window hit with
a nearly full log at a limit of 100, 1,000 and 10,000, against `limits`'
MovingWindow (both keep one entry per hit). Memory per key: Python heap per
key in the memory stores (tracemalloc), Redis ``MEMORY USAGE`` and
``used_memory`` growth per key. Redis throughput with 1, 4 and 16 concurrent
clients, as threads sharing one client and as asyncio tasks sharing one
``redis.asyncio`` client, each decision with what its headers need (`limits`:
``hit`` + ``get_window_stats``). Round trips and server commands per
operation on a real server: the client's sends, and ``INFO commandstats``
calls, those run inside scripts included.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import shutil
import statistics
import sys
import threading
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import redis
import redis.asyncio
from limits import (
    RateLimitItemPerHour,
    RateLimitItemPerMinute,
    storage,
    strategies,
)
from limits.aio import storage as aio_storage
from limits.aio import strategies as aio_strategies

from apisec.ratelimit import (
    AsyncRateLimiter,
    FixedWindow,
    MemoryStore,
    RateLimiter,
    SlidingWindow,
    TokenBucket,
)
from apisec.ratelimit.redis import AsyncRedisStore, RedisStore
from benchmarks._results import Results
from benchmarks.bench_redis_memory import client_key, measure
from tests.support.redis_server import RedisServer

HUGE = 10**9


def median_rounds(contenders: dict[str, Callable[[int], float]], rounds: int) -> dict[str, float]:
    """Each contender's median over interleaved rounds; a round returns seconds per call."""
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    for round_ in range(rounds):
        for name, run in contenders.items():
            samples[name].append(run(round_))
    return {name: statistics.median(values) for name, values in samples.items()}


def timed(fn: Callable[[str], object], keys: list[str]) -> float:
    start = time.perf_counter()
    for key in keys:
        fn(key)
    return (time.perf_counter() - start) / len(keys)


# --- new keys vs store size -----------------------------------------------------------


def new_keys(results: Results, sizes: list[int], rounds: int, number: int) -> None:
    apisec_line, limits_line = [], []
    print("\nA hit on a new key, by keys already in the memory store")
    for size in sizes:
        room = size + rounds * number + 1
        ours = RateLimiter(FixedWindow(HUGE, 3600), MemoryStore(max_keys=room))
        theirs = strategies.FixedWindowRateLimiter(storage.MemoryStorage())
        item = RateLimitItemPerHour(HUGE)
        for i in range(size):
            key = f"old-{i}"
            ours.hit(key)
            theirs.hit(item, key)
        gc.collect()

        def run_ours(round_: int, ours: RateLimiter = ours) -> float:
            return timed(ours.hit, [f"new-{round_}-{i}" for i in range(number)])

        def run_theirs(round_: int, theirs: Any = theirs, item: Any = item) -> float:
            keys = [f"new-{round_}-{i}" for i in range(number)]
            return timed(lambda key: theirs.hit(item, key), keys)  # noqa: B023 - called at once

        medians = median_rounds({"apisec": run_ours, "limits": run_theirs}, rounds)
        apisec_line.append(round(medians["apisec"] * 1e6, 3))
        limits_line.append(round(medians["limits"] * 1e6, 3))
        print(
            f"  {size:>9,} keys: apisec {medians['apisec'] * 1e6:6.2f} us, "
            f"limits {medians['limits'] * 1e6:6.2f} us "
            f"({medians['apisec'] / medians['limits']:.2f}x)"
        )
        del ours, theirs
        gc.collect()
    results.series(
        "new-key",
        "A hit on a new key by store size (memory stores)",
        x_label="keys already in the store",
        y_label="µs per hit",
        x=sizes,
        lines={"apisec FixedWindow + MemoryStore": apisec_line, "limits FixedWindow": limits_line},
        log_x=True,
    )
    rows: list[list[object]] = []
    for size, ours_us, theirs_us in zip(sizes[1:], apisec_line[1:], limits_line[1:], strict=True):
        previous = sizes[sizes.index(size) - 1]
        before = sizes.index(previous)
        rows.append(
            [
                f"{size:,} keys / {previous:,}",
                f"{ours_us / apisec_line[before]:.2f}x",
                f"{theirs_us / limits_line[before]:.2f}x",
            ]
        )
    results.table(
        "new-key-growth",
        "New-key cost as the memory store grows",
        ["store size", "apisec", "limits"],
        rows,
        note="Target: apisec at 1,000,000 keys within 1.5x of its cost at 100,000.",
    )


# --- exact sliding window vs limit ------------------------------------------------------


def sliding_limits(results: Results, limits_: list[int], rounds: int, keys: int) -> None:
    """Each key's log is filled to ``limit - per_key`` first; the timed hits fill it up."""
    per_key = 50
    apisec_line, limits_line = [], []
    print("\nExact sliding window, a hit with a nearly full log, by limit")
    for limit in limits_:
        ours = RateLimiter(SlidingWindow(limit, 3600), MemoryStore())
        backing = storage.MemoryStorage()
        theirs = strategies.MovingWindowRateLimiter(backing)
        item = RateLimitItemPerHour(limit)

        def names(round_: int, limit: int = limit) -> list[str]:
            return [f"sw-{limit}-{round_}-{k}" for k in range(keys)]

        def run_ours(round_: int, ours: RateLimiter = ours, limit: int = limit) -> float:
            for key in names(round_):
                ours.hit(key, limit - per_key)
            elapsed = timed(ours.hit, names(round_) * per_key)
            for key in names(round_):
                ours.reset(key)
            return elapsed

        def run_theirs(
            round_: int, theirs: Any = theirs, item: Any = item, limit: int = limit
        ) -> float:
            for key in names(round_):
                theirs.hit(item, key, cost=limit - per_key)
            elapsed = timed(lambda key: theirs.hit(item, key), names(round_) * per_key)
            for key in names(round_):
                theirs.clear(item, key)
            return elapsed

        medians = median_rounds({"apisec": run_ours, "limits": run_theirs}, rounds)
        apisec_line.append(round(medians["apisec"] * 1e6, 3))
        limits_line.append(round(medians["limits"] * 1e6, 3))
        print(
            f"  limit {limit:>6,}: apisec {medians['apisec'] * 1e6:6.2f} us, "
            f"limits {medians['limits'] * 1e6:6.2f} us "
            f"({medians['apisec'] / medians['limits']:.2f}x)"
        )
        if limit == limits_[-1]:
            title = f"Exact sliding window at a limit of {limit:,}, nearly full log"
            ours_name = "apisec SlidingWindow + MemoryStore"
            peer = "limits MovingWindow + MemoryStorage"
            results.comparison(
                "sliding-full-log",
                title,
                {ours_name: medians["apisec"], peer: medians["limits"]},
                baseline=peer,
                ours=[ours_name],
                headline=[(ours_name, peer)],
                ratios=[
                    (
                        ours_name,
                        f"itself at a limit of {limits_[0]:,}",
                        apisec_line[-1] / apisec_line[0],
                        "flatness: cost at the largest limit / at the smallest",
                    )
                ],
            )
    results.series(
        "sliding-by-limit",
        "Exact sliding window: a hit with a nearly full log, by limit",
        x_label="limit (entries in the log)",
        y_label="µs per hit",
        x=limits_,
        lines={
            "apisec SlidingWindow + MemoryStore": apisec_line,
            "limits MovingWindow + MemoryStorage": limits_line,
        },
        log_x=True,
    )


# --- memory per key ---------------------------------------------------------------------


def heap_per_key(fill: Callable[[int], object], n: int) -> float:
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for i in range(n):
        fill(i)
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return (after - before) / n


def memory_per_key(n: int) -> list[list[object]]:
    rows: list[list[object]] = []
    contenders: dict[str, Callable[[], Callable[[int], object]]] = {
        "apisec FixedWindow": lambda: RateLimiter(FixedWindow(100, 3600)).hit,
        "apisec TokenBucket": lambda: RateLimiter(TokenBucket(100, 1 / 36)).hit,
        "apisec SlidingWindow, 1 hit": lambda: RateLimiter(SlidingWindow(100, 3600)).hit,
    }
    for name, make in contenders.items():
        hit = make()
        fill: Callable[[int], object] = lambda i, hit=hit: hit(client_key(i))  # noqa: E731
        rows.append([f"{name} (memory)", round(heap_per_key(fill, n))])
    fixed = strategies.FixedWindowRateLimiter(storage.MemoryStorage())
    moving = strategies.MovingWindowRateLimiter(storage.MemoryStorage())
    item = RateLimitItemPerHour(100)
    rows.append(
        [
            "limits FixedWindow (memory)",
            round(heap_per_key(lambda i: fixed.hit(item, client_key(i)), n)),
        ]
    )
    rows.append(
        [
            "limits MovingWindow, 1 hit (memory)",
            round(heap_per_key(lambda i: moving.hit(item, client_key(i)), n)),
        ]
    )
    return rows


def redis_memory_per_key(client: redis.Redis, url: str, n: int) -> list[list[object]]:
    ours = RateLimiter(FixedWindow(100, 3600), RedisStore(client))
    bucket = RateLimiter(TokenBucket(100, 1 / 36), RedisStore(client))
    theirs = strategies.FixedWindowRateLimiter(storage.RedisStorage(url))
    moving = strategies.MovingWindowRateLimiter(storage.RedisStorage(url))
    item = RateLimitItemPerHour(100)
    fills: dict[str, Callable[[int], object]] = {
        "apisec FixedWindow (Redis)": lambda i: ours.hit(client_key(i)),
        "apisec TokenBucket (Redis)": lambda i: bucket.hit(client_key(i)),
        "limits FixedWindow (Redis)": lambda i: theirs.hit(item, client_key(i)),
        "limits MovingWindow, 1 hit (Redis)": lambda i: moving.hit(item, client_key(i)),
    }
    rows: list[list[object]] = []
    for name, fill in fills.items():
        usage, used, _ = measure(client, n, fill)
        rows.append([name, round(usage), round(used)])
    return rows


# --- Redis throughput -------------------------------------------------------------------


def thread_throughput(op: Callable[[str], object], clients: int, seconds: float) -> float:
    stop = threading.Event()
    counts = [0] * clients

    def worker(index: int) -> None:
        done = 0
        while not stop.is_set():
            op(f"t{index}-{done % 100}")
            done += 1
        counts[index] = done

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    time.sleep(seconds)
    stop.set()
    for thread in threads:
        thread.join()
    return sum(counts) / seconds


def task_throughput(op: Callable[[str], Awaitable[object]], clients: int, seconds: float) -> float:
    async def main() -> float:
        counts = [0] * clients
        deadline = time.perf_counter() + seconds

        async def worker(index: int) -> None:
            done = 0
            while time.perf_counter() < deadline:
                await op(f"a{index}-{done % 100}")
                done += 1
            counts[index] = done

        await asyncio.gather(*(worker(i) for i in range(clients)))
        return sum(counts) / seconds

    return asyncio.run(main())


def throughput(
    results: Results, url: str, host: str, port: int, seconds: float, rounds: int
) -> None:
    counts = [1, 4, 16]
    pool = redis.ConnectionPool(host=host, port=port, max_connections=64)
    client = redis.Redis(connection_pool=pool)
    ours = RateLimiter(FixedWindow(HUGE, 60), RedisStore(client))
    theirs = strategies.FixedWindowRateLimiter(storage.RedisStorage(url, max_connections=64))
    item = RateLimitItemPerMinute(HUGE)

    def limits_sync(key: str) -> object:
        theirs.hit(item, key)
        return theirs.get_window_stats(item, key)

    sync_ops: dict[str, Callable[[str], object]] = {
        "apisec, threads": lambda key: ours.hit(key).headers,
        "limits, threads": limits_sync,
    }
    lines: dict[str, list[float]] = {name: [] for name in sync_ops}
    lines.update({"apisec, asyncio": [], "limits, asyncio": []})
    for count in counts:
        samples: dict[str, list[float]] = {name: [] for name in lines}
        for _ in range(rounds):
            for name, op in sync_ops.items():
                samples[name].append(thread_throughput(op, count, seconds))
            samples["apisec, asyncio"].append(_async_apisec(host, port, count, seconds))
            samples["limits, asyncio"].append(_async_limits(url, count, seconds))
        for name, values in samples.items():
            lines[name].append(round(statistics.median(values)))
        print(f"  {count:>2} clients: " + ", ".join(f"{n} {lines[n][-1]:,}/s" for n in lines))
    client.close()
    results.series(
        "redis-throughput",
        "Redis: decisions with headers per second, by concurrent clients",
        x_label="concurrent clients",
        y_label="decisions per second",
        x=counts,
        lines=lines,
        log_x=True,
    )


def _async_apisec(host: str, port: int, clients: int, seconds: float) -> float:
    holder: dict[str, Any] = {}

    async def op(key: str) -> object:
        limiter = holder.get("limiter")
        if limiter is None:
            client = redis.asyncio.Redis(host=host, port=port, max_connections=64)
            limiter = holder["limiter"] = AsyncRateLimiter(
                FixedWindow(HUGE, 60), AsyncRedisStore(client)
            )
        return (await limiter.hit(key)).headers

    return task_throughput(op, clients, seconds)


def _async_limits(url: str, clients: int, seconds: float) -> float:
    holder: dict[str, Any] = {}
    item = RateLimitItemPerMinute(HUGE)

    async def op(key: str) -> object:
        limiter = holder.get("limiter")
        if limiter is None:
            backing = aio_storage.RedisStorage(
                "async+" + url, implementation="redispy", max_connections=64
            )
            limiter = holder["limiter"] = aio_strategies.FixedWindowRateLimiter(backing)
        await limiter.hit(item, key)
        return await limiter.get_window_stats(item, key)

    return task_throughput(op, clients, seconds)


# --- round trips ------------------------------------------------------------------------


def round_trips(client: redis.Redis, url: str) -> list[list[object]]:
    """Client sends and server commands (in-script ones included) per operation."""
    sends = [0]
    original = redis.connection.Connection.send_packed_command

    def counting(self: Any, command: Any, check_health: bool = True) -> None:
        sends[0] += 1
        original(self, command, check_health)

    def server_calls() -> int:
        stats = client.info("commandstats")
        return sum(int(s["calls"]) for s in stats.values())

    def count(op: Callable[[], object], n: int = 20) -> tuple[float, float]:
        op()  # scripts loaded, connections made
        calls_before = server_calls()
        redis.connection.Connection.send_packed_command = counting  # type: ignore[method-assign]
        try:
            sends[0] = 0
            for _ in range(n):
                op()
            sent = sends[0]
        finally:
            redis.connection.Connection.send_packed_command = original  # type: ignore[method-assign]
        # The INFO call that reads the counters counts itself once.
        return sent / n, (server_calls() - calls_before - 1) / n

    ours = RateLimiter(FixedWindow(HUGE, 60), RedisStore(client))
    two = RateLimiter(
        [TokenBucket(HUGE, 1000, name="burst"), FixedWindow(HUGE, 3600, name="hourly")],
        RedisStore(client),
    )
    exact = RateLimiter(SlidingWindow(HUGE, 60), RedisStore(client))
    fixed = strategies.FixedWindowRateLimiter(storage.RedisStorage(url))
    moving = strategies.MovingWindowRateLimiter(storage.RedisStorage(url))
    item = RateLimitItemPerMinute(HUGE)
    hour = RateLimitItemPerHour(HUGE)
    ops: dict[str, Callable[[], object]] = {
        "apisec FixedWindow hit + headers": lambda: ours.hit("k").headers,
        "apisec FixedWindow peek": lambda: ours.peek("k"),
        "apisec two limits hit + headers": lambda: two.hit("k2").headers,
        "apisec SlidingWindow hit + headers": lambda: exact.hit("s").headers,
        "limits FixedWindow hit": lambda: fixed.hit(item, "k"),
        "limits FixedWindow hit + get_window_stats": lambda: (
            fixed.hit(item, "k"),
            fixed.get_window_stats(item, "k"),
        ),
        "limits FixedWindow test (peek)": lambda: fixed.test(item, "k"),
        "limits two limits hit + get_window_stats": lambda: (
            fixed.hit(item, "k2"),
            fixed.hit(hour, "k2"),
            fixed.get_window_stats(item, "k2"),
            fixed.get_window_stats(hour, "k2"),
        ),
        "limits MovingWindow hit + get_window_stats": lambda: (
            moving.hit(item, "m"),
            moving.get_window_stats(item, "m"),
        ),
    }
    rows: list[list[object]] = []
    for name, op in ops.items():
        sent, calls = count(op)
        rows.append([name, round(sent, 2), round(calls, 2)])
    return rows


def on_redis(results: Results, quick: bool) -> None:
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    with RedisServer(binary) as server:
        client = redis.Redis(host=server.host, port=server.port)
        results.version("redis-server", str(client.info("server")["redis_version"]))
        print("\nRedis: round trips and server commands per operation")
        trips = round_trips(client, server.url)
        for row in trips:
            print(f"  {row[0]:<46} {row[1]!s:>5} round trips {row[2]!s:>6} commands")
        results.table(
            "round-trips",
            "Redis: round trips and server commands per operation",
            ["operation", "round trips", "server commands (in scripts too)"],
            trips,
            note=(
                "Round trips are the client's sends; server commands are INFO commandstats "
                "calls, commands run inside a Lua script included."
            ),
        )
        n = 1_000 if quick else 10_000
        print(f"\nRedis memory per key ({n:,} keys)")
        rows = redis_memory_per_key(client, server.url, n)
        for row in rows:
            print(f"  {row[0]:<40} {row[1]!s:>5} B MEMORY USAGE {row[2]!s:>5} B used_memory")
        results.table(
            "redis-memory-per-key",
            f"Redis memory per key, apisec vs limits ({n:,} keys)",
            ["store", "MEMORY USAGE per key (B)", "used_memory per key (B)"],
            rows,
        )
        client.flushall()
        print("\nRedis throughput, hit + headers, by concurrent clients")
        throughput(
            results,
            server.url,
            server.host,
            server.port,
            *((0.3, 1) if quick else (1.0, 3)),
        )
        client.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--no-redis", action="store_true")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    args = parser.parse_args()
    results = Results("ratelimit-scaling", ("limits", "redis"), quick=args.quick)
    print(f"python {sys.version.split()[0]}, {time.strftime('%Y-%m-%d %H:%M:%S')}")
    if args.quick:
        new_keys(results, [10_000, 100_000], 3, 2_000)
    else:
        new_keys(results, [10_000, 100_000, 1_000_000], 5, 8_000)
    sliding_limits(results, [100, 1_000, 10_000], *((3, 10) if args.quick else (7, 40)))
    n = 5_000 if args.quick else 50_000
    rows = memory_per_key(n)
    print(f"\nMemory per key in the memory stores ({n:,} keys)")
    for row in rows:
        print(f"  {row[0]:<40} {row[1]!s:>5} B")
    results.table(
        "memory-per-key",
        f"Memory stores: Python heap per key ({n:,} keys, tracemalloc)",
        ["store", "bytes per key"],
        rows,
        note="Keys of 15-16 characters; the store's key strings and entries are counted.",
    )
    if not args.no_redis:
        on_redis(results, args.quick)
    results.write(args.json)


if __name__ == "__main__":
    main()
