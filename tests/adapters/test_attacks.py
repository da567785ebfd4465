"""An attacker's look at the adapter layer: each class is one area, each test one attempt.

Tests for weaknesses found in review fail on the code before their fix;
the others pin behaviour that held, where a regression would reopen a hole.
"""

from __future__ import annotations

import asyncio
import io
import json
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qsl, urlsplit
from wsgiref.simple_server import WSGIRequestHandler, make_server

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from apisec.apikeys import ApiKeyService
from apisec.oauth import ClientCredentialsEndpoint
from apisec.ratelimit import FixedWindow, RateLimiter
from apisec.testing import FakeClock
from apisec.tokens import SigningKey, TokenService
from apisec.webhooks import WebhookSigner, WebhookVerifier
from tests.support.harness import Harness

ISS, AUD = "https://auth.example.com", "https://api.example.com"
WEBHOOK_SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
OTHER_SECRET = "whsec_" + "c2VjcmV0LW9mLWFub3RoZXItc2VuZGVy"
SCOPES = {"/orders": ["orders:read"], "POST /orders": ["orders:write"], "GET /admin": ["admin"]}


@pytest.fixture(params=["asgi", "wsgi"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make(kind: str) -> Iterator[Callable[..., Harness]]:
    made: list[Harness] = []

    def build(stack: Callable[[Any, Any], Any], app: Any = None) -> Harness:
        harness = Harness(kind, stack, app)  # type: ignore[arg-type]
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


def bearer(tokens: TokenService, scope: str = "orders:read") -> dict[str, str]:
    token = tokens.issue_access_token("user_1", scope=scope).access_token
    return {"Authorization": f"Bearer {token}"}


class TestRuleMethods:
    """Route rules keyed by method, against the spellings routers accept for that method."""

    @pytest.mark.parametrize("method", ["post", "Post", "pOST"])
    def test_lower_case_method_meets_the_method_rule(
        self, make: Any, tokens: TokenService, method: str
    ) -> None:
        """Werkzeug and Django upper-case the method, so ``post`` is held to the POST rule."""
        harness = make(lambda m, app: m.AuthMiddleware(app, tokens=tokens, scopes=SCOPES))
        response = harness.request(method, "/orders", headers=bearer(tokens))
        assert response.status_code == 403

    def test_head_is_held_to_the_get_rule(self, make: Any, tokens: TokenService) -> None:
        """Routers answer HEAD with the GET handler, so a GET rule covers HEAD too."""
        harness = make(lambda m, app: m.AuthMiddleware(app, tokens=tokens, scopes=SCOPES))
        for method in ("HEAD", "head"):
            assert harness.request(method, "/admin", headers=bearer(tokens)).status_code == 403
        admin = bearer(tokens, "admin orders:read")
        assert harness.request("HEAD", "/admin", headers=admin).status_code == 200

    def test_lower_case_method_meets_the_route_limit(self, make: Any, clock: FakeClock) -> None:
        """A stricter limit on ``POST /login`` is not escaped by sending ``post``."""
        default = RateLimiter(FixedWindow(100, 60), clock=clock)
        login = RateLimiter(FixedWindow(1, 60), prefix="login", clock=clock)
        harness = make(
            lambda m, app: m.RateLimitMiddleware(app, default, routes={"POST /login": login})
        )
        assert harness.request("POST", "/login").status_code == 200
        assert harness.request("post", "/login").status_code == 429

    def test_lower_case_method_cannot_skip_webhook_verification(
        self, make: Any, clock: FakeClock
    ) -> None:
        """An unsigned ``post`` to a ``POST`` webhook path is verified (and refused)."""
        verifier = WebhookVerifier(WEBHOOK_SECRET, clock=clock)
        harness = make(lambda m, app: m.WebhookMiddleware(app, {"POST /body": verifier}))
        assert harness.request("post", "/body", content=b'{"forged":1}').status_code == 400

    def test_rule_methods_are_read_case_insensitively(self) -> None:
        """A rule written ``get /admin`` guards GET; it never silently matches nothing."""
        from apisec._http import PathRules

        rules: PathRules[str] = PathRules({"get /admin": "admin"})
        assert rules.match("GET", "/admin") == "admin"
        assert rules.match("HEAD", "/admin/x") == "admin"
        assert rules.match("POST", "/admin") is None

    def test_flask_lower_case_post_is_held_to_the_post_scope(self, tokens: TokenService) -> None:
        """Through a real Flask app: ``post /orders`` reaches the POST view only with the scope."""
        flask = pytest.importorskip("flask")
        from werkzeug.test import Client

        from apisec import wsgi

        app = flask.Flask("attack")
        app.add_url_rule("/orders", "create", lambda: {"created": True}, methods=["POST"])
        app.wsgi_app = wsgi.AuthMiddleware(
            app.wsgi_app, tokens=tokens, scopes={"POST /orders": ["orders:write"]}
        )
        response = Client(app).open("/orders", method="post", headers=bearer(tokens))
        assert response.status_code == 403


def call_asgi(app: Any, scope: dict[str, Any], body: bytes = b"") -> tuple[int, bytes]:
    """Run one ASGI request with a hand-made scope; the status and body that were sent."""
    full: dict[str, Any] = {
        "type": "http",
        "method": "GET",
        "scheme": "https",
        "query_string": b"",
        "headers": [],
        "client": ("198.51.100.7", 40000),
        "root_path": "",
        **scope,
    }
    full.setdefault("raw_path", full["path"].encode())
    sent: list[dict[str, Any]] = []
    pending = [body]

    async def receive() -> dict[str, Any]:
        if pending:
            return {"type": "http.request", "body": pending.pop(), "more_body": False}
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(full, receive, send))
    starts = [m for m in sent if m["type"] == "http.response.start"]
    assert len(starts) == 1
    return starts[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])


