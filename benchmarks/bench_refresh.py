"""Refresh-token rotation: cost by store fill (memory and Redis), round trips, space per session.

Run:  python benchmarks/bench_refresh.py [--quick] [--json PATH]

Memory stores with `max_tokens` = 100,000 are filled to 1%, 50%, 99% and
100% of the bound with other sessions, then one session is rotated again and
again (`TokenService.refresh`, HS256 access tokens, and the store's own part:
`consume` + `add`) and new sessions are logged in (`issue`: at the bound
each one evicts a family). Fill levels are interleaved over rounds; medians
are reported with their ratio to the 1% store (the target: rotation at the
bound at most 2x rotation far below it). The same rotation is timed over
`RedisRefreshTokenStore` on a throw-away redis-server (loopback), one
database per fill level. On that server, round trips per operation are
counted by the client and by the server (`tests/support/roundtrips.py`):
refresh rotation, login, logout, and API-key authentication. Last,
`MEMORY USAGE` of one session's keys after 1 ... 1,000 rotations: a session
keeps one family hash, whatever its age.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import heapq
import secrets
import shutil
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import redis

from apisec.apikeys import ApiKeyService, AsyncApiKeyService
from apisec.apikeys.redis import AsyncRedisApiKeyStore, RedisApiKeyStore
from apisec.testing import FakeClock
from apisec.tokens import (
    AsyncTokenService,
    MemoryRefreshTokenStore,
    RefreshRecord,
    SigningKey,
    TokenService,
)
from apisec.tokens._service import _family_id
from apisec.tokens.redis import AsyncRedisRefreshTokenStore, RedisRefreshTokenStore
from benchmarks._results import Results, machine
from tests.support.redis_server import RedisServer
from tests.support.roundtrips import CountingClient, Trips

ISS, AUD = "https://auth.example.com", "https://api.example.com"
KEY = SigningKey.hmac(b"k" * 32, kid="k")
BOUND = 100_000
FILLS = [1_000, 50_000, 99_000, BOUND]
TTL = 14 * 24 * 3600.0


def expiry(now: float, i: int) -> float:
    """Expiries spread over the lifetime, as real sessions refresh at different times."""
    return now + TTL * (0.5 + (i % 997) / 1994)


class Level:
    """One memory store filled to ``fill`` sessions, a service over it and a live session."""

    def __init__(self, fill: int) -> None:
        self.fill = fill
        self.clock = FakeClock(1_700_000_000)
        self.store = MemoryRefreshTokenStore(clock=self.clock, max_tokens=BOUND)
        now = self.clock()
        for i in range(fill - 1):
            self.store.add(
                RefreshRecord(
                    token_hash=hashlib.sha256(i.to_bytes(8, "big")).hexdigest(),
                    family_id=f"f{i}",
                    subject=f"user{i % 5000}",
                    expires_at=expiry(now, i),
                )
            )
        self.service = TokenService(
            KEY, issuer=ISS, audience=AUD, store=self.store, clock=self.clock, refresh_ttl=TTL
        )
        self.token = self.service.issue("alice").refresh_token
        self.family = _family_id(self.token[4:26])

    def rotate(self, number: int) -> float:
        """Seconds per TokenService.refresh of the live session."""
        token, refresh = self.token, self.service.refresh
        start = time.perf_counter()
        for _ in range(number):
            token = refresh(token).refresh_token
        self.token = token
        return (time.perf_counter() - start) / number

    def store_rotate(self, number: int) -> float:
        """Seconds per consume + add of the live session, the store's part of a rotation."""
        store, family, clock = self.store, self.family, self.clock
        current = hashlib.sha256(self.token.encode()).hexdigest()
        records = [
            RefreshRecord(
                token_hash=secrets.token_hex(32),
                family_id=family,
                subject="alice",
                expires_at=clock() + TTL,
            )
            for _ in range(number)
        ]
        now = clock()
        start = time.perf_counter()
        for record in records:
            store.consume(family, current, now)
            store.add(record)
            current = record.token_hash
        elapsed = (time.perf_counter() - start) / number
        # Hand the session back to the service: a new login (one more family).
        self.token = self.service.issue("alice").refresh_token
        self.family = _family_id(self.token[4:26])
        return elapsed

    def login(self, number: int) -> float:
        """Seconds per TokenService.issue: a new session (at the bound, one is evicted).

        The new sessions are revoked afterwards, so at the bound the next logins
        evict them, not the filling sessions.
        """
        issue = self.service.issue
        start = time.perf_counter()
        tokens = [issue("new").refresh_token for _ in range(number)]
        elapsed = (time.perf_counter() - start) / number
        self.service.revoke_subject("new")
        del tokens
        return elapsed


