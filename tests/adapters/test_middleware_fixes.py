"""Middleware behaviours found while running the stack inside real frameworks."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from apisec import asgi
from apisec._types import Receive, Scope, Send
from apisec.errors import NotFound, ValidationError
from apisec.problems import FieldError
from apisec.ratelimit import FixedWindow, RateLimiter
from apisec.testing import FakeClock
from tests.support.harness import Harness


def problem(response: Any) -> dict[str, Any]:
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = json.loads(response.content)
    assert body["status"] == response.status_code
    return body


def _reraising(error: Exception) -> Any:
    """An app that answers ``error`` with its own plain-text 500, then re-raises it (Starlette)."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"content-type", b"text/plain; charset=utf-8")]
        await send({"type": "http.response.start", "status": 500, "headers": headers})
        await send({"type": "http.response.body", "body": b"Internal Server Error"})
        raise error

    return app


@pytest.fixture
def harnesses() -> Iterator[list[Harness]]:
    made: list[Harness] = []
    yield made
    for harness in made:
        harness.close()


class TestFrameworkFiveHundredThenReraise:
    def test_apisec_error_keeps_its_status(self, harnesses: list[Harness]) -> None:
        """A 500 page followed by the ApiSecError itself is replaced by that error's problem."""
        error = ValidationError([FieldError("quantity", "must be an integer", "type")])
        harness = Harness("asgi", lambda m, app: m.ProblemDetailsMiddleware(app), _reraising(error))
        harnesses.append(harness)
        response = harness.request("POST", "/orders")
        assert response.status_code == 422
        assert problem(response)["errors"][0]["field"] == "quantity"

    def test_crash_is_one_500_logged_once(
        self, harnesses: list[Harness], caplog: pytest.LogCaptureFixture
    ) -> None:
        """A 500 page followed by a crash is one 500 problem; its id is logged once."""
        harness = Harness(
            "asgi",
            lambda m, app: m.ProblemDetailsMiddleware(app),
            _reraising(RuntimeError("password hunter2")),
        )
        harnesses.append(harness)
        with caplog.at_level(logging.ERROR, logger="apisec.adapters"):
            response = harness.request("GET", "/boom")
        body = problem(response)
        assert response.status_code == 500
        assert b"hunter2" not in response.content
        (record,) = [r for r in caplog.records if r.name == "apisec.adapters"]
        assert body["instance"] in record.getMessage()

    def test_inside_starlette(self) -> None:
        """An ApiSecError raised by a Starlette endpoint leaves with its own status, not 500."""

        async def order(request: Request) -> JSONResponse:
            raise NotFound("order 7 belongs to someone else")

        app = asgi.ProblemDetailsMiddleware(Starlette(routes=[Route("/orders/7", order)]))
        with TestClient(app, raise_server_exceptions=False) as client:
            response = client.get("/orders/7")
        assert response.status_code == 404
        assert problem(response)["detail"] == NotFound.default_detail


class TestStackedLimiters:
    @pytest.mark.parametrize("kind", ["asgi", "wsgi"])
    def test_the_tighter_limit_is_reported(
        self, harnesses: list[Harness], clock: FakeClock, kind: str
    ) -> None:
        """Per client outside, per route inside: headers and the 429 describe the tighter one."""
        loose = RateLimiter(FixedWindow(10, 60), clock=clock)
        tight = RateLimiter(FixedWindow(2, 60), prefix="tight", clock=clock)
        harness = Harness(
            kind,  # type: ignore[arg-type]
            lambda m, app: m.RateLimitMiddleware(
                m.RateLimitMiddleware(app, tight, key=lambda request: "one-key"), loose
            ),
        )
        harnesses.append(harness)
        first, second, third = (harness.request("GET", "/x") for _ in range(3))
        assert [r.headers["x-ratelimit-limit"] for r in (first, second)] == ["2", "2"]
        assert [r.headers["x-ratelimit-remaining"] for r in (first, second)] == ["1", "0"]
        assert third.status_code == 429
        assert third.headers["x-ratelimit-limit"] == "2"
        assert third.headers["x-ratelimit-remaining"] == "0"

    @pytest.mark.parametrize("kind", ["asgi", "wsgi"])
    def test_the_outer_limit_is_reported_when_it_is_tighter(
        self, harnesses: list[Harness], clock: FakeClock, kind: str
    ) -> None:
        """An outer limiter with fewer units left replaces the inner one's fields."""
        outer = RateLimiter(FixedWindow(1, 60), clock=clock)
        inner = RateLimiter(FixedWindow(10, 60), prefix="inner", clock=clock)
        harness = Harness(
            kind,  # type: ignore[arg-type]
            lambda m, app: m.RateLimitMiddleware(
                m.RateLimitMiddleware(app, inner, key=lambda request: "one-key"), outer
            ),
        )
        harnesses.append(harness)
        response = harness.request("GET", "/x")
        assert response.headers["x-ratelimit-limit"] == "1"
        assert response.headers["x-ratelimit-remaining"] == "0"
        assert response.headers.get_list("x-ratelimit-remaining") == ["0"]
