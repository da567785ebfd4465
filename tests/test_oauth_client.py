"""Authorization-code client helpers: RFC 6749/7636/9207 vectors, a tiny server on loopback."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import secrets
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote_plus, urlencode, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from apisec import ConfigurationError
from apisec.oauth import (
    AuthorizationError,
    AuthorizationResponse,
    InvalidCallback,
    OAuthClient,
    PendingAuthorization,
    TokenRequestError,
    client_credentials_request,
    parse_token_response,
)
from apisec.oauth._form import encode_form, parse_form
from apisec.pkce import PkcePair
from apisec.testing import FakeClock

VECTORS: dict[str, Any] = json.loads(
    (Path(__file__).parent / "vectors" / "oauth-rfc6749-7636-9207.json").read_text()
)
RFC = VECTORS["client"]
PKCE = PkcePair(
    verifier=VECTORS["pkce"]["code_verifier"], challenge=VECTORS["pkce"]["code_challenge"]
)


def _rfc_client(clock: FakeClock, **options: Any) -> OAuthClient:
    settings: dict[str, Any] = {
        "client_id": RFC["client_id"],
        "client_secret": RFC["client_secret"],
        "authorization_endpoint": VECTORS["authorization_request"]["endpoint"],
        "token_endpoint": VECTORS["code_token_request"]["token_endpoint"],
        "redirect_uri": VECTORS["authorization_request"]["redirect_uri"],
        "clock": clock,
    }
    return OAuthClient(**{**settings, **options})


def _query(url: str) -> dict[str, str]:
    return parse_form(urlsplit(url).query)


def _rejections(records: list[logging.LogRecord]) -> list[str]:
    return [r.reason for r in records if r.event == "oauth.callback_rejected"]  # type: ignore[attr-defined]


class TestAuthorizationRequest:
    def test_rfc_6749_and_7636_parameters(self, clock: FakeClock) -> None:
        """The URL has section 4.1.1's parameters and RFC 7636's S256 challenge, nothing else."""
        pending = _rfc_client(clock).authorization_request(state="xyz", pair=PKCE)
        rfc_params = parse_form(VECTORS["authorization_request"]["query"])
        assert _query(pending.url) == {
            **rfc_params,
            "code_challenge": VECTORS["pkce"]["code_challenge"],
            "code_challenge_method": "S256",
        }
        assert pending.url.startswith("https://server.example.com/authorize?response_type=code&")
        assert pending.code_verifier == VECTORS["pkce"]["code_verifier"]
        assert pending.created_at == clock.now

    def test_fresh_state_and_verifier_every_time(self, clock: FakeClock) -> None:
        """Two requests never share state or verifier; both are long random values."""
        client = _rfc_client(clock)
        first, second = client.authorization_request(), client.authorization_request()
        assert first.state != second.state and first.code_verifier != second.code_verifier
        assert len(first.state) >= 43 and len(first.code_verifier) >= 43

    def test_scope_extra_parameters_and_an_endpoint_query(self, clock: FakeClock) -> None:
        """Scopes are space-joined, extras appended, and the endpoint's own query kept."""
        client = _rfc_client(clock, authorization_endpoint="https://as.example/authorize?tenant=t1")
        pending = client.authorization_request(["read", "write"], extra={"nonce": "n-1"})
        assert pending.url.startswith("https://as.example/authorize?tenant=t1&response_type=code&")
        params = _query(pending.url)
        assert params["scope"] == "read write" and params["nonce"] == "n-1"
        assert params["tenant"] == "t1" and pending.scope == "read write"

    @pytest.mark.parametrize(
        "name", ["response_type", "redirect_uri", "state", "code_challenge_method", "client_id"]
    )
    def test_extras_cannot_replace_protocol_parameters(self, clock: FakeClock, name: str) -> None:
        """extra= cannot override what the flow sets (no response_type=token, no plain PKCE)."""
        with pytest.raises(ConfigurationError):
            _rfc_client(clock).authorization_request(extra={name: "token"})

    def test_pkce_is_s256_always(self, clock: FakeClock) -> None:
        """A plain pair, or a pair whose challenge does not match, is refused."""
        client = _rfc_client(clock)
        with pytest.raises(ConfigurationError):
            client.authorization_request(pair=PkcePair(PKCE.verifier, PKCE.verifier, "plain"))
        with pytest.raises(ConfigurationError):
            client.authorization_request(pair=PkcePair(PKCE.verifier, "A" * 43))

    @pytest.mark.parametrize(
        "redirect_uri",
        [
            "https://client.example.com/cb",
            "https://client.example.com/cb?tenant=1",
            "http://127.0.0.1:8765/callback",
            "http://[::1]/callback",
            "com.example.app:/oauth2redirect",
        ],
    )
    def test_accepted_redirect_uris(self, clock: FakeClock, redirect_uri: str) -> None:
        """https, loopback http and reverse-domain private schemes are exact redirect URIs."""
        client = _rfc_client(clock, redirect_uri=redirect_uri)
        assert _query(client.authorization_request().url)["redirect_uri"] == redirect_uri

    @pytest.mark.parametrize(
        "redirect_uri",
        [
            "https://*.example.com/cb",
            "https://client.example.com/cb#frag",
            "http://client.example.com/cb",
            "http://localhost/cb",
            "/cb",
            "myapp:/cb",
            "https://user:pw@client.example.com/cb",
            "https://client.example.com/c b",
            "",
        ],
    )
    def test_refused_redirect_uris(self, clock: FakeClock, redirect_uri: str) -> None:
        """Wildcards, fragments, plain http off loopback, relative URIs are configuration errors."""
        with pytest.raises(ConfigurationError):
            _rfc_client(clock, redirect_uri=redirect_uri)

    @pytest.mark.parametrize(
        "options",
        [
            {"authorization_endpoint": "http://server.example.com/authorize"},
            {"authorization_endpoint": "https://as.example/authorize?state=x"},
            {"authorization_endpoint": "https://as.example/authorize#x"},
            {"token_endpoint": "ftp://as.example/token"},
            {"issuer": "https://as.example/?q=1"},
            {"require_issuer": True},
            {"client_id": ""},
            {"client_id": "a\nb"},
            {"client_secret": ""},
            {"max_age": 0},
            {"max_age": 86400},
        ],
    )
    def test_bad_configuration(self, clock: FakeClock, options: dict[str, Any]) -> None:
        """Insecure endpoints, clashing queries and impossible settings fail at construction."""
        with pytest.raises(ConfigurationError):
            _rfc_client(clock, **options)

    def test_secrets_stay_out_of_reprs(self, clock: FakeClock) -> None:
        """State, verifier, client secret, code and request bodies never show in a repr."""
        client = _rfc_client(clock)
        pending = client.authorization_request()
        response = AuthorizationResponse(code="SplxlOBeZQQYbYS6WxSbIA")
        request = client.token_request(response, pending)
        text = " ".join(repr(x) for x in (client, pending, response, request))
        for secret in (pending.state, pending.code_verifier, RFC["client_secret"], response.code):
            assert secret not in text


