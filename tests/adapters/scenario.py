"""The acceptance scenario every framework passes with apisec's whole stack in front.

Written once, run inside each framework through that framework's own test
client. A framework's test file builds an app from :class:`Services` that
serves these routes, wraps it with apisec (``stack_options`` gives the
common ``protect()`` arguments), and runs every ``check_*`` method of
:class:`Scenario` on a client of it:

=========================  =====================================================
``GET /health``            public; 200 JSON
``GET /orders``            bearer token with ``orders:read``; 200 ``{"subject": ...}``
``POST /orders``           token with ``orders:write``; JSON ``{"quantity": int}``;
                           201 ``{"quantity": n}``; a bad body is the framework's
                           validation error
``GET /reports``           API key with ``reports:read``; 200 ``{"subject": ...}``
``POST /webhooks/payments``  verified webhook; 200 ``{"received": <bytes>}``
``GET /boom``              public; raises ``RuntimeError`` with a secret in it
=========================  =====================================================

The client only needs ``request(method, url, headers=..., content=...)``
returning something with ``status_code``, ``headers`` and ``content``, so a
WSGI framework's client adapts to it in a few lines. Every simulated
client sends its own ``X-Forwarded-For`` behind one trusted proxy hop (the
frameworks' test clients all connect from the same fake peer). Time is a
:class:`~apisec.testing.FakeClock`.
"""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Iterator, Mapping
from typing import Any, Protocol

import attrs

from apisec.apikeys import ApiKeyService
from apisec.clientaddr import TrustedProxies
from apisec.cors import CorsPolicy
from apisec.ratelimit import FixedWindow, RateLimiter
from apisec.testing import FakeClock
from apisec.tokens import SigningKey, TokenService
from apisec.webhooks import MemoryReplayGuard, WebhookSigner, WebhookVerifier

ISS, AUD = "https://auth.example.com", "https://api.example.com"
FRONT = "https://app.example.com"
WEBHOOK_SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
CLIENT_LIMIT = 6  # requests per client address per minute (before authentication)
PRINCIPAL_LIMIT = 3  # requests per principal per minute (after authentication)
MAX_BODY = 16 * 1024
SECRET_IN_CRASH = "hunter2"
#: Headers the ``api`` profile puts on every response, refusals and preflights included.
SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "content-security-policy": "default-src 'none'; frame-ancestors 'none'",
    "referrer-policy": "no-referrer",
}
#: Paths that need no credentials (the webhook is authenticated by its signature).
PUBLIC_PATHS = ["/health", "/boom", "/webhooks"]
#: Per-route scopes for frameworks that declare them on the middleware.
PATH_SCOPES = {
    "GET /orders": ["orders:read"],
    "POST /orders": ["orders:write"],
    "/reports": ["reports:read"],
}


class Client(Protocol):
    """A framework's test client: the response has ``status_code``, ``headers``, ``content``."""

    def request(
        self, method: str, url: str, *, headers: dict[str, str], content: bytes | None = None
    ) -> Any: ...


@attrs.define
class Services:
    """The core objects the app and the stack are built from, all on one fake clock."""

    clock: FakeClock
    tokens: TokenService
    keys: ApiKeyService
    verifier: WebhookVerifier
    cors: CorsPolicy
    client_limiter: RateLimiter
    principal_limiter: RateLimiter
    proxies: TrustedProxies

    @classmethod
    def create(cls, clock: FakeClock) -> Services:
        return cls(
            clock=clock,
            tokens=TokenService(
                SigningKey.generate("EdDSA", kid="k1"), issuer=ISS, audience=AUD, clock=clock
            ),
            keys=ApiKeyService(clock=clock),
            verifier=WebhookVerifier(
                WEBHOOK_SECRET, clock=clock, replay_guard=MemoryReplayGuard(clock=clock)
            ),
            cors=CorsPolicy(
                [FRONT],
                allow_methods=["GET", "POST"],
                allow_headers=["Authorization", "Content-Type", "X-API-Key"],
                allow_credentials=True,
            ),
            client_limiter=RateLimiter(FixedWindow(CLIENT_LIMIT, 60), clock=clock),
            principal_limiter=RateLimiter(
                FixedWindow(PRINCIPAL_LIMIT, 60), prefix="principal", clock=clock
            ),
            proxies=TrustedProxies(count=1),
        )


