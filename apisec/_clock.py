"""The clock type and the default wall clock.

Every stateful component takes ``clock``: a zero-argument callable returning
seconds since the epoch as a float. Production code uses :func:`wall_clock`;
tests drive :class:`apisec.testing.FakeClock` and never sleep.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from datetime import timedelta

from apisec.errors import ConfigurationError

__all__ = ["Clock", "Duration", "seconds", "wall_clock"]

Clock = Callable[[], float]
#: A duration given either as seconds or as a ``timedelta``.
Duration = float | int | timedelta


def wall_clock() -> float:
    """Seconds since the epoch, from the system clock."""
    return time.time()


def seconds(value: Duration, *, name: str = "duration", allow_zero: bool = False) -> float:
    """Normalize a duration to positive, finite seconds, or raise ``ConfigurationError``.

    >>> seconds(timedelta(minutes=15))
    900.0
    """
    if isinstance(value, timedelta):
        result = value.total_seconds()
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        result = float(value)
    else:
        raise ConfigurationError(f"{name} must be a number of seconds or a timedelta")
    if not math.isfinite(result) or result < 0 or (result == 0 and not allow_zero):
        raise ConfigurationError(f"{name} must be a positive, finite duration, got {value!r}")
    return result
