"""apisec.fastapi inside FastAPI: the acceptance scenario, OpenAPI, each dependency, install().

No ``from __future__ import annotations`` here: FastAPI reads the dependencies
from the annotations, and routes defined inside functions close over local
dependency objects that string annotations could not reach.
"""

import json
import logging
from collections.abc import Awaitable, Callable, Iterator
from typing import Annotated, Any

import pytest
import redis
from fastapi import Depends, FastAPI, HTTPException, Request, Security
from fastapi.responses import PlainTextResponse
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel
from starlette.responses import Response

from apisec import asgi
from apisec._types import ASGIApp
from apisec.apikeys import ApiKeyService
from apisec.authz import Principal, get_principal
from apisec.errors import ConfigurationError
from apisec.fastapi import ApiKey, Bearer, RateLimit, WebhookBody, install
from apisec.ratelimit import FixedWindow, RateLimiter, RedisStore
from apisec.testing import FakeClock
from apisec.tokens import TokenService
from apisec.webhooks import WebhookSigner, WebhookVerifier
from tests.adapters.scenario import (
    CHECKS,
    WEBHOOK_SECRET,
    Framework,
    Scenario,
    Services,
    stack_options,
)
from tests.support.harness import Harness


class NewOrder(BaseModel):
    quantity: int


def build(services: Services) -> ASGIApp:
    """The scenario's routes as a FastAPI app: scopes on the dependencies, the stack around."""
    app = install(FastAPI())  # the middleware authenticates; the dependencies read its principal

    @app.get("/health")
    def health() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/orders")
    def orders(principal: Annotated[Principal, Depends(Bearer("orders:read"))]) -> dict[str, str]:
        return {"subject": principal.subject}

    @app.post("/orders", status_code=201)
    def create_order(
        order: NewOrder, principal: Annotated[Principal, Depends(Bearer("orders:write"))]
    ) -> dict[str, int]:
        return {"quantity": order.quantity}

    @app.get("/reports")
    def reports(principal: Annotated[Principal, Depends(ApiKey("reports:read"))]) -> dict[str, str]:
        return {"subject": principal.subject}

    @app.post("/webhooks/payments")
    def payment(body: Annotated[bytes, Depends(WebhookBody(services.verifier))]) -> dict[str, int]:
        return {"received": len(body)}

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("database password is hunter2")

    return asgi.protect(app, **stack_options(services, webhooks=False))


@pytest.fixture
def services(clock: FakeClock) -> Services:
    return Services.create(clock)


@pytest.fixture
def scenario(services: Services) -> Iterator[Scenario]:
    with TestClient(build(services), raise_server_exceptions=False) as client:
        yield Scenario(client, services, Framework("fastapi"))


@pytest.mark.parametrize("check", CHECKS)
def test_acceptance_scenario(scenario: Scenario, check: str) -> None:
    """Each check of the shared acceptance scenario holds for a protected FastAPI app."""
    getattr(scenario, check)()


def problem(response: Any) -> dict[str, Any]:
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = json.loads(response.content)
    assert body["status"] == response.status_code
    return body


def bearer(tokens: TokenService, scope: str, subject: str = "user_42") -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens.issue(subject, scope=scope).access_token}"}


@pytest.fixture
def client_of() -> Iterator[Callable[[FastAPI], TestClient]]:
    """TestClients on bare FastAPI apps (no apisec middleware around them)."""
    opened: list[TestClient] = []

    def make(app: FastAPI, **options: Any) -> TestClient:
        client = TestClient(app, raise_server_exceptions=False, **options)
        opened.append(client.__enter__())
        return client

    yield make
    for client in opened:
        client.__exit__(None, None, None)