def stack_options(services: Services, *, webhooks: bool = True) -> dict[str, Any]:
    """The ``apisec.asgi.protect`` arguments every framework's app is wrapped with.

    ``webhooks=False`` leaves the webhook path to the app (a framework-level
    verifier such as ``apisec.fastapi.WebhookBody``).
    """
    options: dict[str, Any] = {
        "tokens": services.tokens,
        "keys": services.keys,
        "cors": services.cors,
        "client_limiter": services.client_limiter,
        "principal_limiter": services.principal_limiter,
        "proxies": services.proxies,
        "public_paths": PUBLIC_PATHS,
        "max_body": MAX_BODY,
    }
    if webhooks:
        options["webhooks"] = {"/webhooks/payments": services.verifier}
    return options


@attrs.frozen
class Framework:
    """What differs between frameworks, stated rather than guessed."""

    name: str
    #: The status of the framework's own request-validation error (FastAPI 422, Litestar 400).
    validation_status: int = 422


def problem(response: Any) -> dict[str, Any]:
    """The response's problem body, after checking it is one."""
    assert response.headers["content-type"] == "application/problem+json", response.headers
    body: dict[str, Any] = json.loads(response.content)
    assert body["status"] == response.status_code
    kind = body.get("type", "about:blank")  # RFC 9457: an absent type means about:blank
    assert kind == "about:blank" or kind.startswith("https://")
    return body


def assert_security_headers(response: Any) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get(name) == value, (response.status_code, name)


