"""Adapters: per-request overhead of the ASGI and WSGI middleware, side by side with peers.

Run:  python benchmarks/bench_adapters.py [--quick] [--json PATH]

Every stack is called directly as an ASGI or WSGI callable (no server, no
sockets), each request with a fresh scope/environ, around an app that does
next to nothing, so what is left after subtracting the bare app is the
middleware's own cost per request. Contenders run interleaved over several
rounds; medians are reported. Three comparisons:

1. the full ``apisec.asgi.protect`` stack against the bare ASGI app;
2. ``apisec.asgi.CORSMiddleware`` alone against Starlette's ``CORSMiddleware``
   (same policy, allowed origin; a simple GET and a preflight) — the target
   is at most 0.5x Starlette's overhead;
3. a trivial Flask app behind ``apisec.wsgi.protect`` against the same app
   with flask-cors + flask-limiter (same CORS policy, one in-memory limit).

Nothing is asserted; a stack that answers the wrong thing stops the run,
since its numbers would mean nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import platform
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Iterable
from importlib.metadata import version
from itertools import cycle
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import flask
import flask_cors
import flask_limiter
import flask_limiter.util
from starlette.middleware.cors import CORSMiddleware as StarletteCORS

from apisec import asgi, wsgi
from apisec.cors import CorsPolicy
from apisec.ratelimit import FixedWindow, RateLimiter
from apisec.tokens import SigningKey, TokenService
from benchmarks._results import Results

ORIGIN = "https://app.example.com"
ORIGINS = [ORIGIN, "https://admin.example.com", "http://localhost:3000"]
METHODS = ["GET", "POST", "PUT", "DELETE"]
HEADERS = ["Content-Type", "Authorization", "X-Request-Id"]
HUGE = 10**9
ISS, AUD = "https://auth.example.com", "https://api.example.com"

Message = dict[str, Any]
Timer = Callable[[int], float]


# --- ASGI ------------------------------------------------------------------------


async def app(scope: Message, receive: Callable[[], Awaitable[Message]], send: Any) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": b"{}"})


async def receive() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


class Recorder:
    """The send callable: keeps the last status and headers (to check a stack once)."""

    def __init__(self) -> None:
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            self.headers = message["headers"]


#: What a browser sends besides the CORS fields (both middleware scan past these).
BROWSER = [
    (b"user-agent", b"Mozilla/5.0 (X11; Linux x86_64) Chrome/126.0 Safari/537.36"),
    (b"accept-encoding", b"gzip, deflate, br, zstd"),
    (b"accept-language", b"en-GB,en;q=0.9"),
    (b"referer", b"https://app.example.com/orders"),
    (b"sec-fetch-mode", b"cors"),
    (b"sec-fetch-site", b"same-site"),
]


def scope(method: str, path: str, headers: list[tuple[bytes, bytes]]) -> Message:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "scheme": "https",
        "method": method,
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"api.example.com"), *headers],
        "client": ("198.51.100.7", 51234),
        "server": ("10.0.0.1", 443),
        "state": {},
    }


def asgi_timer(
    loop: asyncio.AbstractEventLoop, handler: Any, template: Message | list[Message]
) -> Timer:
    """Per-request seconds of ``handler`` over ``number`` fresh copies of ``template``
    (of each template in turn, given several)."""
    send = Recorder()
    templates = template if isinstance(template, list) else [template]

    async def run(number: int) -> float:
        requests = cycle(templates)
        start = time.perf_counter()
        for _ in range(number):
            await handler({**next(requests), "state": {}}, receive, send)
        return (time.perf_counter() - start) / number

    return lambda number: loop.run_until_complete(run(number))


def asgi_check(loop: asyncio.AbstractEventLoop, handler: Any, template: Message) -> Recorder:
    send = Recorder()
    loop.run_until_complete(handler({**template, "state": {}}, receive, send))
    return send


# --- WSGI ------------------------------------------------------------------------


def environ(method: str, path: str, headers: dict[str, str]) -> dict[str, Any]:
    base: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "api.example.com",
        "SERVER_PORT": "443",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "198.51.100.7",
        "HTTP_HOST": "api.example.com",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "https",
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    for name, value in headers.items():
        base["HTTP_" + name.upper().replace("-", "_")] = value
    return base


class StartResponse:
    def __init__(self) -> None:
        self.status = ""
        self.headers: list[tuple[str, str]] = []

    def __call__(self, status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        self.status = status
        self.headers = headers
        return None


def wsgi_call(handler: Any, template: dict[str, Any], start: StartResponse) -> None:
    result: Iterable[bytes] = handler({**template, "wsgi.input": io.BytesIO()}, start)
    for _ in result:
        pass
    close = getattr(result, "close", None)
    if close is not None:
        close()


def wsgi_timer(handler: Any, template: dict[str, Any]) -> Timer:
    start_response = StartResponse()

    def run(number: int) -> float:
        start = time.perf_counter()
        for _ in range(number):
            wsgi_call(handler, template, start_response)
        return (time.perf_counter() - start) / number

    return run


def wsgi_check(handler: Any, template: dict[str, Any]) -> StartResponse:
    start_response = StartResponse()
    wsgi_call(handler, template, start_response)
    return start_response


# --- measuring -------------------------------------------------------------------


def sample(contenders: dict[str, Timer], rounds: int, number: int) -> dict[str, list[float]]:
    """Per-request seconds of each contender, one sample per round, interleaved."""
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    for timer in contenders.values():
        timer(max(1, number // 10))  # warm up caches and branch paths
    for _ in range(rounds):
        for name, timer in contenders.items():
            samples[name].append(timer(number))
    return samples


def medians(contenders: dict[str, Timer], rounds: int, number: int) -> dict[str, float]:
    samples = sample(contenders, rounds, number)
    return {name: statistics.median(values) for name, values in samples.items()}


def paired_ratio(samples: dict[str, list[float]], ours: str, theirs: str, bare: str) -> float:
    """Median over rounds of ours' overhead / theirs' (each round measured back to back,
    so a load spike on a shared machine hits both sides of one ratio)."""
    return statistics.median(
        (o - b) / (t - b)
        for o, t, b in zip(samples[ours], samples[theirs], samples[bare], strict=True)
    )


def table(title: str, results: dict[str, float], bare: str | None, base: str | None) -> None:
    """Per-request time and overhead over ``bare``, with the ratio of overheads to ``base``'s.

    Without ``bare`` (answers that never reach the app) whole per-request times are compared.
    """
    print(f"\n{title}")
    floor = results[bare] if bare is not None else 0.0
    base_cost = results[base] - floor if base is not None else None
    print(f"  {'':<46} {'per request':>12} {'overhead' if bare else '':>10}")
    for name, value in results.items():
        line = f"  {name:<46} {value * 1e6:9.2f} us"
        if name != bare:
            cost = value - floor
            line += f" {cost * 1e6:7.2f} us" if bare is not None else " " * 11
            if base_cost is not None and name != base:
                what = "overhead" if bare is not None else "time"
                line += f"   {cost / base_cost:5.2f}x {base}'s {what}"
        print(line)


def require(condition: bool, what: str) -> None:
    if not condition:
        raise SystemExit(f"benchmark set-up is wrong: {what}")


def policy() -> CorsPolicy:
    return CorsPolicy(
        ORIGINS, allow_methods=METHODS, allow_headers=HEADERS, allow_credentials=True, max_age=600
    )


def spelling(number: int) -> bytes:
    """``content-type`` with its letters' case set by the bits of ``number`` (2048 spellings)."""
    letters = iter(range(11))
    return bytes(
        char - 32 if char != 45 and number >> next(letters) & 1 else char
        for char in b"content-type"
    )