class TestMountedAsgiApps:
    """ASGI ``path`` includes ``root_path``; routers (Starlette, Django) route on what follows."""

    def mounted(self, path: str, **scope: Any) -> dict[str, Any]:
        return {"path": "/api" + path, "root_path": "/api", **scope}

    def test_route_scopes_apply_below_the_root_path(self, tokens: TokenService) -> None:
        """Under ``root_path=/api``, ``/api/admin`` is the app's ``/admin``: its scope applies."""
        from apisec import asgi
        from tests.support.apps import asgi_app

        app = asgi.AuthMiddleware(asgi_app, tokens=tokens, scopes={"/admin": ["admin"]})
        header = bearer(tokens)["Authorization"].encode()
        status, _ = call_asgi(app, self.mounted("/admin", headers=[(b"authorization", header)]))
        assert status == 403

    def test_exclusions_and_route_limits_apply_below_the_root_path(
        self, clock: FakeClock, tokens: TokenService
    ) -> None:
        """Public paths, route limits and body limits are the app's paths too."""
        from apisec import asgi
        from tests.support.apps import asgi_app

        public = asgi.AuthMiddleware(asgi_app, tokens=tokens, exclude_paths=["/health"])
        assert call_asgi(public, self.mounted("/health"))[0] == 200
        login = RateLimiter(FixedWindow(1, 60), prefix="login", clock=clock)
        limited = asgi.RateLimitMiddleware(
            asgi_app, RateLimiter(FixedWindow(100, 60), clock=clock), routes={"/login": login}
        )
        statuses = [call_asgi(limited, self.mounted("/login"))[0] for _ in range(2)]
        assert statuses == [200, 429]
        capped = asgi.BodyLimitMiddleware(asgi_app, 1 << 20, routes={"/body": 10})
        too_big = [(b"content-length", b"11")]
        assert call_asgi(capped, self.mounted("/body", headers=too_big), b"x" * 11)[0] == 413

    def test_webhook_and_token_endpoint_paths_below_the_root_path(self, clock: FakeClock) -> None:
        """An unsigned delivery to the mounted webhook path is refused, not handed on."""
        from apisec import asgi
        from tests.support.apps import asgi_app

        verifier = WebhookVerifier(WEBHOOK_SECRET, clock=clock)
        hooks = asgi.WebhookMiddleware(asgi_app, {"/body": verifier})
        status, _ = call_asgi(hooks, self.mounted("/body", method="POST"), b'{"forged":1}')
        assert status == 400
        clients = ApiKeyService(clock=clock)
        tokens = TokenService(SigningKey.generate("EdDSA"), issuer=ISS, audience=AUD, clock=clock)
        endpoint = asgi.TokenEndpoint(asgi_app, ClientCredentialsEndpoint(clients, tokens))
        status, body = call_asgi(endpoint, self.mounted("/oauth/token", method="POST"))
        assert (status, json.loads(body)["error"]) == (400, "invalid_request")

    def test_starlette_mount_keeps_the_scope_rule(self, tokens: TokenService) -> None:
        """A protected app mounted at ``/api`` in Starlette still enforces ``/admin``'s scope."""
        pytest.importorskip("starlette")
        from starlette.applications import Starlette
        from starlette.responses import JSONResponse
        from starlette.routing import Mount, Route
        from starlette.testclient import TestClient

        from apisec import asgi

        async def admin(request: Any) -> JSONResponse:
            return JSONResponse({"admin": True})

        inner = Starlette(routes=[Route("/admin", admin)])
        protected = asgi.AuthMiddleware(inner, tokens=tokens, scopes={"/admin": ["admin"]})
        outer = Starlette(routes=[Mount("/api", app=protected)])
        with TestClient(outer) as client:
            assert client.get("/api/admin", headers=bearer(tokens)).status_code == 403
            assert client.get("/api/admin", headers=bearer(tokens, "admin")).status_code == 200