class _Logged(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


class Scenario:
    """The checks, each self-contained; every simulated client gets a fresh address."""

    def __init__(self, client: Client, services: Services, framework: Framework) -> None:
        self.client = client
        self.services = services
        self.framework = framework
        self._addresses: Iterator[int] = itertools.count(1)

    # -- helpers --------------------------------------------------------------

    def new_client(self) -> str:
        """A client address no earlier request used (a fresh per-client budget)."""
        return f"203.0.113.{next(self._addresses)}"

    def call(
        self,
        method: str,
        path: str,
        *,
        ip: str | None = None,
        headers: Mapping[str, str] | None = None,
        content: bytes | None = None,
    ) -> Any:
        sent = {"X-Forwarded-For": ip or self.new_client(), **(headers or {})}
        return self.client.request(method, path, headers=sent, content=content)

    def token(self, scope: str, subject: str = "user_42") -> dict[str, str]:
        pair = self.services.tokens.issue(subject, scope=scope)
        return {"Authorization": f"Bearer {pair.access_token}"}

    def api_key(self, *scopes: str, owner: str = "acct_9") -> dict[str, str]:
        return {"X-API-Key": self.services.keys.create(owner, scopes=scopes).plaintext}

    def signed(self, payload: bytes, msg_id: str) -> dict[str, str]:
        now = int(self.services.clock())
        return dict(WebhookSigner(WEBHOOK_SECRET).sign(payload, msg_id=msg_id, timestamp=now))

    # -- the checks -----------------------------------------------------------

    def check_token_auth(self) -> None:
        """No token: 401 with a bare Bearer challenge; bad/expired: invalid_token; scope: 403."""
        missing = self.call("GET", "/orders")
        assert missing.status_code == 401
        problem(missing)
        challenge = missing.headers["www-authenticate"]
        assert 'Bearer realm="api"' in challenge
        assert "error=" not in challenge  # RFC 6750 section 3.1: no error code without a token

        bad = self.call("GET", "/orders", headers={"Authorization": "Bearer not.a.jwt"})
        assert bad.status_code == 401
        assert 'error="invalid_token"' in bad.headers["www-authenticate"]
        problem(bad)

        good = self.token("orders:read")
        ok = self.call("GET", "/orders", headers=good)
        assert ok.status_code == 200
        assert json.loads(ok.content) == {"subject": "user_42"}

        wrong = self.call("GET", "/orders", headers=self.token("profile:read"))
        assert wrong.status_code == 403
        assert 'error="insufficient_scope"' in wrong.headers["www-authenticate"]
        assert problem(wrong)["title"] == "Forbidden"

        twice = self.client.request(
            "GET",
            "/orders",
            headers={"X-Forwarded-For": self.new_client(), **good, "authorization": "Bearer x"},
        )
        assert twice.status_code in (400, 401)  # never "first one wins"
        problem(twice)

        self.services.clock.advance(3600)
        expired = self.call("GET", "/orders", headers=good)
        assert expired.status_code == 401
        assert 'error="invalid_token"' in expired.headers["www-authenticate"]

    def check_api_key_auth(self) -> None:
        """No key: 401 with the ApiKey challenge; unknown key: 401; a key lacking the scope: 403."""
        missing = self.call("GET", "/reports")
        assert missing.status_code == 401
        assert 'ApiKey realm="api", header="X-API-Key"' in missing.headers["www-authenticate"]
        problem(missing)

        unknown = self.call("GET", "/reports", headers={"X-API-Key": "sk_live_nope"})
        assert unknown.status_code == 401
        assert "ApiKey" in unknown.headers["www-authenticate"]
        problem(unknown)

        ok = self.call("GET", "/reports", headers=self.api_key("reports:read"))
        assert ok.status_code == 200
        assert json.loads(ok.content) == {"subject": "acct_9"}

        lacking = self.call("GET", "/reports", headers=self.api_key("orders:read"))
        assert lacking.status_code == 403
        body = problem(lacking)
        assert body["required_scopes"] == ["reports:read"]
        assert "www-authenticate" not in lacking.headers  # bearer's insufficient_scope only

    def check_client_limit(self) -> None:
        """Each client address has its own budget; the 429 says when to return, and it is true."""
        ip = self.new_client()
        for used in range(1, CLIENT_LIMIT + 1):
            ok = self.call("GET", "/health", ip=ip)
            assert ok.status_code == 200
            assert ok.headers["x-ratelimit-limit"] == str(CLIENT_LIMIT)
            assert ok.headers["x-ratelimit-remaining"] == str(CLIENT_LIMIT - used)
        denied = self.call("GET", "/health", ip=ip)
        assert denied.status_code == 429
        retry = int(denied.headers["retry-after"])
        assert 0 < retry <= 60
        assert problem(denied)["retry_after"] == retry
        assert_security_headers(denied)
        assert self.call("GET", "/health").status_code == 200  # another client is unaffected
        self.services.clock.advance(retry)
        assert self.call("GET", "/health", ip=ip).status_code == 200

    def check_principal_limit(self) -> None:
        """One principal's budget holds across client addresses; other principals keep theirs."""
        busy = self.token("orders:read", subject="user_busy")
        for used in range(1, PRINCIPAL_LIMIT + 1):
            ok = self.call("GET", "/orders", headers=busy)
            assert ok.status_code == 200
            assert ok.headers["x-ratelimit-limit"] == str(PRINCIPAL_LIMIT)
            assert ok.headers["x-ratelimit-remaining"] == str(PRINCIPAL_LIMIT - used)
        denied = self.call("GET", "/orders", headers=busy)
        assert denied.status_code == 429
        assert denied.headers["x-ratelimit-remaining"] == "0"
        assert int(denied.headers["retry-after"]) > 0
        problem(denied)
        calm = self.call("GET", "/orders", headers=self.token("orders:read", subject="user_calm"))
        assert calm.status_code == 200

    def check_cors(self) -> None:
        """Preflights answered in place; look-alike origins refused; refusals readable by FRONT."""
        preflight = self.call(
            "OPTIONS",
            "/orders",
            headers={
                "Origin": FRONT,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization, content-type",
            },
        )
        assert preflight.status_code == 204
        assert preflight.headers["access-control-allow-origin"] == FRONT
        assert preflight.headers["access-control-allow-credentials"] == "true"
        assert "POST" in preflight.headers["access-control-allow-methods"]
        assert_security_headers(preflight)

        for origin in (
            "https://app.example.com.evil.net",
            "https://evil-app.example.com",
            "http://app.example.com",
            "null",
        ):
            refused = self.call(
                "OPTIONS",
                "/orders",
                headers={"Origin": origin, "Access-Control-Request-Method": "POST"},
            )
            assert refused.status_code == 403, origin
            assert "access-control-allow-origin" not in refused.headers
            assert problem(refused)["reason"] == "origin_not_allowed"
            assert_security_headers(refused)

        actual = self.call("GET", "/orders", headers={"Origin": FRONT, **self.token("orders:read")})
        assert actual.status_code == 200
        assert actual.headers["access-control-allow-origin"] == FRONT
        assert actual.headers["access-control-allow-credentials"] == "true"
        assert [v.strip().lower() for v in actual.headers["vary"].split(",")].count("origin") == 1

        foreign = self.call(
            "GET", "/health", headers={"Origin": "https://app.example.com.evil.net"}
        )
        assert foreign.status_code == 200  # the browser, not the server, withholds the body
        assert "access-control-allow-origin" not in foreign.headers

        refusal = self.call("GET", "/orders", headers={"Origin": FRONT})
        assert refusal.status_code == 401
        assert refusal.headers["access-control-allow-origin"] == FRONT  # the front end can read it

    def check_security_headers(self) -> None:
        """200, 401, 404, 429, 500 and preflights all carry the api profile's headers."""
        responses = [
            self.call("GET", "/health"),
            self.call("GET", "/orders"),
            self.call("GET", "/no-such-route", headers=self.token("orders:read")),
            self.call("GET", "/boom"),
            self.call(
                "OPTIONS",
                "/orders",
                headers={"Origin": FRONT, "Access-Control-Request-Method": "GET"},
            ),
        ]
        ip = self.new_client()
        for _ in range(CLIENT_LIMIT):
            self.call("GET", "/health", ip=ip)
        responses.append(self.call("GET", "/health", ip=ip))
        assert [r.status_code for r in responses] == [200, 401, 404, 500, 204, 429]
        for response in responses:
            assert_security_headers(response)
            assert response.headers.get("strict-transport-security", "").startswith("max-age=")
        for error in responses[1:4] + responses[5:]:
            assert error.headers["cache-control"] == "no-store"

    def check_errors_are_problems(self) -> None:
        """The framework's own 404, 405 and validation errors, and a 413, are problem+json."""
        anonymous = self.call("GET", "/no-such-route")
        assert anonymous.status_code == 401  # unknown paths are not revealed to strangers
        missing = self.call("GET", "/no-such-route", headers=self.token("orders:read"))
        assert missing.status_code == 404
        assert problem(missing)["title"] == "Not Found"
        assert b"<" not in missing.content

        not_allowed = self.call("DELETE", "/health")
        assert not_allowed.status_code == 405
        problem(not_allowed)
        assert "GET" in not_allowed.headers["allow"]

        writer = {**self.token("orders:write"), "Content-Type": "application/json"}
        created = self.call("POST", "/orders", headers=writer, content=b'{"quantity": 2}')
        assert created.status_code == 201
        assert json.loads(created.content) == {"quantity": 2}
        invalid = self.call(
            "POST", "/orders", headers=writer, content=b'{"quantity": "sk_live_leak"}'
        )
        assert invalid.status_code == self.framework.validation_status
        problem(invalid)
        assert b"quantity" in invalid.content  # names the field...
        assert b"sk_live_leak" not in invalid.content  # ...without echoing the input

        too_big = self.call(
            "POST",
            "/webhooks/payments",
            headers={"Content-Type": "application/json"},
            content=b"x" * (MAX_BODY + 1),
        )
        assert too_big.status_code == 413
        problem(too_big)

    def check_crash_leaks_nothing(self) -> None:
        """An unhandled exception is a bare 500 problem whose correlation id is in the log."""
        logged = _Logged()
        logger = logging.getLogger("apisec.adapters")
        logger.addHandler(logged)
        try:
            crash = self.call("GET", "/boom", headers={"Origin": FRONT})
        finally:
            logger.removeHandler(logged)
        assert crash.status_code == 500
        body = problem(crash)
        assert set(body) == {"type", "title", "status", "instance"}
        assert body["instance"].startswith("urn:uuid:")
        raw = crash.content + repr(sorted(crash.headers.items())).encode()
        for leak in (SECRET_IN_CRASH.encode(), b"RuntimeError", b"Traceback", b"File "):
            assert leak not in raw
        assert crash.headers["access-control-allow-origin"] == FRONT
        messages = [r.getMessage() for r in logged.records if r.exc_info]
        assert len(messages) == 1  # logged once, with the id the client saw
        assert body["instance"] in messages[0]

    def check_webhooks(self) -> None:
        """A signed delivery reaches the app; a tampered one is 401; a replay is 409."""
        payload = b'{"type":"payment.succeeded","amount":4200}'
        headers = {"Content-Type": "application/json", **self.signed(payload, "msg_1")}
        ok = self.call("POST", "/webhooks/payments", headers=headers, content=payload)
        assert ok.status_code == 200
        assert json.loads(ok.content) == {"received": len(payload)}

        tampered = payload.replace(b"4200", b"9999")
        refused = self.call(
            "POST",
            "/webhooks/payments",
            headers={"Content-Type": "application/json", **self.signed(payload, "msg_2")},
            content=tampered,
        )
        assert refused.status_code == 401
        problem(refused)

        replayed = self.call("POST", "/webhooks/payments", headers=headers, content=payload)
        assert replayed.status_code == 409
        problem(replayed)

        unsigned = self.call("POST", "/webhooks/payments", content=payload)
        assert unsigned.status_code == 400
        problem(unsigned)


CHECKS = sorted(name for name in vars(Scenario) if name.startswith("check_"))