def cors_asgi(results: Results, rounds: int, number: int) -> dict[str, float]:
    loop = asyncio.new_event_loop()
    ours = asgi.CORSMiddleware(app, policy())
    theirs = StarletteCORS(
        app,
        allow_origins=ORIGINS,
        allow_methods=METHODS,
        allow_headers=HEADERS,
        allow_credentials=True,
        max_age=600,
    )
    requests: dict[str, Message | list[Message]] = {
        "simple GET": scope(
            "GET", "/items", [*BROWSER, (b"origin", ORIGIN.encode()), (b"accept", b"*/*")]
        ),
        "preflight": scope(
            "OPTIONS",
            "/items",
            [
                *BROWSER,
                (b"origin", ORIGIN.encode()),
                (b"access-control-request-method", b"PUT"),
                (b"access-control-request-headers", b"content-type, x-request-id"),
            ],
        ),
    }
    # 300 spellings of one allowed header list: every preflight is new to a cache of 256.
    require(len({spelling(number) for number in range(300)}) == 300, "300 distinct spellings")
    variants: list[Message] = [
        scope(
            "OPTIONS",
            "/items",
            [
                *BROWSER,
                (b"origin", ORIGIN.encode()),
                (b"access-control-request-method", b"PUT"),
                (b"access-control-request-headers", spelling(number) + b", x-request-id"),
            ],
        )
        for number in range(300)
    ]
    requests["preflight, each one new"] = variants
    found = {}
    for name, request in requests.items():
        for handler in (ours, theirs):
            sent = asgi_check(loop, handler, request if isinstance(request, dict) else request[0])
            allowed = dict(sent.headers).get(b"access-control-allow-origin")
            require(sent.status in (200, 204) and allowed == ORIGIN.encode(), f"CORS {name}")
        samples = sample(
            {
                "bare app": asgi_timer(loop, app, request),
                "apisec.asgi.CORSMiddleware": asgi_timer(loop, ours, request),
                "starlette CORSMiddleware": asgi_timer(loop, theirs, request),
            },
            rounds,
            number,
        )
        title = f"ASGI CORS alone, {name} (allowed origin)"
        found_medians = {contender: statistics.median(v) for contender, v in samples.items()}
        table(title, found_medians, "bare app", "starlette CORSMiddleware")
        found[name] = paired_ratio(
            samples, "apisec.asgi.CORSMiddleware", "starlette CORSMiddleware", "bare app"
        )
        results.comparison(
            "asgi-cors-" + name.replace(",", "").replace(" ", "-"),
            title,
            found_medians,
            baseline="starlette CORSMiddleware",
            ours=["apisec.asgi.CORSMiddleware"],
            ratios=[
                (
                    "apisec.asgi.CORSMiddleware",
                    "starlette CORSMiddleware",
                    found[name],
                    "overhead over the bare app (median of per-round ratios)",
                )
            ],
        )
    loop.close()
    return found


