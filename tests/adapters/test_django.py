"""apisec.django: the acceptance scenario through Django's test client, then Django's extras."""

from __future__ import annotations

import logging
import types
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import django
import pytest
from django.core.exceptions import PermissionDenied
from django.core.signals import got_request_exception
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.test import Client, override_settings
from django.urls import path
from django.utils.functional import empty
from django.views import View
from django.views.decorators.http import require_GET, require_POST

from apisec.authz import require_owner
from apisec.cors import CorsPolicy
from apisec.django import (
    api_key_only,
    handler404,
    handler500,
    limit,
    principal,
    public,
    scopes,
    webhook,
    webhook_body,
)
from apisec.errors import ConfigurationError
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

MIDDLEWARE = ["apisec.django.ApiSecMiddleware"]


@pytest.fixture(scope="module", autouse=True)
def django_settings() -> Iterator[None]:
    """Minimal settings for this module; left unconfigured afterwards (the docs configure too)."""
    from django.conf import settings  # not at module level: doctest collection would touch it

    settings._wrapped = empty
    settings.configure(
        DEBUG=False,
        SECRET_KEY="test-only-" + "k" * 40,
        ALLOWED_HOSTS=["testserver"],
        INSTALLED_APPS=[],
        MIDDLEWARE=MIDDLEWARE,
        ROOT_URLCONF=types.ModuleType("empty_urls"),
    )
    django.setup()
    yield
    settings._wrapped = empty


def urlconf(*patterns: Any, **handlers: Any) -> types.ModuleType:
    """A URLconf module object built in the test (ROOT_URLCONF accepts one)."""
    module = types.ModuleType("test_urls")
    module.urlpatterns = list(patterns)  # type: ignore[attr-defined]
    for name, handler in handlers.items():
        setattr(module, name, handler)
    return module


def apisec_settings(s: Services) -> dict[str, Any]:
    return {
        "tokens": s.tokens,
        "keys": s.keys,
        "cors": s.cors,
        "client_limiter": s.client_limiter,
        "principal_limiter": s.principal_limiter,
        "max_body": MAX_BODY,
        # One URL, one view, two methods: per-method scopes come from the path rules.
        "scopes": {"GET /orders": ["orders:read"], "POST /orders": ["orders:write"]},
    }


@public
def health(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"ok": True})


class Orders(View):  # type: ignore[misc]  # Django ships no types
    def get(self, request: HttpRequest) -> HttpResponse:
        who = principal(request)
        return JsonResponse(principal_reply(who.subject, who.kind, who.scopes))

    def post(self, request: HttpRequest) -> HttpResponse:
        response = self.get(request)
        response.status_code = 201
        return response


@public
def boom(request: HttpRequest) -> HttpResponse:
    raise RuntimeError(f"database password is {SECRET_IN_CRASH}")


def payments_view(s: Services) -> Callable[[HttpRequest], HttpResponse]:
    @require_POST  # type: ignore[untyped-decorator]
    @webhook(s.verifier)
    def payments(request: HttpRequest) -> HttpResponse:
        assert request.body == webhook_body(request)
        return JsonResponse(hook_reply(webhook_body(request)))

    return payments  # type: ignore[no-any-return]


def scenario_urls(s: Services) -> types.ModuleType:
    return urlconf(
        path("health", health),
        path("orders", Orders.as_view()),
        path("boom", boom),
        path("hooks/payments", payments_view(s)),
    )


def sender(client: Client) -> Send:
    """A Send over Django's own test client."""

    def send(
        method: str,
        path: str,
        *,
        headers: Sequence[tuple[str, str]] = (),
        body: bytes = b"",
        client: str = "198.51.100.7",
    ) -> Reply:
        response = client_.generic(
            method,
            path,
            data=body,
            content_type="application/json",
            headers=dict(headers),
            REMOTE_ADDR=client,
        )
        pairs = tuple((name.lower(), value) for name, value in response.items())
        return Reply(response.status_code, pairs, response.content)

    client_ = client
    return send


@pytest.fixture
def services() -> Services:
    return Services()


@pytest.fixture
def configured(services: Services) -> Iterator[Callable[..., Client]]:
    """Settings for one test: APISEC from the services; returns a client factory for a URLconf."""
    overrides: list[Any] = []

    def client_for(urls: types.ModuleType, **apisec: Any) -> Client:
        override = override_settings(
            ROOT_URLCONF=urls, APISEC={**apisec_settings(services), **apisec}
        )
        override.enable()
        overrides.append(override)
        return Client(raise_request_exception=False)

    yield client_for
    for override in reversed(overrides):
        override.disable()


