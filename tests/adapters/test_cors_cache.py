"""CORSMiddleware remembers allowed answers: the caches never change an answer and stay bounded."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apisec import asgi, wsgi
from apisec.cors import CorsPolicy
from tests.support.apps import asgi_app, wsgi_app
from tests.support.harness import Harness, Kind

FRONT = "https://app.example.com"
POLICY = CorsPolicy(
    [FRONT, "https://*.tenants.example.com"],
    allow_methods=["GET", "POST", "DELETE"],
    allow_headers=["Authorization", "Content-Type", "X-Request-Id"],
    expose_headers=["X-RateLimit-Remaining"],
    allow_credentials=True,
    allow_private_network=True,
)

origins = st.sampled_from(
    [
        FRONT,
        "https://a.tenants.example.com",
        "https://b.tenants.example.com",
        "https://app.example.com.evil.test",
        "HTTPS://APP.EXAMPLE.COM",
        "null",
        "",
    ]
)
request_methods = st.sampled_from(["GET", "DELETE", "PUT", "get", "", "DEL ETE"])
request_headers = st.sampled_from(
    [
        None,
        "authorization",
        "Authorization, Content-Type",
        "content-type,x-request-id",
        "x-other",
        "authorization,,",
        "bad header",
    ]
)
private = st.sampled_from([None, "true", "false", " TRUE "])


@st.composite
def requests(draw: st.DrawFn) -> tuple[str, list[tuple[str, str]]]:
    """A preflight or an actual request, sometimes with repeated fields."""
    headers: list[tuple[str, str]] = []
    for _ in range(draw(st.sampled_from([0, 1, 1, 1, 2]))):
        headers.append(("Origin", draw(origins)))
    preflight = draw(st.booleans())
    if preflight:
        for _ in range(draw(st.sampled_from([0, 1, 1, 1, 2]))):
            headers.append(("Access-Control-Request-Method", draw(request_methods)))
        names = draw(request_headers)
        if names is not None:
            headers.append(("Access-Control-Request-Headers", names))
        flag = draw(private)
        if flag is not None:
            headers.append(("Access-Control-Request-Private-Network", flag))
    method = "OPTIONS" if preflight else draw(st.sampled_from(["GET", "POST", "DELETE"]))
    return method, headers


def answer(harness: Harness, method: str, headers: list[tuple[str, str]]) -> Any:
    response = harness.request(method, "/ok", headers=headers)
    return response.status_code, sorted(response.headers.multi_items()), response.content


@pytest.fixture(params=["asgi", "wsgi"])
def pair(request: pytest.FixtureRequest) -> Iterator[tuple[Harness, Harness]]:
    """A long-lived middleware (its caches fill up) and one rebuilt for every request."""
    kind = request.param
    long_lived = Harness(kind, lambda module, app: module.CORSMiddleware(app, POLICY))
    fresh = Harness(kind, lambda module, app: module.CORSMiddleware(app, POLICY))
    try:
        yield long_lived, fresh
    finally:
        long_lived.close()
        fresh.close()


class TestCacheNeverChangesAnAnswer:
    @settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(sequence=st.lists(requests(), min_size=1, max_size=12))
    def test_a_warm_middleware_answers_like_a_fresh_one(
        self, pair: tuple[Harness, Harness], sequence: list[Any]
    ) -> None:
        """Every request, repeated or not, gets exactly what a cold middleware would answer."""
        long_lived, fresh = pair
        module = asgi if fresh.kind == "asgi" else wsgi
        inner = asgi_app if fresh.kind == "asgi" else wsgi_app
        for method, headers in sequence + sequence:
            fresh.app = module.CORSMiddleware(inner, POLICY)
            assert answer(long_lived, method, headers) == answer(fresh, method, headers)

    def test_a_response_cannot_poison_a_remembered_answer(
        self, pair: tuple[Harness, Harness]
    ) -> None:
        """The headers of one response are its own: changing them changes no later response."""
        long_lived, _ = pair
        request = {"Origin": FRONT}
        first = long_lived.request("GET", "/ok", headers=request)
        assert first.headers["access-control-allow-origin"] == FRONT
        if long_lived.kind == "asgi":
            middleware: Any = long_lived.app

            async def mutate(message: dict[str, Any]) -> None:
                if message["type"] == "http.response.start":
                    message["headers"].append((b"x-injected", b"1"))
                    message["headers"][0] = (b"x-replaced", b"1")

            async def receive() -> dict[str, Any]:
                return {"type": "http.request", "body": b""}

            scope = {
                "type": "http",
                "method": "GET",
                "path": "/ok",
                "headers": [(b"origin", FRONT.encode())],
            }
            loop = long_lived._loop
            assert loop is not None
            loop.run_until_complete(middleware(scope, receive, mutate))
        else:

            def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
                headers.append(("X-Injected", "1"))
                headers[0] = ("X-Replaced", "1")
                return None

            environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/ok", "HTTP_ORIGIN": FRONT}
            long_lived.app(environ, start)
        again = long_lived.request("GET", "/ok", headers=request)
        assert sorted(again.headers.multi_items()) == sorted(first.headers.multi_items())

    def test_a_response_cannot_poison_a_remembered_preflight(
        self, pair: tuple[Harness, Harness]
    ) -> None:
        """Headers handed out for a remembered preflight are copies of what is kept."""
        long_lived, _ = pair
        preflight = {"Origin": FRONT, "Access-Control-Request-Method": "DELETE"}
        first = long_lived.request("OPTIONS", "/ok", headers=preflight)
        assert first.status_code == 204
        if long_lived.kind == "asgi":
            middleware: Any = long_lived.app

            async def mutate(message: dict[str, Any]) -> None:
                if message["type"] == "http.response.start":
                    message["headers"].append((b"x-injected", b"1"))

            async def receive() -> dict[str, Any]:
                return {"type": "http.request", "body": b""}

            scope = {
                "type": "http",
                "method": "OPTIONS",
                "path": "/ok",
                "headers": [
                    (b"origin", FRONT.encode()),
                    (b"access-control-request-method", b"DELETE"),
                ],
            }
            loop = long_lived._loop
            assert loop is not None
            loop.run_until_complete(middleware(scope, receive, mutate))
        else:

            def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
                headers.append(("X-Injected", "1"))
                return None

            environ = {
                "REQUEST_METHOD": "OPTIONS",
                "PATH_INFO": "/ok",
                "HTTP_ORIGIN": FRONT,
                "HTTP_ACCESS_CONTROL_REQUEST_METHOD": "DELETE",
            }
            long_lived.app(environ, start)
        again = long_lived.request("OPTIONS", "/ok", headers=preflight)
        assert sorted(again.headers.multi_items()) == sorted(first.headers.multi_items())


class TestCacheBounds:
    @pytest.mark.parametrize("kind", ["asgi", "wsgi"])
    def test_a_flood_of_allowed_origins_stays_bounded(self, kind: Kind) -> None:
        """Hundreds of distinct allowed origins (a wildcard policy) keep at most 256 answers,
        and each is still answered correctly after the cache is full."""
        harness = Harness(kind, lambda module, app: module.CORSMiddleware(app, POLICY))
        try:
            for number in range(600):
                origin = f"https://t{number}.tenants.example.com"
                response = harness.request("GET", "/ok", headers={"Origin": origin})
                assert response.headers["access-control-allow-origin"] == origin
            assert len(harness.app._allowed) == 256
        finally:
            harness.close()

    @pytest.mark.parametrize("kind", ["asgi", "wsgi"])
    def test_a_flood_of_allowed_preflights_stays_bounded(self, kind: Kind) -> None:
        """Hundreds of distinct allowed preflights never keep more than 256 answers."""
        harness = Harness(kind, lambda module, app: module.CORSMiddleware(app, POLICY))
        try:
            for number in range(600):
                origin = f"https://t{number}.tenants.example.com"
                response = harness.request(
                    "OPTIONS",
                    "/ok",
                    headers={"Origin": origin, "Access-Control-Request-Method": "GET"},
                )
                assert response.status_code == 204
                assert response.headers["access-control-allow-origin"] == origin
            assert 0 < len(harness.app._preflights) <= 256
            if kind == "asgi":  # encoded answers, one per allowed origin, are bounded too
                assert 0 < len(harness.app._encoded) <= 256
        finally:
            harness.close()

    def test_preflights_sharing_an_answer_share_its_encoding(self) -> None:
        """Differently spelled preflights from one origin are each decided, and encoded once."""
        harness = Harness("asgi", lambda module, app: module.CORSMiddleware(app, POLICY))
        try:
            answers = set()
            for spelling in ("content-type", "Content-Type", "CONTENT-TYPE", "content-Type"):
                response = harness.request(
                    "OPTIONS",
                    "/ok",
                    headers={
                        "Origin": FRONT,
                        "Access-Control-Request-Method": "POST",
                        "Access-Control-Request-Headers": spelling,
                    },
                )
                assert response.status_code == 204
                answers.add(tuple(sorted(response.headers.multi_items())))
            assert len(answers) == 1
            assert len(harness.app._preflights) == 4
            assert len(harness.app._encoded) == 1
        finally:
            harness.close()

    @pytest.mark.parametrize("kind", ["asgi", "wsgi"])
    def test_long_preflights_are_answered_but_not_kept(self, kind: Kind) -> None:
        """A preflight carrying a field of kilobytes (still allowed) is decided, not kept."""
        harness = Harness(kind, lambda module, app: module.CORSMiddleware(app, POLICY))
        try:
            response = harness.request(
                "OPTIONS",
                "/ok",
                headers={
                    "Origin": FRONT,
                    "Access-Control-Request-Method": "GET",
                    "Access-Control-Request-Private-Network": "x" * 3000,
                },
            )
            assert response.status_code == 204
            assert len(harness.app._preflights) == 0
        finally:
            harness.close()


class TestRefusalsAreNotCached:
    @pytest.mark.parametrize("kind", ["asgi", "wsgi"])
    def test_every_refused_preflight_is_audited(
        self, kind: Kind, audit_records: list[logging.LogRecord]
    ) -> None:
        """The same refused preflight three times is three 403s and three cors.rejected events."""
        harness = Harness(kind, lambda module, app: module.CORSMiddleware(app, POLICY))
        try:
            for _ in range(3):
                response = harness.request(
                    "OPTIONS",
                    "/ok",
                    headers={"Origin": FRONT, "Access-Control-Request-Method": "PUT"},
                )
                assert response.status_code == 403
        finally:
            harness.close()
        events = [r for r in audit_records if getattr(r, "event", None) == "cors.rejected"]
        assert len(events) == 3

    @pytest.mark.parametrize("kind", ["asgi", "wsgi"])
    def test_every_refused_origin_is_audited(
        self, kind: Kind, audit_records: list[logging.LogRecord]
    ) -> None:
        """The same refused origin three times is three cors.rejected events, no allowance."""
        harness = Harness(kind, lambda module, app: module.CORSMiddleware(app, POLICY))
        try:
            for _ in range(3):
                response = harness.request("GET", "/ok", headers={"Origin": "https://evil.test"})
                assert "access-control-allow-origin" not in response.headers
        finally:
            harness.close()
        events = [r for r in audit_records if getattr(r, "event", None) == "cors.rejected"]
        assert len(events) == 3