def protect_asgi(results: Results, rounds: int, number: int) -> None:
    loop = asyncio.new_event_loop()
    origin = (b"origin", ORIGIN.encode())
    public = scope("GET", "/public/items", [origin])
    contenders = {"bare app": asgi_timer(loop, app, public)}
    for alg in ("HS256", "EdDSA"):
        tokens = TokenService(SigningKey.generate(alg), issuer=ISS, audience=AUD)
        token = tokens.issue("alice", scope="orders:read").access_token
        stack = asgi.protect(
            app,
            tokens=tokens,
            public_paths=["/public"],
            cors=policy(),
            client_limiter=RateLimiter(FixedWindow(HUGE, 60)),
            principal_limiter=RateLimiter(FixedWindow(HUGE, 60)),
        )
        bearer = scope("GET", "/items", [origin, (b"authorization", f"Bearer {token}".encode())])
        for request in (public, bearer):
            sent = asgi_check(loop, stack, request)
            names = {name for name, _ in sent.headers}
            require(sent.status == 200, "protect() answers 200")
            require({b"access-control-allow-origin", b"x-ratelimit-remaining"} <= names, "headers")
        if alg == "HS256":
            contenders["protect(), public path (no credential)"] = asgi_timer(loop, stack, public)
        contenders[f"protect(), bearer token ({alg} verify)"] = asgi_timer(loop, stack, bearer)
    found = medians(contenders, rounds, number)
    title = (
        "ASGI protect(): security headers, CORS, problems, client limit, body limit, "
        "auth, principal limit"
    )
    table(title, found, "bare app", None)
    results.comparison(
        "asgi-protect",
        title,
        found,
        baseline="bare app",
        ours=[name for name in found if name != "bare app"],
        note="No peer: the whole stack against the bare ASGI app it wraps.",
    )
    loop.close()


def flask_app() -> flask.Flask:
    made = flask.Flask("bench")

    @made.get("/items")
    def items() -> dict[str, str]:
        return {}

    return made


def with_flask_cors(made: flask.Flask) -> flask.Flask:
    flask_cors.CORS(
        made,
        origins=ORIGINS,
        methods=METHODS,
        allow_headers=HEADERS,
        supports_credentials=True,
        max_age=600,
    )
    return made


def with_flask_limiter(made: flask.Flask) -> flask.Flask:
    flask_limiter.Limiter(
        flask_limiter.util.get_remote_address,
        app=made,
        default_limits=[f"{HUGE} per minute"],
        storage_uri="memory://",
        headers_enabled=True,
    )
    return made


def wrapped(wrap: Callable[[Any], Any]) -> flask.Flask:
    made = flask_app()
    made.wsgi_app = wrap(made.wsgi_app)  # type: ignore[method-assign]
    return made