class RedisLevel:
    """A Redis database filled with ``fill`` sessions and a live session over it."""

    def __init__(self, server: RedisServer, db: int, fill: int) -> None:
        self.fill = fill
        self.client = redis.Redis(host=server.host, port=server.port, db=db)
        self.client.flushdb()
        store = RedisRefreshTokenStore(self.client)
        now = time.time()
        pipe = self.client.pipeline(transaction=False)
        for i in range(fill - 1):
            name = store._keys.family(f"f{i}")
            pipe.hset(
                name,
                mapping={
                    "sub": f"user{i % 5000}",
                    "claims": "{}",
                    "revoked": "0",
                    "cur": hashlib.sha256(i.to_bytes(8, "big")).hexdigest(),
                    "exp": int(expiry(now, i) * 1000),
                },
            )
            pipe.pexpire(name, int((expiry(now, i) - now) * 1000))
            if i % 5_000 == 4_999:
                pipe.execute()
        pipe.execute()
        self.service = TokenService(KEY, issuer=ISS, audience=AUD, store=store, refresh_ttl=TTL)
        self.token = self.service.issue("alice").refresh_token

    def rotate(self, number: int) -> float:
        token, refresh = self.token, self.service.refresh
        start = time.perf_counter()
        for _ in range(number):
            token = refresh(token).refresh_token
        self.token = token
        return (time.perf_counter() - start) / number


def round_trips(server: RedisServer) -> list[list[object]]:
    """Round trips per operation, counted by the client and by the server."""
    client = CountingClient(server.host, server.port)
    rows: list[list[object]] = []

    def count(operation: str, call: Callable[[], Any]) -> Any:
        with Trips(client) as trips:
            result = call()
        rows.append([operation, trips.client_side, trips.server_side])
        return result

    try:
        clock = FakeClock(time.time())
        tokens = TokenService(
            KEY, issuer=ISS, audience=AUD, store=RedisRefreshTokenStore(client.sync)
        )
        warm = tokens.refresh(tokens.issue("warm").refresh_token)  # connection, scripts
        tokens.revoke(warm.refresh_token)
        pair = count("TokenService.issue (login)", lambda: tokens.issue("alice"))
        pair = count("TokenService.refresh (rotation)", lambda: tokens.refresh(pair.refresh_token))
        count("TokenService.revoke (logout)", lambda: tokens.revoke(pair.refresh_token))
        keys = ApiKeyService(RedisApiKeyStore(client.sync), clock)
        new = keys.create("acct")
        keys.authenticate(new.plaintext)  # loads the script, touches last_used_at
        count("ApiKeyService.authenticate", lambda: keys.authenticate(new.plaintext))
        clock.advance(60)
        count(
            "ApiKeyService.authenticate (last_used_at due)",
            lambda: keys.authenticate(new.plaintext),
        )

        async def twins() -> None:
            service = AsyncTokenService(
                KEY, issuer=ISS, audience=AUD, store=AsyncRedisRefreshTokenStore(client.aio)
            )
            token = (
                await service.refresh((await service.issue("carol")).refresh_token)
            ).refresh_token
            with Trips(client) as trips:
                await service.refresh(token)
            rows.append(
                ["AsyncTokenService.refresh (rotation)", trips.client_side, trips.server_side]
            )
            api = AsyncApiKeyService(AsyncRedisApiKeyStore(client.aio), clock)
            await api.authenticate(new.plaintext)
            with Trips(client) as trips:
                await api.authenticate(new.plaintext)
            rows.append(["AsyncApiKeyService.authenticate", trips.client_side, trips.server_side])
            await client.aclose()

        asyncio.run(twins())
    finally:
        client.close()
    return rows


