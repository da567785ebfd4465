"""No async path blocks the event loop: the detector, and every async twin run under it."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest
import redis
import redis.asyncio

from apisec import ConfigurationError
from apisec._types import Message, Receive, Scope, Send
from apisec.apikeys import AsyncApiKeyService, AsyncSQLiteApiKeyStore, InvalidApiKey
from apisec.apikeys.redis import AsyncRedisApiKeyStore
from apisec.login import AsyncLoginGuard, InvalidCredentials, TooManyLoginAttempts
from apisec.passwords import AsyncPasswordHasher, PasswordHasher
from apisec.ratelimit import (
    AsyncRateLimiter,
    AsyncTieredRateLimiter,
    FixedWindow,
    SlidingWindow,
    TokenBucket,
)
from apisec.ratelimit.redis import AsyncRedisStore
from apisec.testing import FakeClock, LoopBlocked, forbid_loop_blocking
from apisec.tokens import AsyncTokenService, RevokedToken, SigningKey, TokenReuseDetected
from apisec.tokens.redis import AsyncRedisRefreshTokenStore
from apisec.webhooks import (
    AsyncWebhookVerifier,
    MemoryReplayGuard,
    ReplayedWebhook,
    WebhookSigner,
    generate_secret,
)
from apisec.webhooks.redis import AsyncRedisReplayGuard, RedisReplayGuard

#: The longest stall tolerated. Generous: the suite shares two cores, and what
#: we catch (a password hash, a held sync call) stalls far longer.
STALL = 0.25
#: How long a held call waits for the loop to release it.
HOLD = 1.5


class Held:
    """A synchronous call (think: a network round trip) that only the event loop can end.

    It asks the loop to release it, then waits. In a worker thread the loop
    answers at once; on the loop itself nobody can, so it stalls the loop for
    the full ``HOLD`` seconds — which :func:`forbid_loop_blocking` reports.
    """

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.calls = 0

    def __call__(self) -> None:
        self.calls += 1
        released = threading.Event()
        self.loop.call_soon_threadsafe(released.set)
        released.wait(HOLD)


class TestDetector:
    async def test_a_blocking_call_on_the_loop_fails_the_test(self) -> None:
        """A sync call that holds the loop longer than the threshold raises LoopBlocked."""
        held = Held()
        with pytest.raises(LoopBlocked, match="blocked for"):
            async with forbid_loop_blocking(STALL):
                held()
        assert held.calls == 1

    async def test_a_stall_right_before_the_end_is_still_seen(self) -> None:
        """A block after the last heartbeat is measured when the block closes."""
        seen: list[float] = []

        async def stall_at_the_end() -> None:
            async with forbid_loop_blocking(STALL) as watch:
                seen.append(watch.longest_stall)
                await asyncio.sleep(0)
                Held()()

        with pytest.raises(LoopBlocked):
            await stall_at_the_end()
        assert seen == [0.0]

    async def test_the_same_call_in_a_thread_passes(self) -> None:
        """Run in a worker thread, the held call leaves the loop responsive."""
        async with forbid_loop_blocking(STALL) as watch:
            await asyncio.to_thread(Held())
        assert watch.longest_stall < STALL

    async def test_errors_of_the_body_pass_through(self) -> None:
        """An exception raised inside the block is not masked by the detector."""
        with pytest.raises(KeyError):
            async with forbid_loop_blocking(STALL):
                raise KeyError("x")

    @pytest.mark.parametrize("threshold", [0, -1, float("nan"), "1"])
    async def test_bad_thresholds(self, threshold: object) -> None:
        """A threshold is a positive number of seconds."""
        with pytest.raises(ConfigurationError):
            async with forbid_loop_blocking(threshold):  # type: ignore[arg-type]
                pass


class TestPasswordsAndLogins:
    async def test_the_async_hasher_hashes_in_a_worker_thread(self) -> None:
        """The default-cost scrypt runs beside the loop, not on it."""
        hasher = AsyncPasswordHasher()
        async with forbid_loop_blocking(STALL):
            stored = await hasher.hash("correct horse")
            assert await hasher.verify("correct horse", stored)
            assert not await hasher.verify("wrong", stored)
            assert not await hasher.verify("x", None)

    async def test_login_guard_runs_a_sync_verify_in_a_thread(self) -> None:
        """A plain verify function (a sync hash, a sync database call) never runs on the loop."""
        guard = AsyncLoginGuard(max_failures=3, clock=FakeClock())
        held = Held()

        def verify() -> bool:
            held()
            return True

        async with forbid_loop_blocking(STALL):
            await guard.attempt("ada", "192.0.2.1", verify)
        assert held.calls == 1

    async def test_login_guard_with_the_hasher(self) -> None:
        """AsyncLoginGuard with either hasher twin, sync or async, keeps the loop free."""
        hasher, async_hasher = PasswordHasher(), AsyncPasswordHasher()
        stored = await async_hasher.hash("s3cret")
        guard = AsyncLoginGuard(max_failures=3, clock=FakeClock())
        async with forbid_loop_blocking(STALL):
            await guard.attempt("ada", "192.0.2.1", lambda: async_hasher.verify("s3cret", stored))
            await guard.attempt("ada", "192.0.2.1", lambda: hasher.verify("s3cret", stored))
            with pytest.raises(InvalidCredentials):
                await guard.attempt("ada", "192.0.2.1", lambda: async_hasher.verify("no", stored))

    async def test_login_guard_on_redis(self, async_redis_client: redis.asyncio.Redis) -> None:
        """Every guard method over the asyncio Redis store keeps the loop free."""
        guard = AsyncLoginGuard(AsyncRedisStore(async_redis_client), max_failures=2)

        async def wrong() -> bool:
            return False

        async with forbid_loop_blocking(STALL):
            await guard.check("bob", "2001:db8::1")
            for _ in range(2):
                with pytest.raises(InvalidCredentials):
                    await guard.attempt("bob", "2001:db8::1", wrong)
            with pytest.raises(TooManyLoginAttempts):
                await guard.attempt("bob", "2001:db8::1", wrong)
            await guard.record_failure("eve", "2001:db8::2")
            await guard.record_success("eve", "2001:db8::2")


class TestRateLimiters:
    async def test_memory(self) -> None:
        """AsyncRateLimiter and AsyncTieredRateLimiter over the memory store."""
        limiter = AsyncRateLimiter([TokenBucket(5, 1, name="b"), SlidingWindow(9, 60, name="s")])
        tiers = AsyncTieredRateLimiter({"free": FixedWindow(2, 60)})
        async with forbid_loop_blocking(STALL):
            for _ in range(6):
                await limiter.hit("k")
            assert not (await limiter.peek("k")).allowed
            await limiter.reset("k")
            assert (await tiers.hit("k", "free")).allowed
            assert (await tiers.peek("k", "free")).remaining == 1

    async def test_redis(self, async_redis_client: redis.asyncio.Redis) -> None:
        """AsyncRateLimiter over AsyncRedisStore, one limit and several."""
        store = AsyncRedisStore(async_redis_client)
        one = AsyncRateLimiter(FixedWindow(3, 60), store)
        many = AsyncRateLimiter(
            [TokenBucket(5, 1, name="b"), SlidingWindow(9, 60, name="s")], store
        )
        async with forbid_loop_blocking(STALL):
            for limiter in (one, many):
                for _ in range(6):
                    await limiter.hit("k")
                assert not (await limiter.peek("k")).allowed
                await limiter.reset("k")


class TestTokens:
    async def _lifecycle(self, service: AsyncTokenService) -> None:
        pair = await service.issue("user_1", scope="read")
        assert service.verify(pair.access_token)["sub"] == "user_1"
        rotated = await service.refresh(pair.refresh_token)
        with pytest.raises(TokenReuseDetected):
            await service.refresh(pair.refresh_token)
        other = await service.issue("user_1")
        await service.revoke(other.refresh_token)
        with pytest.raises(RevokedToken):
            await service.refresh(other.refresh_token)
        await service.revoke_subject("user_1")
        assert rotated.access_token

    async def test_memory(self) -> None:
        """AsyncTokenService over its memory store, with RS256 signing."""
        service = AsyncTokenService(SigningKey.generate("RS256", kid="rs"), "iss", "aud")
        async with forbid_loop_blocking(STALL):
            await self._lifecycle(service)

    async def test_redis(self, async_redis_client: redis.asyncio.Redis) -> None:
        """AsyncTokenService over AsyncRedisRefreshTokenStore."""
        service = AsyncTokenService(
            SigningKey.generate("ES256", kid="es"),
            "iss",
            "aud",
            store=AsyncRedisRefreshTokenStore(async_redis_client),
        )
        async with forbid_loop_blocking(STALL):
            await self._lifecycle(service)


class TestApiKeys:
    async def _lifecycle(self, service: AsyncApiKeyService) -> None:
        new = await service.create("acct", scopes=["read"])
        assert (await service.authenticate(new.plaintext)).owner == "acct"
        rotated = await service.rotate(new.record.id, grace=0)
        await service.revoke(rotated.record.id)
        with pytest.raises(InvalidApiKey):
            await service.authenticate(rotated.plaintext)
        assert len(await service.list("acct")) == 2

    async def test_sqlite(self, tmp_path: Path) -> None:
        """AsyncApiKeyService over the SQLite store (its calls go to a thread)."""
        service = AsyncApiKeyService(AsyncSQLiteApiKeyStore(tmp_path / "keys.db"))
        async with forbid_loop_blocking(STALL):
            await self._lifecycle(service)

    async def test_redis(self, async_redis_client: redis.asyncio.Redis) -> None:
        """AsyncApiKeyService over AsyncRedisApiKeyStore."""
        service = AsyncApiKeyService(AsyncRedisApiKeyStore(async_redis_client))
        async with forbid_loop_blocking(STALL):
            await self._lifecycle(service)


class _HeldGuard:
    """A synchronous replay guard whose backend only answers when the loop lets it."""

    def __init__(self) -> None:
        self.held = Held()
        self.seen: set[str] = set()

    def first_seen(self, key: str, ttl: float) -> bool:
        self.held()
        if key in self.seen:
            return False
        self.seen.add(key)
        return True


class TestWebhooks:
    BODY = b'{"event":"ping"}'

    async def _twice(self, verifier: AsyncWebhookVerifier, headers: dict[str, str]) -> None:
        await verifier.verify(self.BODY, headers)
        with pytest.raises(ReplayedWebhook):
            await verifier.verify(self.BODY, headers)

    async def test_a_sync_replay_guard_runs_in_a_thread(self) -> None:
        """AsyncWebhookVerifier never calls a synchronous guard's (I/O) method on the loop."""
        secret = generate_secret()
        guard = _HeldGuard()
        verifier = AsyncWebhookVerifier(secret, replay_guard=guard)
        async with forbid_loop_blocking(STALL):
            await self._twice(verifier, WebhookSigner(secret).sign(self.BODY))
        assert guard.held.calls == 2

    async def test_memory_guard_and_no_guard(self) -> None:
        """The memory guard and no guard at all run in place without stalls."""
        secret = generate_secret("stripe")
        headers = WebhookSigner(secret, "stripe").sign(self.BODY)
        async with forbid_loop_blocking(STALL):
            await AsyncWebhookVerifier(secret, "stripe").verify(self.BODY, headers)
            await self._twice(
                AsyncWebhookVerifier(secret, "stripe", replay_guard=MemoryReplayGuard()), headers
            )

    async def test_redis_guards(
        self, async_redis_client: redis.asyncio.Redis, redis_client: redis.Redis
    ) -> None:
        """The asyncio Redis guard is awaited; the sync one goes to a thread."""
        secret = generate_secret()
        async with forbid_loop_blocking(STALL):
            for guard in (
                AsyncRedisReplayGuard(async_redis_client, prefix="a:"),
                RedisReplayGuard(redis_client, prefix="s:"),
            ):
                verifier = AsyncWebhookVerifier(secret, replay_guard=guard)
                await self._twice(verifier, WebhookSigner(secret).sign(self.BODY))