def asgi_messages(app: Any, path: str = "/x", method: str = "GET") -> list[dict[str, Any]]:
    """Every message an ASGI app sends for one bodiless request."""
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": method, "path": path, "headers": [], "root_path": ""}
    asyncio.run(app(scope, receive, send))
    return sent


class TestProblemDetailsProtocol:
    """A replaced error response must still be one well-formed ASGI response."""

    def test_trailers_of_a_replaced_response_are_dropped(self) -> None:
        """The app's trailers never follow the problem, which announced none."""
        from apisec import asgi

        async def app(scope: Any, receive: Any, send: Any) -> None:
            start = {"type": "http.response.start", "status": 404, "trailers": True}
            await send({**start, "headers": [(b"content-type", b"text/html")]})
            await send({"type": "http.response.body", "body": b"<h1>404</h1>"})
            await send({"type": "http.response.trailers", "headers": [(b"x-sum", b"1")]})

        sent = asgi_messages(asgi.ProblemDetailsMiddleware(app))
        assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
        assert sent[0]["status"] == 404
        assert not sent[0].get("trailers")

    def test_pathsend_error_page_is_replaced(self) -> None:
        """A 404 page sent as a file (``http.response.pathsend``) still gets its problem."""
        from apisec import asgi

        async def app(scope: Any, receive: Any, send: Any) -> None:
            headers = [(b"content-type", b"text/html")]
            await send({"type": "http.response.start", "status": 404, "headers": headers})
            await send({"type": "http.response.pathsend", "path": "/srv/404.html"})

        sent = asgi_messages(asgi.ProblemDetailsMiddleware(app))
        assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
        assert json.loads(sent[1]["body"])["status"] == 404

    def test_successful_pathsend_passes_through(self) -> None:
        """A 200 file response keeps its ``pathsend`` message untouched."""
        from apisec import asgi

        async def app(scope: Any, receive: Any, send: Any) -> None:
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.pathsend", "path": "/srv/ok.txt"})

        sent = asgi_messages(asgi.ProblemDetailsMiddleware(app))
        assert [m["type"] for m in sent] == ["http.response.start", "http.response.pathsend"]


def wsgi_call(app: Any, environ: dict[str, Any]) -> tuple[str, bytes]:
    """Run one WSGI request with a hand-made environ; the status line and body."""
    full: dict[str, Any] = {
        "REQUEST_METHOD": "GET",
        "SCRIPT_NAME": "",
        "PATH_INFO": "/x",
        "QUERY_STRING": "",
        "REMOTE_ADDR": "198.51.100.7",
        "wsgi.url_scheme": "https",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": sys.stderr,
        **environ,
    }
    started: list[str] = []

    def start_response(status: str, headers: Any, exc_info: Any = None) -> Any:
        started[:] = [status]
        return lambda data: None

    result = app(full, start_response)
    body = b"".join(result)
    getattr(result, "close", lambda: None)()
    return started[0], body


class TestWsgiEmptyContentLength:
    """PEP 3333: ``CONTENT_LENGTH`` "may be empty or absent"; wsgiref sends it empty."""

    def test_body_limit_serves_a_bodiless_request(self) -> None:
        """An empty ``CONTENT_LENGTH`` is no length, not a malformed one (no 400 on every GET)."""
        from apisec import wsgi
        from tests.support.apps import wsgi_app

        status, _ = wsgi_call(wsgi.BodyLimitMiddleware(wsgi_app), {"CONTENT_LENGTH": ""})
        assert status.startswith("200")

    def test_webhook_and_token_endpoint_read_an_empty_length_as_none(
        self, clock: FakeClock
    ) -> None:
        """The webhook refuses the unsigned request for its signature, the endpoint for its form."""
        from apisec import wsgi
        from tests.support.apps import wsgi_app

        verifier = WebhookVerifier(WEBHOOK_SECRET, clock=clock)
        hooks = wsgi.WebhookMiddleware(wsgi_app, {"/x": verifier})
        status, body = wsgi_call(hooks, {"REQUEST_METHOD": "POST", "CONTENT_LENGTH": ""})
        assert json.loads(body)["detail"] == "The webhook could not be verified."
        tokens = TokenService(SigningKey.generate("EdDSA"), issuer=ISS, audience=AUD, clock=clock)
        endpoint = ClientCredentialsEndpoint(ApiKeyService(clock=clock), tokens)
        token = wsgi.TokenEndpoint(wsgi_app, endpoint)
        environ = {"REQUEST_METHOD": "POST", "PATH_INFO": "/oauth/token", "CONTENT_LENGTH": ""}
        status, body = wsgi_call(token, environ)
        assert (status[:3], json.loads(body)["error"]) == ("400", "invalid_request")  # its own

    def test_protect_behind_wsgiref(self) -> None:
        """A GET through ``protect()`` served by the standard library's server is a 200."""
        from apisec import wsgi
        from tests.support.apps import wsgi_app

        class Quiet(WSGIRequestHandler):
            def log_message(self, *args: Any) -> None:
                return None

        with make_server("127.0.0.1", 0, wsgi.protect(wsgi_app), handler_class=Quiet) as server:
            thread = threading.Thread(target=server.serve_forever, daemon=True)
            thread.start()
            try:
                response = httpx.get(f"http://127.0.0.1:{server.server_port}/x", timeout=5)
            finally:
                server.shutdown()
                thread.join()
        assert response.status_code == 200