class TestCallback:
    def test_rfc_6749_section_4_1_2_response(self, clock: FakeClock) -> None:
        """The RFC's callback with its state yields its code."""
        client = _rfc_client(clock)
        pending = client.authorization_request(state="xyz", pair=PKCE)
        response = client.parse_callback(VECTORS["authorization_response"]["query"], pending)
        assert response.code == VECTORS["authorization_response"]["code"]

    def test_query_as_bytes_with_a_question_mark_or_a_mapping(self, clock: FakeClock) -> None:
        """ASGI's bytes, '?'-prefixed text and a framework's parsed mapping all work."""
        client = _rfc_client(clock)
        pending = client.authorization_request(state="xyz", pair=PKCE)
        query = VECTORS["authorization_response"]["query"]
        for callback in (query.encode(), "?" + query, {"code": "abc", "state": "xyz"}):
            assert client.parse_callback(callback, pending).code

    def test_rfc_6749_section_4_1_2_1_error(
        self, clock: FakeClock, audit_records: list[logging.LogRecord]
    ) -> None:
        """An error response with the right state is a typed AuthorizationError with its code."""
        client = _rfc_client(clock)
        pending = client.authorization_request(state="xyz", pair=PKCE)
        with pytest.raises(AuthorizationError) as caught:
            client.parse_callback(
                VECTORS["error_response"]["query"] + "&error_description=User+said+no", pending
            )
        err = caught.value
        assert err.error == "access_denied" and err.error_description == "User said no"
        assert err.to_problem().to_dict()["error"] == "access_denied"
        assert "User said no" not in json.dumps(err.to_problem().to_dict())
        assert _rejections(audit_records) == ["authorization_error"]

    def test_untrusted_error_description_is_dropped_when_out_of_grammar(
        self, clock: FakeClock
    ) -> None:
        """A description with quotes or non-ASCII (not RFC 6749's set) is not kept."""
        client = _rfc_client(clock)
        pending = client.authorization_request(state="xyz")
        with pytest.raises(AuthorizationError) as caught:
            client.parse_callback(
                "error=access_denied&state=xyz&error_description=%22%3Cb%3E", pending
            )
        assert caught.value.error_description is None

    @pytest.mark.parametrize(
        ("query", "reason"),
        [
            ("code=abc", "missing_state"),
            ("code=abc&state=", "missing_state"),
            ("code=abc&state=xyZ", "state_mismatch"),
            ("code=abc&state=xyz-longer", "state_mismatch"),
            ("error=access_denied&state=evil", "state_mismatch"),
            ("state=xyz", "missing_code"),
            ("code=&state=xyz", "missing_code"),
            ("code=a&code=b&state=xyz", "malformed"),
            ("code=a&state=xyz&state=xyz", "malformed"),
            ("code=a%zz&state=xyz", "malformed"),
            ("code=%C3%A9&state=xyz", "malformed"),
            ("error=bad%22code&state=xyz", "malformed"),
            ("code=" + "a" * 9000 + "&state=xyz", "malformed"),
        ],
    )
    def test_refused_callbacks(
        self,
        clock: FakeClock,
        audit_records: list[logging.LogRecord],
        query: str,
        reason: str,
    ) -> None:
        """Missing or foreign state, repeated parameters, no code: InvalidCallback, audited."""
        client = _rfc_client(clock)
        pending = client.authorization_request(state="xyz")
        with pytest.raises(InvalidCallback) as caught:
            client.parse_callback(query, pending)
        assert caught.value.reason == reason
        assert _rejections(audit_records) == [reason]

    def test_expired(self, clock: FakeClock) -> None:
        """A callback after max_age is refused."""
        client = _rfc_client(clock, max_age=120)
        pending = client.authorization_request(state="xyz")
        clock.advance(121)
        with pytest.raises(InvalidCallback) as caught:
            client.parse_callback("code=abc&state=xyz", pending)
        assert caught.value.reason == "expired"

    @given(query=st.text(max_size=300) | st.binary(max_size=300).map(bytes))
    def test_arbitrary_callbacks_only_raise_oauth_errors(self, query: str | bytes) -> None:
        """Any callback query is accepted with the right state or refused with a typed
        OAuth error."""
        client = _rfc_client(FakeClock())
        pending = client.authorization_request(state="xyz")
        try:
            client.parse_callback(query, pending)
        except (InvalidCallback, AuthorizationError):
            pass


