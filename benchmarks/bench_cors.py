"""CORS: `CorsPolicy.decide` vs Starlette's `CORSMiddleware`, per request.

Run:  python benchmarks/bench_cors.py [--quick] [--json PATH]

Starlette's middleware is driven directly through ASGI (no server) around
an app that does nothing, so its number is the middleware's own cost plus
one trivial app call; the app-only baseline is printed too. Both sides use
the same policy and the same requests.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from starlette.middleware.cors import CORSMiddleware

from apisec.cors import CorsPolicy
from benchmarks._results import Results

ORIGIN = "https://app.example.com"
ORIGINS = [ORIGIN, "https://admin.example.com", "http://localhost:3000"]
METHODS = ["GET", "POST", "PUT", "DELETE"]
HEADERS = ["Content-Type", "Authorization", "X-Request-Id"]

Message = dict[str, Any]


async def app(scope: Message, receive: Callable[[], Awaitable[Message]], send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b""})


async def receive() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


async def send(message: Message) -> None:
    return None


def scope(method: str, headers: list[tuple[bytes, bytes]]) -> Message:
    return {
        "type": "http",
        "method": method,
        "path": "/items",
        "headers": headers,
        "query_string": b"",
        "root_path": "",
    }


PREFLIGHT = scope(
    "OPTIONS",
    [
        (b"origin", ORIGIN.encode()),
        (b"access-control-request-method", b"PUT"),
        (b"access-control-request-headers", b"content-type, x-request-id"),
    ],
)
SIMPLE = scope("GET", [(b"origin", ORIGIN.encode()), (b"accept", b"application/json")])


async def time_asgi(handler: Any, req: Message, number: int) -> float:
    start = time.perf_counter()
    for _ in range(number):
        await handler(req, receive, send)
    return (time.perf_counter() - start) / number


def time_sync(fn: Callable[[], object], number: int) -> float:
    start = time.perf_counter()
    for _ in range(number):
        fn()
    return (time.perf_counter() - start) / number


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    args = parser.parse_args()
    rounds, number = (3, 2_000) if args.quick else (15, 20_000)
    results = Results("cors", ("starlette",), quick=args.quick)

    policy = CorsPolicy(
        ORIGINS, allow_methods=METHODS, allow_headers=HEADERS, allow_credentials=True, max_age=600
    )
    starlette = CORSMiddleware(
        app,
        allow_origins=ORIGINS,
        allow_methods=METHODS,
        allow_headers=HEADERS,
        allow_credentials=True,
        max_age=600,
    )
    preflight = policy.decide("OPTIONS", ORIGIN, "PUT", "content-type, x-request-id")
    assert preflight.allowed
    assert policy.decide("GET", ORIGIN).allowed

    cases = {
        "preflight": (
            lambda: policy.decide("OPTIONS", ORIGIN, "PUT", "content-type, x-request-id"),
            PREFLIGHT,
        ),
        "simple GET": (lambda: policy.decide("GET", ORIGIN), SIMPLE),
    }
    loop = asyncio.new_event_loop()
    print(
        f"python {sys.version.split()[0]}, {time.strftime('%Y-%m-%d %H:%M:%S')}, "
        f"{rounds} rounds x {number} requests"
    )
    for name, (decide, req) in cases.items():
        ours, theirs, bare = [], [], []
        for _ in range(rounds):
            ours.append(time_sync(decide, number))
            theirs.append(loop.run_until_complete(time_asgi(starlette, req, number)))
            bare.append(loop.run_until_complete(time_asgi(app, req, number)))
        o, t, b = (statistics.median(x) for x in (ours, theirs, bare))
        print(f"\n{name}")
        print(f"  apisec decide            {o * 1e6:7.2f} us")
        print(f"  starlette CORSMiddleware {t * 1e6:7.2f} us   ({t / o:4.1f}x apisec)")
        print(
            f"  (no-op app alone         {b * 1e6:7.2f} us;  middleware minus app "
            f"{(t - b) * 1e6:.2f} us = {(t - b) / o:4.1f}x apisec)"
        )
        results.comparison(
            name.replace(" ", "-").lower(),
            f"CORS decision, {name}: CorsPolicy.decide vs Starlette's CORSMiddleware",
            {
                "apisec CorsPolicy.decide": o,
                "starlette CORSMiddleware (with the app)": t,
                "no-op ASGI app alone": b,
            },
            baseline="starlette CORSMiddleware (with the app)",
            ours=["apisec CorsPolicy.decide"],
            headline=[("apisec CorsPolicy.decide", "starlette CORSMiddleware (with the app)")],
            ratios=[
                (
                    "apisec CorsPolicy.decide",
                    "starlette CORSMiddleware (net of the app)",
                    o / (t - b),
                    "time per call, Starlette net of the no-op app",
                )
            ],
        )
    loop.close()
    results.write(args.json)


if __name__ == "__main__":
    main()
