"""Helpers for testing code that uses apisec.

>>> clock = FakeClock(1_000.0)
>>> clock()
1000.0
>>> clock.advance(30)
>>> clock()
1030.0
"""

from __future__ import annotations

import math

from apisec._clock import Duration, seconds
from apisec.errors import ConfigurationError

__all__ = ["FakeClock"]

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