def redis_space(server: RedisServer, rotations: list[int]) -> list[list[object]]:
    """MEMORY USAGE of one session's keys after each number of rotations."""
    rows: list[list[object]] = []
    client = redis.Redis(host=server.host, port=server.port, db=len(FILLS) + 1)
    client.flushdb()
    service = TokenService(
        KEY, issuer=ISS, audience=AUD, store=RedisRefreshTokenStore(client), refresh_ttl=TTL
    )
    token = service.issue("alice").refresh_token
    done = 0
    for target in rotations:
        while done < target:
            token = service.refresh(token).refresh_token
            done += 1
        names = list(client.scan_iter("apisec:rt:*"))
        used = sum(int(client.memory_usage(name) or 0) for name in names)
        rows.append([target, len(names), used])
    client.close()
    return rows


def interleaved(
    levels: list[Any], measures: dict[str, Callable[[Any, int], float]], rounds: int, number: int
) -> dict[str, list[float]]:
    """Median seconds per call of each measure at each level, levels interleaved per round."""
    samples: dict[str, list[list[float]]] = {name: [[] for _ in levels] for name in measures}
    order = list(enumerate(levels))
    for _ in range(rounds):
        for i, level in order:  # drift hits every fill level alike
            for name, measure in measures.items():
                samples[name][i].append(measure(level, number))
        order.reverse()  # and no level always comes last
    return {name: [statistics.median(found) for found in per] for name, per in samples.items()}


