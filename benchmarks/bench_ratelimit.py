"""Rate limiting: apisec vs `limits` vs `pyrate-limiter`, in memory and on Redis.

Run:  python benchmarks/bench_ratelimit.py [--quick] [--no-redis] [--json PATH]

In memory, every contender decides over 300 rotating keys with a limit high
enough never to deny. On Redis (a throw-away redis-server on loopback,
started here), apisec's hit() + headers() is compared with limits' hit() +
get_window_stats() (what a caller needs for the same headers) and with a raw
INCR round trip, the floor of any remote counter. Medians of interleaved
rounds; ratios are apisec / peer (lower is faster).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import time
from collections.abc import Callable
from itertools import cycle
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import redis
from limits import RateLimitItemPerMinute, storage, strategies
from pyrate_limiter import Duration, InMemoryBucket, Limiter, Rate
from redis._parsers import Encoder, _RESP2Parser
from redis.connection import PythonRespSerializer
from redis.utils import HIREDIS_AVAILABLE

from apisec.ratelimit import (
    FixedWindow,
    LeakyBucket,
    MemoryStore,
    RateLimiter,
    SlidingWindow,
    SlidingWindowCounter,
    TokenBucket,
)
from apisec.ratelimit.redis import RedisStore
from benchmarks._results import Results
from tests.support.redis_server import RedisServer

HUGE = 10**9
KEYS = [f"client-{i}" for i in range(300)]


def per_call(fn: Callable[[str], object], number: int) -> float:
    keys = cycle(KEYS)
    fn(next(keys))
    start = time.perf_counter()
    for _ in range(number):
        fn(next(keys))
    return (time.perf_counter() - start) / number


def compare(
    title: str, contenders: dict[str, Callable[[str], object]], base: str, rounds: int, number: int
) -> dict[str, float]:
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(rounds):
        for name, fn in contenders.items():
            samples[name].append(per_call(fn, number))
    medians = {name: statistics.median(s) for name, s in samples.items()}
    print(f"\n{title}")
    for name, value in medians.items():
        print(f"  {name:<34} {value * 1e6:8.2f} us   {value / medians[base]:5.2f}x {base}")
    return medians


def memory(results: Results, rounds: int, number: int) -> None:
    ours = {
        "apisec FixedWindow": RateLimiter(FixedWindow(HUGE, 60), MemoryStore()),
        "apisec SlidingWindow (exact)": RateLimiter(SlidingWindow(HUGE, 1), MemoryStore()),
        "apisec SlidingWindowCounter": RateLimiter(SlidingWindowCounter(HUGE, 60), MemoryStore()),
        "apisec TokenBucket": RateLimiter(TokenBucket(HUGE, 1000), MemoryStore()),
        "apisec LeakyBucket": RateLimiter(LeakyBucket(HUGE, 1000), MemoryStore()),
    }
    fixed = strategies.FixedWindowRateLimiter(storage.MemoryStorage())
    item = RateLimitItemPerMinute(HUGE)
    pyrate = Limiter(InMemoryBucket([Rate(HUGE, Duration.MINUTE)]))
    contenders: dict[str, Callable[[str], object]] = {
        name: limiter.hit for name, limiter in ours.items()
    }
    contenders["limits FixedWindow + MemoryStorage"] = lambda key: fixed.hit(item, key)
    contenders["pyrate-limiter InMemoryBucket"] = lambda key: pyrate.try_acquire(
        key, blocking=False
    )
    limits = "limits FixedWindow + MemoryStorage"
    title = "In memory, one decision (300 keys)"
    medians = compare(title, contenders, limits, rounds, number)
    pyrate_name = "pyrate-limiter InMemoryBucket"
    results.comparison(
        "memory",
        title,
        medians,
        baseline=limits,
        ours=list(ours),
        headline=[
            *((name, limits) for name in ours),
            ("apisec FixedWindow", pyrate_name),
            ("apisec TokenBucket", pyrate_name),
        ],
    )


def on_redis(results: Results, rounds: int, number: int) -> None:
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    with RedisServer(binary) as server:
        client = redis.Redis(host=server.host, port=server.port)
        results.version("redis-server", str(client.info("server")["redis_version"]))
        ours = RateLimiter(FixedWindow(HUGE, 60), RedisStore(client))
        ours_bucket = RateLimiter(TokenBucket(HUGE, 1000), RedisStore(client))
        fixed = strategies.FixedWindowRateLimiter(storage.RedisStorage(server.url))
        item = RateLimitItemPerMinute(HUGE)

        def limits_with_headers(key: str) -> object:
            fixed.hit(item, key)
            return fixed.get_window_stats(item, key)

        contenders: dict[str, Callable[[str], object]] = {
            "apisec FixedWindow hit+headers": lambda key: ours.hit(key).headers,
            "apisec TokenBucket hit+headers": lambda key: ours_bucket.hit(key).headers,
            "limits hit+get_window_stats": limits_with_headers,
            "raw INCR (floor)": client.incr,
        }
        title = "Redis on loopback, one decision with its headers"
        limits = "limits hit+get_window_stats"
        medians = compare(title, contenders, limits, rounds, number)
        ours_names = ["apisec FixedWindow hit+headers", "apisec TokenBucket hit+headers"]
        results.comparison(
            "redis",
            title,
            medians,
            baseline=limits,
            ours=ours_names,
            headline=[(name, limits) for name in ours_names],
        )
        floor = {
            "apisec FixedWindow hit+headers": contenders["apisec FixedWindow hit+headers"],
            "raw INCR (floor)": contenders["raw INCR (floor)"],
        }
        headline = [("apisec FixedWindow hit+headers", "raw INCR (floor)")]
        python = pure_python_client(server)
        if python is not None:
            # The same pair on a client without hiredis (redis-py uses hiredis when
            # installed), to decide whether the redis extra should pull it in.
            slow = RateLimiter(FixedWindow(HUGE, 60), RedisStore(python))
            floor["apisec FixedWindow hit+headers, no hiredis"] = lambda key: slow.hit(key).headers
            floor["raw INCR, no hiredis"] = python.incr
            headline += [
                ("apisec FixedWindow hit+headers, no hiredis", "raw INCR, no hiredis"),
                ("apisec FixedWindow hit+headers", "apisec FixedWindow hit+headers, no hiredis"),
            ]
        title = "Redis, apisec against the INCR floor"
        medians = compare(title, floor, "raw INCR (floor)", rounds, number)
        results.comparison(
            "redis-floor",
            title,
            medians,
            baseline="raw INCR (floor)",
            ours=[name for name in floor if name.startswith("apisec")],
            headline=headline,
            note=(
                f"The default client {'uses' if HIREDIS_AVAILABLE else 'does not use'} hiredis"
                + (
                    "; the 'no hiredis' rows use redis-py's pure-Python parser and packer."
                    if python is not None
                    else "."
                )
            ),
        )
        client.close()


def pure_python_client(server: RedisServer) -> redis.Redis | None:
    """A client on redis-py's pure-Python parser and packer, or None without hiredis."""
    if not HIREDIS_AVAILABLE:
        return None
    encoder = Encoder("utf-8", "strict", decode_responses=False)
    pool = redis.ConnectionPool(
        host=server.host,
        port=server.port,
        parser_class=_RESP2Parser,
        command_packer=PythonRespSerializer(6000, encoder.encode),
    )
    return redis.Redis(connection_pool=pool)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--no-redis", action="store_true")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    args = parser.parse_args()
    results = Results(
        "ratelimit", ("limits", "pyrate-limiter", "redis", "hiredis"), quick=args.quick
    )
    print(f"python {sys.version.split()[0]}, {time.strftime('%Y-%m-%d %H:%M:%S')}")
    memory(results, *((3, 3_000) if args.quick else (9, 30_000)))
    if not args.no_redis:
        on_redis(results, *((3, 500) if args.quick else (7, 4_000)))
    results.write(args.json)


if __name__ == "__main__":
    main()