class TestOpenApi:
    def test_schemes_and_scopes_are_documented(self) -> None:
        """/openapi.json lists both schemes and each operation's scopes, however declared."""
        app = install(FastAPI())

        @app.get("/orders")
        def orders(p: Annotated[Principal, Depends(Bearer("orders:read"))]) -> None: ...

        @app.post("/orders")
        def create(
            p: Annotated[Principal, Security(Bearer("orders:read"), scopes=["orders:write"])],
        ) -> None: ...

        @app.get("/reports")
        def reports(p: Annotated[Principal, Depends(ApiKey("reports:read"))]) -> None: ...

        @app.get("/either")
        def either(
            token: Annotated[Principal | None, Depends(Bearer(auto_error=False))],
            key: Annotated[Principal | None, Depends(ApiKey(auto_error=False))],
        ) -> None: ...

        @app.get("/health")
        def health() -> None: ...

        spec = TestClient(app).get("/openapi.json").json()
        assert spec["components"]["securitySchemes"] == {
            "BearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
            "ApiKeyAuth": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
        }
        paths = spec["paths"]
        assert paths["/orders"]["get"]["security"] == [{"BearerAuth": ["orders:read"]}]
        (post,) = paths["/orders"]["post"]["security"]
        assert sorted(post["BearerAuth"]) == ["orders:read", "orders:write"]
        assert paths["/reports"]["get"]["security"] == [{"ApiKeyAuth": ["reports:read"]}]
        assert paths["/either"]["get"]["security"] == [{"BearerAuth": []}, {"ApiKeyAuth": []}]
        assert "security" not in paths["/health"]["get"]
        assert not any(
            p["name"] == "declared" for p in paths["/orders"]["get"].get("parameters", [])
        )

    def test_bad_scope_names_are_refused(self) -> None:
        """A scope with a space (two scopes in one string) is a configuration error."""
        with pytest.raises(ConfigurationError):
            Bearer("orders:read orders:write")


@pytest.fixture
def tokens(services: Services) -> TokenService:
    return services.tokens


@pytest.fixture
def keys(services: Services) -> ApiKeyService:
    return services.keys


def _app_with_routes(app: FastAPI) -> FastAPI:
    @app.get("/orders")
    def orders(request: Request, p: Annotated[Principal, Depends(Bearer("orders:read"))]) -> Any:
        published = get_principal(request.scope)
        return {"subject": p.subject, "published": published is p}

    @app.post("/orders")
    def create(
        p: Annotated[Principal, Security(Bearer("orders:read"), scopes=["orders:write"])],
    ) -> Any:
        return {"subject": p.subject}

    @app.get("/reports")
    def reports(p: Annotated[Principal, Depends(ApiKey("reports:read"))]) -> Any:
        return {"subject": p.subject}

    @app.get("/either")
    def either(
        token: Annotated[Principal | None, Depends(Bearer(auto_error=False))],
        key: Annotated[Principal | None, Depends(ApiKey(auto_error=False))],
    ) -> Any:
        who = token or key
        return {"kind": who.kind if who else None}

    return app


