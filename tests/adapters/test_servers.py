"""The protect() stacks behind real servers: ASGI under uvicorn, WSGI under gunicorn.

Requests go over real loopback sockets with httpx. Most requests arrive as
a TLS-terminating proxy on 127.0.0.1 (or ::1) forwards them — with
``X-Forwarded-Proto: https`` and the client in ``X-Forwarded-For`` — and
each test is a fresh forwarded client, so it has a limit budget of its own.
127.0.0.2 plays a client that reaches the server directly.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import secrets
import ssl
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from typing import Any

import httpx
import pytest
import redis.asyncio

from apisec.ratelimit import AsyncRateLimiter, FixedWindow
from apisec.ratelimit.redis import AsyncRedisStore
from apisec.testing import FakeClock
from tests.support.redis_server import RedisServer
from tests.support.server_apps import (
    HTTPS_HOST,
    START,
    StackConfig,
    build_asgi,
    token_service,
)
from tests.support.servers import GunicornServer, UvicornServer, loopback_hosts, plain

FRONT = "https://app.example.com"
WSGI_FACTORY = "tests.support.server_apps:wsgi_from_env()"
HOSTS = loopback_hosts()
API_HEADERS = {
    "content-security-policy": "default-src 'none'; frame-ancestors 'none'",
    "x-content-type-options": "nosniff",
    "cache-control": "no-store",
}

Server = UvicornServer | GunicornServer
_client_numbers = itertools.count(1)


def fresh_client_ip() -> str:
    """A client address no other test has used (198.18.0.0/15, for benchmarks)."""
    number = next(_client_numbers)
    return f"198.18.{number // 250}.{number % 250 + 1}"


@contextmanager
def proxied(server: Server, host: str = "127.0.0.1") -> Iterator[httpx.Client]:
    """A client as the loopback proxy forwards it: HTTPS, one fresh client address."""
    headers = {"X-Forwarded-Proto": "https", "X-Forwarded-For": fresh_client_ip()}
    with httpx.Client(base_url=server.url(host), headers=headers, timeout=15) as client:
        yield client


def problem(response: httpx.Response) -> dict[str, Any]:
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = json.loads(response.content)
    assert body["status"] == response.status_code
    return body


def assert_api_headers(response: httpx.Response) -> None:
    for name, value in API_HEADERS.items():
        assert response.headers.get(name) == value, name


@pytest.fixture(scope="module")
def config() -> StackConfig:
    return StackConfig(secret=secrets.token_hex(32), origins=(FRONT,), quota=10, max_body=1024)


@pytest.fixture(scope="module")
def token(config: StackConfig) -> str:
    return token_service(config).issue("alice", scope="orders:read").access_token


@pytest.fixture(scope="module", params=["uvicorn", "gunicorn"])
def server(request: pytest.FixtureRequest, config: StackConfig) -> Iterator[Server]:
    """The stack with a memory-store client limit: uvicorn in a thread, or gunicorn
    (one worker process, eight threads)."""
    if request.param == "uvicorn":
        with UvicornServer(plain(build_asgi(config))) as uvicorn_server:
            yield uvicorn_server
    else:
        with GunicornServer(WSGI_FACTORY, env=config.env(), threads=8) as gunicorn_server:
            yield gunicorn_server


@pytest.fixture
def client(server: Server) -> Iterator[httpx.Client]:
    with proxied(server) as proxied_client:
        yield proxied_client


class TestAuthentication:
    @pytest.mark.parametrize("host", HOSTS)
    def test_no_token_is_a_401_problem_with_a_bare_bearer_challenge(
        self, server: Server, host: str
    ) -> None:
        """Over IPv4 and IPv6 loopback, a request without credentials gets 401 and `Bearer`."""
        with proxied(server, host) as client:
            response = client.get("/me")
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert "error=" not in response.headers["www-authenticate"]
        problem(response)
        assert_api_headers(response)

    @pytest.mark.parametrize("host", HOSTS)
    def test_a_valid_token_reaches_the_app_with_its_principal(
        self, server: Server, host: str, token: str
    ) -> None:
        """Over IPv4 and IPv6 loopback, a valid bearer token is served 200 with the principal."""
        with proxied(server, host) as client:
            response = client.get("/me", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 200
        assert response.json() == {"subject": "alice", "kind": "token", "scopes": ["orders:read"]}
        assert_api_headers(response)

    def test_a_forged_token_is_invalid_token(self, client: httpx.Client, token: str) -> None:
        """A token with a changed signature is refused with error="invalid_token"."""
        forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
        response = client.get("/me", headers={"Authorization": f"Bearer {forged}"})
        assert response.status_code == 401
        assert 'error="invalid_token"' in response.headers["www-authenticate"]
        problem(response)


class TestCors:
    def test_an_allowed_preflight_is_answered_by_the_middleware(self, client: httpx.Client) -> None:
        """A preflight for DELETE with Authorization is a 204 with the allow headers."""
        response = client.options(
            "/orders/1",
            headers={
                "Origin": FRONT,
                "Access-Control-Request-Method": "DELETE",
                "Access-Control-Request-Headers": "authorization, x-request-id",
            },
        )
        assert response.status_code == 204
        assert response.headers["access-control-allow-origin"] == FRONT
        assert response.headers["access-control-allow-credentials"] == "true"
        assert "DELETE" in response.headers["access-control-allow-methods"]
        allowed = response.headers["access-control-allow-headers"].lower()
        assert "authorization" in allowed
        assert "x-request-id" in allowed
        assert_api_headers(response)

    def test_a_preflight_from_another_origin_is_refused(self, client: httpx.Client) -> None:
        """A look-alike origin's preflight is a 403 problem with no allow headers."""
        response = client.options(
            "/orders/1",
            headers={
                "Origin": "https://app.example.com.evil.test",
                "Access-Control-Request-Method": "DELETE",
            },
        )
        assert response.status_code == 403
        assert "access-control-allow-origin" not in response.headers
        problem(response)
        assert_api_headers(response)

    def test_a_401_still_carries_cors_headers(self, client: httpx.Client) -> None:
        """An actual request refused by authentication keeps its CORS headers (readable)."""
        response = client.get("/me", headers={"Origin": FRONT})
        assert response.status_code == 401
        assert response.headers["access-control-allow-origin"] == FRONT
        assert "origin" in response.headers["vary"].lower()


