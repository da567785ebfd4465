"""`apisec demo` as a real process, driven over HTTP through the whole story."""

from __future__ import annotations

import signal
import subprocess
import sys

import httpx
import pytest
import redis

from apisec.demo import DemoApi, build_api
from apisec.demo._api import PRINCIPAL_LIMIT
from apisec.passwords import PasswordHasher
from apisec.webhooks import WebhookSigner
from tests.support.demo_process import DemoInfo, DemoProcess
from tests.support.redis_server import RedisServer, free_loopback_port

EVIL = "https://evil.example"


def refresh_cookie(response: httpx.Response) -> str | None:
    """The value of the ``__Host-refresh`` cookie this response sets ("" when cleared)."""
    for header in response.headers.get_list("set-cookie"):
        name, _, rest = header.partition("=")
        if name == "__Host-refresh":
            return rest.split(";", 1)[0]
    return None


def assert_problem(response: httpx.Response, status: int) -> dict[str, object]:
    """An RFC 9457 problem with ``status``, carrying the security headers."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["x-content-type-options"] == "nosniff"
    body: dict[str, object] = response.json()
    assert body["status"] == status
    return body


def story(info: DemoInfo) -> None:
    """Login, call, refresh, reuse detection, scopes, API keys, webhooks, limits, the page."""
    web = {"Origin": info.web}
    with httpx.Client(base_url=info.api, timeout=10) as api:
        health = api.get("/health")
        assert health.status_code == 200 and "x-ratelimit-limit" in health.headers
        assert health.headers["content-security-policy"].startswith("default-src 'none'")

        # CORS: the page's origin may call with credentials; another origin may not.
        preflight = {"Access-Control-Request-Method": "POST",
                     "Access-Control-Request-Headers": "content-type"}  # fmt: skip
        allowed = api.options("/auth/login", headers={**web, **preflight})
        assert allowed.status_code == 204
        assert allowed.headers["access-control-allow-origin"] == info.web
        assert allowed.headers["access-control-allow-credentials"] == "true"
        refused = api.options("/auth/login", headers={"Origin": EVIL, **preflight})
        assert_problem(refused, 403)
        assert "access-control-allow-origin" not in refused.headers

        # No credential: a 401 problem the page can read (CORS headers on the refusal).
        anonymous = api.get("/api/orders", headers=web)
        assert_problem(anonymous, 401)
        assert anonymous.headers["access-control-allow-origin"] == info.web
        assert anonymous.headers["www-authenticate"].startswith("Bearer")

        # Login: a wrong password is one generic 401; the right one gives a token and a cookie.
        wrong = {"username": info.username, "password": "not-the-password"}
        assert_problem(api.post("/auth/login", json=wrong, headers=web), 401)
        login = api.post(
            "/auth/login",
            json={"username": info.username, "password": info.password},
            headers=web,
        )
        assert login.status_code == 200, login.text
        access = login.json()["access_token"]
        assert "refresh_token" not in login.json()
        (set_cookie,) = login.headers.get_list("set-cookie")
        assert set_cookie.startswith("__Host-refresh=")
        assert {"Path=/", "Secure", "HttpOnly", "SameSite=Strict"} <= {
            part.strip() for part in set_cookie.split(";")
        }
        first_cookie = refresh_cookie(login)
        assert first_cookie

        bearer = {"Authorization": f"Bearer {access}"}
        orders = api.get("/api/orders", headers={**web, **bearer})
        assert orders.status_code == 200 and orders.json()["orders"]
        assert "ratelimit" in orders.headers

        # Refresh rotates: a new access token and a new cookie, only from the page's origin.
        cookie = {"Cookie": f"__Host-refresh={first_cookie}"}
        assert_problem(api.post("/auth/refresh", headers={"Origin": EVIL, **cookie}), 403)
        rotated = api.post("/auth/refresh", headers={**web, **cookie})
        assert rotated.status_code == 200, rotated.text
        second_cookie = refresh_cookie(rotated)
        assert second_cookie and second_cookie != first_cookie
        access = rotated.json()["access_token"]
        bearer = {"Authorization": f"Bearer {access}"}
        assert api.get("/api/me", headers=bearer).json()["subject"] == info.username

        # Reuse detection: replaying the spent cookie revokes the whole family.
        replay = api.post("/auth/refresh", headers={**web, **cookie})
        assert_problem(replay, 401)
        assert refresh_cookie(replay) == ""  # cleared
        family = api.post(
            "/auth/refresh", headers={**web, "Cookie": f"__Host-refresh={second_cookie}"}
        )
        assert_problem(family, 401)

        # Scopes: the user may read orders, not write them; reports need the API key.
        forbidden = api.post("/api/orders", headers={**web, **bearer}, json={})
        assert_problem(forbidden, 403)
        assert 'error="insufficient_scope"' in forbidden.headers["www-authenticate"]
        assert_problem(api.get("/api/reports", headers=bearer), 403)
        report = api.get("/api/reports", headers={"X-API-Key": info.api_key})
        assert report.status_code == 200 and report.json()["report"] == "daily"
        assert_problem(api.get("/api/reports", headers={"X-API-Key": info.api_key + "x"}), 401)

        # Webhooks: a signed delivery is accepted once; a tampered body is refused.
        body = b'{"type":"demo.ping"}'
        signed = WebhookSigner(info.webhook_secret).sign(body)
        accepted = api.post(info.webhook_path, content=body, headers=signed)
        assert accepted.status_code == 202 and accepted.json()["bytes"] == len(body)
        assert_problem(api.post(info.webhook_path, content=body, headers=signed), 409)
        tampered = api.post(info.webhook_path, content=b'{"type":"demo.pong"}', headers=signed)
        assert_problem(tampered, 401)

        # Per-caller limit: a burst ends in 429 with Retry-After and the RateLimit fields.
        statuses = []
        limited = None
        for _ in range(PRINCIPAL_LIMIT + 2):
            response = api.get("/api/orders", headers={**web, **bearer})
            statuses.append(response.status_code)
            if response.status_code == 429:
                limited = response
                break
        assert limited is not None, statuses
        assert_problem(limited, 429)
        assert int(limited.headers["retry-after"]) >= 1
        assert limited.headers["ratelimit-policy"].startswith('"per-caller"')
        assert limited.headers["access-control-allow-origin"] == info.web
        assert statuses.count(200) <= PRINCIPAL_LIMIT

    # The page: its own origin, a strict CSP that lets it talk to the API and nothing else.
    with httpx.Client(base_url=info.web, timeout=10) as page:
        index = page.get("/")
        assert index.status_code == 200 and index.headers["content-type"].startswith("text/html")
        csp = index.headers["content-security-policy"]
        assert "script-src 'self'" in csp and f"connect-src {info.api}" in csp
        assert f'<meta name="apisec-api" content="{info.api}">' in index.text
        for element in ('id="login"', 'id="call"', 'id="refresh"', 'id="scope"', 'id="burst"',
                        'id="last"', 'id="log"'):  # fmt: skip
            assert element in index.text
        script = page.get("/app.js")
        assert script.status_code == 200 and "fetch(api + path" in script.text
        assert_problem(page.get("/nothing-here"), 404)


def assert_clean_stop(demo: DemoProcess, signum: int) -> None:
    """The signal stops both servers: exit code 0, no traceback."""
    stopped = demo.stop(signum)
    assert stopped.returncode == 0, stopped.stderr
    assert "Traceback" not in stopped.stderr, stopped.stderr
    assert "Exception in ASGI" not in stopped.stderr, stopped.stderr


@pytest.fixture
def demo_redis(redis_server: RedisServer) -> str:
    """The session's redis-server, flushed, as a URL."""
    client = redis.Redis(host=redis_server.host, port=redis_server.port)
    client.flushdb()
    client.close()
    return redis_server.url


