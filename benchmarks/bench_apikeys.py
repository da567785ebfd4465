"""API key authentication: apisec vs the floor, and store throughput.

Run:  python benchmarks/bench_apikeys.py [--quick] [--json PATH]

The floor is the least any hashed-key check does: SHA-256 of the key, a dict
lookup by hash and one `hmac.compare_digest`. apisec additionally checks the
key's format and checksum, expiry and revocation, and throttles last-used
updates. 1,000 keys, authenticated in rotation; medians of interleaved
rounds. SQLite (WAL, a file in a temporary directory) and Redis (a throw-away
redis-server on loopback) are reported as authentications per second.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from itertools import cycle
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import redis

from apisec.apikeys import ApiKeyService, MemoryApiKeyStore, SQLiteApiKeyStore
from apisec.apikeys.redis import RedisApiKeyStore
from benchmarks._results import Results
from tests.support.redis_server import RedisServer


def timed(fn: Callable[[str], object], keys: list[str], number: int) -> float:
    feed = cycle(keys)
    fn(next(feed))
    start = time.perf_counter()
    for _ in range(number):
        fn(next(feed))
    return (time.perf_counter() - start) / number


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    args = parser.parse_args()
    rounds, number = (3, 5_000) if args.quick else (9, 50_000)
    results = Results("apikeys", ("redis",), quick=args.quick)
    print(f"python {sys.version.split()[0]}, {time.strftime('%Y-%m-%d %H:%M:%S')}")

    service = ApiKeyService(MemoryApiKeyStore())
    keys = [service.create(f"acct{i}").plaintext for i in range(1_000)]
    table = {hashlib.sha256(k.encode()).hexdigest(): k for k in keys}

    def floor(key: str) -> bool:
        digest = hashlib.sha256(key.encode()).hexdigest()
        stored = table.get(digest)
        return stored is not None and hmac.compare_digest(digest, digest)

    samples: dict[str, list[float]] = {"apisec authenticate (memory)": [], "floor": []}
    for _ in range(rounds):
        samples["apisec authenticate (memory)"].append(timed(service.authenticate, keys, number))
        samples["floor"].append(timed(floor, keys, number))
    ours, base = (statistics.median(samples[n]) for n in samples)
    print("\nIn memory, one authentication (1,000 keys)")
    print(f"  apisec authenticate   {ours * 1e6:7.2f} us   {ours / base:5.2f}x floor")
    print(f"  floor (sha256+dict+compare_digest) {base * 1e6:7.2f} us")
    floor_name = "floor (sha256 + dict + compare_digest)"
    results.comparison(
        "memory",
        "In memory, one authentication (1,000 keys)",
        {"apisec authenticate (memory)": ours, floor_name: base},
        baseline=floor_name,
        ours=["apisec authenticate (memory)"],
        headline=[("apisec authenticate (memory)", floor_name)],
    )
    throughput: list[list[object]] = []

    print("\nStore throughput, authenticate() on one thread")
    with tempfile.TemporaryDirectory() as tmp:
        sqlite = SQLiteApiKeyStore(Path(tmp) / "keys.db")
        sq_service = ApiKeyService(sqlite)
        sq_keys = [sq_service.create(f"acct{i}").plaintext for i in range(1_000)]
        per = statistics.median(
            timed(sq_service.authenticate, sq_keys, number // 5) for _ in range(3)
        )
        print(f"  SQLite (WAL)          {1 / per:10,.0f} auth/s   ({per * 1e6:.1f} us each)")
        throughput.append(["SQLite (WAL, a local file)", round(1 / per), round(per * 1e6, 1)])
        sqlite.close()
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    with RedisServer(binary) as server:
        client = redis.Redis(host=server.host, port=server.port)
        rd_service = ApiKeyService(RedisApiKeyStore(client))
        rd_keys = [rd_service.create(f"acct{i}").plaintext for i in range(1_000)]
        per = statistics.median(
            timed(rd_service.authenticate, rd_keys, number // 25) for _ in range(3)
        )
        print(f"  Redis (loopback)      {1 / per:10,.0f} auth/s   ({per * 1e6:.1f} us each)")
        throughput.append(["Redis (loopback)", round(1 / per), round(per * 1e6, 1)])
        results.version("redis-server", str(client.info("server")["redis_version"]))
        client.close()
    results.table(
        "stores",
        "Store throughput, authenticate() on one thread",
        ["store", "authentications/s", "µs each"],
        throughput,
    )
    results.write(args.json)


if __name__ == "__main__":
    main()