class TestSsrf:
    async def test_acheck_url_resolves_off_the_loop(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """The default async resolver runs getaddrinfo in the loop's executor, never on it."""
        import socket

        from apisec.ssrf import acheck_url

        held = Held()

        def slow_getaddrinfo(host: str, port: object, *args: object, **kwargs: object) -> list:  # type: ignore[type-arg]
            held()
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.215.14", 443))]

        monkeypatch.setattr(socket, "getaddrinfo", slow_getaddrinfo)
        async with forbid_loop_blocking(STALL):
            safe = await acheck_url("https://partner.example/x")
        assert held.calls == 1
        assert "93.184.215.14" in [str(a) for a in safe.addresses]


class TestAdapters:
    async def test_the_asgi_stack_over_redis_never_blocks(
        self, async_redis_client: redis.asyncio.Redis
    ) -> None:
        """protect() with async Redis stores answers requests without stalling the loop."""
        from apisec.asgi import protect

        keys = AsyncApiKeyService(AsyncRedisApiKeyStore(async_redis_client))
        key = (await keys.create("acct", scopes=["a"])).plaintext
        limiter = AsyncRateLimiter(FixedWindow(100, 60), AsyncRedisStore(async_redis_client))

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"ok"})

        stack = protect(
            app,
            keys=keys,
            client_limiter=limiter,
            principal_limiter=AsyncRateLimiter(
                FixedWindow(100, 60), AsyncRedisStore(async_redis_client), prefix="p"
            ),
        )
        statuses: list[int] = []

        async def receive() -> Message:
            return {"type": "http.request", "body": b""}

        async def send(message: Message) -> None:
            if message["type"] == "http.response.start":
                statuses.append(message["status"])

        async with forbid_loop_blocking(STALL):
            for credential in (key, "sk_live_wrong"):
                scope = {
                    "type": "http",
                    "method": "GET",
                    "path": "/x",
                    "headers": [(b"x-api-key", credential.encode())],
                    "client": ("198.51.100.1", 1),
                }
                await stack(scope, receive, send)
        assert statuses == [200, 401]
