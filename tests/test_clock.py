"""The clock contract and the FakeClock test helper."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest

from apisec import ConfigurationError
from apisec._clock import seconds, wall_clock
from apisec.testing import FakeClock


def test_wall_clock_is_epoch_seconds() -> None:
    """The default clock reads the system time in seconds."""
    before = time.time()
    now = wall_clock()
    assert before <= now <= time.time()


def test_fake_clock_only_moves_when_told() -> None:
    """advance, rewind and set move the fake time; calling it reads it."""
    clock = FakeClock(100.0)
    assert clock() == clock.now == 100.0
    clock.advance(2.5)
    clock.advance(timedelta(minutes=1))
    assert clock() == 162.5
    clock.rewind(62.5)
    assert clock() == 100.0
    clock.set(5)
    assert clock() == 5.0


@pytest.mark.parametrize("bad", [-1, float("nan"), float("inf"), "1", None, True])
def test_fake_clock_refuses_nonsense_steps(bad: Any) -> None:
    """Negative, non-finite or non-numeric steps are configuration errors."""
    clock = FakeClock()
    with pytest.raises(ConfigurationError):
        clock.advance(bad)
    with pytest.raises(ConfigurationError):
        FakeClock(float("nan"))


@pytest.mark.parametrize(
    ("value", "expected"), [(900, 900.0), (0.5, 0.5), (timedelta(hours=1), 3600.0)]
)
def test_seconds_normalizes_durations(value: Any, expected: float) -> None:
    """Durations may be numbers of seconds or timedeltas."""
    assert seconds(value) == expected


@pytest.mark.parametrize("bad", [0, -5, timedelta(0), float("inf"), "10", True, None])
def test_seconds_refuses_zero_negative_and_junk(bad: Any) -> None:
    """Zero (unless allowed), negative, infinite and non-numeric durations are refused."""
    with pytest.raises(ConfigurationError, match="ttl"):
        seconds(bad, name="ttl")


def test_seconds_allows_zero_when_asked() -> None:
    """allow_zero admits exactly zero."""
    assert seconds(0, allow_zero=True) == 0.0
