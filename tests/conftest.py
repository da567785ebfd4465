"""Shared fixtures: a real redis-server for the session, fake clocks, audit capture."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import redis
import redis.asyncio
from hypothesis import settings

from apisec.testing import FakeClock, capture_audit
from tests.support.binaries import require_binary
from tests.support.redis_cluster import RedisCluster
from tests.support.redis_server import RedisServer

# No per-example deadline: CI shares two cores with redis-server and other
# processes, and a slow example is not a wrong one. Examples stay bounded by size.
settings.register_profile("apisec", deadline=None, print_blob=True)
settings.load_profile("apisec")


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One real redis-server on a free loopback port for the whole session."""
    binary = require_binary(
        "redis-server", debian_package="redis-server", extra_dirs=("/usr/bin", "/usr/sbin")
    )
    with RedisServer(binary) as server:
        yield server


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[RedisCluster]:
    """A real three-node Redis Cluster for the session (started on first use)."""
    server = require_binary(
        "redis-server", debian_package="redis-server", extra_dirs=("/usr/bin", "/usr/sbin")
    )
    cli = require_binary("redis-cli", debian_package="redis-tools", extra_dirs=("/usr/bin",))
    cluster = RedisCluster(server, cli).start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def redis_client(redis_server: RedisServer) -> Iterator[redis.Redis]:
    """A sync client on a freshly flushed database."""
    client = redis.Redis(host=redis_server.host, port=redis_server.port)
    client.flushdb()
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
async def async_redis_client(redis_server: RedisServer) -> AsyncIterator[redis.asyncio.Redis]:
    """An asyncio client on a freshly flushed database."""
    client = redis.asyncio.Redis(host=redis_server.host, port=redis_server.port)
    await client.flushdb()
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One headless Chromium per test module, with a fresh profile (selenium's driver)."""
    from tests.support.browser import start_chromium

    driver = start_chromium(tmp_path_factory.mktemp("chromium-profile"))
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def audit_records() -> Iterator[list[logging.LogRecord]]:
    """Every record the ``apisec.audit`` logger emits during the test."""
    with capture_audit() as records:
        yield records


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that touches the real Redis, so `-m redis` selects them."""
    for item in items:
        names = getattr(item, "fixturenames", ())
        if "redis_server" in names or "redis_cluster" in names:
            item.add_marker(pytest.mark.redis)