class TestProblems:
    def test_a_crash_is_a_500_problem_that_leaks_nothing(
        self, client: httpx.Client, token: str
    ) -> None:
        """An exception in the app becomes a 500 problem with security and CORS headers."""
        response = client.get(
            "/boom", headers={"Authorization": f"Bearer {token}", "Origin": FRONT}
        )
        assert response.status_code == 500
        body = problem(response)
        assert body["instance"].startswith("urn:uuid:")
        assert b"hunter2" not in response.content
        assert b"RuntimeError" not in response.content
        assert response.headers["access-control-allow-origin"] == FRONT
        assert_api_headers(response)

    def test_an_html_error_page_is_a_problem(self, client: httpx.Client, token: str) -> None:
        """The app's own HTML 404 page reaches the client as a problem."""
        response = client.get("/html-404", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 404
        assert problem(response)["title"] == "Not Found"


class TestStreaming:
    def test_a_streamed_response_arrives_before_it_is_finished(self, client: httpx.Client) -> None:
        """The first chunk reaches the client while the app is still waiting to send the rest."""
        gate = uuid.uuid4().hex
        with client.stream("GET", f"/gate/stream?{gate}") as response:
            assert response.status_code == 200
            assert_api_headers(response)
            chunks = response.iter_raw()
            first = b""
            while len(first) < len(b"first;"):
                first += next(chunks)
            assert first == b"first;"  # nothing more: the app is blocked on the gate
            assert client.get(f"/gate/release?{gate}").status_code == 204
            rest = b"".join(chunks)
        assert rest == b"released;last"


class TestBodyLimit:
    def test_a_declared_length_over_the_limit_is_413(
        self, client: httpx.Client, token: str
    ) -> None:
        """Content-Length 2048 over a 1024-byte limit is refused with a 413 problem."""
        response = client.post(
            "/body", content=b"x" * 2048, headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status_code == 413
        problem(response)
        assert_api_headers(response)

    def test_a_chunked_body_over_the_limit_is_413(self, client: httpx.Client, token: str) -> None:
        """A chunked body (no Content-Length) is counted as read and refused past the limit."""
        response = client.post(
            "/body",
            content=iter([b"x" * 512] * 4),
            headers={"Authorization": f"Bearer {token}"},
        )
        assert response.request.headers["transfer-encoding"] == "chunked"
        assert response.status_code == 413
        problem(response)

    def test_a_chunked_body_under_the_limit_reaches_the_app(
        self, client: httpx.Client, token: str
    ) -> None:
        """A chunked body within the limit is read whole by the app."""
        response = client.post(
            "/body",
            content=iter([b"x" * 300] * 3),
            headers={"Authorization": f"Bearer {token}"},
        )
        assert response.request.headers["transfer-encoding"] == "chunked"
        assert response.status_code == 200
        assert response.json() == {"size": 900}


class TestHttpsRedirect:
    def test_plain_http_through_the_proxy_is_redirected(self, server: Server) -> None:
        """A GET the trusted proxy forwards as plain http is a 308 to the HTTPS host."""
        with httpx.Client(base_url=server.url(), timeout=15) as client:
            response = client.get("/me?x=1", headers={"X-Forwarded-Proto": "http"})
        assert response.status_code == 308
        assert response.headers["location"] == f"https://{HTTPS_HOST}/me?x=1"

    def test_the_trusted_proxy_can_say_https(self, server: Server, token: str) -> None:
        """X-Forwarded-Proto: https from the proxy on 127.0.0.1 is believed."""
        with httpx.Client(base_url=server.url(), timeout=15) as client:
            response = client.get(
                "/me",
                headers={"X-Forwarded-Proto": "https", "Authorization": f"Bearer {token}"},
            )
        assert response.status_code == 200

    def test_a_direct_client_cannot_claim_https(self, server: Server, token: str) -> None:
        """From 127.0.0.2 (not a proxy) X-Forwarded-Proto is ignored: GET 308, POST 403."""
        transport = httpx.HTTPTransport(local_address="127.0.0.2")
        headers = {"X-Forwarded-Proto": "https", "Authorization": f"Bearer {token}"}
        with httpx.Client(
            base_url=server.url(), transport=transport, headers=headers, timeout=15
        ) as client:
            get = client.get("/me")
            post = client.post("/body", content=b"{}")
        assert get.status_code == 308
        assert get.headers["location"] == f"https://{HTTPS_HOST}/me"
        assert post.status_code == 403
        problem(post)


async def burst(server: Server, path: str, headers: dict[str, str], clients: int) -> list[int]:
    """``clients`` concurrent clients (own connection each, alternating loopback
    addresses) each send one request; their statuses."""
    tls = ssl.create_default_context()  # unused over http; made once instead of 50 times
    async with AsyncExitStack() as stack:
        pool = [
            await stack.enter_async_context(
                httpx.AsyncClient(
                    base_url=server.url(HOSTS[number % len(HOSTS)]),
                    headers=headers,
                    timeout=30,
                    verify=tls,
                )
            )
            for number in range(clients)
        ]
        responses = await asyncio.gather(*(client.get(path) for client in pool))
    for response in responses:
        if response.status_code == 429:
            assert int(response.headers["retry-after"]) > 0
            problem(response)
    return [response.status_code for response in responses]


def forwarded(token: str) -> dict[str, str]:
    """One forwarded client, authenticated, for a burst."""
    return {
        "X-Forwarded-Proto": "https",
        "X-Forwarded-For": fresh_client_ip(),
        "Authorization": f"Bearer {token}",
    }


class TestConcurrentLimit:
    async def test_fifty_clients_share_one_memory_limit_exactly(
        self, server: Server, config: StackConfig, token: str
    ) -> None:
        """50 concurrent requests for one client against a quota of 10 admit exactly 10."""
        statuses = await burst(server, "/me", forwarded(token), 50)
        assert statuses.count(200) == config.quota
        assert statuses.count(429) == 50 - config.quota


@asynccontextmanager
async def asgi_over_redis(config: StackConfig, redis_url: str) -> AsyncIterator[Any]:
    """The ASGI stack with its client limit in Redis (a client on the server's loop)."""
    client = redis.asyncio.Redis.from_url(redis_url)
    try:
        store = AsyncRedisStore(client, prefix=config.redis_prefix)
        limiter = AsyncRateLimiter(FixedWindow(config.quota, 3600), store, clock=FakeClock(START))
        yield build_asgi(config, limiter)
    finally:
        await client.aclose()


@pytest.fixture(scope="module", params=["uvicorn", "gunicorn"])
def redis_backed(
    request: pytest.FixtureRequest, config: StackConfig, redis_server: RedisServer
) -> Iterator[Server]:
    """The stack with its client limit in the shared redis-server: AsyncRedisStore under
    uvicorn, RedisStore under gunicorn with three worker processes."""
    shared = StackConfig(
        secret=config.secret,
        origins=config.origins,
        quota=config.quota,
        redis_url=redis_server.url,
        redis_prefix=f"servers-{uuid.uuid4().hex[:8]}:",
    )
    if request.param == "uvicorn":
        with UvicornServer(lambda: asgi_over_redis(shared, redis_server.url)) as uvicorn_server:
            yield uvicorn_server
    else:
        with GunicornServer(
            WSGI_FACTORY, env=shared.env(), workers=3, worker_class="sync", threads=1
        ) as gunicorn_server:
            yield gunicorn_server


class TestConcurrentRedisLimit:
    async def test_fifty_clients_share_one_redis_limit_exactly(
        self, redis_backed: Server, config: StackConfig, token: str
    ) -> None:
        """50 concurrent requests for one client, limited in Redis, admit exactly the quota."""
        statuses = await burst(redis_backed, "/me", forwarded(token), 50)
        assert statuses.count(200) == config.quota
        assert statuses.count(429) == 50 - config.quota