class TestIssuer:
    ISS = VECTORS["rfc9207"]

    def _client(self, clock: FakeClock, **options: Any) -> OAuthClient:
        return _rfc_client(clock, issuer=self.ISS["issuer"], **options)

    def test_rfc_9207_example(self, clock: FakeClock) -> None:
        """RFC 9207's example response passes with its issuer and gives its code."""
        client = self._client(clock, require_issuer=True)
        pending = client.authorization_request(state=self.ISS["state"])
        response = client.parse_callback(self.ISS["query"], pending)
        assert response.code == self.ISS["code"] and response.issuer == self.ISS["issuer"]

    def test_mix_up_is_refused_even_for_errors(self, clock: FakeClock) -> None:
        """A response naming another issuer is refused, code or error alike (RFC 9207 2.4)."""
        client = self._client(clock)
        pending = client.authorization_request(state="s")
        for query in (
            "code=abc&state=s&iss=https%3A%2F%2Fattacker.example",
            "error=access_denied&state=s&iss=https%3A%2F%2Fattacker.example",
            "code=abc&state=s&iss=https%3A%2F%2Fhonest.as.example%2F",  # not byte-equal
        ):
            with pytest.raises(InvalidCallback) as caught:
                client.parse_callback(query, pending)
            assert caught.value.reason == "issuer_mismatch"

    def test_required_when_advertised(self, clock: FakeClock) -> None:
        """With require_issuer a response without iss is refused; without it, accepted."""
        pending_strict = self._client(clock, require_issuer=True).authorization_request(state="s")
        with pytest.raises(InvalidCallback) as caught:
            self._client(clock, require_issuer=True).parse_callback(
                "code=a&state=s", pending_strict
            )
        assert caught.value.reason == "missing_issuer"
        lenient = self._client(clock)
        assert lenient.parse_callback("code=a&state=s", lenient.authorization_request(state="s"))

    def test_checked_against_the_issuer_of_the_request(self, clock: FakeClock) -> None:
        """The expected issuer is the one recorded with the pending request."""
        pending = self._client(clock).authorization_request(state="s")
        other = _rfc_client(clock, issuer="https://other.example")
        assert other.parse_callback(self.ISS["query"].replace(self.ISS["state"], "s"), pending)


