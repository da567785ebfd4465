"""Falcon behind apisec.wsgi.protect: the acceptance scenario through Falcon's test client."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import falcon
import falcon.testing
import pytest

from apisec import wsgi
from apisec.problems import Problem
from tests.adapters.wsgi_scenario import (
    MAX_BODY,
    SECRET_IN_CRASH,
    Reply,
    Scenario,
    Send,
    Services,
    hook_reply,
    principal_reply,
)


def problem_errors(req: falcon.Request, resp: falcon.Response, error: falcon.HTTPError) -> None:
    """Falcon's own HTTP errors (404, 405...) as RFC 9457 problems."""
    resp.content_type = Problem.media_type
    resp.data = Problem(error.status_code, detail=error.description).to_json()


def unhandled(req: falcon.Request, resp: falcon.Response, ex: Exception, params: Any) -> None:
    """Let a crash reach ProblemDetailsMiddleware, which logs it with the 500's correlation id."""
    raise ex


class Health:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {"ok": True}


class Orders:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        who = wsgi.get_principal(req.env)
        assert who is not None
        resp.media = principal_reply(who.subject, who.kind, who.scopes)

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        self.on_get(req, resp)
        resp.status = falcon.HTTP_201


class Boom:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        raise RuntimeError(f"database password is {SECRET_IN_CRASH}")


class Payments:
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = hook_reply(req.bounded_stream.read())


def build(s: Services) -> Any:
    """The scenario's API: a falcon.App inside apisec.wsgi.protect."""
    app = falcon.App()
    app.set_error_serializer(problem_errors)
    app.add_error_handler(Exception, unhandled)
    app.add_route("/health", Health())
    app.add_route("/orders", Orders())
    app.add_route("/boom", Boom())
    app.add_route("/hooks/payments", Payments())
    return wsgi.protect(
        app,
        tokens=s.tokens,
        keys=s.keys,
        scopes={"GET /orders": ["orders:read"], "POST /orders": ["orders:write"]},
        public_paths=["/health", "/boom"],
        cors=s.cors,
        client_limiter=s.client_limiter,
        principal_limiter=s.principal_limiter,
        max_body=MAX_BODY,
        webhooks={"/hooks/payments": s.verifier},
    )


class Recorder:
    """Keeps the raw header list of the last response: Falcon's Result folds repeated fields."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.headers: list[tuple[str, str]] = []

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        def record(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            self.headers = list(headers)
            return start_response(status, headers, exc_info)

        return self.app(environ, record)  # type: ignore[no-any-return]


def sender(app: Any) -> Send:
    """A Send over Falcon's own test client."""
    recorder = Recorder(app)
    test_client = falcon.testing.TestClient(recorder)

    def send(
        method: str,
        path: str,
        *,
        headers: Sequence[tuple[str, str]] = (),
        body: bytes = b"",
        client: str = "198.51.100.7",
    ) -> Reply:
        result = test_client.simulate_request(
            method, path, headers=list(headers), body=body, remote_addr=client
        )
        pairs = tuple((name.lower(), value) for name, value in recorder.headers)
        return Reply(result.status_code, pairs, result.content)

    return send


@pytest.fixture
def scenario() -> Scenario:
    services = Services()
    return Scenario(services, sender(build(services)))


class TestScenario:
    def test_authentication(self, scenario: Scenario) -> None:
        """Tokens and API keys: 401 challenges, 403 insufficient_scope, 400 for two credentials."""
        scenario.authentication()

    def test_client_limit(self, scenario: Scenario) -> None:
        """The per-client limit counts down in headers and ends in a truthful 429."""
        scenario.client_limit()

    def test_principal_limit(self, scenario: Scenario) -> None:
        """The per-principal limit follows the caller across addresses and reports its budget."""
        scenario.principal_limit()

    def test_cors(self, scenario: Scenario) -> None:
        """Preflights and actual requests, allowed and refused, look-alike origins included."""
        scenario.cors()

    def test_security_headers(self, scenario: Scenario) -> None:
        """Security headers on 200, 404, 429, 500 and preflights."""
        scenario.security_headers()

    def test_problems(self, scenario: Scenario) -> None:
        """400/401/403/404/405/413/429 are all problem+json, Falcon's own 404 and 405 included."""
        scenario.problems()

    def test_server_error(self, scenario: Scenario, caplog: pytest.LogCaptureFixture) -> None:
        """A crash is a bare 500 problem whose correlation id is in the log with the trace."""
        scenario.server_error(caplog)

    def test_webhook(self, scenario: Scenario) -> None:
        """A verified delivery reaches the resource byte for byte; tampered ones are refused."""
        scenario.webhook()


class TestFalconDefaults:
    def test_without_the_hooks_falcon_errors_stay_json(self) -> None:
        """Why the two hooks: Falcon's own errors are plain JSON, which protect() leaves alone."""
        app = falcon.App()
        reply = sender(wsgi.protect(app))("GET", "/missing")
        assert reply.status == 404
        assert reply.header("content-type") == "application/json"
