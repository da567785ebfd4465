"""The acceptance scenario inside Litestar, through Litestar's own TestClient."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import msgspec
import pytest
from litestar import Litestar, Request, get, post
from litestar.params import JSONBody
from litestar.plugins.problem_details import ProblemDetailsConfig, ProblemDetailsPlugin
from litestar.testing import TestClient

from apisec import asgi
from apisec._types import ASGIApp
from apisec.authz import require_principal
from apisec.testing import FakeClock
from tests.adapters.scenario import (
    CHECKS,
    PATH_SCOPES,
    Framework,
    Scenario,
    Services,
    stack_options,
)


class NewOrder(msgspec.Struct):
    quantity: int


@get("/health")
async def health() -> dict[str, bool]:
    return {"ok": True}


@get(["/orders", "/reports"])
async def whoami(request: Request[Any, Any, Any]) -> dict[str, str]:
    return {"subject": require_principal(request.scope).subject}  # type: ignore[arg-type]


@post("/orders")
async def create_order(data: JSONBody[NewOrder]) -> dict[str, int]:
    return {"quantity": data.quantity}


@post("/webhooks/payments", status_code=200)
async def payment(request: Request[Any, Any, Any]) -> dict[str, int]:
    return {"received": len(await request.body())}


@get("/boom")
async def boom() -> None:
    raise RuntimeError("database password is hunter2")


def let_apisec_answer(request: Request[Any, Any, Any], exc: Exception) -> Any:
    """Unexpected exceptions leave Litestar; apisec's ProblemDetailsMiddleware answers them."""
    raise exc


def build(services: Services) -> ASGIApp:
    """The scenario's routes as a Litestar app, wrapped in apisec's whole stack."""
    app = Litestar(
        [health, whoami, create_order, payment, boom],
        plugins=[ProblemDetailsPlugin(ProblemDetailsConfig(enable_for_all_http_exceptions=True))],
        exception_handlers={Exception: let_apisec_answer},
        logging_config=None,
    )
    return asgi.protect(app, **stack_options(services), scopes=PATH_SCOPES)  # type: ignore[arg-type]


@pytest.fixture
def scenario(clock: FakeClock) -> Iterator[Scenario]:
    services = Services.create(clock)
    with TestClient(build(services), raise_server_exceptions=False) as client:  # type: ignore[type-var]
        yield Scenario(client, services, Framework("litestar", validation_status=400))


@pytest.mark.parametrize("check", CHECKS)
def test_acceptance_scenario(scenario: Scenario, check: str) -> None:
    """Each check of the shared acceptance scenario holds for a protected Litestar app."""
    getattr(scenario, check)()
