"""Round trips to a real redis-server, counted on both ends.

* On the client: a redis-py connection class that counts the requests it
  sends. One command, one script call or one whole pipeline is one request,
  and a synchronous client waits for each answer: one request, one round trip.
* On the server: ``INFO stats`` ``total_reads_processed``, the read events the
  server handled. A request sent in one write is read in one event, so the
  change across an operation is its round trips (plus the ``INFO`` call's own).

Both are used by the tests that pin round trips per operation and by
``benchmarks/bench_refresh.py``.
"""

from __future__ import annotations

from typing import Any

import redis
import redis.asyncio
import redis.asyncio.connection


class _Counter:
    def __init__(self) -> None:
        self.requests = 0


class CountingClient:
    """A ``redis.Redis`` (``.sync``) and a ``redis.asyncio.Redis`` (``.aio``) counting requests."""

    def __init__(self, host: str, port: int) -> None:
        counter = self._counter = _Counter()

        class Sync(redis.Connection):
            def send_packed_command(self, command: Any, check_health: bool = True) -> None:
                counter.requests += 1
                super().send_packed_command(command, check_health)  # type: ignore[no-untyped-call]

        class Async(redis.asyncio.connection.Connection):
            async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
                counter.requests += 1
                await super().send_packed_command(command, check_health)

        self.sync = redis.Redis(
            connection_pool=redis.ConnectionPool(host=host, port=port, connection_class=Sync)
        )
        self.aio = redis.asyncio.Redis(
            connection_pool=redis.asyncio.ConnectionPool(
                host=host, port=port, connection_class=Async
            )
        )
        self._info = redis.Redis(host=host, port=port)  # not counted: the server-side probe

    @property
    def requests(self) -> int:
        """Requests sent by ``.sync`` and ``.aio`` so far."""
        return self._counter.requests

    def server_reads(self) -> int:
        """The server's read events so far, this probe's own ``INFO`` request included."""
        return int(self._info.info("stats")["total_reads_processed"])

    def close(self) -> None:
        """Disconnect the sync client and the probe (``aclose`` the asyncio one in its loop)."""
        self.sync.connection_pool.disconnect()
        self._info.close()

    async def aclose(self) -> None:
        await self.aio.connection_pool.disconnect()


class Trips:
    """Round trips of the operations run inside ``with trips:`` (client and server counts)."""

    def __init__(self, client: CountingClient) -> None:
        self.client = client
        self.client_side = 0
        self.server_side = 0

    def __enter__(self) -> Trips:
        self._requests = self.client.requests
        # Probe until the server is quiet (only the probe's own read between two probes):
        # connections that other tests closed may still be read as they go away.
        reads = self.client.server_reads()
        for _ in range(100):
            now = self.client.server_reads()
            if now == reads + 1:
                break
            reads = now
        self._reads = now
        return self

    def __exit__(self, *exc: object) -> None:
        self.client_side = self.client.requests - self._requests
        # The second INFO request is itself one read event.
        self.server_side = self.client.server_reads() - self._reads - 1