def wsgi_stacks(results: Results, rounds: int, number: int) -> None:
    def limit() -> RateLimiter:
        return RateLimiter(FixedWindow(HUGE, 60))

    contenders = {
        "bare Flask": flask_app(),
        "Flask + flask-cors": with_flask_cors(flask_app()),
        "Flask + apisec.wsgi.CORSMiddleware": wrapped(
            lambda inner: wsgi.CORSMiddleware(inner, policy())
        ),
        "Flask + flask-cors + flask-limiter": with_flask_limiter(with_flask_cors(flask_app())),
        "Flask + apisec.wsgi CORS + RateLimit": wrapped(
            lambda inner: wsgi.CORSMiddleware(wsgi.RateLimitMiddleware(inner, limit()), policy())
        ),
        "Flask + apisec.wsgi.protect() (all layers)": wrapped(
            lambda inner: wsgi.protect(inner, cors=policy(), client_limiter=limit())
        ),
    }
    simple = environ("GET", "/items", {"Origin": ORIGIN, "Accept": "*/*"})
    preflight = environ(
        "OPTIONS",
        "/items",
        {
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "PUT",
            "Access-Control-Request-Headers": "content-type, x-request-id",
        },
    )
    for name, made in contenders.items():
        if name == "bare Flask":
            continue
        for request in (simple, preflight):
            sent = wsgi_check(made, request)
            names = {header.lower() for header, _ in sent.headers}
            require(sent.status[:3] in ("200", "204"), f"{name} answers")
            require("access-control-allow-origin" in names, f"{name} allows the origin")
        if "limit" in name.lower() or "protect" in name:
            names = {header.lower() for header, _ in wsgi_check(made, simple).headers}
            require("x-ratelimit-remaining" in names, f"{name} limits")
    simple_results = medians(
        {name: wsgi_timer(made, simple) for name, made in contenders.items()}, rounds, number
    )
    title = "WSGI, simple GET with an allowed origin (limits: one in memory)"
    table(title, simple_results, "bare Flask", "Flask + flask-cors + flask-limiter")
    overhead = {
        name: value - simple_results["bare Flask"] for name, value in simple_results.items()
    }
    pairs = [
        ("Flask + apisec.wsgi.CORSMiddleware", "Flask + flask-cors"),
        ("Flask + apisec.wsgi CORS + RateLimit", "Flask + flask-cors + flask-limiter"),
        ("Flask + apisec.wsgi.protect() (all layers)", "Flask + flask-cors + flask-limiter"),
    ]
    results.comparison(
        "wsgi-simple",
        title,
        simple_results,
        baseline="bare Flask",
        ours=[name for name in simple_results if "apisec" in name],
        ratios=[
            (ours, peer, overhead[ours] / overhead[peer], "overhead over bare Flask")
            for ours, peer in pairs
        ],
    )
    cors_only = ("Flask + flask-cors", "Flask + apisec.wsgi.CORSMiddleware")
    preflight_results = medians(
        {name: wsgi_timer(contenders[name], preflight) for name in cors_only}, rounds, number
    )
    title = "WSGI, preflight with an allowed origin (apisec answers it before Flask runs)"
    table(title, preflight_results, None, "Flask + flask-cors")
    results.comparison(
        "wsgi-preflight",
        title,
        preflight_results,
        baseline="Flask + flask-cors",
        ours=["Flask + apisec.wsgi.CORSMiddleware"],
        headline=[("Flask + apisec.wsgi.CORSMiddleware", "Flask + flask-cors")],
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    args = parser.parse_args()
    rounds, number = (3, 2_000) if args.quick else (11, 20_000)
    peers = ("starlette", "flask", "flask-cors", "flask-limiter", "limits")
    results = Results("adapters", peers, quick=args.quick)
    print(
        f"python {sys.version.split()[0]} on {platform.machine()} "
        f"({platform.processor() or platform.platform()}), {os.cpu_count()} CPUs, "
        f"{time.strftime('%Y-%m-%d %H:%M:%S')}, {rounds} rounds x {number} requests"
    )
    print("peers: " + ", ".join(f"{name} {version(name)}" for name in peers))
    found = cors_asgi(results, rounds, number)
    protect_asgi(results, rounds, number)
    wsgi_stacks(results, rounds, number // 4)
    print("\nCORS target: apisec's overhead at most 0.5x Starlette's (median of per-round ratios)")
    for name, ratio in found.items():
        print(f"  {name:<24} {ratio:5.2f}x")
    results.write(args.json)


if __name__ == "__main__":
    main()