class TestForwardedChains:
    """What a client writes to the left of a forwarding chain must not choose its key."""

    @pytest.mark.parametrize(
        "lie", ["6.6.6.6, " * 1200, "１.2.3.4", "for=\u00e9vil", "x" * 9000 + ", 7.7.7.7"]
    )
    def test_client_prefix_cannot_move_the_key_to_the_proxy(self, lie: str) -> None:
        """Huge or non-ASCII text before the proxy's entry leaves the proxy's entry believed."""
        from apisec.clientaddr import TrustedProxies

        chain = [lie + ", 198.51.100.4"]
        assert TrustedProxies(count=1).client("10.0.0.1", forwarded_for=chain) == "198.51.100.4"
        networks = TrustedProxies(networks=["10.0.0.0/8"])
        assert networks.client("10.0.0.1", forwarded_for=chain) == "198.51.100.4"
        forwarded = TrustedProxies(count=1, header="forwarded")
        assert forwarded.client("10.0.0.1", forwarded=[lie + ", for=198.51.100.4"]) == (
            "198.51.100.4"
        )

    def test_client_cannot_spend_the_proxys_own_budget(self, make: Any, clock: FakeClock) -> None:
        """An attacker padding X-Forwarded-For is limited as itself, not as the load balancer."""
        from apisec.clientaddr import TrustedProxies

        limiter = RateLimiter(FixedWindow(1, 60), clock=clock)
        proxies = TrustedProxies(count=1)
        harness = make(lambda m, app: m.RateLimitMiddleware(app, limiter, proxies=proxies))
        padded = {"X-Forwarded-For": "6.6.6.6, " * 1200 + "198.51.100.4"}
        assert harness.request("GET", "/x", headers=padded, client="10.0.0.1").status_code == 200
        assert harness.request("GET", "/x", headers=padded, client="10.0.0.1").status_code == 429
        health_check = harness.request("GET", "/x", client="10.0.0.1")  # the proxy itself
        assert health_check.status_code == 200

    def test_proxy_written_garbage_is_still_not_believed(self) -> None:
        """A non-address where the proxy's entry belongs falls back to the peer, as before."""
        from apisec.clientaddr import TrustedProxies

        proxies = TrustedProxies(count=1)
        assert proxies.client("10.0.0.1", forwarded_for=["1.1.1.1, １.2.3.4"]) == "10.0.0.1"
        assert proxies.client("10.0.0.1", forwarded_for=["1.1.1.1, " + "9" * 9000]) == "10.0.0.1"


_HOSTS = st.one_of(
    st.sampled_from(["api.example.com", "api.example.com:8080", "[2001:db8::1]:80", "a."]),
    st.text(alphabet="ab.1:[]@/\\%?#-_ \t\nx9fF", max_size=25),
)
_TOKEN_SPELLINGS = [
    "access_token",
    "access%5Ftoken",
    "access%5ftoken",
    "%61ccess_token",
    "ACCESS_TOKEN",
    "access_token[]",
    "access_token ",
    "access+token",
    ";access_token",
]
_PATHS = st.text(alphabet="/\\.%2Fa@:;?#\t é", max_size=20).map(lambda p: "/" + p)


