"""Smoke test for an installed apisec wheel, run by tests/test_release.py.

Run inside a fresh virtualenv, with ``python -I`` from a directory outside
the source tree, so only the installed wheel can be imported:

    python -I wheel_smoke.py core MODULE...     # the wheel alone, no extras
    python -I wheel_smoke.py extras MODULE...   # after installing the extras

It uses nothing from the repository (this file is copied out). Every check
raises on failure; the last line printed is ``smoke ok <phase> <version>``.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.metadata
import sys
from pathlib import Path

# Modules that need an extra, and the packages whose absence stops their import.
NEEDS_EXTRA = {
    "apisec.apikeys.redis": {"redis"},
    "apisec.ratelimit.redis": {"redis"},
    "apisec.tokens.redis": {"redis"},
    "apisec.webhooks.redis": {"redis"},
    "apisec.outbound": {"anyio", "httpcore", "httpx"},
}
# Integrations whose names load their framework on first use (no extra installs one).
NEEDS_FRAMEWORK = {"apisec.fastapi": "fastapi"}
# Names served lazily by their packages (PEP 562), each needing the `redis` extra.
LAZY = {
    "apisec.ratelimit": ("RedisStore", "AsyncRedisStore"),
    "apisec.tokens": ("RedisRefreshTokenStore", "AsyncRedisRefreshTokenStore"),
    "apisec.apikeys": ("RedisApiKeyStore", "AsyncRedisApiKeyStore"),
    "apisec.webhooks": ("RedisReplayGuard", "AsyncRedisReplayGuard"),
}
FRAMEWORKS = ("fastapi", "starlette", "flask", "werkzeug", "django", "litestar", "falcon")


def check(condition: object, what: str) -> None:
    if not condition:
        raise SystemExit(f"smoke check failed: {what}")


def installed_from_wheel() -> str:
    import apisec

    where = Path(apisec.__file__).resolve()
    check("site-packages" in where.parts, f"apisec imported from {where}, not site-packages")
    check((where.parent / "py.typed").is_file(), "py.typed is installed")
    version = importlib.metadata.version("apisec")
    check(apisec.__version__ == version, f"__version__ {apisec.__version__} != {version}")
    return version


def imports(modules: list[str], phase: str) -> None:
    for name in modules:
        missing = NEEDS_EXTRA.get(name)
        if phase == "core" and missing is not None:
            try:
                importlib.import_module(name)
            except ImportError as exc:
                check(exc.name in missing, f"{name} fails on {missing}, not {exc.name}")
            else:
                raise SystemExit(f"smoke check failed: {name} imported without {missing}")
            continue
        module = importlib.import_module(name)
        framework = NEEDS_FRAMEWORK.get(name)
        for exported in module.__all__:
            if phase == "core" and exported in LAZY.get(name, ()):
                continue  # lazy_names() checks these
            if framework is None:
                check(hasattr(module, exported), f"{name}.{exported} resolves")
                continue
            try:
                getattr(module, exported)
            except ImportError as exc:
                check(exc.name == framework, f"{name}.{exported} fails on {framework}")
            else:
                raise SystemExit(f"smoke check failed: {name}.{exported} without {framework}")
    loaded = [name for name in FRAMEWORKS if name in sys.modules]
    check(not loaded, f"importing apisec loaded no framework (loaded {loaded})")


def lazy_names(phase: str) -> None:
    for package, names in LAZY.items():
        module = importlib.import_module(package)
        for name in names:
            if phase == "core":
                try:
                    getattr(module, name)
                except ImportError as exc:
                    check(exc.name == "redis", f"{package}.{name} fails on redis")
                else:
                    raise SystemExit(f"smoke check failed: {package}.{name} without redis")
            else:
                store = getattr(module, name)
                check(store.__module__ == f"{package}.redis", f"{package}.{name} is served")


def core_features() -> None:
    from apisec import AuthenticationError, CorsPolicy, SecurityHeaders, check_url
    from apisec.apikeys import ApiKeyService, MemoryApiKeyStore
    from apisec.pkce import challenge, create_verifier, verify
    from apisec.ratelimit import FixedWindow, RateLimiter
    from apisec.testing import FakeClock
    from apisec.tokens import KeyRing, SigningKey, TokenService
    from apisec.validation import parse_json
    from apisec.webhooks import WebhookSigner, WebhookVerifier, generate_secret

    tokens = TokenService(
        KeyRing(SigningKey.generate("EdDSA", kid="k1")),
        issuer="https://auth.example.com",
        audience="https://api.example.com",
    )
    pair = tokens.issue("user_42", scope="orders:read")
    check(tokens.verify(pair.access_token)["sub"] == "user_42", "EdDSA token verifies")
    check(tokens.refresh(pair.refresh_token).access_token, "refresh token rotates")

    keys = ApiKeyService(MemoryApiKeyStore())
    created = keys.create("acct_1", scopes=["orders:read"])
    check(keys.authenticate(created.plaintext).owner == "acct_1", "API key authenticates")

    limiter = RateLimiter(FixedWindow(2, 60), clock=FakeClock(1_000.0))
    decisions = [limiter.hit("client").allowed for _ in range(3)]
    check(decisions == [True, True, False], "third hit over a limit of 2 is denied")

    cors = CorsPolicy(["https://app.example.com"])
    check(cors.decide("GET", "https://app.example.com").allowed, "listed origin allowed")
    check(not cors.decide("GET", "https://evil.example").allowed, "other origin refused")
    check(any(n == "X-Content-Type-Options" for n, _ in SecurityHeaders().headers), "headers")

    secret = generate_secret("standard")
    body = b'{"type": "ping"}'
    WebhookVerifier(secret).verify(body, WebhookSigner(secret).sign(body))

    verifier = create_verifier()
    check(verify(verifier, challenge(verifier)), "PKCE S256 round trip")
    check(parse_json(b'{"a": 1}') == {"a": 1}, "strict JSON parses")
    check(check_url("https://93.184.215.14/", resolve=False).host, "public literal passes")
    problem = AuthenticationError("kid mismatch").to_problem().to_dict()
    check(problem["status"] == 401 and "kid" not in str(problem), "401 problem, no log text")


def passwords(phase: str) -> None:
    from apisec import ConfigurationError
    from apisec.passwords import PasswordHasher, hash_password, verify_password

    check(verify_password("correct horse", hash_password("correct horse")), "scrypt")
    if phase == "core":
        try:
            PasswordHasher(scheme="argon2id")
        except ConfigurationError:
            pass
        else:
            raise SystemExit("smoke check failed: argon2id without the extra")
    else:
        hasher = PasswordHasher(scheme="argon2id", argon2_memory_cost=8192)
        check(hasher.verify("pw", hasher.hash("pw")), "argon2id round trip")


def extras() -> None:
    import httpx

    from apisec.outbound import AsyncSafeTransport, SafeTransport

    with httpx.Client(transport=SafeTransport()) as client:
        try:
            client.get("http://127.0.0.1:9/")
        except Exception as exc:  # the SSRF refusal, before any connection
            check(type(exc).__name__ == "UnsafeURL", f"loopback refused ({exc!r})")
        else:
            raise SystemExit("smoke check failed: SafeTransport fetched loopback")
    check(AsyncSafeTransport, "async transport imports")

    import redis

    from apisec.ratelimit import RedisStore

    check(RedisStore(redis.Redis(host="127.0.0.1", port=1)), "RedisStore builds lazily")


async def async_features() -> None:
    from apisec.ratelimit import AsyncRateLimiter, TokenBucket

    limiter = AsyncRateLimiter(TokenBucket(1, 1))
    check((await limiter.hit("k")).allowed, "async limiter admits")


def main() -> None:
    phase, modules = sys.argv[1], sys.argv[2:]
    check(phase in ("core", "extras") and modules, "usage: core|extras MODULE...")
    version = installed_from_wheel()
    imports(modules, phase)
    lazy_names(phase)
    core_features()
    passwords(phase)
    asyncio.run(async_features())
    if phase == "extras":
        extras()
    print(f"smoke ok {phase} {version}")


if __name__ == "__main__":
    main()
