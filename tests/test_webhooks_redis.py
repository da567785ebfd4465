"""Redis replay guards against a real redis-server: shared across verifiers, sync and async."""

from __future__ import annotations

import pytest
import redis
import redis.asyncio
from redis.backoff import NoBackoff
from redis.retry import Retry

from apisec import StoreError
from apisec.testing import FakeClock
from apisec.webhooks import (
    AsyncWebhookVerifier,
    ReplayedWebhook,
    ReplayGuard,
    WebhookSigner,
    WebhookVerifier,
    generate_secret,
)
from apisec.webhooks.redis import AsyncRedisReplayGuard, RedisReplayGuard
from tests.support.redis_server import free_loopback_port

BODY = b'{"event":"ping"}'


def test_guard_is_shared_by_separate_verifiers(redis_client: redis.Redis) -> None:
    """Two verifiers (think: two worker processes) on one Redis refuse a replay across them."""
    clock = FakeClock()
    secret = generate_secret()
    headers = WebhookSigner(secret, clock=clock).sign(BODY)
    first = WebhookVerifier(secret, clock=clock, replay_guard=RedisReplayGuard(redis_client))
    other_client = redis.Redis(connection_pool=redis_client.connection_pool)
    second = WebhookVerifier(secret, clock=clock, replay_guard=RedisReplayGuard(other_client))
    first.verify(BODY, headers)
    with pytest.raises(ReplayedWebhook):
        second.verify(BODY, headers)


def test_guard_keys_expire_after_the_replay_window(redis_client: redis.Redis) -> None:
    """Entries carry a TTL of twice the tolerance (plus one second), then go."""
    guard = RedisReplayGuard(redis_client, prefix="t:")
    assert isinstance(guard, ReplayGuard)
    assert guard.first_seen("k", 601)
    assert not guard.first_seen("k", 601)
    ttl_ms = redis_client.pttl("t:k")
    assert 600_000 < ttl_ms <= 601_000


async def test_async_guard_refuses_replays(async_redis_client: redis.asyncio.Redis) -> None:
    """The asyncio guard works through AsyncWebhookVerifier."""
    clock = FakeClock()
    secret = generate_secret("stripe")
    headers = WebhookSigner(secret, "stripe", clock=clock).sign(BODY)
    verifier = AsyncWebhookVerifier(
        secret, "stripe", clock=clock, replay_guard=AsyncRedisReplayGuard(async_redis_client)
    )
    await verifier.verify(BODY, headers)
    with pytest.raises(ReplayedWebhook):
        await verifier.verify(BODY, headers)
    assert len(await async_redis_client.keys("apisec:webhook:seen:stripe:*")) == 1


def test_unreachable_redis_is_a_store_error() -> None:
    """A dead Redis surfaces as StoreError (503), not as a redis exception."""
    client = redis.Redis(
        host="127.0.0.1",
        port=free_loopback_port(),
        socket_connect_timeout=1,
        retry=Retry(NoBackoff(), 0),
    )
    clock = FakeClock()
    secret = generate_secret()
    verifier = WebhookVerifier(secret, clock=clock, replay_guard=RedisReplayGuard(client))
    with pytest.raises(StoreError) as caught:
        verifier.verify(BODY, WebhookSigner(secret, clock=clock).sign(BODY))
    assert caught.value.status == 503