class TestParsersUnderHypothesis:
    """The protocol-free parsers, against whatever an attacker can put in a request."""

    @given(_HOSTS, _PATHS, st.text(alphabet="a=&%#/\\@ ", max_size=10))
    def test_https_location_never_leaves_the_host(self, host: str, path: str, query: str) -> None:
        """A redirect target is on the request's own host (and port) or not made at all."""
        from apisec._http import https_location

        location = https_location(host, None, path, query)
        if location is None:
            return
        assert not any(c in location for c in "\\\t\n\r #")
        parts = urlsplit(location)
        written = host.strip()
        if not written.endswith("]") and ":" in written:
            written = written.rsplit(":", 1)[0]  # the request's port is never kept
        assert (parts.scheme, parts.netloc) == ("https", written)

    @given(
        st.lists(
            st.tuples(
                st.one_of(
                    st.sampled_from(_TOKEN_SPELLINGS), st.text("acest_kno%5F+[]", max_size=14)
                ),
                st.sampled_from(["", "=", "=x", "=a=b", "=%26"]),
            ),
            max_size=4,
        ).map(lambda pairs: "&".join(name + value for name, value in pairs))
    )
    def test_every_query_a_framework_reads_as_a_token_is_seen(self, query: str) -> None:
        """Whenever ``parse_qsl`` (Starlette, Werkzeug, Django) finds ``access_token``, so do we."""
        from apisec._http import query_has

        if "access_token" in {name for name, _ in parse_qsl(query, keep_blank_values=True)}:
            assert query_has(query, ["access_token"])

    @given(st.lists(st.text(alphabet="Bearer bASIC,=+/ \tx.y_~-", max_size=24), max_size=3))
    def test_bearer_token_is_one_clean_token_or_nothing(self, values: list[str]) -> None:
        """The credential returned never carries separators, and never comes from two fields."""
        from apisec._http import InvalidRequest, bearer_token

        try:
            token = bearer_token(values)
        except InvalidRequest:
            return
        if token is not None:
            assert len(values) == 1
            assert not any(c in token for c in " \t,")
            assert values[0].strip(" \t").lower().startswith("bearer ")

    @given(st.lists(st.text(alphabet="0123456789, \t+-١", max_size=8), max_size=3))
    def test_declared_length_agrees_with_every_field(self, values: list[str]) -> None:
        """A length is returned only when every field and list member says the same number."""
        from apisec._http import InvalidRequest, declared_length

        try:
            length = declared_length(values)
        except InvalidRequest:
            return
        if length is None:
            assert not values
            return
        parts = [p.strip(" \t") for v in values for p in v.split(",")]
        assert all(p.isascii() and p.isdigit() and int(p) == length for p in parts)

    @given(_PATHS, st.sampled_from(["GET", "get", "HEAD", "head", "POST"]))
    def test_a_requirement_holds_for_either_reading_and_any_spelling(
        self, path: str, method: str
    ) -> None:
        """If the path, as sent or normalized, lies under ``/a``, the ``GET /a`` scope applies."""
        from apisec._http import PathRules, normalize_path

        rules: PathRules[str] = PathRules({"GET /a": "scope"})
        under = any(r == "/a" or r.startswith("/a/") for r in (path, normalize_path(path)))
        if under and method.upper() in ("GET", "HEAD"):
            assert rules.match_all(method, path) == ["scope"]

    @given(st.lists(st.text(alphabet='a=;" _-Hostrefh\t,', max_size=30), max_size=3))
    def test_refresh_cookie_is_read_once_or_refused(self, headers: list[str]) -> None:
        """Two copies are refused; a value read back is one cookie-safe token."""
        from apisec.tokens import DuplicateCookie, RefreshCookie

        cookie = RefreshCookie(name="__Host-r")
        planted = [*headers, "__Host-r=a", "x=1; __Host-r=b"]
        with pytest.raises(DuplicateCookie):
            cookie.read(planted)
        try:
            value = cookie.read(headers)
        except DuplicateCookie:
            return
        if value is not None:
            assert not any(c in value for c in ' ;,"\t')


class TestHttpsRedirectTarget:
    """The redirect goes to the very resource that was asked for, on the configured host."""

    @pytest.mark.parametrize(
        ("raw", "decoded"),
        [("/caf%C3%A9", "/café"), ("/a%252Fb", "/a%2Fb"), ("/x%2523y", "/x%23y")],
    )
    def test_location_keeps_the_requested_path(self, raw: str, decoded: str) -> None:
        """Both twins send ``raw``: WSGI re-encodes ``PATH_INFO`` as the server decoded it."""
        from apisec import asgi, wsgi
        from tests.support.apps import asgi_app, wsgi_app

        expected = f"https://api.example.com{raw}"
        asgi_stack = asgi.HTTPSRedirectMiddleware(asgi_app, host="api.example.com")
        sent = asgi_messages_for(
            asgi_stack, {"path": decoded, "raw_path": raw.encode(), "scheme": "http"}
        )
        assert dict(sent[0]["headers"])[b"location"] == expected.encode()
        wsgi_stack = wsgi.HTTPSRedirectMiddleware(wsgi_app, host="api.example.com")
        path_info = decoded.encode("utf-8").decode("latin-1")  # PEP 3333's "bytes as latin-1"
        headers: list[tuple[str, str]] = []

        def start_response(status: str, response_headers: Any, exc_info: Any = None) -> Any:
            headers.extend(response_headers)

        environ = {"REQUEST_METHOD": "GET", "PATH_INFO": path_info, "wsgi.url_scheme": "http"}
        list(wsgi_stack(environ, start_response))
        assert dict(headers)["Location"] == expected


def asgi_messages_for(app: Any, scope: dict[str, Any]) -> list[dict[str, Any]]:
    """Every message an ASGI app sends for a bodiless request with this scope."""
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    full = {"type": "http", "method": "GET", "headers": [], "root_path": "", **scope}
    asyncio.run(app(full, receive, send))
    return sent