class TestSession:
    def test_start_finish_and_single_use(self, clock: FakeClock) -> None:
        """finish() consumes the session's pending authorization: a replayed callback fails."""
        client = _rfc_client(clock)
        session: dict[str, Any] = {}
        url = client.start(session, "read")
        state = _query(url)["state"]
        request = client.finish(session, f"code=abc&state={state}")
        assert parse_form(request.body)["code"] == "abc"
        assert session == {}
        with pytest.raises(InvalidCallback) as caught:
            client.finish(session, f"code=abc&state={state}")
        assert caught.value.reason == "no_pending_authorization"

    def test_a_failed_callback_also_consumes_it(self, clock: FakeClock) -> None:
        """A wrong state burns the pending authorization: no second guess."""
        client = _rfc_client(clock)
        session: dict[str, Any] = {}
        state = _query(client.start(session))["state"]
        with pytest.raises(InvalidCallback):
            client.finish(session, "code=abc&state=guess")
        with pytest.raises(InvalidCallback) as caught:
            client.finish(session, f"code=abc&state={state}")
        assert caught.value.reason == "no_pending_authorization"

    def test_bound_to_this_session(self, clock: FakeClock) -> None:
        """A state issued to another session (an attacker's own login) is refused here."""
        client = _rfc_client(clock)
        attacker: dict[str, Any] = {}
        victim: dict[str, Any] = {}
        attacker_state = _query(client.start(attacker))["state"]
        client.start(victim)
        with pytest.raises(InvalidCallback) as caught:
            client.finish(victim, f"code=attackers-code&state={attacker_state}")
        assert caught.value.reason == "state_mismatch"

    def test_session_values_are_json_and_checked_on_the_way_back(self, clock: FakeClock) -> None:
        """The stored value survives JSON; a tampered one is refused as malformed_session."""
        client = _rfc_client(clock)
        session: dict[str, Any] = {}
        state = _query(client.start(session))["state"]
        session = json.loads(json.dumps(session))  # a cookie or Redis session round trip
        assert client.finish(session, f"code=abc&state={state}").body
        for tampered in ({"state": state}, "text", {**_pending_dict(client), "created_at": "x"}):
            with pytest.raises(InvalidCallback) as caught:
                client.finish({f"apisec.oauth:{RFC['client_id']}": tampered}, "code=a&state=b")
            assert caught.value.reason == "malformed_session"

    def test_custom_session_key(self, clock: FakeClock) -> None:
        """session_key names where the pending authorization is kept."""
        client = _rfc_client(clock, session_key="login")
        session: dict[str, Any] = {}
        client.start(session)
        assert list(session) == ["login"]
        assert PendingAuthorization.from_dict(session["login"]).redirect_uri == (
            "https://client.example.com/cb"
        )


