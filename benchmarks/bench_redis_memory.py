"""Redis memory: what one rate-limit key, refresh token, API key or webhook id costs.

Run:  python benchmarks/bench_redis_memory.py [--quick] [--json PATH]

A throw-away redis-server on loopback (started here, default configuration)
is filled through apisec's own Redis stores, N items at a time on an empty
database. Two numbers per item:

* ``MEMORY USAGE <key> SAMPLES 0`` summed over every key the items created,
  divided by N — what Redis attributes to the keys themselves;
* the growth of ``INFO memory`` ``used_memory`` divided by N — what the
  server really spent, including the keyspace's and the expiry table's
  entries (the number to size ``maxmemory`` with).

Rate-limit keys use the default prefix (``rl``) and 16-character client
keys; tokens, API keys and webhook ids use the stores' default prefixes.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import redis

from apisec.apikeys import ApiKeyService
from apisec.apikeys.redis import RedisApiKeyStore
from apisec.ratelimit import (
    Algorithm,
    FixedWindow,
    LeakyBucket,
    RateLimiter,
    SlidingWindow,
    SlidingWindowCounter,
    TokenBucket,
)
from apisec.ratelimit.redis import RedisStore
from apisec.tokens import SigningKey, TokenPair, TokenService
from apisec.tokens.redis import RedisRefreshTokenStore
from apisec.webhooks import WebhookSigner, WebhookVerifier, generate_secret
from apisec.webhooks.redis import RedisReplayGuard
from benchmarks._results import Results
from tests.support.redis_server import RedisServer

ISS, AUD = "https://auth.example.com", "https://api.example.com"


def client_key(i: int) -> str:
    return f"198.51.{i // 256 % 256:03d}.{i % 256:03d}"  # 15-16 characters, like an address


def measure(
    client: redis.Redis,
    n: int,
    fill: Callable[[int], object],
    setup: Callable[[int], object] | None = None,
) -> tuple[float, float, int]:
    """Bytes per item by MEMORY USAGE and by used_memory growth, and keys per item.

    ``setup`` runs first on the empty database (its keys are not counted).
    """
    client.flushall()
    time.sleep(0.2)  # let lazy freeing and the allocator settle
    if setup is not None:
        for i in range(n):
            setup(i)
    existing = set(client.scan_iter(count=1000))
    before = int(client.info("memory")["used_memory"])
    for i in range(n):
        fill(i)
    after = int(client.info("memory")["used_memory"])
    new = [key for key in client.scan_iter(count=1000) if key not in existing]
    usage = sum(int(client.memory_usage(key, samples=0) or 0) for key in new)
    return usage / n, (after - before) / n, round(len(new) / n)


def row(item: str, measured: tuple[float, float, int]) -> list[object]:
    usage, used, keys = measured
    return [item, keys, round(usage), round(used)]


def rate_limits(client: redis.Redis, n: int) -> list[list[object]]:
    # Rates slow enough that no state expires while the items are counted.
    algorithms: dict[str, Algorithm] = {
        "FixedWindow(100, 60)": FixedWindow(100, 60),
        "SlidingWindowCounter(100, 60)": SlidingWindowCounter(100, 60),
        "TokenBucket(100, 1/60)": TokenBucket(100, 1 / 60),
        "LeakyBucket(100, 1/60)": LeakyBucket(100, 1 / 60),
        "SlidingWindow(100, 60), one hit": SlidingWindow(100, 60),
    }
    rows: list[list[object]] = []
    for name, algorithm in algorithms.items():
        limiter = RateLimiter(algorithm, RedisStore(client))
        measured = measure(client, n, lambda i, limiter=limiter: limiter.hit(client_key(i)))
        rows.append(row(f"rate limit, {name}", measured))
    return rows


def sliding_log(client: redis.Redis, n: int, results: Results) -> list[list[object]]:
    """The exact sliding window keeps one sorted-set entry per admitted unit."""
    entries = [1, 10, 100, 1000]
    usage_line, used_line = [], []
    rows: list[list[object]] = []
    for count in entries:
        limiter = RateLimiter(SlidingWindow(10_000, 60), RedisStore(client))
        measured = measure(
            client,
            max(n // count, 20),
            lambda i, limiter=limiter, count=count: limiter.hit(client_key(i), cost=count),
        )
        usage_line.append(round(measured[0]))
        used_line.append(round(measured[1]))
        if count > 1:
            rows.append(row(f"rate limit, SlidingWindow, {count} hits in the window", measured))
    results.series(
        "sliding-window-memory",
        "Exact SlidingWindow on Redis: memory per key by hits in the window",
        x_label="hits in the window (sorted-set entries)",
        y_label="bytes per key",
        x=entries,
        lines={"MEMORY USAGE": usage_line, "used_memory growth": used_line},
        log_x=True,
        log_y=True,
    )
    return rows


def refresh_tokens(client: redis.Redis, n: int) -> list[list[object]]:
    store = RedisRefreshTokenStore(client)
    tokens = TokenService(SigningKey.hmac(b"m" * 32), issuer=ISS, audience=AUD, store=store)
    pairs: dict[int, TokenPair] = {}

    def login(i: int) -> None:
        pairs[i] = tokens.issue(f"user_{i:08d}", scope="orders:read orders:write")

    def rotate(i: int) -> None:
        pairs[i] = tokens.refresh(pairs[i].refresh_token)

    # A rotation rewrites the family's hash in place (its newest token and the one
    # before): a replay of any spent token is still recognised, at no extra key.
    return [
        row("refresh token, a new login (family, subject)", measure(client, n, login)),
        row(
            "refresh token, each rotation (rewrites the family)", measure(client, n, rotate, login)
        ),
    ]


def api_keys(client: redis.Redis, n: int) -> list[list[object]]:
    service = ApiKeyService(RedisApiKeyStore(client))
    measured = measure(client, n, lambda i: service.create(f"acct_{i:08d}", scopes=["orders:read"]))
    return [row("API key (record, hash index, owner set)", measured)]


def webhook_ids(client: redis.Redis, n: int) -> list[list[object]]:
    secret = generate_secret("standard")
    signer = WebhookSigner(secret)
    verifier = WebhookVerifier(secret, replay_guard=RedisReplayGuard(client))
    body = b'{"type":"invoice.paid"}'

    def deliver(i: int) -> None:
        verifier.verify(body, signer.sign(body, msg_id=f"msg_{i:024d}"))

    return [row("webhook replay guard, one delivery id", measure(client, n, deliver))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    args = parser.parse_args()
    n = 1_000 if args.quick else 10_000
    results = Results("redis-memory", ("redis",), quick=args.quick)
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    with RedisServer(binary) as server:
        client = redis.Redis(host=server.host, port=server.port)
        info = client.info("server")
        results.version("redis-server", str(info["redis_version"]))
        allocator = str(client.info("memory").get("mem_allocator", "?"))
        rate_limits(client, n // 10)  # warm-up: scripts loaded, tables grown once
        rows = [
            *rate_limits(client, n),
            *sliding_log(client, n, results),
            *refresh_tokens(client, n),
            *api_keys(client, n),
            *webhook_ids(client, n),
        ]
        client.close()
    columns = ["item", "keys per item", "MEMORY USAGE per item (B)", "used_memory per item (B)"]
    print(
        f"python {sys.version.split()[0]}, redis {info['redis_version']} ({allocator}), {n} items"
    )
    for row in rows:
        print(f"  {row[0]:<58} {row[1]!s:>3} keys {row[2]!s:>7} B {row[3]!s:>7} B")
    results.table(
        "per-item",
        f"Redis memory per item ({n:,} items each; redis-server {info['redis_version']}, "
        f"{allocator})",
        columns,
        rows,
        note=(
            "MEMORY USAGE (SAMPLES 0) is summed over the keys the items created; "
            "used_memory growth also counts the keyspace and expiry tables. "
            "Size maxmemory with the second, plus headroom."
        ),
    )
    results.write(args.json)


if __name__ == "__main__":
    main()