@pytest.fixture
def scenario(services: Services, configured: Callable[..., Client]) -> Scenario:
    return Scenario(services, sender(configured(scenario_urls(services))))


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
        """400/401/403/404/405/413/429 are all problem+json, Django's own 404 and 405 included."""
        scenario.problems()

    def test_server_error(self, scenario: Scenario, caplog: pytest.LogCaptureFixture) -> None:
        """A crash is a bare 500 problem whose correlation id is in the log with the trace."""
        scenario.server_error(caplog)

    def test_webhook(self, scenario: Scenario) -> None:
        """A verified delivery reaches the view byte for byte; tampered ones are refused."""
        scenario.webhook()


DOTTED_CORS = CorsPolicy(["https://dotted.example.com"])


def respond(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"principal": getattr(request.principal, "subject", None)})


class TestSettings:
    def test_dotted_paths_name_the_objects(self, configured: Callable[..., Client]) -> None:
        """APISEC values may be dotted paths, imported when the middleware loads."""
        client = configured(
            urlconf(path("x", public(respond))), cors="tests.adapters.test_django.DOTTED_CORS"
        )
        response = client.get("/x", headers={"Origin": "https://dotted.example.com"})
        assert response.headers["Access-Control-Allow-Origin"] == "https://dotted.example.com"

    @pytest.mark.parametrize(
        "apisec",
        [
            {"token": None},
            {"cors": "tests.adapters.test_django.NO_SUCH_THING"},
            {"cors": "*"},
            {"max_body": -1},
        ],
    )
    def test_bad_settings_are_configuration_errors(
        self, configured: Callable[..., Client], apisec: dict[str, Any]
    ) -> None:
        """An unknown key, an unimportable path or a bad value fails when the middleware loads."""
        client = configured(urlconf(path("x", public(respond))), **apisec)
        with pytest.raises(ConfigurationError):
            client.get("/x")


class TestDecorators:
    def test_request_principal_and_public_views(
        self, configured: Callable[..., Client], services: Services
    ) -> None:
        """request.principal is the caller on protected views and None on public ones."""
        client = configured(urlconf(path("me", respond), path("open", public(respond))))
        auth = {"Authorization": services.bearer("user_1")[1]}
        assert client.get("/me", headers=auth).json() == {"principal": "user_1"}
        assert client.get("/me").status_code == 401
        assert client.get("/open").json() == {"principal": None}

    def test_scopes_and_api_key_only(
        self, configured: Callable[..., Client], services: Services
    ) -> None:
        """@scopes demands scopes (403); @api_key_only turns a token away with the key challenge."""
        client = configured(
            urlconf(
                path("write", scopes("orders:write")(respond)),
                path("reports", api_key_only(respond)),
            )
        )
        auth = {"Authorization": services.bearer("user_1")[1]}
        denied = client.get("/write", headers=auth)
        assert denied.status_code == 403
        assert denied.json()["required_scopes"] == ["orders:write"]
        by_token = client.get("/reports", headers=auth)
        assert by_token.status_code == 401
        assert by_token.headers["WWW-Authenticate"] == 'ApiKey realm="api", header="X-API-Key"'
        by_key = client.get("/reports", headers={"X-API-Key": services.read_key.plaintext})
        assert by_key.json() == {"principal": "acct_read"}

    def test_class_based_views_take_the_decorators_on_the_class(
        self, configured: Callable[..., Client]
    ) -> None:
        """A decorated View class passes its rules to the function as_view() returns."""

        @public
        class Status(View):  # type: ignore[misc]
            def get(self, request: HttpRequest) -> HttpResponse:
                return JsonResponse({"ok": True})

        client = configured(urlconf(path("status", Status.as_view())))
        assert client.get("/status").json() == {"ok": True}

    def test_view_limit(self, configured: Callable[..., Client], services: Services) -> None:
        """A view's own limit is enforced and reported while it is the tightest budget."""
        search = RateLimiter(FixedWindow(2, 60), prefix="search", clock=services.clock)
        client = configured(urlconf(path("search", public(limit(search)(respond)))))
        replies = [client.get("/search") for _ in range(3)]
        assert [r.status_code for r in replies] == [200, 200, 429]
        assert [r.headers["X-RateLimit-Remaining"] for r in replies] == ["1", "0", "0"]
        assert replies[2].headers["Retry-After"] == str(replies[2].json()["retry_after"])

    def test_webhooks_are_exempt_from_csrf(
        self, configured: Callable[..., Client], services: Services
    ) -> None:
        """With CsrfViewMiddleware on, a signed delivery passes: its signature authenticates it."""
        client = configured(urlconf(path("hook", payments_view(services))))
        with override_settings(
            MIDDLEWARE=[*MIDDLEWARE, "django.middleware.csrf.CsrfViewMiddleware"]
        ):
            client = Client(enforce_csrf_checks=True)
            payload = b'{"event":"paid"}'
            response = client.post(
                "/hook",
                data=payload,
                content_type="application/json",
                headers=dict(services.signed(payload)),
            )
        assert response.status_code == 200, response.content

    def test_unrouted_urls_need_credentials(
        self, configured: Callable[..., Client], services: Services
    ) -> None:
        """Deny by default: an unknown URL is a 401 until the caller authenticates, then a 404."""
        client = configured(urlconf(path("open", public(respond))))
        assert client.get("/admin").status_code == 401
        found = client.get("/admin", headers={"Authorization": services.bearer("u")[1]})
        assert found.status_code == 404
        assert found.headers["Content-Type"] == "application/problem+json"


