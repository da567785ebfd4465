"""Adapter configuration, public surface, import hygiene, and fuzzed requests."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apisec import ConfigurationError, asgi, wsgi
from apisec._http import PathRules, normalize_path
from apisec.apikeys import (
    ApiKeyService,
    AsyncApiKeyService,
    AsyncSQLiteApiKeyStore,
    SQLiteApiKeyStore,
)
from apisec.authz import Principal
from apisec.cors import CorsPolicy
from apisec.ratelimit import AsyncRateLimiter, FixedWindow, MemoryStore, RateLimiter, RedisStore
from apisec.tokens import SigningKey, TokenService
from tests.support.apps import asgi_app, wsgi_app
from tests.support.harness import Harness

SHARED_STORE = MemoryStore()
TOKENS = TokenService(
    SigningKey.generate("EdDSA"), issuer="https://a.example", audience="https://b.example"
)


def test_asgi_and_wsgi_export_the_same_names() -> None:
    """The two adapters are twins: one vocabulary."""
    assert asgi.__all__ == wsgi.__all__


def test_importing_the_adapters_imports_no_framework_or_redis() -> None:
    """apisec.asgi and apisec.wsgi stand on the core alone."""
    code = (
        "import sys, apisec.asgi, apisec.wsgi;"
        "bad = [m for m in ('redis', 'starlette', 'fastapi', 'flask', 'django', 'falcon',"
        " 'litestar', 'werkzeug', 'httpx', 'uvicorn') if m in sys.modules];"
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


class TestNeverBlockTheLoop:
    def test_sync_limiter_over_redis_is_refused_on_asgi(self) -> None:
        """A blocking Redis limiter on the event loop is a configuration error naming the twin."""
        limiter = RateLimiter(FixedWindow(1, 1), RedisStore(redis.Redis(port=1)))
        with pytest.raises(ConfigurationError, match="AsyncRateLimiter"):
            asgi.RateLimitMiddleware(asgi_app, limiter)

    def test_sync_limiter_in_memory_is_accepted_on_asgi(self) -> None:
        """A memory store never blocks: the sync limiter is fine."""
        asgi.RateLimitMiddleware(asgi_app, RateLimiter(FixedWindow(1, 1)))

    def test_sqlite_key_service_is_refused_on_asgi(self, tmp_path: Any) -> None:
        """File I/O on the loop is refused too; the async service is the way."""
        keys = ApiKeyService(SQLiteApiKeyStore(str(tmp_path / "k.db")))
        with pytest.raises(ConfigurationError, match="AsyncApiKeyService"):
            asgi.ApiKeyAuthMiddleware(asgi_app, keys)

    def test_async_services_are_refused_on_wsgi(self, tmp_path: Any) -> None:
        """WSGI cannot await: the async twins are refused there."""
        with pytest.raises(ConfigurationError):
            wsgi.RateLimitMiddleware(wsgi_app, AsyncRateLimiter(FixedWindow(1, 1)))  # type: ignore[arg-type]
        keys = AsyncApiKeyService(AsyncSQLiteApiKeyStore(str(tmp_path / "k.db")))
        with pytest.raises(ConfigurationError):
            wsgi.ApiKeyAuthMiddleware(wsgi_app, keys)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "build",
    [
        lambda m, app: m.AuthMiddleware(app),
        lambda m, app: m.BearerAuthMiddleware(app, TOKENS, realm='a"b'),
        lambda m, app: m.BearerAuthMiddleware(app, TOKENS, exclude_paths=["health"]),
        lambda m, app: m.BearerAuthMiddleware(app, TOKENS, exclude_paths="/health"),
        lambda m, app: m.BearerAuthMiddleware(app, TOKENS, exclude_paths=["/a/../b"]),
        lambda m, app: m.BearerAuthMiddleware(app, TOKENS, scopes={"/x": []}),
        lambda m, app: m.RateLimitMiddleware(app, RateLimiter(FixedWindow(1, 1)), key="ip"),
        lambda m, app: m.RateLimitMiddleware(
            app,
            RateLimiter(FixedWindow(1, 1), SHARED_STORE),
            routes={"/x": RateLimiter(FixedWindow(2, 1), SHARED_STORE)},
        ),
        lambda m, app: m.BodyLimitMiddleware(app, 0),
        lambda m, app: m.HTTPSRedirectMiddleware(app, host="evil.com/x"),
        lambda m, app: m.HTTPSRedirectMiddleware(app, https_port=70000),
        lambda m, app: m.CORSMiddleware(app, {"allow_origins": ["*"]}),
        lambda m, app: m.WebhookMiddleware(app, {}),
    ],
)
@pytest.mark.parametrize("module", [asgi, wsgi])
def test_unsafe_or_malformed_configuration_is_refused(module: Any, build: Any) -> None:
    """Bad settings fail when the middleware is built, not on the first request."""
    app = asgi_app if module is asgi else wsgi_app
    with pytest.raises(ConfigurationError):
        build(module, app)


class TestPathRules:
    @given(st.text(alphabet="/.;ab%", max_size=30))
    def test_normalized_paths_are_fixed_points(self, path: str) -> None:
        """Normalizing twice changes nothing more, and the result has no dot segments."""
        once = normalize_path(path)
        assert normalize_path(once) == once
        assert "/../" not in once + "/" and "/./" not in once + "/"

    @given(st.text(alphabet="/.;abh%ltae", max_size=30))
    def test_exemption_never_covers_a_path_outside_the_prefix(self, path: str) -> None:
        """An exempt path, read either way, lies at or below the prefix."""
        rules: PathRules[bool] = PathRules(["/health"])
        if rules.match_strict("GET", path):
            for reading in (path, normalize_path(path)):
                assert reading == "/health" or reading.startswith("/health/")


def test_principal_from_claims_and_keys() -> None:
    """Token claims and key records give the same Principal shape."""
    record = ApiKeyService().create("acct", scopes=["a"], metadata={"roles": ["admin"]}).record
    by_key = Principal.from_api_key(record)
    by_token = Principal.from_claims({"sub": "u", "scope": "a b", "roles": ["admin"]})
    assert (by_key.kind, by_key.subject, by_key.scopes, by_key.roles) == (
        "api_key",
        "acct",
        frozenset({"a"}),
        frozenset({"admin"}),
    )
    assert by_token.scopes == frozenset({"a", "b"})
    assert by_key.id == record.id
    assert "key_hash" not in repr(by_key)


_HEADER_NAMES = st.sampled_from(
    [
        "authorization",
        "x-api-key",
        "origin",
        "content-length",
        "x-forwarded-for",
        "host",
        "access-control-request-method",
        "access-control-request-headers",
        "forwarded",
        "x-forwarded-proto",
    ]
)
_HEADER_VALUES = st.binary(max_size=60).map(lambda b: b.decode("latin-1"))


@pytest.mark.parametrize("kind", ["asgi", "wsgi"])
@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    method=st.sampled_from(["GET", "POST", "OPTIONS", "HEAD", "DELETE"]),
    path=st.text(alphabet="/.;%ab?=&", min_size=1, max_size=25).map(lambda p: "/" + p),
    headers=st.lists(st.tuples(_HEADER_NAMES, _HEADER_VALUES), max_size=6),
    scheme=st.sampled_from(["http", "https"]),
)
def test_malformed_requests_never_reach_a_500(
    kind: str, method: str, path: str, headers: list[tuple[str, str]], scheme: str
) -> None:
    """Whatever bytes arrive in headers and paths, the full stack answers with a 4xx or 2xx."""
    harness = _fuzz_stack(kind)
    response = harness.request(method, path, headers=headers, scheme=scheme)
    assert response.status_code < 500, response.text
    if response.status_code >= 400 and response.content:
        assert response.headers["content-type"] == "application/problem+json"


_STACKS: dict[str, Harness] = {}


def _fuzz_stack(kind: str) -> Harness:
    if kind not in _STACKS:
        keys = ApiKeyService()
        policy = CorsPolicy(["https://app.example.com"], allow_credentials=True)

        def build(module: Any, app: Any) -> Any:
            limiter = RateLimiter(FixedWindow(10**9, 60))
            return module.protect(
                app,
                tokens=TOKENS,
                keys=keys,
                accept_bearer_keys=True,
                cors=policy,
                client_limiter=limiter,
                https=True,
                public_paths=["/a"],
                scopes={"/b": ["x"]},
            )

        _STACKS[kind] = Harness(kind, build)  # type: ignore[arg-type]
    return _STACKS[kind]