def test_asgi_redirect_without_raw_path_re_encodes_percent() -> None:
    """A server that gives no ``raw_path``: the decoded ``%`` goes back out as ``%25``."""
    from apisec import asgi
    from tests.support.apps import asgi_app

    app = asgi.HTTPSRedirectMiddleware(asgi_app, host="api.example.com")
    sent = asgi_messages_for(app, {"path": "/a%2Fb/é", "scheme": "http"})
    assert dict(sent[0]["headers"])[b"location"] == b"https://api.example.com/a%252Fb/%C3%A9"


class TestWebhookPaths:
    """Every verifier a path's readings name must pass, like every scope they name."""

    def test_a_path_read_two_ways_needs_both_senders_signatures(
        self, make: Any, clock: FakeClock
    ) -> None:
        """``/hooks/a/../b`` signed for ``/hooks/a`` does not reach ``/hooks/b`` unverified."""
        verifiers = {
            "/hooks/a": WebhookVerifier(WEBHOOK_SECRET, clock=clock),
            "/hooks/b": WebhookVerifier(OTHER_SECRET, clock=clock),
        }
        harness = make(lambda m, app: m.WebhookMiddleware(app, verifiers))
        payload = b'{"event":"refund","amount":100000}'
        signed_for_a = WebhookSigner(WEBHOOK_SECRET).sign(payload, timestamp=int(clock()))
        assert harness.request("POST", "/hooks/a", headers=signed_for_a, content=payload).is_success
        smuggled = harness.request("POST", "/hooks/a/../b", headers=signed_for_a, content=payload)
        assert smuggled.status_code == 401
        signed_for_b = WebhookSigner(OTHER_SECRET).sign(payload, timestamp=int(clock()))
        assert harness.request("POST", "/hooks/b", headers=signed_for_b, content=payload).is_success


class TestRuleConfiguration:
    """Rules that could never match a request are refused when built, not ignored."""

    @pytest.mark.parametrize("rule", ["/caf%C3%A9", "GET /files/a%2Fb", "/admin%2F"])
    def test_percent_encoded_rule_is_refused(self, rule: str) -> None:
        """Rules match decoded paths: ``/caf%C3%A9`` would guard nothing, so it is an error."""
        from apisec import asgi, wsgi
        from apisec._http import PathRules
        from apisec.errors import ConfigurationError
        from tests.support.apps import asgi_app, wsgi_app

        with pytest.raises(ConfigurationError):
            PathRules({rule: "x"})
        tokens = TokenService(SigningKey.generate("EdDSA"), issuer=ISS, audience=AUD)
        for module, app in ((asgi, asgi_app), (wsgi, wsgi_app)):
            with pytest.raises(ConfigurationError):
                module.AuthMiddleware(app, tokens=tokens, scopes={rule: ["admin"]})


FRONT = "https://app.example.com"


def _app_that_sets_its_own_cors(kind: str) -> Any:
    """A bare app that answers every request with a permissive CORS header set of its own."""
    own = [("Access-Control-Allow-Origin", "*"), ("Access-Control-Allow-Credentials", "true")]
    if kind == "wsgi":

        def wsgi_own(environ: Any, start_response: Any) -> list[bytes]:
            start_response("200 OK", [("Content-Type", "application/json"), *own])
            return [b"{}"]

        return wsgi_own

    async def asgi_own(scope: Any, receive: Any, send: Any) -> None:
        headers = [(n.lower().encode(), v.encode()) for n, v in own]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"{}"})

    return asgi_own


class TestCorsHeld:
    """Look-alike origins and an app's own CORS headers never widen the policy (held)."""

    @pytest.mark.parametrize(
        "origin",
        [
            "https://app.example.com.evil.net",
            "https://app.example.com:443",
            "https://app.example.com/",
            "https://APP.example.com",
            "http://app.example.com",
            " https://app.example.com",
            "https://app.example.com\t",
            "null",
            "https://app.example.com, https://evil.net",
            "",
        ],
    )
    def test_look_alike_origin_gets_no_allow_header(
        self, make: Any, kind: str, origin: str
    ) -> None:
        """Only the exact serialized origin is echoed; the app's own ``*`` is stripped."""
        from apisec.cors import CorsPolicy

        policy = CorsPolicy([FRONT], allow_credentials=True)
        harness = make(
            lambda m, app: m.CORSMiddleware(app, policy), _app_that_sets_its_own_cors(kind)
        )
        response = harness.request("GET", "/x", headers={"Origin": origin})
        assert "access-control-allow-origin" not in response.headers
        assert "access-control-allow-credentials" not in response.headers
        assert "origin" in response.headers["vary"].lower()

    def test_allowed_origin_cache_is_not_poisoned_by_a_refused_one(self, make: Any) -> None:
        """After an allowed and a refused origin, each still gets its own answer."""
        from apisec.cors import CorsPolicy

        policy = CorsPolicy([FRONT], allow_credentials=True)
        harness = make(lambda m, app: m.CORSMiddleware(app, policy))
        for _ in range(2):
            ok = harness.request("GET", "/x", headers={"Origin": FRONT})
            assert ok.headers["access-control-allow-origin"] == FRONT
            evil = harness.request("GET", "/x", headers={"Origin": "https://evil.net"})
            assert "access-control-allow-origin" not in evil.headers
        twice = harness.request("GET", "/x", headers=[("Origin", FRONT), ("Origin", FRONT)])
        assert "access-control-allow-origin" not in twice.headers


