"""Shared plumbing for the Redis-backed stores (extra ``apisec[redis]``).

Imported only by the Redis store modules, so ``import apisec`` never needs
``redis``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import redis
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.cluster import RedisCluster

from apisec.audit import AuditEvent, emit
from apisec.errors import StoreError

__all__ = ["is_cluster", "redis_errors", "store_error"]


def is_cluster(client: object) -> bool:
    """Whether ``client`` is a Redis Cluster client (sync or asyncio).

    A script there may only touch keys of one slot, and its pipelines refuse
    ``EVALSHA``: stores keep their multi-key round trips apart on a cluster.
    """
    return isinstance(client, (RedisCluster, AsyncRedisCluster))


@contextmanager
def redis_errors(operation: str) -> Iterator[None]:
    """Turn any redis-py failure inside the block into :class:`StoreError`.

    The redis exception stays reachable as ``__cause__`` for the server's
    logs; the ``StoreError`` message names only the operation and the error
    type, so connection strings and passwords cannot leak through it.
    Works around ``await`` expressions as well (no I/O happens here).
    """
    try:
        yield
    except (redis.RedisError, OSError) as exc:
        raise store_error(operation, exc) from exc


def store_error(operation: str, exc: BaseException) -> StoreError:
    """The :class:`StoreError` for a redis-py failure (audited); raise it ``from exc``.

    For hot paths, where a ``try``/``except`` costs less than :func:`redis_errors`.
    """
    emit(AuditEvent.STORE_FAILURE, reason=type(exc).__name__, backend="redis", operation=operation)
    return StoreError(f"redis {operation} failed: {type(exc).__name__}")
