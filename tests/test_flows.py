"""Flows: one generator, a sync and an async driver, closed in every case."""

from __future__ import annotations

from typing import NamedTuple

import pytest

from apisec import StoreError
from apisec._flows import Flow, adrive, drive


class Store:
    """A store whose one operation doubles a number, or fails on negative ones."""

    def double(self, n: int) -> int:
        if n < 0:
            raise StoreError("backend down")
        return 2 * n


class AsyncStore:
    """The async twin of Store."""

    async def double(self, n: int) -> int:
        return Store().double(n)


class Double(NamedTuple):
    n: int

    def run(self, store: Store) -> int:
        return store.double(self.n)

    async def arun(self, store: AsyncStore) -> int:
        return await store.double(self.n)


class Trace:
    def __init__(self) -> None:
        self.closed = False
        self.caught: list[StoreError] = []

    def flow(self, *numbers: int, recover: bool = False) -> Flow[Store, AsyncStore, list[int]]:
        results = []
        try:
            for n in numbers:
                try:
                    results.append((yield Double(n=n)))
                except StoreError as exc:
                    self.caught.append(exc)
                    if not recover:
                        raise
                    results.append(0)
            return results
        finally:
            self.closed = True


class TestDrivers:
    def test_sync_driver_sends_each_result_back(self) -> None:
        """drive() runs every call on the store and returns the flow's result."""
        trace = Trace()
        assert drive(trace.flow(1, 2, 3), Store()) == [2, 4, 6]
        assert trace.closed

    async def test_async_driver_awaits_each_call(self) -> None:
        """adrive() awaits every call on the async store and returns the flow's result."""
        trace = Trace()
        assert await adrive(trace.flow(1, 2, 3), AsyncStore()) == [2, 4, 6]
        assert trace.closed

    def test_a_store_failure_is_thrown_into_the_flow(self) -> None:
        """The flow sees the store's exception at its yield and may recover from it."""
        trace = Trace()
        assert drive(trace.flow(1, -1, 3, recover=True), Store()) == [2, 0, 6]
        assert [e.message for e in trace.caught] == ["backend down"]

    async def test_the_async_driver_throws_failures_into_the_flow_too(self) -> None:
        """adrive() throws a failed call's exception into the flow like drive()."""
        trace = Trace()
        assert await adrive(trace.flow(-1, 2, recover=True), AsyncStore()) == [0, 4]
        assert len(trace.caught) == 1

    def test_an_unhandled_failure_propagates_and_the_flow_is_closed(self) -> None:
        """A failure the flow does not handle reaches the caller, after the flow closed."""
        trace = Trace()
        with pytest.raises(StoreError, match="backend down"):
            drive(trace.flow(1, -1, 3), Store())
        assert trace.closed and len(trace.caught) == 1

    async def test_the_async_driver_closes_the_flow_on_failure_too(self) -> None:
        """adrive() lets an unhandled failure through after closing the flow."""
        trace = Trace()
        with pytest.raises(StoreError, match="backend down"):
            await adrive(trace.flow(1, -1, 3), AsyncStore())
        assert trace.closed and len(trace.caught) == 1

    def test_the_flow_is_closed_when_the_driver_is_interrupted(self) -> None:
        """A BaseException (not thrown into the flow) still closes the flow."""

        class Interrupting(Store):
            def double(self, n: int) -> int:
                raise KeyboardInterrupt

        trace = Trace()
        with pytest.raises(KeyboardInterrupt):
            drive(trace.flow(1), Interrupting())
        assert trace.closed and trace.caught == []
