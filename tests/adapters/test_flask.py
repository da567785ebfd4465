"""apisec.flask: the acceptance scenario through Flask's test client, then what only Flask adds."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import pytest
from flask import Blueprint, Flask, abort, got_request_exception, request

from apisec.authz import require_owner
from apisec.errors import ConfigurationError
from apisec.flask import (
    ApiSec,
    api_key_only,
    limit,
    principal,
    public,
    scopes,
    webhook,
    webhook_body,
)
from apisec.ratelimit import FixedWindow, RateLimiter
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


def build(s: Services, app: Flask | None = None) -> Flask:
    """The scenario's API as a Flask app."""
    app = app or Flask("scenario")
    ApiSec(
        app,
        tokens=s.tokens,
        keys=s.keys,
        cors=s.cors,
        client_limiter=s.client_limiter,
        principal_limiter=s.principal_limiter,
        max_body=MAX_BODY,
    )

    @app.get("/health")
    @public
    def health() -> Any:
        return {"ok": True}

    @app.get("/orders")
    @scopes("orders:read")
    def list_orders() -> Any:
        who = principal()
        return principal_reply(who.subject, who.kind, who.scopes)

    @app.post("/orders")
    @scopes("orders:write")
    def create_order() -> Any:
        who = principal()
        return principal_reply(who.subject, who.kind, who.scopes), 201

    @app.get("/boom")
    @public
    def boom() -> Any:
        raise RuntimeError(f"database password is {SECRET_IN_CRASH}")

    @app.post("/hooks/payments")
    @webhook(s.verifier)
    def payments() -> Any:
        assert request.get_data() == webhook_body()  # the same bytes either way
        return hook_reply(webhook_body())

    return app


def sender(app: Flask) -> Send:
    """A Send over Flask's own test client."""
    test_client = app.test_client()

    def send(
        method: str,
        path: str,
        *,
        headers: Sequence[tuple[str, str]] = (),
        body: bytes = b"",
        client: str = "198.51.100.7",
    ) -> Reply:
        response = test_client.open(
            path,
            method=method,
            headers=list(headers),
            data=body,
            environ_base={"REMOTE_ADDR": client},
        )
        pairs = tuple((name.lower(), value) for name, value in response.headers.items())
        return Reply(response.status_code, pairs, response.get_data())

    return send


@pytest.fixture
def services() -> Services:
    return Services()


@pytest.fixture
def scenario(services: Services) -> Scenario:
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
        """400/401/403/404/405/413/429 are all problem+json, Flask's own 404 and 405 included."""
        scenario.problems()

    def test_server_error(self, scenario: Scenario, caplog: pytest.LogCaptureFixture) -> None:
        """A crash is a bare 500 problem whose correlation id is in the log with the trace."""
        scenario.server_error(caplog)

    def test_webhook(self, scenario: Scenario) -> None:
        """A verified delivery reaches the handler byte for byte; tampered ones are refused."""
        scenario.webhook()


@pytest.fixture
def app(services: Services) -> Flask:
    return build(services)