class TestAuthWithoutMiddleware:
    """install(app, tokens=..., keys=...): the dependencies verify credentials themselves."""

    @pytest.fixture
    def client(
        self, tokens: TokenService, keys: ApiKeyService, client_of: Callable[..., TestClient]
    ) -> TestClient:
        return client_of(_app_with_routes(install(FastAPI(), tokens=tokens, keys=keys)))

    def test_bearer_refusals_carry_rfc6750_challenges(
        self, client: TestClient, tokens: TokenService
    ) -> None:
        """No token: bare challenge; bad token: invalid_token; repeated header: 400."""
        missing = client.get("/orders")
        assert missing.status_code == 401
        assert missing.headers["www-authenticate"] == 'Bearer realm="api"'
        problem(missing)
        bad = client.get("/orders", headers={"Authorization": "Bearer a.b.c"})
        assert bad.headers["www-authenticate"] == 'Bearer realm="api", error="invalid_token"'
        twice = client.get(
            "/orders",
            headers=[("Authorization", "Bearer a.b.c"), ("Authorization", "Bearer d.e.f")],
        )
        assert twice.status_code == 400
        assert 'error="invalid_request"' in twice.headers["www-authenticate"]

    def test_scopes_from_the_constructor_and_from_security(
        self, client: TestClient, tokens: TokenService
    ) -> None:
        """Bearer("orders:read") and Security(..., scopes=["orders:write"]) must both hold."""
        reader = bearer(tokens, "orders:read")
        assert client.get("/orders", headers=reader).json() == {
            "subject": "user_42",
            "published": True,
        }
        denied = client.post("/orders", headers=reader)
        assert denied.status_code == 403
        assert 'error="insufficient_scope"' in denied.headers["www-authenticate"]
        assert problem(denied)["required_scopes"] == ["orders:write"]
        both = bearer(tokens, "orders:read orders:write")
        assert client.post("/orders", headers=both).status_code == 200

    def test_api_keys(self, client: TestClient, keys: ApiKeyService) -> None:
        """A key with the scope passes; none, unknown or lacking: 401 ApiKey challenge or 403."""
        good = keys.create("acct_9", scopes=["reports:read"]).plaintext
        assert client.get("/reports", headers={"X-API-Key": good}).json() == {"subject": "acct_9"}
        missing = client.get("/reports")
        assert missing.headers["www-authenticate"] == 'ApiKey realm="api", header="X-API-Key"'
        unknown = client.get("/reports", headers={"X-API-Key": "sk_live_nope"})
        assert unknown.status_code == 401
        lacking = keys.create("acct_9", scopes=["orders:read"]).plaintext
        assert client.get("/reports", headers={"X-API-Key": lacking}).status_code == 403

    def test_the_other_credential_is_not_this_scheme(
        self, client: TestClient, tokens: TokenService, keys: ApiKeyService
    ) -> None:
        """A token on an API-key route (and the reverse) is answered with that route's challenge."""
        token_on_key_route = client.get("/reports", headers=bearer(tokens, "reports:read"))
        assert token_on_key_route.status_code == 401
        assert token_on_key_route.headers["www-authenticate"].startswith("ApiKey ")
        key = keys.create("acct_9", scopes=["orders:read"]).plaintext
        key_on_token_route = client.get("/orders", headers={"X-API-Key": key})
        assert key_on_token_route.status_code == 401
        assert key_on_token_route.headers["www-authenticate"] == 'Bearer realm="api"'

    def test_optional_schemes(
        self, client: TestClient, tokens: TokenService, keys: ApiKeyService
    ) -> None:
        """auto_error=False: no credential is None, either credential works, a bad one is 401."""
        assert client.get("/either").json() == {"kind": None}
        assert client.get("/either", headers=bearer(tokens, "x")).json() == {"kind": "token"}
        key = keys.create("acct_9").plaintext
        assert client.get("/either", headers={"X-API-Key": key}).json() == {"kind": "api_key"}
        assert client.get("/either", headers={"Authorization": "Bearer a.b.c"}).status_code == 401

    def test_audit_events_name_the_client(
        self, client: TestClient, audit_records: list[logging.LogRecord]
    ) -> None:
        """A refused request's audit event carries the client address."""
        client.get("/orders", headers={"Authorization": "Bearer a.b.c"})
        failures = [r for r in audit_records if r.event == "auth.failure"]  # type: ignore[attr-defined]
        assert failures
        assert {r.client for r in failures} == {"testclient"}  # type: ignore[attr-defined]


class TestAuthBehindMiddleware:
    def test_principal_of_the_middleware_is_used(
        self, tokens: TokenService, keys: ApiKeyService
    ) -> None:
        """With protect() in front, the dependency reads its principal (no services given)."""
        app = _app_with_routes(install(FastAPI()))
        with TestClient(asgi.protect(app, tokens=tokens, keys=keys)) as client:
            reader = bearer(tokens, "orders:read")
            assert client.get("/orders", headers=reader).json()["subject"] == "user_42"
            assert client.post("/orders", headers=reader).status_code == 403
            key = keys.create("acct_9", scopes=["orders:read"]).plaintext
            wrong_kind = client.get("/orders", headers={"X-API-Key": key})
            assert wrong_kind.status_code == 401
            assert wrong_kind.headers["www-authenticate"] == 'Bearer realm="api"'

    def test_no_principal_and_no_services_is_a_500(
        self, client_of: Callable[..., TestClient], caplog: pytest.LogCaptureFixture
    ) -> None:
        """A Bearer route with neither middleware nor install() services fails closed, logged."""
        client = client_of(_app_with_routes(install(FastAPI())))
        with caplog.at_level(logging.ERROR, logger="apisec.adapters"):
            response = client.get("/orders", headers={"Authorization": "Bearer a.b.c"})
        assert response.status_code == 500
        assert set(problem(response)) == {"type", "title", "status", "instance"}
        assert any("install(app" in str(r.exc_info[1]) for r in caplog.records if r.exc_info)

    def test_api_key_header_must_match(
        self, keys: ApiKeyService, client_of: Callable[..., TestClient]
    ) -> None:
        """ApiKey(header=...) reading another header than install()'s is a 500, not a bypass."""
        app = install(FastAPI(), keys=keys)

        @app.get("/x")
        def x(p: Annotated[Principal, Depends(ApiKey(header="X-Other-Key"))]) -> None: ...

        key = keys.create("acct_9").plaintext
        assert client_of(app).get("/x", headers={"X-Other-Key": key}).status_code == 500


