"""Helpers for testing code that uses apisec.

>>> clock = FakeClock(1_000.0)
>>> clock()
1000.0
>>> clock.advance(30)
>>> clock()
1030.0

:func:`forbid_loop_blocking` fails a test whose code blocks the event loop:

>>> import asyncio
>>> async def main() -> None:
...     async with forbid_loop_blocking(threshold=0.5) as watch:
...         await asyncio.sleep(0)       # yields: fine
...     assert watch.longest_stall < 0.5
>>> asyncio.run(main())

:func:`capture_audit` collects the audit records emitted inside a block
(as ``structlog.testing.capture_logs`` does for structlog):

>>> from apisec.audit import AuditEvent, emit
>>> with capture_audit() as records:
...     emit(AuditEvent.AUTH_FAILURE, principal="user_42", reason="expired")
>>> [(r.event, r.principal, r.reason) for r in records]
[('auth.failure', 'user_42', 'expired')]
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import AsyncIterator, Iterator

from apisec._clock import Duration, seconds
from apisec.audit import AUDIT_LOGGER_NAME
from apisec.errors import ConfigurationError

__all__ = ["FakeClock", "LoopBlocked", "LoopWatch", "capture_audit", "forbid_loop_blocking"]

DEFAULT_START = 1_700_000_000.0  # 2023-11-14T22:13:20Z: a fixed, realistic epoch


class FakeClock:
    """A clock that only moves when told to; pass it as ``clock=``.

    Args:
        start: the initial time in seconds since the epoch.
    """

    __slots__ = ("_now",)

    def __init__(self, start: float = DEFAULT_START) -> None:
        self._now = self._checked(start)

    def __call__(self) -> float:
        return self._now

    def __repr__(self) -> str:
        return f"FakeClock({self._now!r})"

    @property
    def now(self) -> float:
        """The current fake time."""
        return self._now

    def advance(self, by: Duration) -> None:
        """Move forward by ``by`` seconds (or a ``timedelta``); zero is allowed."""
        self._now += seconds(by, name="advance", allow_zero=True)

    def rewind(self, by: Duration) -> None:
        """Move backward, to test behaviour under clock skew."""
        self._now -= seconds(by, name="rewind", allow_zero=True)

    def set(self, when: float) -> None:
        """Jump to an absolute time."""
        self._now = self._checked(when)

    @staticmethod
    def _checked(value: float) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigurationError("FakeClock time must be a number of seconds")
        if not math.isfinite(value):
            raise ConfigurationError("FakeClock time must be finite")
        return float(value)


class LoopBlocked(AssertionError):
    """The event loop was blocked for longer than :func:`forbid_loop_blocking` allows."""


class LoopWatch:
    """What :func:`forbid_loop_blocking` saw: the longest stall of the loop, in seconds."""

    __slots__ = ("_due", "longest_stall", "threshold", "tick")

    def __init__(self, threshold: float, tick: float) -> None:
        self.threshold = threshold
        self.tick = tick
        self.longest_stall = 0.0
        self._due: float | None = None

    def _saw(self, now: float) -> None:
        if self._due is not None:
            self.longest_stall = max(self.longest_stall, now - self._due)

    async def _beat(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            self._due = loop.time() + self.tick
            await asyncio.sleep(self.tick)
            self._saw(loop.time())


@contextlib.asynccontextmanager
async def forbid_loop_blocking(threshold: float = 0.05) -> AsyncIterator[LoopWatch]:
    """Fail with :class:`LoopBlocked` if the running loop stalls longer than ``threshold``.

    A heartbeat task wakes every ``threshold / 4`` seconds inside the block and
    measures how late it wakes up: a late wake-up means something ran on the
    loop without yielding (a password hash, a sync database call). Stalls are
    detected to within one tick. The body's own exceptions pass through.

    Args:
        threshold: the longest tolerated stall, in seconds.
    """
    limit = seconds(threshold, name="threshold")
    watch = LoopWatch(limit, max(limit / 4, 0.001))
    loop = asyncio.get_running_loop()
    beat = loop.create_task(watch._beat())
    await asyncio.sleep(0)  # let the heartbeat take its first pulse
    try:
        yield watch
    finally:
        watch._saw(loop.time())  # a stall just before the end has not been measured yet
        beat.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await beat
    if watch.longest_stall > limit:
        raise LoopBlocked(
            f"the event loop was blocked for {watch.longest_stall:.3f}s (threshold {limit:g}s)"
        )


class _Collect(logging.Handler):
    def __init__(self, records: list[logging.LogRecord]) -> None:
        super().__init__(logging.DEBUG)
        self.records = records

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextlib.contextmanager
def capture_audit() -> Iterator[list[logging.LogRecord]]:
    """Collect every record the ``apisec.audit`` logger emits inside the block, at every level.

    Yields the list the records are appended to; each carries ``event``,
    ``principal``, ``client``, ``reason`` and ``details``. The logger's level
    is lowered to DEBUG for the block and restored after it, and nothing
    else about logging changes.
    """
    logger = logging.getLogger(AUDIT_LOGGER_NAME)
    records: list[logging.LogRecord] = []
    handler = _Collect(records)
    level = logger.level
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    try:
        yield records
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