def by_fill(
    results: Results, id: str, title: str, medians: dict[str, list[float]], note: str
) -> dict[str, float]:
    """Print and record one cost-by-fill table; returns each measure's bound / 1% ratio."""
    names = list(medians)
    print(f"\n{title} (medians, µs per call)")
    print(f"  {'sessions in store':>18} " + " ".join(f"{name:>36}" for name in names))
    rows: list[list[object]] = []
    for i, fill in enumerate(FILLS):
        cells, row = [], [f"{fill:,} ({fill / BOUND:.0%})"]
        for name in names:
            value, ratio = medians[name][i], medians[name][i] / medians[name][0]
            cells.append(f"{value * 1e6:9.2f} ({ratio:4.2f}x the 1% store)")
            row += [round(value * 1e6, 2), round(ratio, 2)]
        print(f"  {fill:>18,} " + " ".join(f"{cell:>36}" for cell in cells))
        rows.append(row)
    at_bound = {name: medians[name][-1] / medians[name][0] for name in names}
    results.series(
        id,
        f"{title}: µs per call by sessions in the store",
        x_label="sessions in the store",
        y_label="µs",
        x=FILLS,
        lines={name: [v * 1e6 for v in values] for name, values in medians.items()},
        log_x=True,
    )
    columns = ["sessions in the store"]
    for name in names:
        columns += [f"{name} (µs)", f"{name} (x 1% store)"]
    results.table(
        id,
        f"{title}: cost by fill, and its ratio to the 1% store",
        columns,
        rows,
        note=note
        + " "
        + ", ".join(f"{name}: {ratio:.2f}x" for name, ratio in at_bound.items())
        + " at 100,000 sessions.",
    )
    return at_bound


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    args = parser.parse_args()
    rounds, number = (3, 1_000) if args.quick else (9, 4_000)
    redis_rounds, redis_number = (3, 200) if args.quick else (9, 1_000)
    results = Results("refresh", ("redis",), quick=args.quick)
    m = machine()
    print(f"python {m['python']}, {m['cpu']} ({m['cores']} cores), {time.strftime('%F %T')}")

    print(f"filling {len(FILLS)} memory stores (bound {BOUND:,})...")
    levels = [Level(fill) for fill in FILLS]
    medians = interleaved(
        levels,
        {
            "TokenService.refresh": Level.rotate,
            "store consume + add": Level.store_rotate,
            "TokenService.issue (new session)": Level.login,
        },
        rounds,
        number,
    )
    # Each rotation leaves a stale entry in the expiry order; after n + 1,024 of them it
    # is rebuilt from the n live families. Its cost, spread over those rotations:
    full = levels[-1].store
    rebuilds = []
    for _ in range(rounds):
        start = time.perf_counter()
        full._expiry = [(f.expires_at, f.seq, i) for i, f in full._families.items()]
        heapq.heapify(full._expiry)
        rebuilds.append(time.perf_counter() - start)
    rebuild = statistics.median(rebuilds)
    spread = rebuild / (len(full) + 1024)
    print(
        f"\nexpiry order rebuilt at {len(full):,} sessions: {rebuild * 1e3:.1f} ms, once per"
        f" {len(full) + 1024:,} rotations or more: +{spread * 1e6:.2f} us per rotation"
    )
    medians["store consume + add"][-1] += spread  # charged to the full store
    memory = by_fill(
        results,
        "memory-by-fill",
        f"Memory store, max_tokens {BOUND:,} ({rounds} rounds x {number})",
        medians,
        "Target: rotation at the bound at most 2x rotation far below it (the store part"
        " includes the expiry order's rebuild, spread over the rotations it follows).",
    )
    del levels, full

    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    with RedisServer(binary) as server:
        probe = redis.Redis(host=server.host, port=server.port)
        results.version("redis-server", str(probe.info("server")["redis_version"]))
        probe.close()
        print(f"\nfilling {len(FILLS)} Redis databases...")
        redis_levels = [RedisLevel(server, db, fill) for db, fill in enumerate(FILLS, 1)]
        on_redis = by_fill(
            results,
            "redis-by-fill",
            f"RedisRefreshTokenStore, loopback ({redis_rounds} rounds x {redis_number})",
            interleaved(
                redis_levels,
                {"TokenService.refresh": RedisLevel.rotate},
                redis_rounds,
                redis_number,
            ),
            "Redis has no bound of its own: the fill only shows the rotation does not depend"
            " on it.",
        )
        for level in redis_levels:
            level.client.flushdb()
            level.client.close()

        trips = round_trips(server)
        print("\nRound trips per operation (counted by the client / by the server)")
        for operation, client_side, server_side in trips:
            print(f"  {operation:<48} {client_side} / {server_side}")
        results.table(
            "round-trips",
            "Redis round trips per operation, counted by the client and by the server",
            ["operation", "client", "server"],
            trips,
            note="Target: a rotation in 1-2 round trips (on Redis Cluster, one per slot: 3).",
        )

        rotations = [1, 10, 100, 1_000] if not args.quick else [1, 10, 100]
        space = redis_space(server, rotations)
    print("\nRedis: one session's keys after n rotations (MEMORY USAGE)")
    for count, keys, used in space:
        print(f"  {count:>6,} rotations: {keys} keys, {used:,} bytes")
    results.table(
        "redis-space",
        "Redis: one session's keys and bytes after n rotations",
        ["rotations", "keys", "bytes (MEMORY USAGE)"],
        space,
        note="A family keeps its newest token and the one before: the space stays flat.",
    )
    print("\nAt 100,000 sessions / at 1,000 (target for the memory rotation: 2x):")
    for name, ratio in memory.items():
        print(f"  memory {name:<36} {ratio:5.2f}x")
    for name, ratio in on_redis.items():
        print(f"  redis  {name:<36} {ratio:5.2f}x")
    results.write(args.json)


if __name__ == "__main__":
    main()