class TestRateLimit:
    def test_headers_then_429_with_retry_after(
        self, clock: FakeClock, client_of: Callable[..., TestClient]
    ) -> None:
        """The route's own limit: headers on success, 429 + Retry-After, then allowed again."""
        app = install(FastAPI())
        limit = RateLimit(RateLimiter(FixedWindow(2, 60), clock=clock))

        @app.get("/search", dependencies=[Depends(limit)])
        def search() -> dict[str, bool]:
            return {"ok": True}

        @app.get("/other")
        def other() -> dict[str, bool]:
            return {"ok": True}

        client = client_of(app)
        first, second, third = (client.get("/search") for _ in range(3))
        assert [r.headers["x-ratelimit-remaining"] for r in (first, second)] == ["1", "0"]
        assert first.headers["ratelimit-policy"] == '"2-per-60s";q=2;w=60'
        assert third.status_code == 429
        assert problem(third)["retry_after"] == int(third.headers["retry-after"])
        assert "x-ratelimit-limit" not in client.get("/other").headers  # per route
        other_client = client_of(app, client=("203.0.113.5", 4000))
        assert other_client.get("/search").status_code == 200  # per client
        clock.advance(int(third.headers["retry-after"]))
        assert client.get("/search").status_code == 200

    def test_per_principal_falls_back_to_the_client(
        self, clock: FakeClock, tokens: TokenService, client_of: Callable[..., TestClient]
    ) -> None:
        """key="principal": each principal its own budget; anonymous callers per client."""
        app = install(FastAPI(), tokens=tokens)
        limit = RateLimit(RateLimiter(FixedWindow(1, 60), clock=clock), "principal")

        @app.get("/me")
        def me(
            p: Annotated[Principal | None, Depends(Bearer(auto_error=False))],
            _: Annotated[object, Depends(limit)],
        ) -> dict[str, bool]:
            return {"ok": True}

        client = client_of(app)
        ada, bob = bearer(tokens, "x", "ada"), bearer(tokens, "x", "bob")
        assert [client.get("/me", headers=ada).status_code for _ in range(2)] == [200, 429]
        assert client.get("/me", headers=bob).status_code == 200
        assert [client.get("/me").status_code for _ in range(2)] == [200, 429]

    def test_sync_limiter_over_redis_is_refused(self) -> None:
        """A limiter that would block the event loop is refused when the route is declared."""
        limiter = RateLimiter(FixedWindow(1, 60), store=RedisStore(redis.Redis()))
        with pytest.raises(ConfigurationError, match="AsyncRateLimiter"):
            RateLimit(limiter)


def _signed(payload: bytes, clock: FakeClock, msg_id: str = "msg_1") -> dict[str, str]:
    return dict(WebhookSigner(WEBHOOK_SECRET).sign(payload, msg_id=msg_id, timestamp=int(clock())))