class TestErrors:
    def test_errors_raised_in_views_are_problems_with_audit_context(
        self,
        configured: Callable[..., Client],
        services: Services,
        audit_records: list[logging.LogRecord],
    ) -> None:
        """require_owner's 404 in a view: a problem; its audit event names caller and client."""

        def order(request: HttpRequest, owner: str) -> HttpResponse:
            require_owner(principal(request), owner)
            return JsonResponse({"owner": owner})

        client = configured(urlconf(path("orders/<str:owner>", order)))
        auth = {"Authorization": services.bearer("user_1")[1]}
        assert client.get("/orders/user_1", headers=auth).status_code == 200
        hidden = client.get("/orders/user_2", headers=auth, REMOTE_ADDR="203.0.113.77")
        assert hidden.status_code == 404
        assert hidden.headers["Content-Type"] == "application/problem+json"
        (denied,) = [r for r in audit_records if r.event == "authz.denied"]  # type: ignore[attr-defined]
        assert denied.principal == "user_1"  # type: ignore[attr-defined]
        assert denied.client == "203.0.113.77"  # type: ignore[attr-defined]

    def test_djangos_own_error_pages_become_problems(
        self, configured: Callable[..., Client], services: Services
    ) -> None:
        """PermissionDenied's 403 page and require_GET's 405 are rewritten, Allow kept."""

        @public
        def forbidden(request: HttpRequest) -> HttpResponse:
            raise PermissionDenied

        client = configured(
            urlconf(path("forbidden", forbidden), path("get-only", public(require_GET(respond))))
        )
        refused = client.get("/forbidden")
        assert refused.status_code == 403
        assert refused.headers["Content-Type"] == "application/problem+json"
        wrong = client.post("/get-only")
        assert wrong.status_code == 405
        assert wrong.headers["Allow"] == "GET"
        assert wrong.json()["title"] == "Method Not Allowed"

    def test_rewriting_can_be_switched_off(self, configured: Callable[..., Client]) -> None:
        """rewrite_errors=False leaves Django's own pages alone."""
        client = configured(urlconf(path("open", public(respond))), rewrite_errors=False)
        response = client.get("/nowhere", headers={"X-API-Key": "sk_live_x"})
        assert response.status_code == 401  # refusals are still problems
        client = configured(
            urlconf(path("open", public(respond))), rewrite_errors=False, tokens=None, keys=None
        )
        assert client.get("/nowhere").headers["Content-Type"].startswith("text/html")

    def test_crash_is_signalled_to_error_trackers(
        self, configured: Callable[..., Client], services: Services
    ) -> None:
        """got_request_exception still fires for a crash the middleware answered."""
        heard: list[Any] = []

        def listener(sender: Any, request: HttpRequest, **extra: Any) -> None:
            heard.append(request.path)

        got_request_exception.connect(listener)
        try:
            response = configured(scenario_urls(services)).get("/boom")
        finally:
            got_request_exception.disconnect(listener)
        assert response.status_code == 500
        assert heard == ["/boom"]

    def test_handlers_for_urls_py_without_the_middleware(
        self, configured: Callable[..., Client], caplog: pytest.LogCaptureFixture
    ) -> None:
        """handler404 and handler500 answer with problems; the 500's id is logged with the trace."""
        client = configured(
            urlconf(path("boom", boom), handler404=handler404, handler500=handler500)
        )
        with override_settings(MIDDLEWARE=[]):
            client = Client(raise_request_exception=False)
            missing = client.get("/nowhere")
            with caplog.at_level(logging.ERROR, logger="apisec.adapters"):
                crashed = client.get("/boom")
        assert missing.status_code == 404
        assert missing.headers["Content-Type"] == "application/problem+json"
        body = crashed.json()
        assert crashed.status_code == 500
        assert SECRET_IN_CRASH.encode() not in crashed.content
        record = next(r for r in caplog.records if r.name == "apisec.adapters")
        assert body["instance"] in record.getMessage()
        assert record.exc_info is not None
