"""The acceptance scenario for the WSGI frameworks (Flask, Django, Falcon), framework-free.

Each framework's test file builds the same protected API over one
:class:`Services` and gives :class:`Scenario` a :data:`Send` that drives the
framework's own test client. The API every app serves:

==========================  ==========================================================
``GET /health``             public: ``{"ok": true}``
``GET /orders``             token or API key with ``orders:read``: the principal as JSON
``POST /orders``            token or API key with ``orders:write``: 201, the principal
``GET /boom``               public: raises ``RuntimeError("database password is hunter2")``
``POST /hooks/payments``    Standard Webhooks signature instead of a credential:
                            ``{"size": n, "sha256": hex}`` of the bytes the handler read
==========================  ==========================================================

with the whole stack: ``tokens``/``keys``, ``cors``, the default security
headers, ``client_limiter`` and ``principal_limiter``, ``max_body=MAX_BODY``,
and the webhook verifier on ``/hooks/payments``.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

import attrs
import pytest

from apisec.apikeys import ApiKeyService, NewApiKey
from apisec.cors import CorsPolicy
from apisec.ratelimit import FixedWindow, RateLimiter
from apisec.testing import FakeClock
from apisec.tokens import SigningKey, TokenService
from apisec.webhooks import WebhookSigner, WebhookVerifier

ISS, AUD = "https://auth.example.com", "https://api.example.com"
FRONT = "https://app.example.com"
LOOKALIKES = (
    "https://app.example.com.evil.net",
    "https://evil-app.example.com",
    "http://app.example.com",
    "null",
)
WEBHOOK_SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SECRET_IN_CRASH = "hunter2"
CLIENT_LIMIT = 8
PRINCIPAL_LIMIT = 3
MAX_BODY = 4096
SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "content-security-policy": "default-src 'none'; frame-ancestors 'none'",
    "strict-transport-security": "max-age=31536000; includeSubDomains",
}


@attrs.frozen
class Reply:
    """One response, normalized across test clients (header names lower-case, repeats kept)."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def values(self, name: str) -> list[str]:
        return [v for n, v in self.headers if n.lower() == name]

    def header(self, name: str) -> str | None:
        """Every field of that name joined as RFC 9110 allows (Django keeps only one field)."""
        found = self.values(name)
        return ", ".join(found) if found else None

    def json(self) -> Any:
        return json.loads(self.body)

    def problem(self, status: int) -> dict[str, Any]:
        """The problem body, after checking media type and status."""
        assert self.status == status, (self.status, self.body[:300])
        assert self.header("content-type") == "application/problem+json", self.headers
        body: dict[str, Any] = json.loads(self.body)
        assert body["status"] == status
        return body


class Send(Protocol):
    def __call__(
        self,
        method: str,
        path: str,
        *,
        headers: Sequence[tuple[str, str]] = (),
        body: bytes = b"",
        client: str = "198.51.100.7",
    ) -> Reply: ...


class Services:
    """The security objects every framework's app is built from (one set per test)."""

    def __init__(self) -> None:
        self.clock = FakeClock()
        self.tokens = TokenService(
            SigningKey.generate("EdDSA", kid="k1"), issuer=ISS, audience=AUD, clock=self.clock
        )
        self.keys = ApiKeyService(clock=self.clock)
        self.read_key: NewApiKey = self.keys.create("acct_read", scopes=["orders:read"])
        self.cors = CorsPolicy(
            [FRONT],
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type", "X-API-Key"],
            expose_headers=["Retry-After", "X-RateLimit-Remaining"],
            allow_credentials=True,
        )
        self.client_limiter = RateLimiter(FixedWindow(CLIENT_LIMIT, 60), clock=self.clock)
        self.principal_limiter = RateLimiter(
            FixedWindow(PRINCIPAL_LIMIT, 60), prefix="principal", clock=self.clock
        )
        self.verifier = WebhookVerifier(WEBHOOK_SECRET, clock=self.clock)
        self.signer = WebhookSigner(WEBHOOK_SECRET)
        self._clients = (f"203.0.113.{i}" for i in itertools.count(1))

    def client(self) -> str:
        """A client address no other request used (its own per-client budget)."""
        return next(self._clients)

    def bearer(self, subject: str, scope: str = "orders:read") -> tuple[str, str]:
        return ("Authorization", f"Bearer {self.tokens.issue(subject, scope=scope).access_token}")

    def signed(self, payload: bytes) -> list[tuple[str, str]]:
        return list(self.signer.sign(payload, timestamp=int(self.clock())).items())


def hook_reply(body: bytes) -> dict[str, Any]:
    """What the webhook handler answers about the bytes it read."""
    return {"size": len(body), "sha256": hashlib.sha256(body).hexdigest()}


def principal_reply(subject: str, kind: str, scopes: Iterable[str]) -> Any:
    """What the /orders handlers answer about the principal."""
    return {"subject": subject, "kind": kind, "scopes": sorted(scopes)}