class TestCredentialSpellingsHeld:
    """Credentials in places or spellings nobody reads are refused or ignored (held)."""

    @pytest.mark.parametrize(
        "query", ["access_token=T", "access%5Ftoken=T", "%61ccess_token=T", "a=1&access_token=T"]
    )
    def test_query_tokens_in_every_decoding_are_refused(
        self, make: Any, tokens: TokenService, query: str
    ) -> None:
        """Any spelling that decodes to ``access_token`` is a 400, even next to a good header."""
        token = bearer(tokens)["Authorization"][7:]
        harness = make(lambda m, app: m.AuthMiddleware(app, tokens=tokens))
        response = harness.request("GET", "/x?" + query.replace("T", token), headers=bearer(tokens))
        assert response.status_code == 400
        assert token not in response.text

    @pytest.mark.parametrize("name", ["ACCESS_TOKEN", "access_token[]", "access_token ", "token"])
    def test_look_alike_query_names_never_authenticate(
        self, make: Any, tokens: TokenService, name: str
    ) -> None:
        """With query tokens allowed, only ``access_token`` is read; look-alikes are ignored."""
        token = bearer(tokens)["Authorization"][7:]
        harness = make(lambda m, app: m.AuthMiddleware(app, tokens=tokens, allow_query_token=True))
        assert harness.request("GET", f"/x?{name}={token}").status_code == 401
        assert harness.request("GET", f"/x?access_token={token}").status_code == 200

    @pytest.mark.parametrize(
        "headers",
        [
            [("X-API-Key", "k1"), ("X-API-Key", "k2")],
            [("X-API-Key", "k1"), ("x-api-key", "k2")],
            [("Authorization", "Basic Zm9vOmJhcg=="), ("Authorization", "Bearer abc")],
        ],
    )
    def test_repeated_credential_fields_in_any_case_are_refused(
        self, make: Any, tokens: TokenService, clock: FakeClock, headers: list[tuple[str, str]]
    ) -> None:
        """Two fields (an ASGI list, or a WSGI server's comma join) are a 400, never a pick."""
        keys = ApiKeyService(clock=clock)
        harness = make(lambda m, app: m.AuthMiddleware(app, tokens=tokens, keys=keys))
        assert harness.request("GET", "/x", headers=headers).status_code == 400


class TestNothingLeaksHeld:
    """Credentials never come back in a response or an audit record (held)."""

    def test_bad_credentials_are_not_echoed(
        self, make: Any, tokens: TokenService, clock: FakeClock, audit_records: list[Any]
    ) -> None:
        """A forged token, a wrong key and a key in the query are refused without repeating them."""
        keys = ApiKeyService(clock=clock)
        real = keys.create("acct", scopes=["a"]).plaintext
        wrong_key = real[:-4] + ("AAAA" if not real.endswith("AAAA") else "BBBB")
        forger = TokenService(SigningKey.generate("EdDSA", kid="k1"), issuer=ISS, audience=AUD)
        forged = forger.issue_access_token("admin", scope="admin").access_token
        harness = make(lambda m, app: m.protect(app, tokens=tokens, keys=keys))
        responses = [
            harness.request("GET", "/x", headers={"Authorization": f"Bearer {forged}"}),
            harness.request("GET", "/x", headers={"X-API-Key": wrong_key}),
            harness.request("GET", f"/x?api_key={real}"),
        ]
        assert [r.status_code for r in responses] == [401, 401, 400]
        logged = " ".join(str(vars(record)) for record in audit_records)
        for secret in (forged, forged.split(".")[2], wrong_key, real, real[-12:]):
            assert all(secret not in r.text and secret not in str(r.headers) for r in responses)
            assert secret not in logged


def _wsgi_reader(style: str) -> Any:
    """A WSGI app that reads its whole body in one ``wsgi.input`` style and echoes the size."""

    def app(environ: Any, start_response: Any) -> list[bytes]:
        stream = environ["wsgi.input"]
        if style == "read":
            data = stream.read()
        elif style == "sized":
            data = b"".join(iter(lambda: stream.read(7), b""))
        elif style == "readline":
            data = b"".join(iter(stream.readline, b""))
        elif style == "readlines":
            data = b"".join(stream.readlines())
        else:
            data = b"".join(stream)
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps({"size": len(data)}).encode()]

    return app


