"""The ASGI and WSGI middleware, each behaviour pinned on both twins over bare apps."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from apisec import ConfigurationError
from apisec.apikeys import ApiKeyService, NewApiKey
from apisec.clientaddr import TrustedProxies
from apisec.cors import CorsPolicy
from apisec.headers import SecurityHeaders
from apisec.ratelimit import FixedWindow, RateLimiter
from apisec.testing import FakeClock
from apisec.tokens import SigningKey, TokenService
from apisec.webhooks import AsyncWebhookVerifier, WebhookSigner, WebhookVerifier
from tests.support.harness import Harness

ISS, AUD = "https://auth.example.com", "https://api.example.com"
FRONT = "https://app.example.com"
WEBHOOK_SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@pytest.fixture(params=["asgi", "wsgi"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make(kind: str) -> Iterator[Callable[[Callable[[Any, Any], Any]], Harness]]:
    made: list[Harness] = []

    def build(stack: Callable[[Any, Any], Any]) -> Harness:
        harness = Harness(kind, stack)  # type: ignore[arg-type]
        made.append(harness)
        return harness

    yield build
    for harness in made:
        harness.close()


@pytest.fixture
def tokens(clock: FakeClock) -> TokenService:
    return TokenService(
        SigningKey.generate("EdDSA", kid="k1"), issuer=ISS, audience=AUD, clock=clock
    )


@pytest.fixture
def keys(clock: FakeClock) -> ApiKeyService:
    return ApiKeyService(clock=clock)


@pytest.fixture
def api_key(keys: ApiKeyService) -> NewApiKey:
    return keys.create("acct_9", scopes=["orders:read"])


def problem(response: Any) -> dict[str, Any]:
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = json.loads(response.content)
    assert body["status"] == response.status_code
    return body


class TestProblemDetails:
    def test_unexpected_exception_is_a_bare_500_with_a_logged_correlation_id(
        self, make: Any, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A crash becomes a 500 problem that leaks nothing; its id is in the log with the trace."""
        harness = make(lambda m, app: m.ProblemDetailsMiddleware(app))
        with caplog.at_level(logging.ERROR, logger="apisec.adapters"):
            response = harness.request("GET", "/boom")
        body = problem(response)
        assert response.status_code == 500
        assert set(body) == {"type", "title", "status", "instance"}
        assert body["instance"].startswith("urn:uuid:")
        assert b"hunter2" not in response.content
        assert "RuntimeError" not in response.text
        (record,) = [r for r in caplog.records if r.name == "apisec.adapters"]
        assert body["instance"] in record.getMessage()
        assert record.exc_info is not None

    def test_framework_error_pages_become_problems(self, make: Any) -> None:
        """An HTML 404 is rewritten to a problem; headers like Allow survive."""
        harness = make(lambda m, app: m.ProblemDetailsMiddleware(app))
        response = harness.request("GET", "/html-404")
        assert response.status_code == 404
        assert problem(response)["title"] == "Not Found"
        assert response.headers["allow"] == "GET"
        assert b"<h1>" not in response.content

    def test_text_500_is_rewritten_with_a_correlation_id(self, make: Any) -> None:
        """A plain-text 500 (a framework's own) loses its body and gains an instance id."""
        harness = make(lambda m, app: m.ProblemDetailsMiddleware(app))
        response = harness.request("GET", "/text-500")
        body = problem(response)
        assert body["instance"].startswith("urn:uuid:")
        assert b"Traceback" not in response.content

    def test_json_errors_of_the_app_pass_unchanged(self, make: Any) -> None:
        """The app's own JSON error bodies are its business."""
        harness = make(lambda m, app: m.ProblemDetailsMiddleware(app))
        response = harness.request("GET", "/json-400")
        assert response.status_code == 400
        assert response.json() == {"error": "mine"}

    def test_rewriting_can_be_switched_off(self, make: Any) -> None:
        """rewrite_errors=False leaves the framework's pages alone."""
        harness = make(lambda m, app: m.ProblemDetailsMiddleware(app, rewrite_errors=False))
        assert harness.request("GET", "/html-404").content == b"<h1>Not Found</h1>"

    def test_head_gets_headers_without_body(self, make: Any) -> None:
        """HEAD of an error: the problem's headers, an empty body."""
        harness = make(lambda m, app: m.ProblemDetailsMiddleware(app))
        response = harness.request("HEAD", "/html-404")
        assert response.status_code == 404
        assert response.content == b""
        assert int(response.headers["content-length"]) > 0

    def test_type_base_reaches_inner_middleware(self, make: Any, tokens: TokenService) -> None:
        """A configured problem type base names the problems inner layers render."""
        harness = make(
            lambda m, app: m.ProblemDetailsMiddleware(
                m.BearerAuthMiddleware(app, tokens), type_base="https://errors.example.com/"
            )
        )
        body = problem(harness.request("GET", "/x"))
        assert body["type"] == "https://errors.example.com/unauthenticated"

    def test_streams_pass_through(self, make: Any) -> None:
        """A streamed success response arrives whole."""
        harness = make(lambda m, app: m.ProblemDetailsMiddleware(app))
        assert harness.request("GET", "/stream").content == b"one,two,three"

    def test_failure_after_the_start_is_not_answered_twice(
        self, make: Any, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Once bytes are out, the error is logged and re-raised, never a second response."""
        harness = make(lambda m, app: m.ProblemDetailsMiddleware(app))
        with caplog.at_level(logging.ERROR, logger="apisec.adapters"):
            if harness.kind == "wsgi":  # the server sees the exception and aborts
                with pytest.raises(RuntimeError, match="mid-stream"):
                    harness.request("GET", "/stream-fail")
            else:
                response = harness.request("GET", "/stream-fail")
                assert response.status_code == 200
                assert b"problem" not in response.content
        assert any(r.name == "apisec.adapters" for r in caplog.records)


class TestSecurityHeaders:
    def test_added_to_every_response_and_server_removed(self, make: Any) -> None:
        """Success and error responses both carry the headers; Server is stripped."""
        harness = make(lambda m, app: m.SecurityHeadersMiddleware(m.ProblemDetailsMiddleware(app)))
        for path in ("/ok", "/html-404", "/boom"):
            response = harness.request("GET", path)
            assert response.headers["x-content-type-options"] == "nosniff", path
            assert "strict-transport-security" in response.headers
            assert "server" not in response.headers

    def test_app_header_wins(self, make: Any) -> None:
        """A header the app set itself is kept (here: the JSON route's Content-Type)."""
        custom = SecurityHeaders(overrides={"Content-Type": "text/plain"})
        harness = make(lambda m, app: m.SecurityHeadersMiddleware(app, custom))
        assert harness.request("GET", "/ok").headers["content-type"] == "application/json"


@pytest.fixture
def cors_policy() -> CorsPolicy:
    return CorsPolicy(
        [FRONT],
        allow_methods=["GET", "POST", "DELETE"],
        allow_headers=["Authorization", "Content-Type"],
        allow_credentials=True,
    )


class TestCors:
    def test_allowed_preflight_is_answered_without_the_app(
        self, make: Any, cors_policy: CorsPolicy
    ) -> None:
        """A good preflight gets 204 and the allow headers; the app never runs."""
        harness = make(
            lambda m, app: m.CORSMiddleware(m.BearerAuthMiddleware(app, _never()), cors_policy)
        )
        response = harness.request(
            "OPTIONS",
            "/orders",
            headers={
                "Origin": FRONT,
                "Access-Control-Request-Method": "DELETE",
                "Access-Control-Request-Headers": "authorization",
            },
        )
        assert response.status_code == 204
        assert response.headers["access-control-allow-origin"] == FRONT
        assert response.headers["access-control-allow-credentials"] == "true"

    @pytest.mark.parametrize(
        ("origin", "method", "reason"),
        [
            ("https://app.example.com.evil.net", "GET", "origin_not_allowed"),
            ("https://evil-app.example.com", "GET", "origin_not_allowed"),
            ("null", "GET", "origin_not_allowed"),
            (FRONT, "PATCH", "method_not_allowed"),
        ],
    )
    def test_refused_preflight_is_a_403_problem(
        self, make: Any, cors_policy: CorsPolicy, origin: str, method: str, reason: str
    ) -> None:
        """Look-alike origins, null and unlisted methods: 403 with the reason, no allowance."""
        harness = make(lambda m, app: m.CORSMiddleware(app, cors_policy))
        response = harness.request(
            "OPTIONS", "/x", headers={"Origin": origin, "Access-Control-Request-Method": method}
        )
        assert response.status_code == 403
        assert problem(response)["reason"] == reason
        assert "access-control-allow-origin" not in response.headers
        assert FRONT not in response.text

    def test_actual_request_gets_allow_headers_and_one_vary(
        self, make: Any, cors_policy: CorsPolicy
    ) -> None:
        """An allowed origin's response is readable; Vary names Origin exactly once."""
        harness = make(lambda m, app: m.CORSMiddleware(app, cors_policy))
        response = harness.request("GET", "/ok", headers={"Origin": FRONT})
        assert response.headers["access-control-allow-origin"] == FRONT
        assert response.headers.get_list("vary") == ["Origin"]

    def test_refused_actual_request_reaches_app_without_allow_headers(
        self, make: Any, cors_policy: CorsPolicy
    ) -> None:
        """A foreign origin still reaches the app (browsers enforce CORS) but gets no allowance."""
        harness = make(lambda m, app: m.CORSMiddleware(app, cors_policy))
        response = harness.request("GET", "/ok", headers={"Origin": "https://evil.example"})
        assert response.status_code == 200
        assert "access-control-allow-origin" not in response.headers
        assert response.headers["vary"] == "Origin"

    def test_repeated_origin_is_never_allowed(self, make: Any, cors_policy: CorsPolicy) -> None:
        """Two Origin fields are no browser's request: no allowance either way."""
        harness = make(lambda m, app: m.CORSMiddleware(app, cors_policy))
        response = harness.request("GET", "/ok", headers=[("Origin", FRONT), ("Origin", FRONT)])
        assert "access-control-allow-origin" not in response.headers


def _never() -> TokenService:
    return TokenService(SigningKey.generate("ES256"), issuer=ISS, audience=AUD)


class TestRateLimit:
    def test_429_with_retry_after_then_allowed_again(self, make: Any, clock: FakeClock) -> None:
        """The quota is enforced per client; the 429 says when to come back, and it is true."""
        limiter = RateLimiter(FixedWindow(2, 60), clock=clock)
        harness = make(lambda m, app: m.RateLimitMiddleware(app, limiter))
        first = harness.request("GET", "/ok")
        assert first.headers["x-ratelimit-remaining"] == "1"
        harness.request("GET", "/ok")
        denied = harness.request("GET", "/ok")
        assert denied.status_code == 429
        assert problem(denied)["retry_after"] == int(denied.headers["retry-after"])
        assert harness.request("GET", "/ok", client="198.51.100.8").status_code == 200
        clock.advance(int(denied.headers["retry-after"]))
        assert harness.request("GET", "/ok").status_code == 200

    def test_ipv6_clients_share_a_budget_per_64(self, make: Any, clock: FakeClock) -> None:
        """Hopping addresses inside one /64 buys no extra requests."""
        limiter = RateLimiter(FixedWindow(2, 60), clock=clock)
        harness = make(lambda m, app: m.RateLimitMiddleware(app, limiter))
        codes = [
            harness.request("GET", "/ok", client=f"2001:db8::{i}").status_code for i in range(1, 4)
        ]
        assert codes == [200, 200, 429]
        assert harness.request("GET", "/ok", client="2001:db8:0:1::1").status_code == 200

    def test_spoofed_forwarded_for_is_ignored_by_default(self, make: Any, clock: FakeClock) -> None:
        """X-Forwarded-For changes nothing unless a proxy is trusted."""
        limiter = RateLimiter(FixedWindow(1, 60), clock=clock)
        harness = make(lambda m, app: m.RateLimitMiddleware(app, limiter))
        harness.request("GET", "/ok", headers={"X-Forwarded-For": "1.1.1.1"})
        spoofed = harness.request("GET", "/ok", headers={"X-Forwarded-For": "2.2.2.2"})
        assert spoofed.status_code == 429

    def test_trusted_proxy_names_the_client(self, make: Any, clock: FakeClock) -> None:
        """Behind a trusted proxy, each forwarded client has its own budget."""
        limiter = RateLimiter(FixedWindow(1, 60), clock=clock)
        proxies = TrustedProxies(networks=["10.0.0.0/8"])
        harness = make(lambda m, app: m.RateLimitMiddleware(app, limiter, proxies=proxies))
        for client in ("1.1.1.1", "2.2.2.2"):
            response = harness.request(
                "GET", "/ok", headers={"X-Forwarded-For": client}, client="10.0.0.1"
            )
            assert response.status_code == 200

    def test_excluded_paths_and_route_limits(self, make: Any, clock: FakeClock) -> None:
        """Excluded prefixes are free by whole segments; route limits add to the default."""
        default = RateLimiter(FixedWindow(10, 60), clock=clock)
        login = RateLimiter(FixedWindow(1, 60), prefix="login", clock=clock)
        harness = make(
            lambda m, app: m.RateLimitMiddleware(
                app, default, exclude_paths=["/health"], routes={"POST /login": login}
            )
        )
        assert "x-ratelimit-limit" not in harness.request("GET", "/health/live").headers
        assert "x-ratelimit-limit" in harness.request("GET", "/healthz").headers
        assert harness.request("POST", "/login").status_code == 200
        assert harness.request("POST", "/login").status_code == 429
        assert harness.request("GET", "/login").status_code == 200

    def test_stacked_limits_report_the_tighter_budget(
        self, make: Any, tokens: TokenService, clock: FakeClock
    ) -> None:
        """Under a client limit, the principal limit's smaller budget and its 429 are reported."""
        client = RateLimiter(FixedWindow(10, 60), clock=clock)
        per_principal = RateLimiter(FixedWindow(2, 60), prefix="p", clock=clock)
        harness = make(
            lambda m, app: m.protect(
                app, tokens=tokens, client_limiter=client, principal_limiter=per_principal
            )
        )
        auth = {"Authorization": f"Bearer {tokens.issue('user_1').access_token}"}
        replies = [harness.request("GET", "/x", headers=auth) for _ in range(3)]
        assert [r.status_code for r in replies] == [200, 200, 429]
        assert [r.headers["x-ratelimit-remaining"] for r in replies] == ["1", "0", "0"]
        assert replies[2].headers["x-ratelimit-limit"] == "2"
        assert (
            replies[2].headers["ratelimit"].endswith(";r=0;t=" + replies[2].headers["retry-after"])
        )
        assert problem(replies[2])["limit"] == 2

    def test_nested_limiters_report_the_tightest(self, make: Any, clock: FakeClock) -> None:
        """An outer limiter never overwrites a tighter inner one's fields, nor its 429's."""
        outer = RateLimiter(FixedWindow(100, 60, name="per-client"), prefix="c", clock=clock)
        inner = RateLimiter(FixedWindow(2, 60, name="per-caller"), prefix="p", clock=clock)
        harness = make(
            lambda m, app: m.RateLimitMiddleware(m.RateLimitMiddleware(app, inner), outer)
        )
        allowed = harness.request("GET", "/ok")
        assert allowed.headers["x-ratelimit-remaining"] == "1"
        assert allowed.headers["ratelimit-policy"].startswith('"per-caller"')
        harness.request("GET", "/ok")
        denied = harness.request("GET", "/ok")
        assert denied.status_code == 429
        assert denied.headers["x-ratelimit-remaining"] == "0"
        assert denied.headers["ratelimit-policy"].startswith('"per-caller"')
        assert len(denied.headers.get_list("ratelimit")) == 1


class TestAuth:
    def test_no_credentials_is_a_401_challenge_without_error_code(
        self, make: Any, tokens: TokenService
    ) -> None:
        """RFC 6750 §3.1: a request without credentials gets a bare challenge."""
        harness = make(lambda m, app: m.BearerAuthMiddleware(app, tokens))
        response = harness.request("GET", "/x")
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == 'Bearer realm="api"'

    def test_valid_token_publishes_the_principal(self, make: Any, tokens: TokenService) -> None:
        """The app sees a Principal with the token's subject and scopes."""
        harness = make(lambda m, app: m.BearerAuthMiddleware(app, tokens))
        token = tokens.issue("user_1", scope="orders:read").access_token
        response = harness.request("GET", "/x", headers={"Authorization": f"bearer {token}"})
        assert response.json() == {"subject": "user_1", "kind": "token", "scopes": ["orders:read"]}

    @pytest.mark.parametrize("mangle", ["garbage", "expired", "refresh"])
    def test_bad_tokens_are_invalid_token(
        self, make: Any, tokens: TokenService, clock: FakeClock, mangle: str
    ) -> None:
        """Forged, expired, or refresh tokens: 401 error="invalid_token", same problem."""
        harness = make(lambda m, app: m.BearerAuthMiddleware(app, tokens))
        pair = tokens.issue("user_1")
        token = {
            "garbage": "abc.def.ghi",
            "expired": pair.access_token,
            "refresh": pair.refresh_token,
        }[mangle]
        if mangle == "expired":
            clock.advance(3600)
        response = harness.request("GET", "/x", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401, response.text
        assert 'error="invalid_token"' in response.headers["www-authenticate"]
        assert token not in response.text

    @pytest.mark.parametrize(
        "headers",
        [
            [("Authorization", "Bearer a.b.c"), ("Authorization", "Bearer d.e.f")],
            [("Authorization", "Bearer  a.b.c")],
            [("Authorization", "Bearer a b")],
            [("Authorization", "Bearer")],
        ],
    )
    def test_repeated_or_malformed_authorization_is_400(
        self, make: Any, tokens: TokenService, headers: list[tuple[str, str]]
    ) -> None:
        """Never "first one wins": a repeated or malformed Authorization is invalid_request."""
        harness = make(lambda m, app: m.BearerAuthMiddleware(app, tokens))
        response = harness.request("GET", "/x", headers=headers)
        assert response.status_code == 400
        assert 'error="invalid_request"' in response.headers["www-authenticate"]

    def test_query_string_tokens_are_refused_unless_allowed(
        self, make: Any, tokens: TokenService
    ) -> None:
        """?access_token= is a 400 by default and works only when explicitly allowed."""
        token = tokens.issue("user_1").access_token
        strict = make(lambda m, app: m.BearerAuthMiddleware(app, tokens))
        assert strict.request("GET", f"/x?access_token={token}").status_code == 400
        lenient = make(lambda m, app: m.BearerAuthMiddleware(app, tokens, allow_query_token=True))
        assert lenient.request("GET", f"/x?access_token={token}").status_code == 200

    def test_route_scopes_give_insufficient_scope(self, make: Any, tokens: TokenService) -> None:
        """Missing a route's scope is a 403 naming the scope needed; method rules differ."""
        rules = {"/orders": ["orders:read"], "POST /orders": ["orders:write"]}
        harness = make(lambda m, app: m.BearerAuthMiddleware(app, tokens, scopes=rules))
        token = tokens.issue("user_1", scope="orders:read").access_token
        auth = {"Authorization": f"Bearer {token}"}
        assert harness.request("GET", "/orders/7", headers=auth).status_code == 200
        denied = harness.request("POST", "/orders", headers=auth)
        assert denied.status_code == 403
        assert denied.headers["www-authenticate"] == (
            'Bearer error="insufficient_scope", scope="orders:write"'
        )
        assert problem(denied)["required_scopes"] == ["orders:write"]

    @pytest.mark.parametrize(
        ("path", "status"),
        [
            ("/health", 200),
            ("/health/live", 200),
            ("/healthz", 401),
            ("/admin/../health", 401),
            ("/health/../admin", 401),
            ("/health;x=1", 401),
        ],
    )
    def test_exclusions_match_whole_segments_of_both_readings(
        self, make: Any, tokens: TokenService, path: str, status: int
    ) -> None:
        """/health is public below itself; never /healthz nor paths a router reads otherwise."""
        harness = make(
            lambda m, app: m.BearerAuthMiddleware(app, tokens, exclude_paths=["/health"])
        )
        assert harness.request("GET", path).status_code == status

    def test_api_keys(self, make: Any, keys: ApiKeyService, api_key: NewApiKey) -> None:
        """A valid key passes as a principal; a bad one is 401 with the ApiKey challenge."""
        harness = make(lambda m, app: m.ApiKeyAuthMiddleware(app, keys))
        ok = harness.request("GET", "/x", headers={"X-API-Key": api_key.plaintext})
        assert ok.json()["kind"] == "api_key"
        wrong = api_key.plaintext[:-1] + ("y" if api_key.plaintext.endswith("x") else "x")
        bad = harness.request("GET", "/x", headers={"X-API-Key": wrong})
        assert bad.status_code == 401
        assert bad.headers["www-authenticate"] == 'ApiKey realm="api", header="X-API-Key"'
        assert api_key.plaintext[:-1] not in bad.text

    def test_two_credentials_are_refused(
        self, make: Any, tokens: TokenService, keys: ApiKeyService, api_key: NewApiKey
    ) -> None:
        """A token and a key in one request: 400, neither is picked."""
        harness = make(lambda m, app: m.AuthMiddleware(app, tokens=tokens, keys=keys))
        token = tokens.issue("user_1").access_token
        response = harness.request(
            "GET",
            "/x",
            headers={"Authorization": f"Bearer {token}", "X-API-Key": api_key.plaintext},
        )
        assert response.status_code == 400

    def test_bearer_api_keys_are_told_apart_from_tokens(
        self, make: Any, tokens: TokenService, keys: ApiKeyService, api_key: NewApiKey
    ) -> None:
        """With accept_bearer_keys, Authorization: Bearer sk_... authenticates the key."""
        harness = make(
            lambda m, app: m.AuthMiddleware(app, tokens=tokens, keys=keys, accept_bearer_keys=True)
        )
        response = harness.request(
            "GET", "/x", headers={"Authorization": f"Bearer {api_key.plaintext}"}
        )
        assert response.json()["kind"] == "api_key"


class TestHttpsRedirect:
    def test_get_is_redirected_and_post_refused(self, make: Any) -> None:
        """GET over http: 308 to https; POST: 403 problem, never a redirect."""
        harness = make(lambda m, app: m.HTTPSRedirectMiddleware(app))
        response = harness.request("GET", "/a/b?c=1", scheme="http")
        assert response.status_code == 308
        assert response.headers["location"] == "https://testserver/a/b?c=1"
        assert harness.request("POST", "/a", scheme="http").status_code == 403
        assert harness.request("GET", "/a", scheme="https").status_code == 200

    def test_forwarded_proto_needs_a_trusted_proxy(self, make: Any) -> None:
        """X-Forwarded-Proto: https from anyone is ignored; from a trusted proxy it counts."""
        plain = make(lambda m, app: m.HTTPSRedirectMiddleware(app))
        forged = plain.request("GET", "/", scheme="http", headers={"X-Forwarded-Proto": "https"})
        assert forged.status_code == 308
        proxied = make(
            lambda m, app: m.HTTPSRedirectMiddleware(app, proxies=TrustedProxies(count=1))
        )
        ok = proxied.request("GET", "/", scheme="http", headers={"X-Forwarded-Proto": "https"})
        assert ok.status_code == 200

    def test_forwarded_proto_comes_from_the_trusted_header_only(self, make: Any) -> None:
        """Trusting Forwarded reads its proto=; a client's own X-Forwarded-Proto is ignored."""
        proxied = make(
            lambda m, app: m.HTTPSRedirectMiddleware(
                app, proxies=TrustedProxies(count=1, header="forwarded")
            )
        )
        ok = proxied.request(
            "GET", "/", scheme="http", headers={"Forwarded": "for=192.0.2.7;proto=https"}
        )
        assert ok.status_code == 200
        forged = proxied.request(
            "GET",
            "/",
            scheme="http",
            headers={"X-Forwarded-Proto": "https", "Forwarded": "for=192.0.2.7"},
        )
        assert forged.status_code == 308

    def test_hostile_host_header_is_not_redirected_to(self, make: Any) -> None:
        """A Host that is not a host name gives a 403, never a redirect elsewhere."""
        harness = make(lambda m, app: m.HTTPSRedirectMiddleware(app))
        response = harness.request("GET", "/", scheme="http", headers={"Host": "evil.com/@x"})
        assert response.status_code == 403


class TestBodyLimit:
    def test_declared_length_over_limit_is_413_before_the_app(self, make: Any) -> None:
        """Content-Length over the cap: 413 problem."""
        harness = make(lambda m, app: m.BodyLimitMiddleware(app, 100))
        response = harness.request("POST", "/body", content=b"x" * 101)
        assert response.status_code == 413
        assert harness.request("POST", "/body", content=b"x" * 100).json() == {"size": 100}

    def test_chunked_body_over_limit_is_413(self, make: Any) -> None:
        """A body without Content-Length is counted as it is read."""
        harness = make(lambda m, app: m.BodyLimitMiddleware(app, 100))

        def chunks() -> Iterator[bytes]:
            for _ in range(5):
                yield b"y" * 30

        response = harness.request("POST", "/body", content=chunks())
        assert response.status_code == 413

    @pytest.mark.parametrize("value", ["abc", "-1", "1, 2", "１２"])
    def test_malformed_content_length_is_400(self, make: Any, value: str) -> None:
        """A Content-Length that is not one decimal number is refused."""
        harness = make(lambda m, app: m.BodyLimitMiddleware(app, 100))
        response = harness.request("POST", "/body", headers={"Content-Length": value})
        assert response.status_code == 400


class TestWebhooks:
    def test_verified_body_reaches_the_app_and_tampered_is_refused(
        self, make: Any, clock: FakeClock
    ) -> None:
        """The app reads exactly the signed bytes; one changed byte is a 401 problem."""
        verifier = WebhookVerifier(WEBHOOK_SECRET, clock=clock)
        harness = make(lambda m, app: m.WebhookMiddleware(app, {"/body": verifier}))
        payload = b'{"event":"paid","amount":100}'
        headers = WebhookSigner(WEBHOOK_SECRET).sign(
            payload, msg_id="msg_1", timestamp=int(clock())
        )
        ok = harness.request("POST", "/body", headers=headers, content=payload)
        assert ok.json() == {"size": len(payload)}
        tampered = harness.request(
            "POST", "/body", headers=headers, content=payload.replace(b"100", b"999")
        )
        assert tampered.status_code == 401
        assert problem(tampered)["title"] == "Unauthorized"

    def test_asgi_takes_the_async_twin_and_wsgi_refuses_it(self, make: Any, kind: str) -> None:
        """ASGI verifies with an AsyncWebhookVerifier; WSGI, which cannot await, refuses one."""
        verifier = AsyncWebhookVerifier(WEBHOOK_SECRET)
        if kind == "wsgi":
            with pytest.raises(ConfigurationError):
                make(lambda m, app: m.WebhookMiddleware(app, {"/body": verifier}))
            return
        harness = make(lambda m, app: m.WebhookMiddleware(app, {"/body": verifier}))
        payload = b'{"event":"paid"}'
        headers = WebhookSigner(WEBHOOK_SECRET).sign(payload)
        assert harness.request("POST", "/body", headers=headers, content=payload).json() == {
            "size": len(payload)
        }
        assert harness.request("POST", "/body", headers=headers, content=b"{}").status_code == 401


class TestProtect:
    def test_refusals_keep_cors_and_security_headers(
        self, make: Any, tokens: TokenService, cors_policy: CorsPolicy, clock: FakeClock
    ) -> None:
        """401, 429 and 500 from the stack are readable by the front end and carry the headers."""
        limiter = RateLimiter(FixedWindow(3, 60), clock=clock)
        harness = make(
            lambda m, app: m.protect(
                app, tokens=tokens, cors=cors_policy, client_limiter=limiter, public_paths=["/boom"]
            )
        )
        origin = {"Origin": FRONT}
        statuses = [harness.request("GET", p, headers=origin) for p in ("/x", "/boom", "/x", "/x")]
        assert [r.status_code for r in statuses] == [401, 500, 401, 429]
        for response in statuses:
            assert response.headers["access-control-allow-origin"] == FRONT
            assert response.headers["x-content-type-options"] == "nosniff"
            problem(response)

    def test_webhook_paths_need_no_token(
        self, make: Any, tokens: TokenService, clock: FakeClock
    ) -> None:
        """A path with a verifier is authenticated by its signature, not a bearer token."""
        verifier = WebhookVerifier(WEBHOOK_SECRET, clock=clock)
        harness = make(lambda m, app: m.protect(app, tokens=tokens, webhooks={"/body": verifier}))
        payload = b"{}"
        headers = WebhookSigner(WEBHOOK_SECRET).sign(payload, timestamp=int(clock()))
        assert harness.request("POST", "/body", headers=headers, content=payload).status_code == 200
        assert harness.request("POST", "/body", content=payload).status_code == 400
        assert harness.request("GET", "/other").status_code == 401

    def test_audit_events_carry_client_and_principal(
        self, make: Any, keys: ApiKeyService, audit_records: list[logging.LogRecord]
    ) -> None:
        """A bad key's audit event names the client address the adapter resolved."""
        harness = make(lambda m, app: m.protect(app, keys=keys))
        harness.request("GET", "/x", headers={"X-API-Key": "sk_live_nope"}, client="203.0.113.9")
        failures = [r for r in audit_records if r.event == "auth.failure"]  # type: ignore[attr-defined]
        assert failures
        assert {r.client for r in failures} == {"203.0.113.9"}  # type: ignore[attr-defined]


class TestWsgiStartResponse:
    """Werkzeug's test client (Flask's) re-raises any ``exc_info`` given to ``start_response``."""

    @staticmethod
    def _run(app: Any, path: str, body: bytes | None = None) -> tuple[str, bytes]:
        import io

        from werkzeug.test import EnvironBuilder, run_wsgi_app

        environ = EnvironBuilder(path=path, method="POST" if body else "GET").get_environ()
        if body is not None:  # a chunked body: no Content-Length, the server marks the end
            environ["wsgi.input"] = io.BytesIO(body)
            environ.pop("CONTENT_LENGTH", None)
            environ["wsgi.input_terminated"] = True
        result, status, _ = run_wsgi_app(app, environ, buffered=True)
        return status, b"".join(result)

    def test_a_500_problem_needs_no_exc_info_when_nothing_was_started(self) -> None:
        """A crash before any start is answered with a first start_response, without exc_info."""
        from apisec import wsgi
        from tests.support.apps import wsgi_app

        status, body = self._run(wsgi.ProblemDetailsMiddleware(wsgi_app), "/boom")
        assert status.startswith("500")
        assert json.loads(body)["status"] == 500

    def test_a_tripped_body_limit_needs_no_exc_info_when_nothing_was_started(self) -> None:
        """A chunked body over the limit is a 413 problem, not an exception from the server."""
        from apisec import wsgi
        from tests.support.apps import wsgi_app

        app = wsgi.ProblemDetailsMiddleware(wsgi.BodyLimitMiddleware(wsgi_app, 100))
        status, body = self._run(app, "/body", b"x" * 150)
        assert status.startswith("413")
        assert json.loads(body)["status"] == 413
