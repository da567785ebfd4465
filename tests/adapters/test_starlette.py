"""The acceptance scenario inside Starlette, through Starlette's own TestClient."""

from __future__ import annotations

from collections.abc import Iterator

import attrs
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from apisec import asgi
from apisec._types import ASGIApp
from apisec.authz import require_principal
from apisec.testing import FakeClock
from apisec.validation import integer, parse_json, validate
from tests.adapters.scenario import (
    CHECKS,
    MAX_BODY,
    PATH_SCOPES,
    Framework,
    Scenario,
    Services,
    stack_options,
)


@attrs.define(kw_only=True)
class NewOrder:
    quantity: int = integer(min=1, max=100)


def build(services: Services) -> ASGIApp:
    """The scenario's routes as a Starlette app, wrapped in apisec's whole stack."""

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"ok": True})

    async def orders(request: Request) -> JSONResponse:
        return JSONResponse({"subject": require_principal(request.scope).subject})

    async def create_order(request: Request) -> JSONResponse:
        order = validate(NewOrder, parse_json(await request.body(), max_bytes=MAX_BODY))
        return JSONResponse({"quantity": order.quantity}, status_code=201)

    async def payment(request: Request) -> JSONResponse:
        return JSONResponse({"received": len(await request.body())})

    async def boom(request: Request) -> JSONResponse:
        raise RuntimeError("database password is hunter2")

    app = Starlette(
        routes=[
            Route("/health", health),
            Route("/orders", orders, methods=["GET"]),
            Route("/orders", create_order, methods=["POST"]),
            Route("/reports", orders),
            Route("/webhooks/payments", payment, methods=["POST"]),
            Route("/boom", boom),
        ]
    )
    return asgi.protect(app, **stack_options(services), scopes=PATH_SCOPES)


@pytest.fixture
def scenario(clock: FakeClock) -> Iterator[Scenario]:
    services = Services.create(clock)
    with TestClient(build(services), raise_server_exceptions=False) as client:
        yield Scenario(client, services, Framework("starlette"))


@pytest.mark.parametrize("check", CHECKS)
def test_acceptance_scenario(scenario: Scenario, check: str) -> None:
    """Each check of the shared acceptance scenario holds for a protected Starlette app."""
    getattr(scenario, check)()