class Scenario:
    """The checks, each sending requests through ``send`` and asserting the replies."""

    def __init__(self, services: Services, send: Send) -> None:
        self.s = services
        self.send = send

    def get(self, path: str, *headers: tuple[str, str], client: str | None = None) -> Reply:
        return self.send("GET", path, headers=headers, client=client or self.s.client())

    def authentication(self) -> None:
        """401 challenges per RFC 6750 and for API keys; 403 names what is missing; 400 for two."""
        s = self.s
        missing = self.get("/orders")
        missing.problem(401)
        challenge = missing.header("www-authenticate") or ""
        assert 'Bearer realm="api"' in challenge
        assert 'ApiKey realm="api", header="X-API-Key"' in challenge
        assert "error=" not in challenge

        pair = s.tokens.issue("user_1", scope="orders:read")
        for bad in ("abc.def.ghi", pair.refresh_token):
            invalid = self.get("/orders", ("Authorization", f"Bearer {bad}"))
            invalid.problem(401)
            assert invalid.header("www-authenticate") == 'Bearer realm="api", error="invalid_token"'
            assert bad.encode() not in invalid.body

        good = ("Authorization", f"Bearer {pair.access_token}")
        ok = self.get("/orders", good)
        assert ok.status == 200, ok.body
        assert ok.json() == principal_reply("user_1", "token", frozenset({"orders:read"}))
        denied = self.send("POST", "/orders", headers=[good], client=s.client())
        assert denied.problem(403)["required_scopes"] == ["orders:write"]
        assert denied.header("www-authenticate") == (
            'Bearer error="insufficient_scope", scope="orders:write"'
        )

        key = ("X-API-Key", s.read_key.plaintext)
        by_key = self.get("/orders", key)
        assert by_key.json() == principal_reply("acct_read", "api_key", frozenset({"orders:read"}))
        key_denied = self.send("POST", "/orders", headers=[key], client=s.client())
        assert key_denied.problem(403)["required_scopes"] == ["orders:write"]
        assert key_denied.header("www-authenticate") is None  # no bearer challenge for a key
        forged = s.read_key.plaintext[:-2] + "zz"
        wrong_key = self.get("/orders", ("X-API-Key", forged))
        wrong_key.problem(401)
        assert wrong_key.header("www-authenticate") == 'ApiKey realm="api", header="X-API-Key"'
        assert forged.encode() not in wrong_key.body

        self.get("/orders", good, key).problem(400)  # two credentials: neither is picked
        s.clock.advance(s.tokens.access_ttl + 1)
        expired = self.get("/orders", good)
        expired.problem(401)
        assert 'error="invalid_token"' in (expired.header("www-authenticate") or "")

    def client_limit(self) -> None:
        """One client's budget: counted down in headers, then 429 + Retry-After, which is true."""
        s = self.s
        client = s.client()
        for left in range(CLIENT_LIMIT - 1, -1, -1):
            reply = self.get("/health", client=client)
            assert reply.status == 200
            assert reply.header("x-ratelimit-remaining") == str(left)
            assert reply.header("x-ratelimit-limit") == str(CLIENT_LIMIT)
        denied = self.get("/health", client=client)
        retry = denied.problem(429)["retry_after"]
        assert denied.header("retry-after") == str(retry)
        assert self.get("/health").status == 200  # another client is not affected
        s.clock.advance(retry)
        assert self.get("/health", client=client).status == 200

    def principal_limit(self) -> None:
        """One principal's budget across many addresses; its 429 reports its own numbers."""
        s = self.s
        token = s.bearer("user_busy")
        remaining = [
            self.get("/orders", token).header("x-ratelimit-remaining")
            for _ in range(PRINCIPAL_LIMIT)
        ]
        assert remaining == [str(n) for n in range(PRINCIPAL_LIMIT - 1, -1, -1)]
        denied = self.get("/orders", token)
        body = denied.problem(429)
        assert body["limit"] == PRINCIPAL_LIMIT
        assert denied.header("x-ratelimit-limit") == str(PRINCIPAL_LIMIT)
        assert denied.header("x-ratelimit-remaining") == "0"
        assert denied.header("retry-after") == str(body["retry_after"])
        assert self.get("/orders", s.bearer("user_calm")).status == 200
        key = ("X-API-Key", s.read_key.plaintext)
        statuses = [self.get("/orders", key).status for _ in range(PRINCIPAL_LIMIT + 1)]
        assert statuses == [200] * PRINCIPAL_LIMIT + [429]

    def cors(self) -> None:
        """Preflights answered in place (allowed, refused), actual requests decorated or not."""
        preflight = [
            ("Origin", FRONT),
            ("Access-Control-Request-Method", "POST"),
            ("Access-Control-Request-Headers", "authorization, content-type"),
        ]
        allowed = self.send("OPTIONS", "/orders", headers=preflight, client=self.s.client())
        assert allowed.status == 204
        assert allowed.header("access-control-allow-origin") == FRONT
        assert allowed.header("access-control-allow-credentials") == "true"
        assert "POST" in (allowed.header("access-control-allow-methods") or "")
        assert "authorization" in (allowed.header("access-control-allow-headers") or "").lower()
        assert allowed.header("x-ratelimit-remaining") is None  # answered before the limits

        for origin in LOOKALIKES:
            asked = [("Origin", origin), ("Access-Control-Request-Method", "GET")]
            refused = self.send("OPTIONS", "/orders", headers=asked, client=self.s.client())
            assert refused.problem(403)["reason"] == "origin_not_allowed", origin
            assert refused.header("access-control-allow-origin") is None
            assert FRONT.encode() not in refused.body
        method = [("Origin", FRONT), ("Access-Control-Request-Method", "DELETE")]
        bad_method = self.send("OPTIONS", "/orders", headers=method, client=self.s.client())
        assert bad_method.problem(403)["reason"] == "method_not_allowed"

        actual = self.get("/health", ("Origin", FRONT))
        assert actual.header("access-control-allow-origin") == FRONT
        assert actual.header("access-control-allow-credentials") == "true"
        assert _vary(actual).count("origin") == 1
        for origin in LOOKALIKES:
            foreign = self.get("/health", ("Origin", origin))
            assert foreign.status == 200
            assert foreign.header("access-control-allow-origin") is None
            assert "origin" in _vary(foreign)
        refusal = self.get("/orders", ("Origin", FRONT))  # a 401 the front end can read
        refusal.problem(401)
        assert refusal.header("access-control-allow-origin") == FRONT

    def security_headers(self) -> None:
        """The headers on a 200, a 404, a 429, a 500 and a preflight; Server never shows."""
        s = self.s
        client = s.client()
        replies = {
            "200": self.get("/health", client=client),
            "404": self.get("/no-such-thing", s.bearer("user_404")),
            "500": self.get("/boom"),
            "preflight": self.send(
                "OPTIONS",
                "/orders",
                headers=[("Origin", FRONT), ("Access-Control-Request-Method", "GET")],
                client=s.client(),
            ),
        }
        for _ in range(CLIENT_LIMIT - 1):
            self.get("/health", client=client)
        replies["429"] = self.get("/health", client=client)
        assert replies["429"].status == 429
        for name, reply in replies.items():
            for header, value in SECURITY_HEADERS.items():
                assert reply.header(header) == value, (name, header, reply.headers)
            assert reply.header("server") is None
            assert reply.header("x-powered-by") is None

    def problems(self) -> None:
        """Every refusal, and the framework's own 404 and 405, is application/problem+json."""
        s = self.s
        token = s.bearer("user_errors")
        self.get("/orders", token, ("X-API-Key", s.read_key.plaintext)).problem(400)
        self.get("/orders").problem(401)
        self.send("POST", "/orders", headers=[token], client=s.client()).problem(403)
        assert self.get("/no-such-thing", token).problem(404)["title"] == "Not Found"
        wrong_method = self.send("DELETE", "/orders", headers=[token], client=s.client())
        wrong_method.problem(405)
        assert "GET" in (wrong_method.header("allow") or "")
        big = self.send("POST", "/health", body=b"x" * (MAX_BODY + 1), client=s.client())
        big.problem(413)
        client = s.client()
        for _ in range(CLIENT_LIMIT):
            self.get("/health", client=client)
        self.get("/health", client=client).problem(429)

    def server_error(self, caplog: pytest.LogCaptureFixture) -> None:
        """A crash is a 500 that leaks nothing; its correlation id is logged with the trace."""
        with caplog.at_level(logging.ERROR, logger="apisec.adapters"):
            reply = self.get("/boom")
        body = reply.problem(500)
        assert set(body) == {"type", "title", "status", "instance"}
        assert body["instance"].startswith("urn:uuid:")
        everything = reply.body + repr(reply.headers).encode()
        for leak in (SECRET_IN_CRASH, "RuntimeError", "Traceback", "boom"):
            assert leak.encode() not in everything, leak
        logged = [r for r in caplog.records if r.name == "apisec.adapters"]
        assert len(logged) == 1
        assert body["instance"] in logged[0].getMessage()
        assert logged[0].exc_info is not None
        assert isinstance(logged[0].exc_info[1], RuntimeError)

    def webhook(self) -> None:
        """A signed delivery reaches the handler byte for byte; tampered or unsigned ones do not."""
        s = self.s
        payload = b'{"event": "invoice.paid",  "amount": 100}'  # odd spacing: raw bytes matter
        headers = s.signed(payload)
        ok = self.send("POST", "/hooks/payments", headers=headers, body=payload, client=s.client())
        assert ok.status == 200, ok.body
        assert ok.json() == hook_reply(payload)
        tampered = payload.replace(b"100", b"999")
        refused = self.send(
            "POST", "/hooks/payments", headers=headers, body=tampered, client=s.client()
        )
        refused.problem(401)
        unsigned = self.send("POST", "/hooks/payments", body=payload, client=s.client())
        unsigned.problem(400)
        stale = s.signed(payload)
        s.clock.advance(3600)
        self.send(
            "POST", "/hooks/payments", headers=stale, body=payload, client=s.client()
        ).problem(400)


def _vary(reply: Reply) -> list[str]:
    return [part.strip().lower() for value in reply.values("vary") for part in value.split(",")]