class TestDemo:
    def test_whole_story_in_memory_then_ctrl_c(self) -> None:
        """The story against in-memory stores; SIGINT stops it with exit code 0."""
        with DemoProcess() as demo:
            assert demo.info is not None and demo.info.store == "memory"
            story(demo.info)
            assert_clean_stop(demo, signal.SIGINT)

    def test_whole_story_on_redis_then_sigterm(self, demo_redis: str) -> None:
        """The same story with every store in a real Redis; SIGTERM stops it cleanly."""
        with DemoProcess("--redis", demo_redis) as demo:
            assert demo.info is not None and demo.info.store == "redis"
            story(demo.info)
            keys = redis.Redis.from_url(demo_redis).keys("apisec-demo:*")
            assert keys, "the demo kept its state in Redis"
            assert_clean_stop(demo, signal.SIGTERM)

    def test_unreachable_redis_is_one_line(self) -> None:
        """A Redis that is not there is reported in one line, exit 2, before serving."""
        url = f"redis://127.0.0.1:{free_loopback_port()}/0"
        done = subprocess.run(
            [*DemoProcess("--redis", url).args],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 2 and done.stdout == ""
        assert done.stderr.count("\n") == 1 and "cannot reach Redis" in done.stderr


@pytest.fixture
async def demo_app() -> DemoApi:
    """The demo API in this process, over memory stores, with a cheap password hash."""
    return await build_api(
        api_origin="http://127.0.0.1:8000",
        web_origin="http://127.0.0.1:8001",
        hasher=PasswordHasher(scrypt_n_log2=10),
    )


def client_for(demo: DemoApi) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=demo.app, client=("127.0.0.1", 50000))
    return httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000")


