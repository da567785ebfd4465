"""The OAuth token endpoint through the ASGI and WSGI stacks: a machine client's round trip."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from apisec.apikeys import ApiKeyService, AsyncApiKeyService, AsyncSQLiteApiKeyStore
from apisec.oauth import (
    AsyncClientCredentialsEndpoint,
    ClientCredentialsEndpoint,
    basic_authorization,
)
from apisec.ratelimit import FixedWindow, RateLimiter
from apisec.testing import FakeClock
from apisec.tokens import SigningKey, TokenService
from tests.support.harness import Harness

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture(params=["asgi", "wsgi"])
def setup(
    request: pytest.FixtureRequest, clock: FakeClock, tmp_path: Path
) -> Iterator[tuple[Harness, str]]:
    tokens = TokenService(
        SigningKey.generate("ES256"),
        issuer="https://auth.example.com",
        audience="https://api.example.com",
        clock=clock,
    )
    scopes = ["invoices:read", "invoices:write"]
    endpoint: Any
    if request.param == "asgi":  # the async endpoint over a store that does I/O
        clients = AsyncApiKeyService(AsyncSQLiteApiKeyStore(str(tmp_path / "c.db")), clock=clock)
        secret = asyncio.run(clients.create("billing-worker", scopes=scopes)).plaintext
        endpoint = AsyncClientCredentialsEndpoint(clients, tokens)
    else:
        sync_clients = ApiKeyService(clock=clock)
        secret = sync_clients.create("billing-worker", scopes=scopes).plaintext
        endpoint = ClientCredentialsEndpoint(sync_clients, tokens)

    def build(module: Any, app: Any) -> Any:
        limiter = RateLimiter(FixedWindow(5, 60), clock=clock)
        return module.protect(
            app,
            tokens=tokens,
            token_endpoint=endpoint,
            client_limiter=limiter,
            scopes={"/invoices": ["invoices:read"]},
        )

    harness = Harness(request.param, build)
    yield harness, secret
    harness.close()


def test_client_credentials_round_trip(setup: tuple[Harness, str]) -> None:
    """A machine client gets a narrowed token from the endpoint and calls a protected route."""
    harness, secret = setup
    headers = {**FORM, "Authorization": basic_authorization("billing-worker", secret)}
    response = harness.request(
        "POST",
        "/oauth/token",
        headers=headers,
        content=b"grant_type=client_credentials&scope=invoices:read",
    )
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    document = json.loads(response.content)
    assert document["token_type"] == "Bearer"
    assert "refresh_token" not in document
    call = harness.request(
        "GET", "/invoices/1", headers={"Authorization": f"Bearer {document['access_token']}"}
    )
    assert call.status_code == 200
    assert call.json()["subject"] == "billing-worker"
    assert call.json()["scopes"] == ["invoices:read"]


def test_wrong_secret_is_invalid_client_with_basic_challenge(setup: tuple[Harness, str]) -> None:
    """A bad secret over Basic: 401 invalid_client, the Basic challenge, no token."""
    harness, secret = setup
    wrong = secret[:-1] + ("y" if secret.endswith("x") else "x")  # never the secret itself
    headers = {**FORM, "Authorization": basic_authorization("billing-worker", wrong)}
    response = harness.request(
        "POST", "/oauth/token", headers=headers, content=b"grant_type=client_credentials"
    )
    assert response.status_code == 401
    assert json.loads(response.content)["error"] == "invalid_client"
    assert response.headers["www-authenticate"].startswith("Basic realm=")
    assert response.headers["x-content-type-options"] == "nosniff"


def test_guessing_secrets_spends_the_client_budget(setup: tuple[Harness, str]) -> None:
    """The token endpoint sits behind the per-client limit: brute force meets a 429."""
    harness, _ = setup
    headers = {**FORM, "Authorization": basic_authorization("billing-worker", "sk_live_guess")}
    codes = [
        harness.request(
            "POST", "/oauth/token", headers=headers, content=b"grant_type=client_credentials"
        ).status_code
        for _ in range(6)
    ]
    assert codes[-1] == 429
    assert set(codes[:-1]) == {401}


def test_oversized_body_is_refused_by_the_endpoint(setup: tuple[Harness, str]) -> None:
    """A body over the endpoint's cap is a 413 in the OAuth error format."""
    harness, _ = setup
    response = harness.request("POST", "/oauth/token", headers=FORM, content=b"a=" + b"x" * 9000)
    assert response.status_code == 413
    assert json.loads(response.content)["error"] == "invalid_request"