class TestWebhookBody:
    @pytest.fixture
    def client(self, clock: FakeClock, client_of: Callable[..., TestClient]) -> TestClient:
        app = install(FastAPI())
        verified = WebhookBody(WebhookVerifier(WEBHOOK_SECRET, clock=clock), max_bytes=64)

        @app.post("/hooks/raw")
        async def raw(request: Request, body: Annotated[bytes, Depends(verified)]) -> Any:
            return {"same": body == await request.body(), "size": len(body)}

        @app.post("/hooks/model")
        def model(order: NewOrder, body: Annotated[bytes, Depends(verified)]) -> Any:
            return {"quantity": order.quantity, "size": len(body)}

        return client_of(app)

    def test_verified_bytes_reach_the_handler(self, client: TestClient, clock: FakeClock) -> None:
        """The dependency returns the signed bytes; request.body() agrees with them."""
        payload = b'{"quantity": 3}'
        response = client.post("/hooks/raw", content=payload, headers=_signed(payload, clock))
        assert response.json() == {"same": True, "size": len(payload)}

    def test_alongside_a_body_model(self, client: TestClient, clock: FakeClock) -> None:
        """A route that also parses the body (FastAPI reads it first) verifies the same bytes."""
        payload = b'{"quantity": 3}'
        headers = {**_signed(payload, clock), "Content-Type": "application/json"}
        response = client.post("/hooks/model", content=payload, headers=headers)
        assert response.json() == {"quantity": 3, "size": len(payload)}

    def test_tampered_unsigned_and_oversized_are_refused(
        self, client: TestClient, clock: FakeClock
    ) -> None:
        """One changed byte: 401; no signature: 400; over max_bytes: 413; all problems."""
        payload = b'{"quantity": 3}'
        tampered = client.post(
            "/hooks/raw", content=b'{"quantity": 9}', headers=_signed(payload, clock)
        )
        assert tampered.status_code == 401
        assert client.post("/hooks/raw", content=payload).status_code == 400
        big = b"x" * 65
        oversized = client.post("/hooks/raw", content=big, headers=_signed(big, clock))
        assert oversized.status_code == 413
        for response in (tampered, oversized):
            problem(response)

    def test_behind_webhook_middleware_it_is_verified_once(self, clock: FakeClock) -> None:
        """On a path the middleware verified, the dependency returns those bytes (no 409)."""
        from apisec.webhooks import MemoryReplayGuard

        verifier = WebhookVerifier(
            WEBHOOK_SECRET, clock=clock, replay_guard=MemoryReplayGuard(clock=clock)
        )
        app = install(FastAPI())

        @app.post("/hooks")
        def hook(body: Annotated[bytes, Depends(WebhookBody(verifier))]) -> Any:
            return {"size": len(body)}

        payload = b"{}"
        protected = asgi.protect(app, webhooks={"/hooks": verifier})
        with TestClient(protected) as client:
            first = client.post("/hooks", content=payload, headers=_signed(payload, clock))
            assert first.json() == {"size": 2}
            again = client.post("/hooks", content=payload, headers=_signed(payload, clock))
            assert again.status_code == 409  # the middleware's replay guard, once per delivery


def _crashing_app(**install_options: Any) -> FastAPI:
    app = install(FastAPI(), **install_options)

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("database password is hunter2")

    @app.get("/orders/{order_id}")
    def order(order_id: int) -> dict[str, int]:
        if order_id == 7:
            raise HTTPException(404, "Order 7 does not exist.")
        if order_id == 8:
            raise HTTPException(503, "replica db-3 password hunter2 expired")
        return {"id": order_id}

    @app.get("/plain")
    def plain() -> Response:
        return PlainTextResponse("nope", status_code=400)

    return app