class TestDemoApp:
    async def test_unknown_path_and_method_are_problems(self, demo_app: DemoApi) -> None:
        """The tiny router answers 404, and 405 with Allow, as problems."""
        async with client_for(demo_app) as api:
            key = {"X-API-Key": demo_app.credentials.api_key}
            assert_problem(await api.get("/api/nothing", headers=key), 404)
            wrong = await api.delete("/api/orders", headers=key)
            assert_problem(wrong, 405)
            assert wrong.headers["allow"] == "GET, POST"

    async def test_login_input_is_validated(self, demo_app: DemoApi) -> None:
        """Login takes strict JSON: 415 for another type, 422 naming each bad field."""
        async with client_for(demo_app) as api:
            form = await api.post("/auth/login", data={"username": "demo"})
            assert_problem(form, 415)
            body = assert_problem(await api.post("/auth/login", json={"username": 7}), 422)
            assert {e["field"] for e in body["errors"]} == {"username", "password"}  # type: ignore[attr-defined]

    async def test_repeated_failures_lock_the_account(self, demo_app: DemoApi) -> None:
        """Five wrong passwords lock the account: 429 with Retry-After, even for the right one."""
        creds = demo_app.credentials
        async with client_for(demo_app) as api:
            for _ in range(5):
                wrong = await api.post("/auth/login", json={"username": "demo", "password": "x"})
                assert_problem(wrong, 401)
            right = {"username": creds.username, "password": creds.password}
            locked = await api.post("/auth/login", json=right)
            assert_problem(locked, 429)
            assert int(locked.headers["retry-after"]) > 0

    async def test_logout_revokes_the_family(self, demo_app: DemoApi) -> None:
        """Logout clears the cookie, and its refresh token no longer works."""
        creds = demo_app.credentials
        async with client_for(demo_app) as api:
            login = await api.post(
                "/auth/login", json={"username": creds.username, "password": creds.password}
            )
            cookie = {"Cookie": f"__Host-refresh={refresh_cookie(login)}"}
            logout = await api.post("/auth/logout", headers=cookie)
            assert logout.status_code == 204 and refresh_cookie(logout) == ""
            assert_problem(await api.post("/auth/refresh", headers=cookie), 401)
            assert_problem(await api.post("/auth/refresh"), 401)  # no cookie at all


def test_importing_the_command_and_demo_loads_no_server_or_redis() -> None:
    """`apisec.cli` and `apisec.demo` import uvicorn and redis only when the demo runs."""
    code = (
        "import sys, apisec.cli, apisec.demo;"
        "print(','.join(m for m in ('uvicorn', 'redis', 'httpx') if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == ""