def _pending_dict(client: OAuthClient) -> dict[str, Any]:
    return client.authorization_request().to_dict()


class TestTokenRequest:
    def test_rfc_6749_section_4_1_3_with_rfc_7636_verifier(self, clock: FakeClock) -> None:
        """The code exchange is the RFC's body plus code_verifier, with the RFC's Basic header."""
        client = _rfc_client(clock)
        pending = client.authorization_request(state="xyz", pair=PKCE)
        response = client.parse_callback(VECTORS["authorization_response"]["query"], pending)
        request = client.token_request(response, pending)
        assert request.method == "POST"
        assert request.url == VECTORS["code_token_request"]["token_endpoint"]
        assert parse_form(request.body) == {
            **parse_form(VECTORS["code_token_request"]["body"]),
            "code_verifier": VECTORS["pkce"]["code_verifier"],
        }
        assert request.headers == [
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Accept", "application/json"),
            ("Authorization", RFC["authorization"]),
        ]

    def test_public_client_names_itself_in_the_body(self, clock: FakeClock) -> None:
        """Without a secret, client_id goes in the body and no Authorization header is sent."""
        client = _rfc_client(clock, client_secret=None)
        pending = client.authorization_request(state="xyz", pair=PKCE)
        request = client.token_request(AuthorizationResponse(code="c"), pending)
        assert parse_form(request.body)["client_id"] == RFC["client_id"]
        assert all(name != "Authorization" for name, _ in request.headers)

    def test_client_credentials_request_of_section_4_4_2(self) -> None:
        """The client credentials request is the RFC's, with Basic or with body credentials."""
        request = client_credentials_request(
            "https://server.example.com/token", RFC["client_id"], RFC["client_secret"]
        )
        assert request.body.decode() == VECTORS["client_credentials_request"]["body"]
        assert ("Authorization", RFC["authorization"]) in request.headers
        post = client_credentials_request(
            "https://server.example.com/token", "a b", "c+d", "x y", use_basic=False
        )
        assert parse_form(post.body) == {
            "grant_type": "client_credentials",
            "scope": "x y",
            "client_id": "a b",
            "client_secret": "c+d",
        }


class TestParseTokenResponse:
    def test_success(self) -> None:
        """A 200 JSON object with access_token and token_type is returned as a dict."""
        body = b'{"access_token":"2YotnFZFEjr1zMsr1zHX5s","token_type":"example","expires_in":3600}'
        assert parse_token_response(200, body)["expires_in"] == 3600

    def test_rfc_6749_section_5_2_error(self) -> None:
        """The RFC's error body raises TokenRequestError with its code and status."""
        vector = VECTORS["error_token_response"]
        with pytest.raises(TokenRequestError) as caught:
            parse_token_response(vector["status"], vector["body"].encode())
        assert caught.value.error == "invalid_request" and caught.value.http_status == 400
        assert caught.value.status == 502

    @pytest.mark.parametrize(
        ("status", "body"),
        [
            (200, b"<html>"),
            (200, b"[]"),
            (200, b'{"token_type":"Bearer"}'),
            (200, b'{"access_token":"x"}'),
            (200, b'{"access_token":"a","access_token":"b","token_type":"Bearer"}'),
            (500, b"oops"),
            (400, b'{"error":7}'),
            (200, b"{" + b" " * 70_000 + b"}"),
        ],
    )
    def test_unusable_answers(self, status: int, body: bytes) -> None:
        """Non-JSON, duplicate keys, missing members or huge bodies are invalid_response."""
        with pytest.raises(TokenRequestError) as caught:
            parse_token_response(status, body)
        assert caught.value.error == "invalid_response"


