"""The real-Redis harness and the translation of backend failures into StoreError."""

from __future__ import annotations

import logging

import pytest
import redis
import redis.asyncio
from redis.backoff import NoBackoff
from redis.retry import Retry

from apisec import StoreError
from apisec._redis import redis_errors
from tests.support.redis_server import RedisServer, free_loopback_port


def test_fixture_talks_to_the_redis_server_process_it_started(
    redis_server: RedisServer, redis_client: redis.Redis
) -> None:
    """The client reaches the very redis-server process the fixture spawned, on loopback."""
    info = redis_client.info("server")
    assert info["process_id"] == redis_server.pid
    assert info["tcp_port"] == redis_server.port
    assert redis_server.host == "127.0.0.1"


@pytest.mark.parametrize("run", [1, 2])
def test_each_test_starts_from_an_empty_database(redis_client: redis.Redis, run: int) -> None:
    """Keys written by one test are gone in the next (flushed per test)."""
    assert redis_client.dbsize() == 0
    redis_client.set(f"leftover:{run}", "x")


async def test_async_client_is_real_and_flushed(
    async_redis_client: redis.asyncio.Redis,
) -> None:
    """The redis.asyncio client round-trips through the same real server."""
    assert await async_redis_client.dbsize() == 0
    await async_redis_client.set("k", "v")
    assert await async_redis_client.get("k") == b"v"


def test_command_errors_become_store_errors(
    redis_client: redis.Redis, audit_records: list[logging.LogRecord]
) -> None:
    """A failing redis command surfaces as StoreError, raised from redis's exception."""
    redis_client.set("s", "text")
    with pytest.raises(StoreError) as caught, redis_errors("hincrby"):
        redis_client.hincrby("s", "f", 1)
    assert isinstance(caught.value.__cause__, redis.ResponseError)
    assert caught.value.status == 503
    assert "WRONGTYPE" not in caught.value.to_problem().to_json().decode()
    assert audit_records[-1].event == "store.failure"  # type: ignore[attr-defined]


def test_unreachable_server_becomes_store_error() -> None:
    """A connection refused by a closed loopback port is a StoreError too."""
    client = redis.Redis(
        host="127.0.0.1",
        port=free_loopback_port(),
        socket_connect_timeout=1,
        retry=Retry(NoBackoff(), 0),
    )
    with pytest.raises(StoreError, match="ConnectionError") as caught, redis_errors("get"):
        client.get("k")
    assert isinstance(caught.value.__cause__, redis.ConnectionError)


async def test_async_failures_become_store_errors(
    async_redis_client: redis.asyncio.Redis,
) -> None:
    """The same translation works around awaited redis.asyncio calls."""
    await async_redis_client.set("s", "text")
    with pytest.raises(StoreError) as caught, redis_errors("lpush"):
        await async_redis_client.lpush("s", "x")
    assert isinstance(caught.value.__cause__, redis.ResponseError)


def test_server_can_be_stopped_and_frees_its_port(redis_server: RedisServer) -> None:
    """A second server starts, serves and stops cleanly (as the session fixture does)."""
    with RedisServer(redis_server.binary) as other:
        client = redis.Redis(host=other.host, port=other.port)
        assert client.ping()
        client.close()
        port = other.port
    client = redis.Redis(
        host="127.0.0.1", port=port, socket_connect_timeout=1, retry=Retry(NoBackoff(), 0)
    )
    with pytest.raises(redis.ConnectionError):
        client.ping()
