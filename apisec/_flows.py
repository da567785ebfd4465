"""Multi-step operations written once as generators, run by a sync and an async driver.

A *flow* is a generator that yields :class:`Call` objects — one typed store
operation each, such as ``Consume(family_id=..., token_hash=..., now=...)`` —
and receives each call's result at its ``yield``; its ``return`` value is
the operation's result. :func:`drive` runs the calls on a synchronous store,
:func:`adrive` awaits them on an async one, so the logic exists once and the
twins differ only in which driver they use (httpx drives its ``auth_flow``
the same way).

A call that raises is thrown into the flow at its ``yield``: the flow may
catch it (audit it, degrade, translate it) or let it propagate. Either way
the flow is closed when the driver returns or raises. Store calls are built
like function calls: one argument positionally, several by keyword.

    def _revoke_flow(self, token: str) -> Flow[RefreshTokenStore, AsyncRefreshTokenStore, None]:
        record = yield Get(family_id=family_id, token_hash=token_hash)
        if record is not None:
            yield RevokeFamily(family_id)
"""

from __future__ import annotations

from collections.abc import Awaitable, Generator
from typing import Any, Protocol, TypeVar

__all__ = ["Call", "Flow", "adrive", "drive"]

S_contra = TypeVar("S_contra", contravariant=True)
A_contra = TypeVar("A_contra", contravariant=True)
R_co = TypeVar("R_co", covariant=True)
S = TypeVar("S")
A = TypeVar("A")
T = TypeVar("T")


class Call(Protocol[S_contra, A_contra, R_co]):
    """One store operation a flow yields, run on a sync store or awaited on an async one."""

    def run(self, store: S_contra, /) -> R_co: ...

    def arun(self, store: A_contra, /) -> Awaitable[R_co]: ...


#: A flow over sync stores ``S`` and async stores ``A``, returning ``T``.
Flow = Generator[Call[S, A, Any], Any, T]


# The drivers close the flow whenever they leave it suspended. A flow that
# returned or raised is closed already, so they close it on the way out of
# ``except BaseException`` rather than in ``finally``, which would call a no-op
# close() once per operation (a measurable share of an API-key check).


def drive(flow: Flow[S, Any, T], store: S) -> T:
    """Run ``flow`` to its end on a synchronous ``store`` and return its result."""
    try:
        call = next(flow)
        while True:
            try:
                result = call.run(store)
            except Exception as exc:  # the flow decides what a store failure means
                call = flow.throw(exc)
            else:
                call = flow.send(result)
    except StopIteration as stop:
        value: T = stop.value
        return value
    except BaseException:
        flow.close()
        raise


async def adrive(flow: Flow[Any, A, T], store: A) -> T:
    """Run ``flow`` to its end on an async ``store``, awaiting each call; return its result."""
    try:
        call = next(flow)
        while True:
            try:
                result = await call.arun(store)
            except Exception as exc:  # the flow decides what a store failure means
                call = flow.throw(exc)
            else:
                call = flow.send(result)
    except StopIteration as stop:
        value: T = stop.value
        return value
    except BaseException:  # cancelled, interrupted, or the flow's own failure
        flow.close()
        raise
