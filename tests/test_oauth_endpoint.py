"""The client-credentials token endpoint: RFC 6749 sections 4.4 and 5, end to end in-process."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import pytest
import redis.asyncio
from hypothesis import given
from hypothesis import strategies as st

from apisec import ConfigurationError, StoreError
from apisec.apikeys import (
    ApiKeyRecord,
    ApiKeyService,
    AsyncApiKeyService,
    MemoryApiKeyStore,
    NewApiKey,
)
from apisec.apikeys.redis import AsyncRedisApiKeyStore
from apisec.oauth import (
    AsyncClientCredentialsEndpoint,
    ClientCredentialsEndpoint,
    TokenResponse,
    basic_authorization,
    client_credentials_request,
)
from apisec.testing import FakeClock
from apisec.tokens import AsyncTokenService, SigningKey, TokenService

FORM = ("Content-Type", "application/x-www-form-urlencoded")
COMMON = [
    ("Content-Type", "application/json"),
    ("Cache-Control", "no-store"),
    ("Pragma", "no-cache"),
]
CHALLENGE = ("WWW-Authenticate", 'Basic realm="token"')
CLIENT_ID = "svc-billing"
ISSUER = "https://auth.example.com"
AUDIENCE = "https://api.example.com"
TOKEN_URL = "https://auth.example.com/token"


@pytest.fixture
def keys(clock: FakeClock) -> ApiKeyService:
    return ApiKeyService(clock=clock)


@pytest.fixture
def tokens(clock: FakeClock) -> TokenService:
    return TokenService(
        SigningKey.generate("EdDSA", kid="k1"), issuer=ISSUER, audience=AUDIENCE, clock=clock
    )


@pytest.fixture
def endpoint(keys: ApiKeyService, tokens: TokenService) -> ClientCredentialsEndpoint:
    return ClientCredentialsEndpoint(keys, tokens)


@pytest.fixture
def client(keys: ApiKeyService) -> NewApiKey:
    return keys.create(CLIENT_ID, scopes=["orders:read", "orders:write"])


def _post(
    endpoint: ClientCredentialsEndpoint,
    body: bytes | str,
    headers: Sequence[tuple[str, str]] = (),
    method: str = "POST",
    form: bool = True,
) -> TokenResponse:
    raw = body.encode() if isinstance(body, str) else body
    return endpoint.handle(method, [*([FORM] if form else []), *headers], raw)


def _basic(client: NewApiKey, client_id: str = CLIENT_ID) -> tuple[str, str]:
    return ("Authorization", basic_authorization(client_id, client.plaintext))


def _json(response: TokenResponse) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(response.body)
    return document


def _denials(records: list[logging.LogRecord]) -> list[tuple[str, str]]:
    return [(r.reason, r.details["cause"]) for r in records if r.event == "oauth.token_denied"]  # type: ignore[attr-defined]


class TestIssuing:
    def test_basic_round_trip_gives_a_verifiable_access_token(
        self, endpoint: ClientCredentialsEndpoint, tokens: TokenService, client: NewApiKey
    ) -> None:
        """Basic authentication gets 200, RFC 6749 section 5.1 JSON and a token that verifies."""
        response = _post(
            endpoint, "grant_type=client_credentials&scope=orders%3Aread", [_basic(client)]
        )
        assert response.status == 200 and response.error is None
        assert response.headers == COMMON
        document = _json(response)
        assert list(document) == ["access_token", "token_type", "expires_in"]
        assert document["token_type"] == "Bearer" and document["expires_in"] == 900
        claims = tokens.verify(document["access_token"])
        assert claims["sub"] == CLIENT_ID and claims["client_id"] == CLIENT_ID
        assert claims.scopes == {"orders:read"}
        assert response.body == (
            b'{"access_token":"' + document["access_token"].encode() + b'",'
            b'"token_type":"Bearer","expires_in":900}'
        )

    def test_no_refresh_token_and_nothing_stored(
        self, endpoint: ClientCredentialsEndpoint, tokens: TokenService, client: NewApiKey
    ) -> None:
        """The grant issues no refresh token (RFC 6749 section 4.4.3) and stores no family."""
        response = _post(endpoint, "grant_type=client_credentials", [_basic(client)])
        assert "refresh_token" not in _json(response)
        assert len(tokens.store) == 0  # type: ignore[arg-type]

    def test_requested_scopes_are_narrowed_and_reported(
        self, endpoint: ClientCredentialsEndpoint, tokens: TokenService, client: NewApiKey
    ) -> None:
        """Scopes the client lacks are dropped, and the response says what was issued."""
        response = _post(
            endpoint,
            "grant_type=client_credentials&scope=orders%3Aread+admin+billing%3Aall",
            [_basic(client)],
        )
        document = _json(response)
        assert document["scope"] == "orders:read"
        assert tokens.verify(document["access_token"]).scopes == {"orders:read"}

    def test_omitted_scope_grants_every_scope_of_the_client(
        self, endpoint: ClientCredentialsEndpoint, tokens: TokenService, client: NewApiKey
    ) -> None:
        """Without a scope parameter the client gets all of its scopes, named in the response."""
        document = _json(_post(endpoint, "grant_type=client_credentials", [_basic(client)]))
        assert document["scope"] == "orders:read orders:write"
        assert tokens.verify(document["access_token"]).scopes == {"orders:read", "orders:write"}

    def test_empty_scope_is_an_omitted_scope(
        self, endpoint: ClientCredentialsEndpoint, client: NewApiKey
    ) -> None:
        """'scope=' counts as omitted (RFC 6749 section 3.2): every granted scope is issued."""
        document = _json(_post(endpoint, "grant_type=client_credentials&scope=", [_basic(client)]))
        assert document["scope"] == "orders:read orders:write"

    def test_body_credentials(
        self, endpoint: ClientCredentialsEndpoint, tokens: TokenService, client: NewApiKey
    ) -> None:
        """client_id and client_secret in the body authenticate too (client_secret_post)."""
        request = client_credentials_request(
            TOKEN_URL, CLIENT_ID, client.plaintext, ["orders:write"], use_basic=False
        )
        response = endpoint.handle("POST", request.headers, request.body)
        assert response.status == 200
        assert tokens.verify(_json(response)["access_token"]).scopes == {"orders:write"}

    def test_basic_with_the_same_client_id_in_the_body(
        self, endpoint: ClientCredentialsEndpoint, client: NewApiKey
    ) -> None:
        """A client may also name itself in the body (section 3.2.1) if the names agree."""
        body = f"grant_type=client_credentials&client_id={CLIENT_ID}"
        assert _post(endpoint, body, [_basic(client)]).status == 200

    @pytest.mark.parametrize(
        "client_id",
        ["svc:billing", "a:b:c", "100%", "%41", "a+b", "with space", "café ☕", "x:y %+ é/?#&="],
    )
    def test_client_ids_with_reserved_characters(
        self,
        keys: ApiKeyService,
        endpoint: ClientCredentialsEndpoint,
        tokens: TokenService,
        client_id: str,
    ) -> None:
        """Ids with ':', '%', '+', spaces and non-ASCII authenticate when form-encoded first."""
        new = keys.create(client_id, scopes=["read"])
        request = client_credentials_request(TOKEN_URL, client_id, new.plaintext)
        response = endpoint.handle("POST", request.headers, request.body)
        assert response.status == 200, response.body
        assert tokens.verify(_json(response)["access_token"])["sub"] == client_id

    def test_a_raw_colon_in_the_client_id_does_not_authenticate(
        self, keys: ApiKeyService, endpoint: ClientCredentialsEndpoint
    ) -> None:
        """A client that skips the form-encoding sends 'svc' as its id: it is refused."""
        new = keys.create("svc:billing")
        raw = base64.b64encode(f"svc:billing:{new.plaintext}".encode()).decode()
        response = _post(
            endpoint, "grant_type=client_credentials", [("Authorization", f"Basic {raw}")]
        )
        assert response.status == 401 and response.error == "invalid_client"

    def test_byte_headers_as_asgi_sends_them(
        self, endpoint: ClientCredentialsEndpoint, client: NewApiKey
    ) -> None:
        """Lower-case byte-string header pairs (ASGI's form) work as they are."""
        headers = [
            (b"content-type", b"application/x-www-form-urlencoded; charset=UTF-8"),
            (b"authorization", basic_authorization(CLIENT_ID, client.plaintext).encode()),
        ]
        assert endpoint.handle("POST", headers, b"grant_type=client_credentials").status == 200

    def test_secrets_and_tokens_stay_out_of_reprs_and_logs(
        self,
        endpoint: ClientCredentialsEndpoint,
        client: NewApiKey,
        audit_records: list[logging.LogRecord],
    ) -> None:
        """Neither the access token nor the client secret shows in a repr or an audit record."""
        response = _post(endpoint, "grant_type=client_credentials", [_basic(client)])
        token = _json(response)["access_token"]
        assert token not in repr(response)
        _post(endpoint, "grant_type=client_credentials", [_basic(client, "someone-else")])
        for record in audit_records:
            text = repr(record.__dict__)
            assert client.plaintext not in text and token not in text


class TestClientsAreApiKeys:
    def test_rotation_with_grace(
        self,
        keys: ApiKeyService,
        endpoint: ClientCredentialsEndpoint,
        client: NewApiKey,
        clock: FakeClock,
    ) -> None:
        """After rotation both secrets work for the grace period, then only the new one."""
        new = keys.rotate(client.record.id, grace=60)
        assert new.record.owner == CLIENT_ID  # the client id survives rotation
        for secret in (client, new):
            assert _post(endpoint, "grant_type=client_credentials", [_basic(secret)]).status == 200
        clock.advance(61)
        old = _post(endpoint, "grant_type=client_credentials", [_basic(client)])
        assert (old.status, old.error) == (401, "invalid_client")
        assert _post(endpoint, "grant_type=client_credentials", [_basic(new)]).status == 200

    def test_revoked_and_expired_secrets(
        self, keys: ApiKeyService, endpoint: ClientCredentialsEndpoint, clock: FakeClock
    ) -> None:
        """Revoked or expired client secrets get invalid_client."""
        revoked = keys.create(CLIENT_ID)
        keys.revoke(revoked.record.id)
        expiring = keys.create(CLIENT_ID, expires_in=10)
        clock.advance(11)
        for secret in (revoked, expiring):
            response = _post(endpoint, "grant_type=client_credentials", [_basic(secret)])
            assert response.error == "invalid_client"

    def test_a_secret_of_another_client(
        self, keys: ApiKeyService, endpoint: ClientCredentialsEndpoint, client: NewApiKey
    ) -> None:
        """A valid secret presented under another client's id is refused."""
        keys.create("svc-other")
        response = _post(endpoint, "grant_type=client_credentials", [_basic(client, "svc-other")])
        assert (response.status, response.error) == (401, "invalid_client")

    def test_secret_prefix_keeps_plain_api_keys_out(
        self, keys: ApiKeyService, tokens: TokenService
    ) -> None:
        """With secret_prefix set, an API key of another prefix is not a client secret."""
        endpoint = ClientCredentialsEndpoint(keys, tokens, secret_prefix="cs_live")
        api_key = keys.create(CLIENT_ID, prefix="sk_live")
        client_secret = keys.create(CLIENT_ID, prefix="cs_live")
        assert _post(endpoint, "grant_type=client_credentials", [_basic(api_key)]).error == (
            "invalid_client"
        )
        assert (
            _post(endpoint, "grant_type=client_credentials", [_basic(client_secret)]).status == 200
        )


CC = "grant_type=client_credentials"
NOT_FORM = "The request must be application/x-www-form-urlencoded."
BAD_FORM = "The request body is not a valid form."
UNSUPPORTED = "This endpoint supports the client_credentials grant only."
AUTH_FAILED = "Client authentication failed."
BAD_SCOPE = "The scope parameter is malformed."
SECRET_POST = f"{CC}&client_id={CLIENT_ID}&client_secret="


def _basic_of(client_id: str, secret: str) -> tuple[str, str]:
    return ("Authorization", basic_authorization(client_id, secret))


# (case id, request builder, status, error, description, extra headers)
REFUSALS: list[tuple[str, Any, int, str, str, list[tuple[str, str]]]] = [
    ("GET", lambda c: ("GET", [FORM, _basic(c)], CC),
     405, "invalid_request", "The token endpoint accepts POST only.", [("Allow", "POST")]),
    ("lower-case post", lambda c: ("post", [FORM, _basic(c)], CC),
     405, "invalid_request", "The token endpoint accepts POST only.", [("Allow", "POST")]),
    ("json body", lambda c: ("POST", [("Content-Type", "application/json"), _basic(c)], "{}"),
     400, "invalid_request", NOT_FORM, []),
    ("no content type", lambda c: ("POST", [_basic(c)], CC), 400, "invalid_request", NOT_FORM, []),
    ("two content types", lambda c: ("POST", [FORM, FORM, _basic(c)], CC),
     400, "invalid_request", NOT_FORM, []),
    ("latin-1 charset",
     lambda c: ("POST", [("Content-Type", FORM[1] + ";charset=latin-1"), _basic(c)], CC),
     400, "invalid_request", NOT_FORM, []),
    ("repeated grant_type", lambda c: ("POST", [FORM, _basic(c)], f"{CC}&grant_type=password"),
     400, "invalid_request", BAD_FORM, []),
    ("repeated scope", lambda c: ("POST", [FORM, _basic(c)], f"{CC}&scope=a&scope=b"),
     400, "invalid_request", BAD_FORM, []),
    ("broken escape", lambda c: ("POST", [FORM, _basic(c)], "grant_type=client%zzcredentials"),
     400, "invalid_request", BAD_FORM, []),
    ("missing grant_type", lambda c: ("POST", [FORM, _basic(c)], "scope=orders%3Aread"),
     400, "invalid_request", "The grant_type parameter is missing.", []),
    ("password grant",
     lambda c: ("POST", [FORM, _basic(c)], "grant_type=password&username=u&password=p"),
     400, "unsupported_grant_type", UNSUPPORTED, []),
    ("implicit response_type", lambda c: ("POST", [FORM, _basic(c)], "response_type=token"),
     400, "unsupported_grant_type", "The implicit grant is not supported.", []),
    ("implicit as a grant", lambda c: ("POST", [FORM, _basic(c)], "grant_type=implicit"),
     400, "unsupported_grant_type", UNSUPPORTED, []),
    ("authorization_code",
     lambda c: ("POST", [FORM, _basic(c)], "grant_type=authorization_code&code=x"),
     400, "unsupported_grant_type", UNSUPPORTED, []),
    ("refresh_token",
     lambda c: ("POST", [FORM, _basic(c)], "grant_type=refresh_token&refresh_token=x"),
     400, "unsupported_grant_type", UNSUPPORTED, []),
    ("Basic and body secret", lambda c: ("POST", [FORM, _basic(c)], SECRET_POST + c.plaintext),
     400, "invalid_request",
     "Client credentials were sent both in the Authorization header and the body.", []),
    ("Basic and another body client_id",
     lambda c: ("POST", [FORM, _basic(c)], f"{CC}&client_id=svc-other"),
     400, "invalid_request", "The client_id parameter differs from the authenticated client.", []),
    ("two Authorization headers", lambda c: ("POST", [FORM, _basic(c), _basic(c)], CC),
     400, "invalid_request", "The Authorization header is repeated.", []),
    ("wrong Basic secret", lambda c: ("POST", [FORM, _basic_of(CLIENT_ID, "sk_live_nope")], CC),
     401, "invalid_client", AUTH_FAILED, [CHALLENGE]),
    ("malformed Basic", lambda c: ("POST", [FORM, ("Authorization", "Basic !!!")], CC),
     401, "invalid_client", AUTH_FAILED, [CHALLENGE]),
    ("Bearer instead of Basic", lambda c: ("POST", [FORM, ("Authorization", "Bearer abc")], CC),
     401, "invalid_client", AUTH_FAILED, [CHALLENGE]),
    ("Basic with an empty secret", lambda c: ("POST", [FORM, _basic_of(CLIENT_ID, "")], CC),
     401, "invalid_client", AUTH_FAILED, [CHALLENGE]),
    ("wrong body secret", lambda c: ("POST", [FORM], SECRET_POST + "sk_live_nope"),
     400, "invalid_client", AUTH_FAILED, []),
    ("no credentials", lambda c: ("POST", [FORM], CC), 400, "invalid_client", AUTH_FAILED, []),
    ("body client_id without secret",
     lambda c: ("POST", [FORM], f"{CC}&client_id={CLIENT_ID}"),
     400, "invalid_client", AUTH_FAILED, []),
    ("malformed scope", lambda c: ("POST", [FORM, _basic(c)], f"{CC}&scope=a++b"),
     400, "invalid_scope", BAD_SCOPE, []),
    ("quote in scope", lambda c: ("POST", [FORM, _basic(c)], f"{CC}&scope=%22a%22"),
     400, "invalid_scope", BAD_SCOPE, []),
    ("no scope granted", lambda c: ("POST", [FORM, _basic(c)], f"{CC}&scope=admin"),
     400, "invalid_scope", "No requested scope is granted to this client.", []),
    ("body too large", lambda c: ("POST", [FORM, _basic(c)], f"{CC}&pad=" + "x" * 9000),
     413, "invalid_request", "The request body is too large.", []),
]  # fmt: skip


class TestRefusals:
    @pytest.mark.parametrize(
        ("build", "status", "error", "description", "extra"),
        [case[1:] for case in REFUSALS],
        ids=[case[0] for case in REFUSALS],
    )
    def test_exact_status_json_and_headers(
        self,
        endpoint: ClientCredentialsEndpoint,
        client: NewApiKey,
        audit_records: list[logging.LogRecord],
        build: Any,
        status: int,
        error: str,
        description: str,
        extra: list[tuple[str, str]],
    ) -> None:
        """Each refusal is RFC 6749 section 5.2 JSON with exactly these headers, and is audited."""
        method, headers, body = build(client)
        response = endpoint.handle(method, headers, body.encode())
        assert response.status == status
        assert response.error == error
        assert (
            response.body
            == json.dumps(
                {"error": error, "error_description": description}, separators=(",", ":")
            ).encode()
        )
        assert response.headers == COMMON + extra
        denials = [r for r in audit_records if r.event == "oauth.token_denied"]  # type: ignore[attr-defined]
        assert [r.reason for r in denials] == [error]  # type: ignore[attr-defined]
        assert denials[0].levelno == logging.WARNING

    def test_descriptions_use_the_rfc_character_set(self) -> None:
        """error_description holds only %x20-21 / %x23-5B / %x5D-7E (RFC 6749 section 5.2)."""
        allowed = {chr(c) for c in range(0x20, 0x7F)} - {'"', "\\"}
        for case in REFUSALS:
            assert set(case[4]) <= allowed, case[0]

    def test_refuse_unknown_scopes(
        self, keys: ApiKeyService, tokens: TokenService, client: NewApiKey
    ) -> None:
        """With refuse_unknown_scopes, asking for any scope the client lacks is invalid_scope."""
        strict = ClientCredentialsEndpoint(keys, tokens, refuse_unknown_scopes=True)
        response = _post(
            strict, "grant_type=client_credentials&scope=orders%3Aread+admin", [_basic(client)]
        )
        assert (response.status, response.error) == (400, "invalid_scope")
        assert (
            _post(
                strict, "grant_type=client_credentials&scope=orders%3Aread", [_basic(client)]
            ).status
            == 200
        )

    def test_body_credentials_can_be_switched_off(
        self, keys: ApiKeyService, tokens: TokenService, client: NewApiKey
    ) -> None:
        """allow_body_credentials=False makes body credentials an invalid_client."""
        basic_only = ClientCredentialsEndpoint(keys, tokens, allow_body_credentials=False)
        body = (
            f"grant_type=client_credentials&client_id={CLIENT_ID}&client_secret={client.plaintext}"
        )
        response = _post(basic_only, body)
        assert (response.status, response.error) == (400, "invalid_client")
        assert _post(basic_only, "grant_type=client_credentials", [_basic(client)]).status == 200

    def test_the_realm_is_configurable(self, keys: ApiKeyService, tokens: TokenService) -> None:
        """The Basic challenge names the configured realm."""
        endpoint = ClientCredentialsEndpoint(keys, tokens, realm="billing api")
        response = _post(
            endpoint, "grant_type=client_credentials", [("Authorization", "Basic !!!")]
        )
        assert ("WWW-Authenticate", 'Basic realm="billing api"') in response.headers

    def test_grant_type_is_checked_before_the_store(
        self, keys: ApiKeyService, endpoint: ClientCredentialsEndpoint, client: NewApiKey
    ) -> None:
        """A deprecated grant never reaches the client store (no hashing, no lookup)."""
        calls: list[str] = []
        original = keys.store.find

        def counting(key_hash: str) -> ApiKeyRecord | None:
            calls.append(key_hash)
            return original(key_hash)

        keys.store.find = counting  # type: ignore[method-assign]
        _post(endpoint, "grant_type=password&username=u&password=p", [_basic(client)])
        assert calls == []
        _post(endpoint, "grant_type=client_credentials", [_basic(client)])
        assert len(calls) == 1

    def test_audit_causes_tell_the_deprecated_grants_apart(
        self,
        endpoint: ClientCredentialsEndpoint,
        client: NewApiKey,
        audit_records: list[logging.LogRecord],
    ) -> None:
        """The audit record says why a deprecated grant was refused (RFC 9700), for the logs."""
        _post(endpoint, "grant_type=password&username=u&password=p", [_basic(client)])
        ((reason, cause),) = _denials(audit_records)
        assert reason == "unsupported_grant_type" and "RFC 9700" in cause

    @given(body=st.binary(max_size=400), authorization=st.text(max_size=80))
    def test_no_input_escapes_as_an_exception(self, body: bytes, authorization: str) -> None:
        """Any body and Authorization value gets a JSON token response, never an exception."""
        clock = FakeClock()
        keys = ApiKeyService(clock=clock)
        tokens = TokenService(
            SigningKey.hmac(b"k" * 32, kid="h"), issuer=ISSUER, audience=AUDIENCE, clock=clock
        )
        endpoint = ClientCredentialsEndpoint(keys, tokens)
        response = endpoint.handle("POST", [FORM, ("Authorization", authorization)], body)
        assert response.status in (400, 401, 413)
        assert set(_json(response)) == {"error", "error_description"}


class _DownStore(MemoryApiKeyStore):
    def find(self, key_hash: str) -> ApiKeyRecord | None:
        raise StoreError("backend down")


class TestStoreFailures:
    def test_a_failing_store_raises_store_error_and_is_audited(
        self, tokens: TokenService, audit_records: list[logging.LogRecord]
    ) -> None:
        """A dead client store surfaces as StoreError (503) for the adapter, with an audit event."""
        keys = ApiKeyService(_DownStore())
        new = ApiKeyService().create(CLIENT_ID)
        endpoint = ClientCredentialsEndpoint(keys, tokens)
        with pytest.raises(StoreError):
            _post(endpoint, "grant_type=client_credentials", [_basic(new)])
        assert ("store_error", "backend down") in _denials(audit_records)


class TestConfiguration:
    @pytest.mark.parametrize(
        "kwargs",
        [
            {"realm": ""},
            {"realm": 'a"b'},
            {"realm": "x" * 65},
            {"max_body_bytes": 10},
            {"max_body_bytes": 10**9},
            {"max_body_bytes": True},
            {"secret_prefix": "bad prefix"},
        ],
    )
    def test_bad_options(
        self, keys: ApiKeyService, tokens: TokenService, kwargs: Mapping[str, Any]
    ) -> None:
        """Unsafe or invalid options raise ConfigurationError at construction."""
        with pytest.raises(ConfigurationError):
            ClientCredentialsEndpoint(keys, tokens, **kwargs)

    async def test_sync_and_async_services_do_not_mix(self, tokens: TokenService) -> None:
        """The sync endpoint refuses an async key service and the reverse."""
        from apisec.apikeys import AsyncSQLiteApiKeyStore

        async_keys = AsyncApiKeyService(AsyncSQLiteApiKeyStore(":memory:"))
        with pytest.raises(ConfigurationError):
            ClientCredentialsEndpoint(async_keys, tokens)  # type: ignore[arg-type]
        with pytest.raises(ConfigurationError):
            AsyncClientCredentialsEndpoint(ApiKeyService(), tokens)  # type: ignore[arg-type]
        with pytest.raises(ConfigurationError):
            ClientCredentialsEndpoint(ApiKeyService(), object())  # type: ignore[arg-type]


@pytest.mark.redis
class TestAsyncEndpoint:
    async def test_round_trip_over_async_redis(
        self, async_redis_client: redis.asyncio.Redis, clock: FakeClock
    ) -> None:
        """The asyncio twin issues through AsyncApiKeyService on Redis, and refuses the same way."""
        keys = AsyncApiKeyService(AsyncRedisApiKeyStore(async_redis_client), clock=clock)
        tokens = AsyncTokenService(
            SigningKey.generate("ES256", kid="e1"), issuer=ISSUER, audience=AUDIENCE, clock=clock
        )
        endpoint = AsyncClientCredentialsEndpoint(keys, tokens)
        new = await keys.create("svc:async é", scopes=["jobs:run", "jobs:read"])
        request = client_credentials_request(
            TOKEN_URL, "svc:async é", new.plaintext, "jobs:run admin"
        )
        response = await endpoint.handle("POST", request.headers, request.body)
        assert response.status == 200 and response.headers == COMMON
        document = _json(response)
        assert document["scope"] == "jobs:run"
        claims = tokens.verify(document["access_token"])
        assert claims.subject == "svc:async é" and claims.scopes == {"jobs:run"}
        rotated = await keys.rotate(new.record.id, grace=30)
        clock.advance(31)
        old = client_credentials_request(TOKEN_URL, "svc:async é", new.plaintext)
        refused = await endpoint.handle("POST", old.headers, old.body)
        assert (refused.status, refused.error) == (401, "invalid_client")
        assert CHALLENGE in refused.headers
        fresh = client_credentials_request(TOKEN_URL, "svc:async é", rotated.plaintext)
        assert (await endpoint.handle("POST", fresh.headers, fresh.body)).status == 200