class TestInstall:
    @pytest.mark.parametrize("raise_server_exceptions", [False, True])
    def test_unhandled_exception_is_a_500_problem_logged_once(
        self, caplog: pytest.LogCaptureFixture, raise_server_exceptions: bool
    ) -> None:
        """Through FastAPI's TestClient: a bare 500 problem with a logged correlation id."""
        client = TestClient(_crashing_app(), raise_server_exceptions=raise_server_exceptions)
        with caplog.at_level(logging.ERROR, logger="apisec.adapters"):
            response = client.get("/boom")
        body = problem(response)
        assert response.status_code == 500
        assert set(body) == {"type", "title", "status", "instance"}
        assert b"hunter2" not in response.content
        assert b"RuntimeError" not in response.content
        (record,) = [r for r in caplog.records if r.name == "apisec.adapters"]
        assert body["instance"] in record.getMessage()

    def test_user_http_middleware_sees_the_500(self) -> None:
        """An @app.middleware("http") added after install() decorates the 500 problem too."""
        app = _crashing_app()

        @app.middleware("http")
        async def tag(
            request: Request, call_next: Callable[[Request], Awaitable[Response]]
        ) -> Response:
            response = await call_next(request)
            response.headers["X-Seen-By"] = "app-middleware"
            return response

        response = TestClient(app, raise_server_exceptions=False).get("/boom")
        assert response.status_code == 500
        assert response.headers["x-seen-by"] == "app-middleware"
        problem(response)

    def test_framework_errors_become_problems(self, client_of: Callable[..., TestClient]) -> None:
        """FastAPI's own 404, 405 and 422, and a plain-text error, are problem+json."""
        client = client_of(_crashing_app())
        not_found = client.get("/nowhere")
        assert (not_found.status_code, problem(not_found).get("detail")) == (404, None)
        not_allowed = client.post("/boom")
        assert not_allowed.status_code == 405
        assert not_allowed.headers["allow"] == "GET"
        problem(not_allowed)
        invalid = client.get("/orders/seven")
        assert invalid.status_code == 422
        assert problem(invalid)["errors"] == [
            {
                "field": "path.order_id",
                "message": "Input should be a valid integer, unable to parse string as an integer",
                "code": "int_parsing",
            }
        ]
        assert b"seven" not in invalid.content
        plain = client.get("/plain")
        assert plain.status_code == 400
        assert b"nope" not in plain.content
        problem(plain)

    def test_http_exceptions_keep_4xx_detail_and_hide_5xx_detail(
        self, client_of: Callable[..., TestClient]
    ) -> None:
        """HTTPException(404, "...") keeps its sentence; a 503's text stays in the log only."""
        client = client_of(_crashing_app())
        mine = client.get("/orders/7")
        assert problem(mine)["detail"] == "Order 7 does not exist."
        down = client.get("/orders/8")
        assert down.status_code == 503
        body = problem(down)
        assert "detail" not in body
        assert body["instance"].startswith("urn:uuid:")
        assert b"hunter2" not in down.content

    def test_type_base_and_head(self, client_of: Callable[..., TestClient]) -> None:
        """A type base names the problems; HEAD gets the headers without a body."""
        client = client_of(_crashing_app(type_base="https://errors.example.com/"))
        invalid = client.get("/orders/seven")
        assert problem(invalid)["type"] == "https://errors.example.com/validation-failed"
        assert problem(client.get("/nowhere"))["type"] == "https://errors.example.com/http-404"
        head = client.head("/nowhere")
        assert head.status_code == 404
        assert head.content == b""
        assert int(head.headers["content-length"]) > 0


_HEADER_TEXT = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=80)


class TestMalformedCredentials:
    @given(
        values=st.lists(
            st.tuples(
                st.sampled_from(["Authorization", "X-API-Key", "authorization"]),
                st.one_of(
                    _HEADER_TEXT,
                    _HEADER_TEXT.map(lambda t: "Bearer " + t),
                    _HEADER_TEXT.map(lambda t: "bearer  " + t),
                    _HEADER_TEXT.map(lambda t: "sk_live_" + t),
                ),
            ),
            max_size=3,
        ),
        query=st.sampled_from(["", "access_token=abc", "api_key=sk_live_x", "x=1"]),
    )
    @settings(max_examples=100, suppress_health_check=[HealthCheck.function_scoped_fixture])
    def test_never_a_500(
        self,
        tokens: TokenService,
        keys: ApiKeyService,
        values: list[tuple[str, str]],
        query: str,
    ) -> None:
        """Whatever credential headers arrive, the dependencies answer 4xx problems, never 500."""
        harness = Harness(
            "asgi",
            lambda m, app: app,
            _app_with_routes(install(FastAPI(), tokens=tokens, keys=keys)),
        )
        try:
            for path in ("/orders", "/reports", "/either"):
                response = harness.request("GET", f"{path}?{query}", headers=values)
                assert response.status_code in (200, 400, 401, 403), response.content
                if response.status_code >= 400:
                    problem(response)
        finally:
            harness.close()