class TestFlaskErrors:
    def test_crash_is_logged_once_by_apisec_and_still_signalled(
        self, app: Flask, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Flask neither logs nor renders the crash itself; got_request_exception still fires."""
        heard: list[BaseException] = []

        def listener(sender: Flask, exception: BaseException, **extra: Any) -> None:
            heard.append(exception)

        got_request_exception.connect(listener, app)
        try:
            with caplog.at_level(logging.ERROR):
                response = app.test_client().get("/boom")
        finally:
            got_request_exception.disconnect(listener, app)
        assert response.status_code == 500
        assert [type(e) for e in heard] == [RuntimeError]
        errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert [r.name for r in errors] == ["apisec.adapters"]
        assert response.get_json()["instance"] in errors[0].getMessage()

    def test_abort_keeps_the_apps_own_detail_and_a_5xx_gets_an_id(
        self, services: Services, caplog: pytest.LogCaptureFixture
    ) -> None:
        """abort(410, text) shows the text as detail; abort(503) has a logged id and no detail."""
        app = Flask("aborts")

        @app.get("/archived")
        @public
        def archived() -> Any:
            abort(410, "this order was archived")

        @app.get("/down")
        @public
        def down() -> Any:
            abort(503, "db01 is down for maintenance")

        build(services, app)
        client = app.test_client()
        gone = client.get("/archived")
        assert gone.status_code == 410
        assert gone.get_json()["detail"] == "this order was archived"
        with caplog.at_level(logging.ERROR, logger="apisec.adapters"):
            unavailable = client.get("/down")
        body = unavailable.get_json()
        assert unavailable.status_code == 503
        assert "detail" not in body
        assert b"db01" not in unavailable.data
        assert body["instance"] in caplog.records[0].getMessage()

    def test_apisec_errors_from_views_are_problems_with_audit_context(
        self, services: Services, audit_records: list[logging.LogRecord]
    ) -> None:
        """require_owner's 404 in a view: a problem; its audit event names caller and client."""
        app = Flask("owners")

        @app.get("/orders/<owner>")
        def order(owner: str) -> Any:
            require_owner(principal(), owner)
            return {"owner": owner}

        build(services, app)
        auth = [services.bearer("user_1")]
        client = app.test_client()
        assert client.get("/orders/user_1", headers=auth).status_code == 200
        hidden = client.get(
            "/orders/user_2", headers=auth, environ_base={"REMOTE_ADDR": "203.0.113.77"}
        )
        assert hidden.status_code == 404
        assert hidden.content_type == "application/problem+json"
        (denied,) = [r for r in audit_records if r.event == "authz.denied"]  # type: ignore[attr-defined]
        assert denied.principal == "user_1"  # type: ignore[attr-defined]
        assert denied.client == "203.0.113.77"  # type: ignore[attr-defined]

    def test_redirects_of_the_router_stay_redirects(self, services: Services) -> None:
        """A missing trailing slash is still Flask's 308 redirect (for a caller), not a problem."""
        app = Flask("slashes")

        @app.get("/docs/")
        def docs() -> Any:
            return {"docs": True}

        build(services, app)
        response = app.test_client().get("/docs", headers=[services.bearer("u")])
        assert response.status_code == 308
        assert response.headers["location"].endswith("/docs/")


class TestDecorators:
    def test_api_key_only_refuses_tokens_with_the_key_challenge(self, services: Services) -> None:
        """A bearer token is no credential on an API-key-only view: 401 naming only the key."""
        app = Flask("keys")

        @app.get("/reports")
        @api_key_only
        def reports() -> Any:
            return {"kind": principal().kind}

        build(services, app)
        client = app.test_client()
        by_token = client.get("/reports", headers=[services.bearer("user_1")])
        assert by_token.status_code == 401
        assert by_token.headers.getlist("WWW-Authenticate") == [
            'ApiKey realm="api", header="X-API-Key"'
        ]
        by_key = client.get("/reports", headers={"X-API-Key": services.read_key.plaintext})
        assert by_key.get_json() == {"kind": "api_key"}

    def test_view_limit_adds_to_the_app_wide_ones(self, services: Services) -> None:
        """A view's own limit is enforced and reported while it is the tightest budget."""
        app = Flask("limits")
        search_limit = RateLimiter(FixedWindow(2, 60), prefix="search", clock=services.clock)

        @app.get("/search")
        @public
        @limit(search_limit)
        def search() -> Any:
            return {"hits": []}

        build(services, app)
        client = app.test_client()
        replies = [client.get("/search") for _ in range(3)]
        assert [r.status_code for r in replies] == [200, 200, 429]
        assert [r.headers["X-RateLimit-Limit"] for r in replies] == ["2", "2", "2"]
        assert [r.headers["X-RateLimit-Remaining"] for r in replies] == ["1", "0", "0"]
        assert client.get("/health").status_code == 200  # other views keep their budget

    def test_principal_on_a_public_view_is_a_401(self, services: Services) -> None:
        """Asking for the principal where none authenticated is a 401 problem, not a crash."""
        app = Flask("public")

        @app.get("/whoami")
        @public
        def whoami() -> Any:
            return {"subject": principal().subject}

        build(services, app)
        response = app.test_client().get("/whoami")
        assert response.status_code == 401
        assert response.content_type == "application/problem+json"

    def test_blueprint_views_carry_their_rules(self, services: Services) -> None:
        """Decorators work on blueprint views (endpoints named bp.view)."""
        app = Flask("blueprints")
        bp = Blueprint("v2", __name__, url_prefix="/v2")

        @bp.get("/status")
        @public
        def status() -> Any:
            return {"ok": True}

        @bp.get("/secret")
        def secret() -> Any:
            return {"subject": principal().subject}

        app.register_blueprint(bp)
        build(services, app)
        client = app.test_client()
        assert client.get("/v2/status").status_code == 200
        assert client.get("/v2/secret").status_code == 401
        assert client.get("/v2/secret", headers=[services.bearer("u")]).status_code == 200

    def test_unrouted_urls_need_credentials(self, app: Flask, services: Services) -> None:
        """Deny by default: an unknown URL is a 401 until the caller authenticates, then a 404."""
        client = app.test_client()
        assert client.get("/admin").status_code == 401
        assert client.get("/admin", headers=[services.bearer("u")]).status_code == 404

    def test_decorating_never_changes_the_function_itself(self, services: Services) -> None:
        """A function routed twice stays protected where it was not marked public (fail closed)."""
        app = Flask("shared")

        def hello() -> Any:
            return {"hello": True}

        app.add_url_rule("/open", "open", public(hello))
        app.add_url_rule("/closed", "closed", hello)
        build(services, app)
        client = app.test_client()
        assert client.get("/open").status_code == 200
        assert client.get("/closed").status_code == 401

    def test_async_views_keep_working(self, services: Services) -> None:
        """A decorated async view is still awaited by Flask."""
        app = Flask("async")

        @app.get("/later")
        @public
        async def later() -> Any:
            return {"later": True}

        build(services, app)
        assert app.test_client().get("/later").get_json() == {"later": True}

    def test_a_public_view_cannot_also_demand_scopes(self) -> None:
        """Contradictory decorators fail when the module is imported, not on a request."""
        with pytest.raises(ConfigurationError):

            @public
            @scopes("orders:read")
            def view() -> None: ...


class TestExtension:
    def test_init_app_returns_the_app_and_refuses_a_second_time(self, services: Services) -> None:
        """ApiSec(...).init_app(app) is the factory pattern; attaching twice is an error."""
        extension = ApiSec(tokens=services.tokens)
        app = Flask("factory")
        assert extension.init_app(app) is app
        assert app.extensions["apisec"] is extension
        with pytest.raises(ConfigurationError):
            extension.init_app(app)

    @pytest.mark.parametrize(
        "options",
        [{"cors": "*"}, {"client_limiter": "10/minute"}, {"max_body": 0}, {"tokens": "secret"}],
    )
    def test_options_are_validated_at_construction(self, options: dict[str, Any]) -> None:
        """A bad option raises ConfigurationError before any app or request exists."""
        with pytest.raises(ConfigurationError):
            ApiSec(**options)