# A tiny authorization server on loopback, for TestAgainstATinyAuthorizationServer.


class _AuthorizationServer(ThreadingHTTPServer):
    """An authorization server just big enough to run the code flow against, written here."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.issuer = f"http://127.0.0.1:{self.server_address[1]}"
        self.codes: dict[str, dict[str, str]] = {}
        # client_id -> (secret or None for a public client, registered redirect URI)
        self.clients: dict[str, tuple[str | None, str]] = {}
        self.deny = False
        self.send_issuer: str | None = self.issuer


class _Handler(BaseHTTPRequestHandler):
    server: _AuthorizationServer

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""

    def _reply(self, status: int, document: dict[str, Any]) -> None:
        body = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        """The authorization endpoint: approves (or denies) at once and redirects back."""
        params = {k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()}
        client = self.server.clients.get(params.get("client_id", ""))
        if (
            client is None
            or params.get("redirect_uri") != client[1]
            or params.get("response_type") != "code"
            or params.get("code_challenge_method") != "S256"
        ):
            self._reply(400, {"error": "invalid_request"})
            return
        answer = {"state": params["state"]}
        if self.server.deny:
            answer |= {"error": "access_denied", "error_description": "The user said no"}
        else:
            code = secrets.token_urlsafe(24)
            self.server.codes[code] = params
            answer["code"] = code
        if self.server.send_issuer is not None:
            answer["iss"] = self.server.send_issuer
        self.send_response(302)
        self.send_header("Location", f"{params['redirect_uri']}?{urlencode(answer)}")
        self.end_headers()

    def do_POST(self) -> None:
        """The token endpoint: Basic or public client, single-use code, exact redirect, PKCE."""
        raw = self.rfile.read(int(self.headers["Content-Length"])).decode("ascii")
        form = {k: v[0] for k, v in parse_qs(raw, strict_parsing=True).items()}
        auth = self.headers.get("Authorization")
        if auth is not None:
            user, _, password = (
                base64.b64decode(auth.removeprefix("Basic ")).decode().partition(":")
            )
            client_id, secret = unquote_plus(user), unquote_plus(password)
        else:
            client_id, secret = form.get("client_id", ""), None
        registered = self.server.clients.get(client_id)
        if registered is None or registered[0] != secret:
            self._reply(401, {"error": "invalid_client"})
            return
        grant = self.server.codes.pop(form.get("code", ""), None)  # single use
        digest = hashlib.sha256(form.get("code_verifier", "").encode()).digest()
        challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
        if (
            form.get("grant_type") != "authorization_code"
            or grant is None
            or grant["client_id"] != client_id
            or form.get("redirect_uri") != grant["redirect_uri"]
            or challenge != grant["code_challenge"]
        ):
            self._reply(400, {"error": "invalid_grant", "error_description": "bad code"})
            return
        self._reply(
            200,
            {
                "access_token": secrets.token_urlsafe(24),
                "token_type": "Bearer",
                "expires_in": 3600,
                "scope": grant.get("scope", ""),
            },
        )


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())


def _browser_get(url: str) -> str:
    """Follow the authorization URL like a browser would, up to the redirect back."""
    with pytest.raises(urllib.error.HTTPError) as caught:
        _OPENER.open(url, timeout=5)
    with caught.value as redirect:
        assert redirect.code == 302
        return str(redirect.headers["Location"])


def _send(request: Any) -> tuple[int, bytes]:
    http_request = urllib.request.Request(  # noqa: S310 - our own loopback server
        request.url, data=request.body, headers=dict(request.headers), method=request.method
    )
    try:
        with _OPENER.open(http_request, timeout=5) as reply:
            return reply.status, reply.read()
    except urllib.error.HTTPError as err:
        with err:
            return err.code, err.read()


@pytest.fixture
def server() -> Iterator[_AuthorizationServer]:
    server = _AuthorizationServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


REDIRECT = "https://app.example.com/oauth/callback"


def _client_of(server: _AuthorizationServer, client_id: str, secret: str | None) -> OAuthClient:
    server.clients[client_id] = (secret, REDIRECT)
    return OAuthClient(
        client_id=client_id,
        client_secret=secret,
        authorization_endpoint=f"{server.issuer}/authorize",
        token_endpoint=f"{server.issuer}/token",
        redirect_uri=REDIRECT,
        issuer=server.issuer,
        require_issuer=True,
    )


class TestAgainstATinyAuthorizationServer:
    def test_confidential_client_with_reserved_characters(
        self, server: _AuthorizationServer
    ) -> None:
        """A full code flow: Basic credentials with ':', '%', '+', space and é arrive intact."""
        client = _client_of(server, "app:1 %+ é", "s3cr:t %+ ü")
        session: dict[str, Any] = {}
        location = _browser_get(client.start(session, "orders:read"))
        assert location.startswith(REDIRECT + "?")
        request = client.finish(session, urlsplit(location).query)
        status, body = _send(request)
        token = parse_token_response(status, body)
        assert token["token_type"] == "Bearer" and token["scope"] == "orders:read"

    def test_public_client(self, server: _AuthorizationServer) -> None:
        """A public client gets its token with PKCE alone (client_id in the body)."""
        client = _client_of(server, "spa", None)
        session: dict[str, Any] = {}
        location = _browser_get(client.start(session))
        status, body = _send(client.finish(session, urlsplit(location).query))
        assert parse_token_response(status, body)["access_token"]

    def test_denied(self, server: _AuthorizationServer) -> None:
        """The server's access_denied arrives as AuthorizationError with its description."""
        client = _client_of(server, "app", "secret")
        server.deny = True
        session: dict[str, Any] = {}
        location = _browser_get(client.start(session))
        with pytest.raises(AuthorizationError) as caught:
            client.finish(session, urlsplit(location).query)
        assert caught.value.error == "access_denied"
        assert caught.value.error_description == "The user said no"

    def test_mix_up_and_missing_iss(self, server: _AuthorizationServer) -> None:
        """A response naming another issuer, or none when required, is refused."""
        client = _client_of(server, "app", "secret")
        for sent, reason in (
            ("https://attacker.example", "issuer_mismatch"),
            (None, "missing_issuer"),
        ):
            server.send_issuer = sent
            session: dict[str, Any] = {}
            location = _browser_get(client.start(session))
            with pytest.raises(InvalidCallback) as caught:
                client.finish(session, urlsplit(location).query)
            assert caught.value.reason == reason

    def test_a_replayed_code_is_refused_by_the_server(self, server: _AuthorizationServer) -> None:
        """Sending the same exchange twice gets invalid_grant, read as TokenRequestError."""
        client = _client_of(server, "app", "secret")
        session: dict[str, Any] = {}
        location = _browser_get(client.start(session))
        request = client.finish(session, urlsplit(location).query)
        parse_token_response(*_send(request))
        with pytest.raises(TokenRequestError) as caught:
            parse_token_response(*_send(request))
        assert caught.value.error == "invalid_grant" and caught.value.http_status == 400

    def test_the_server_checks_the_verifier(self, server: _AuthorizationServer) -> None:
        """The tiny server really checks PKCE: a swapped verifier is refused (the test can fail)."""
        client = _client_of(server, "app", "secret")
        session: dict[str, Any] = {}
        location = _browser_get(client.start(session))
        request = client.finish(session, urlsplit(location).query)
        params = parse_form(request.body)
        params["code_verifier"] = "x" * 43
        forged = type(request)(request.url, request.headers, encode_form(params.items()).encode())
        with pytest.raises(TokenRequestError) as caught:
            parse_token_response(*_send(forged))
        assert caught.value.error == "invalid_grant"