class TestBodyLimitHeld:
    """Every way to read or announce a body meets the same cap (held)."""

    @pytest.mark.parametrize("style", ["read", "sized", "readline", "readlines", "iterate"])
    def test_every_wsgi_read_style_is_counted(self, style: str) -> None:
        """``read``, sized reads, ``readline``, ``readlines`` and iteration all stop at the cap."""
        harness = Harness(
            "wsgi", lambda m, app: m.BodyLimitMiddleware(app, 100), _wsgi_reader(style)
        )
        lines = [b"line of text\n"] * 20  # 260 bytes, chunked (no Content-Length)
        assert harness.request("POST", "/x", content=iter(lines)).status_code == 413
        assert harness.request("POST", "/x", content=iter(lines[:7])).json() == {"size": 91}

    def test_a_content_length_that_lies_low_buys_nothing(self, make: Any) -> None:
        """Declaring 10 bytes and sending 500 still meets the 100-byte cap."""
        harness = make(lambda m, app: m.BodyLimitMiddleware(app, 100))
        response = harness.request(
            "POST", "/body", headers={"Content-Length": "10"}, content=[b"z" * 250, b"z" * 250]
        )
        assert response.status_code == 413

    @pytest.mark.parametrize("values", [["10", "11"], ["10, 11"], ["10", "10, 12"]])
    def test_conflicting_content_lengths_are_400(self, make: Any, values: list[str]) -> None:
        """Two different lengths, as two fields or one list, are refused (no smuggling pick)."""
        harness = make(lambda m, app: m.BodyLimitMiddleware(app, 100))
        headers = [("Content-Length", value) for value in values]
        assert harness.request("POST", "/body", headers=headers).status_code == 400


class TestTokenEndpointHeld:
    """The token endpoint answers odd requests itself, in its own format (held)."""

    @pytest.fixture
    def endpoint_stack(self, make: Any, clock: FakeClock) -> Harness:
        tokens = TokenService(SigningKey.generate("EdDSA"), issuer=ISS, audience=AUD, clock=clock)
        endpoint = ClientCredentialsEndpoint(ApiKeyService(clock=clock), tokens)
        return make(lambda m, app: m.protect(app, tokens=tokens, token_endpoint=endpoint))  # type: ignore[no-any-return]

    def test_chunked_oversized_body_is_its_413(self, endpoint_stack: Harness) -> None:
        """A body without Content-Length is cut at the cap and refused in the OAuth format."""
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        chunks = iter([b"grant_type=client_credentials&x="] + [b"y" * 1024] * 20)
        response = endpoint_stack.request("POST", "/oauth/token", headers=form, content=chunks)
        assert (response.status_code, response.json()["error"]) == (413, "invalid_request")

    @pytest.mark.parametrize(
        ("method", "content_type", "status"),
        [
            ("GET", "application/x-www-form-urlencoded", 405),
            ("post", "application/x-www-form-urlencoded", 405),
            ("POST", "application/json", 400),
            ("POST", "multipart/form-data; boundary=x", 400),
            ("POST", "application/x-www-form-urlencoded; charset=latin-1", 400),
        ],
    )
    def test_methods_and_content_types(
        self, endpoint_stack: Harness, method: str, content_type: str, status: int
    ) -> None:
        """Only a POSTed UTF-8 form is read; the rest get RFC 6749 errors, never the app."""
        response = endpoint_stack.request(
            method,
            "/oauth/token",
            headers={"Content-Type": content_type},
            content=b"grant_type=client_credentials",
        )
        assert response.status_code == status
        assert response.json()["error"] == "invalid_request"
        assert response.headers["cache-control"] == "no-store"


class TestProtectWebSockets:
    def _handshake(self, stack: Any, headers: list[tuple[bytes, bytes]]) -> list[dict[str, Any]]:
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return {"type": "websocket.connect"}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        scope = {
            "type": "websocket",
            "path": "/ws",
            "headers": headers,
            "client": ("203.0.113.1", 1),
        }
        asyncio.run(stack(scope, receive, send))
        return sent

    def test_protect_authenticates_websocket_handshakes_by_default(self) -> None:
        """protect() closes an unauthenticated handshake (1008) before the app can accept it."""
        from apisec.asgi import protect
        from apisec.tokens import SigningKey, TokenService

        tokens = TokenService(
            SigningKey.generate("ES256"), issuer="https://i.example", audience="https://a.example"
        )

        async def ws_app(scope: Any, receive: Any, send: Any) -> None:
            await receive()
            await send({"type": "websocket.accept"})

        stack = protect(ws_app, tokens=tokens)
        assert self._handshake(stack, []) == [{"type": "websocket.close", "code": 1008}]
        token = tokens.issue("u1").access_token.encode()
        assert self._handshake(stack, [(b"authorization", b"Bearer " + token)]) == [
            {"type": "websocket.accept"}
        ]
        opened = protect(ws_app, tokens=tokens, websocket_auth=False)
        assert self._handshake(opened, []) == [{"type": "websocket.accept"}]
