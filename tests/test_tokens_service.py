"""TokenService: issuing, verifying, and every attack on access tokens we know of."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
from datetime import timedelta
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from hypothesis import given, settings
from hypothesis import strategies as st

from apisec import ConfigurationError
from apisec.testing import FakeClock
from apisec.tokens import (
    Claims,
    ExpiredToken,
    InvalidToken,
    KeyRing,
    SigningKey,
    TokenService,
)

ISS = "https://auth.example.com"
AUD = "https://api.example.com"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge(header: dict[str, Any], claims: dict[str, Any], sign: Any = None) -> str:
    """A compact JWS with any header, signed by ``sign(signing_input)`` (or unsigned)."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    signature = sign(signing_input.encode()) if sign else b""
    return f"{signing_input}.{b64(signature)}"


@pytest.fixture(scope="module")
def hs_key() -> SigningKey:
    return SigningKey.hmac(b"0123456789abcdef0123456789abcdef", kid="hs1")


@pytest.fixture(scope="module")
def rs_key() -> SigningKey:
    return SigningKey.generate("RS256", kid="rs1")


@pytest.fixture
def service(hs_key: SigningKey, rs_key: SigningKey, clock: FakeClock) -> TokenService:
    return TokenService(KeyRing(rs_key, hs_key), issuer=ISS, audience=AUD, clock=clock)


def good_claims(clock: FakeClock, **extra: Any) -> dict[str, Any]:
    now = int(clock())
    return {
        "iss": ISS,
        "aud": AUD,
        "sub": "user_1",
        "iat": now,
        "exp": now + 600,
        "jti": "j1",
        **extra,
    }


def hs_forge(key: bytes, header: dict[str, Any], claims: dict[str, Any]) -> str:
    return forge(header, claims, lambda m: hmac.new(key, m, hashlib.sha256).digest())


class TestAccessTokenAlone:
    def test_issue_access_token_stores_nothing(self, service: TokenService) -> None:
        """issue_access_token gives a verifiable access token, no refresh token, no store write."""
        token = service.issue_access_token("svc-1", scope="jobs:run", client_id="svc-1")
        claims = service.verify(token.access_token)
        assert claims.subject == "svc-1" and claims["client_id"] == "svc-1"
        assert claims.scopes == {"jobs:run"} and claims["exp"] - claims["iat"] == 900
        assert token.to_dict() == {
            "access_token": token.access_token,
            "token_type": "Bearer",
            "expires_in": 900,
        }
        assert token.access_token not in repr(token)
        assert len(service.store) == 0  # type: ignore[arg-type]

    async def test_the_async_twin_issues_synchronously(self, hs_key: SigningKey) -> None:
        """AsyncTokenService.issue_access_token is the same plain call (no I/O to await)."""
        from apisec.tokens import AsyncTokenService

        service = AsyncTokenService(hs_key, issuer=ISS, audience=AUD)
        assert service.verify(service.issue_access_token("svc-2").access_token)["sub"] == "svc-2"

    @pytest.mark.parametrize("claims", [{"sub": "x"}, {"exp": 1}, {"when": object()}])
    def test_claims_are_checked_as_for_issue(
        self, service: TokenService, claims: dict[str, Any]
    ) -> None:
        """Reserved or non-JSON claims are refused by issue_access_token as by issue."""
        with pytest.raises(ConfigurationError):
            service.issue_access_token("svc-1", **claims)


class TestIssueAndVerify:
    def test_issue_and_verify(self, service: TokenService, clock: FakeClock) -> None:
        """An issued access token verifies and carries the standard and caller claims."""
        pair = service.issue("user_1", scope="read write", tenant="t1")
        claims = service.verify(pair.access_token)
        assert isinstance(claims, Claims)
        assert claims["sub"] == claims.subject == "user_1"
        assert claims["iss"] == ISS
        assert claims["aud"] == AUD
        assert claims["exp"] - claims["iat"] == 900
        assert claims.scopes == {"read", "write"}
        assert claims["tenant"] == "t1"
        assert pair.token_type == "Bearer"
        assert pair.expires_in == 900
        header = jwt.get_unverified_header(pair.access_token)
        assert header == {"alg": "RS256", "typ": "at+jwt", "kid": "rs1"}
        with pytest.raises(TypeError):
            claims["sub"] = "admin"  # type: ignore[index]

    def test_pyjwt_accepts_our_tokens(self, rs_key: SigningKey) -> None:
        """Our access tokens are ordinary JWTs: PyJWT verifies them with the public key."""
        pair = TokenService(rs_key, issuer=ISS, audience=AUD).issue(
            "user_1"
        )  # wall clock, like PyJWT
        jwk = rs_key.public_jwk()
        assert jwk is not None
        public = jwt.PyJWK(jwk).key
        decoded = jwt.decode(
            pair.access_token, public, algorithms=["RS256"], audience=AUD, issuer=ISS
        )
        assert decoded["sub"] == "user_1"

    def test_token_pair_repr_hides_tokens(self, service: TokenService) -> None:
        """Neither token appears in the pair's repr; to_dict is the OAuth response."""
        pair = service.issue("user_1")
        assert pair.access_token not in repr(pair)
        assert pair.refresh_token not in repr(pair)
        assert pair.to_dict()["token_type"] == "Bearer"

    @pytest.mark.parametrize("name", ["iss", "sub", "aud", "exp", "nbf", "iat", "jti"])
    def test_reserved_claims_are_refused_at_issue(self, service: TokenService, name: str) -> None:
        """Callers cannot override registered claims."""
        with pytest.raises(ConfigurationError, match="set by the token service"):
            service.issue("user_1", **{name: "x"})

    @pytest.mark.parametrize("subject", ["", None, 5, "x" * 257])
    def test_bad_subjects_are_refused(self, service: TokenService, subject: Any) -> None:
        """Subjects are non-empty strings of at most 256 characters."""
        with pytest.raises(ConfigurationError):
            service.issue(subject)

    def test_non_json_claims_are_refused(self, service: TokenService) -> None:
        """Claims must be plain JSON."""
        with pytest.raises(ConfigurationError):
            service.issue("u", when=object())


class TestAttacks:
    @pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
    def test_alg_none_in_any_case(self, service: TokenService, clock: FakeClock, alg: str) -> None:
        """Unsigned tokens are refused however 'none' is spelled, with or without a signature."""
        header = {"alg": alg, "typ": "at+jwt", "kid": "hs1"}
        with pytest.raises(InvalidToken):
            service.verify(forge(header, good_claims(clock)))
        with pytest.raises(InvalidToken):
            service.verify(forge(header, good_claims(clock), lambda m: b"x"))

    @pytest.mark.parametrize(
        ("encoding", "fmt"),
        [
            (serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo),
            (serialization.Encoding.PEM, serialization.PublicFormat.PKCS1),
            (serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH),
            (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo),
        ],
        ids=["pem-spki", "pem-pkcs1", "openssh", "der"],
    )
    def test_hs256_forged_with_the_rsa_public_key(
        self, service: TokenService, rs_key: SigningKey, clock: FakeClock, encoding: Any, fmt: Any
    ) -> None:
        """Algorithm confusion: HMAC over the public key, with the RSA key's kid, is refused."""
        public_bytes = rs_key._public.public_bytes(encoding, fmt)
        header = {"alg": "HS256", "typ": "at+jwt", "kid": "rs1"}
        with pytest.raises(InvalidToken, match="does not match"):
            service.verify(hs_forge(public_bytes, header, good_claims(clock)))

    def test_hs256_forged_with_an_ec_public_key(self, clock: FakeClock) -> None:
        """The same confusion against an ES256 key is refused too."""
        ec_key = SigningKey.generate("ES256", kid="ec1")
        service = TokenService(ec_key, issuer=ISS, audience=AUD, clock=clock)
        pem = ec_key._public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        header = {"alg": "HS256", "typ": "at+jwt", "kid": "ec1"}
        with pytest.raises(InvalidToken):
            service.verify(hs_forge(pem, header, good_claims(clock)))

    @pytest.mark.parametrize(
        "kid",
        [None, "unknown", "../../../../dev/null", "' OR '1'='1", "hs1\x00", 7, ["hs1"], {"k": 1}],
    )
    def test_unknown_or_hostile_kid(
        self, service: TokenService, hs_key: SigningKey, clock: FakeClock, kid: Any
    ) -> None:
        """A missing, unknown, path-like, SQL-like or non-string kid finds no key."""
        header = {"alg": "HS256", "typ": "at+jwt", "kid": kid}
        token = forge(header, good_claims(clock), hs_key.sign)
        with pytest.raises(InvalidToken, match="kid"):
            service.verify(token)

    def test_unknown_crit_is_refused(
        self, service: TokenService, hs_key: SigningKey, clock: FakeClock
    ) -> None:
        """A critical extension we do not understand fails the token (RFC 7515 4.1.11)."""
        header = {"alg": "HS256", "typ": "at+jwt", "kid": "hs1", "crit": ["exp-ext"], "exp-ext": 1}
        with pytest.raises(InvalidToken, match="critical"):
            service.verify(forge(header, good_claims(clock), hs_key.sign))
        header = {"alg": "HS256", "typ": "at+jwt", "kid": "hs1", "crit": ["b64"], "b64": False}
        with pytest.raises(InvalidToken, match="critical"):
            service.verify(forge(header, good_claims(clock), hs_key.sign))

    def test_tampered_payload_and_stripped_signature(self, service: TokenService) -> None:
        """Any change to the payload, or a missing signature, is refused."""
        token = service.issue("user_1").access_token
        header, payload, signature = token.split(".")
        claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
        claims["sub"] = "admin"
        tampered = b64(json.dumps(claims).encode())
        with pytest.raises(InvalidToken, match="signature"):
            service.verify(f"{header}.{tampered}.{signature}")
        with pytest.raises(InvalidToken, match="no signature"):
            service.verify(f"{header}.{payload}.")
        with pytest.raises(InvalidToken):
            service.verify(f"{header}.{payload}")

    @pytest.mark.parametrize(
        "iss",
        [
            "https://auth.example.co",
            "https://auth.example.com/",
            "auth.example.com",
            "https://auth.example.com.evil",
            "https",
            "",
            ["https://auth.example.com"],
            None,
        ],
    )
    def test_wrong_or_partial_issuer(
        self, service: TokenService, hs_key: SigningKey, clock: FakeClock, iss: Any
    ) -> None:
        """The issuer must match exactly: substrings and lists fail (CVE-2024-53861)."""
        header = {"alg": "HS256", "typ": "at+jwt", "kid": "hs1"}
        with pytest.raises(InvalidToken, match="issuer"):
            service.verify(forge(header, good_claims(clock, iss=iss), hs_key.sign))

    @pytest.mark.parametrize(
        "aud", ["https://api.example.co", "https://other.example.com", [], ["x", 5], None, 5]
    )
    def test_wrong_audience(
        self, service: TokenService, hs_key: SigningKey, clock: FakeClock, aud: Any
    ) -> None:
        """Tokens not naming our audience, or naming it malformed, are refused."""
        header = {"alg": "HS256", "typ": "at+jwt", "kid": "hs1"}
        with pytest.raises(InvalidToken, match="audience"):
            service.verify(forge(header, good_claims(clock, aud=aud), hs_key.sign))

    def test_audience_list_containing_ours_is_accepted(
        self, service: TokenService, hs_key: SigningKey, clock: FakeClock
    ) -> None:
        """aud may be a list; one matching entry suffices."""
        header = {"alg": "HS256", "typ": "at+jwt", "kid": "hs1"}
        claims = good_claims(clock, aud=["https://other.example.com", AUD])
        assert service.verify(forge(header, claims, hs_key.sign))["sub"] == "user_1"

    def test_expiry_boundaries(self, service: TokenService, clock: FakeClock) -> None:
        """Valid one second before exp; exp == now is expired; after is expired."""
        token = service.issue("user_1").access_token
        clock.advance(899)
        service.verify(token)
        clock.advance(1)
        with pytest.raises(ExpiredToken):
            service.verify(token)
        clock.advance(3600)
        with pytest.raises(ExpiredToken):
            service.verify(token)

    def test_leeway_stretches_expiry_and_future_claims(
        self, hs_key: SigningKey, clock: FakeClock
    ) -> None:
        """With leeway, exp, nbf and iat tolerate that much skew and no more."""
        service = TokenService(hs_key, issuer=ISS, audience=AUD, clock=clock, leeway=30)
        token = service.issue("user_1").access_token
        clock.advance(900 + 29)
        service.verify(token)
        clock.advance(1)
        with pytest.raises(ExpiredToken):
            service.verify(token)
        header = {"alg": "HS256", "typ": "at+jwt", "kid": "hs1"}
        now = int(clock())
        service.verify(forge(header, good_claims(clock, iat=now + 30), hs_key.sign))
        with pytest.raises(InvalidToken, match="future"):
            service.verify(forge(header, good_claims(clock, iat=now + 31), hs_key.sign))

    @pytest.mark.parametrize(
        ("claim", "offset", "match"), [("nbf", 1, "not yet valid"), ("iat", 1, "future")]
    )
    def test_future_nbf_and_iat(
        self,
        service: TokenService,
        hs_key: SigningKey,
        clock: FakeClock,
        claim: str,
        offset: int,
        match: str,
    ) -> None:
        """nbf or iat in the future (beyond a zero leeway) is refused."""
        header = {"alg": "HS256", "typ": "at+jwt", "kid": "hs1"}
        claims = good_claims(clock, **{claim: int(clock()) + offset})
        with pytest.raises(InvalidToken, match=match):
            service.verify(forge(header, claims, hs_key.sign))

    @pytest.mark.parametrize("missing", ["sub", "exp", "iat", "jti", "iss", "aud"])
    def test_required_claims(
        self, service: TokenService, hs_key: SigningKey, clock: FakeClock, missing: str
    ) -> None:
        """Each registered claim we rely on must be present."""
        claims = good_claims(clock)
        del claims[missing]
        header = {"alg": "HS256", "typ": "at+jwt", "kid": "hs1"}
        with pytest.raises(InvalidToken):
            service.verify(forge(header, claims, hs_key.sign))

    @pytest.mark.parametrize("bad", [True, "1700000000", None, float("inf")])
    def test_exp_must_be_a_number(
        self, service: TokenService, hs_key: SigningKey, clock: FakeClock, bad: Any
    ) -> None:
        """Booleans, strings, null and infinity are not timestamps."""
        header = {"alg": "HS256", "typ": "at+jwt", "kid": "hs1"}
        claims = good_claims(clock, exp=bad)
        token = forge(header, claims, hs_key.sign) if bad != float("inf") else None
        if token is None:  # json.dumps would write Infinity, which our parser refuses anyway
            raw = json.dumps(claims).encode()
            si = f"{b64(json.dumps(header).encode())}.{b64(raw)}"
            token = f"{si}.{b64(hs_key.sign(si.encode()))}"
        with pytest.raises(InvalidToken):
            service.verify(token)

    def test_extra_required_claims(self, hs_key: SigningKey, clock: FakeClock) -> None:
        """required_claims adds claims every token must carry."""
        service = TokenService(
            hs_key, issuer=ISS, audience=AUD, clock=clock, required_claims=["tenant"]
        )
        with pytest.raises(InvalidToken, match="tenant"):
            service.verify(service.issue("u").access_token)
        assert service.verify(service.issue("u", tenant="t").access_token)["tenant"] == "t"

    def test_refresh_token_is_not_an_access_token(self, service: TokenService) -> None:
        """A refresh token presented to verify() is refused, and the reverse in refresh()."""
        pair = service.issue("user_1")
        with pytest.raises(InvalidToken):
            service.verify(pair.refresh_token)
        with pytest.raises(InvalidToken, match="malformed refresh token"):
            service.refresh(pair.access_token)

    @pytest.mark.parametrize("typ", [None, "JWT", "jwt", "at+jwt ", "dpop+jwt", "refresh+jwt", 1])
    def test_typ_must_be_at_jwt(
        self, service: TokenService, hs_key: SigningKey, clock: FakeClock, typ: Any
    ) -> None:
        """ID tokens, generic JWTs and other types cannot pass as access tokens (RFC 9068)."""
        header = {"alg": "HS256", "kid": "hs1", **({} if typ is None else {"typ": typ})}
        with pytest.raises(InvalidToken, match="access token"):
            service.verify(forge(header, good_claims(clock), hs_key.sign))

    def test_application_at_jwt_is_accepted_case_insensitively(
        self, service: TokenService, hs_key: SigningKey, clock: FakeClock
    ) -> None:
        """typ 'application/at+jwt' in any case is the same media type."""
        header = {"alg": "HS256", "kid": "hs1", "typ": "Application/AT+JWT"}
        assert service.verify(forge(header, good_claims(clock), hs_key.sign))

    @pytest.mark.parametrize("member", ["jwk", "jku", "x5u", "x5c"])
    def test_embedded_keys_are_ignored(
        self, service: TokenService, clock: FakeClock, member: str
    ) -> None:
        """A token bringing its own key (jwk/jku/x5u/x5c) is checked with ours and fails."""
        attacker = SigningKey.generate("RS256", kid="rs1")
        jwk = attacker.public_jwk()
        values = {
            "jwk": jwk,
            "jku": "https://evil.example/jwks",
            "x5u": "https://evil.example/c",
            "x5c": ["MIIB"],
        }
        header = {"alg": "RS256", "typ": "at+jwt", "kid": "rs1", member: values[member]}
        with pytest.raises(InvalidToken, match="signature"):
            service.verify(forge(header, good_claims(clock), attacker.sign))

    def test_huge_tokens_are_refused_before_decoding(self, service: TokenService) -> None:
        """A 1 MB token is refused by size, before any base64 or JSON work."""
        huge = "a" * (1024 * 1024)
        with pytest.raises(InvalidToken, match="longer than"):
            service.verify(f"{huge}.{huge}.{huge}")

    @pytest.mark.parametrize(
        "token",
        ["", "a.b", "a.b.c.d.e", "...", "eyJ.eyJ.sig", "!!.??.##", "a b.c.d"],
    )
    def test_malformed_compact_forms(self, service: TokenService, token: str) -> None:
        """Wrong segment counts (JWE included) and bad characters are InvalidToken."""
        with pytest.raises(InvalidToken):
            service.verify(token)

    def test_non_canonical_base64url_is_refused(self, service: TokenService) -> None:
        """A signature spelled with stray trailing bits (same bytes) is not accepted."""
        token = service.issue("user_1").access_token
        header, payload, signature = token.split(".")
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
        last = signature[-1]
        # RS256 signatures are 256 bytes: 342 chars, 2 stray bits in the last one.
        sibling = alphabet[alphabet.index(last) + 1]
        assert base64.urlsafe_b64decode(
            signature[:-1] + sibling + "=="
        ) == base64.urlsafe_b64decode(signature + "==")
        with pytest.raises(InvalidToken, match="canonical"):
            service.verify(f"{header}.{payload}.{signature[:-1]}{sibling}")
        with pytest.raises(InvalidToken, match="canonical"):
            service.verify(f"{header}.{payload}.{signature}==")

    def test_duplicate_claims_are_refused(self, hs_key: SigningKey, clock: FakeClock) -> None:
        """A payload naming sub twice is ambiguous and refused."""
        service = TokenService(hs_key, issuer=ISS, audience=AUD, clock=clock)
        header = b64(json.dumps({"alg": "HS256", "typ": "at+jwt", "kid": "hs1"}).encode())
        now = int(clock())
        raw = (
            f'{{"iss":"{ISS}","aud":"{AUD}","sub":"user_1","sub":"admin","iat":{now},'
            f'"exp":{now + 60},"jti":"j"}}'
        ).encode()
        si = f"{header}.{b64(raw)}"
        with pytest.raises(InvalidToken, match="JSON"):
            service.verify(f"{si}.{b64(hs_key.sign(si.encode()))}")

    @settings(max_examples=300)
    @given(
        st.one_of(
            st.text(max_size=300),
            st.binary(max_size=200).map(lambda b: b.decode("latin-1")),
            st.lists(
                st.text(
                    alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_",
                    max_size=60,
                ),
                min_size=3,
                max_size=3,
            ).map(".".join),
        )
    )
    def test_garbage_only_ever_raises_invalid_token(self, token: str) -> None:
        """Whatever string arrives, verify raises InvalidToken and nothing else."""
        service = TokenService(SigningKey.hmac(b"k" * 32, kid="k"), issuer=ISS, audience=AUD)
        with pytest.raises(InvalidToken):
            service.verify(token)

    @given(
        st.dictionaries(
            st.text(max_size=8),
            st.none() | st.integers() | st.text(max_size=8) | st.lists(st.integers(), max_size=2),
            max_size=6,
        ),
        st.dictionaries(
            st.text(max_size=8), st.none() | st.integers() | st.text(max_size=8), max_size=6
        ),
    )
    def test_signed_garbage_headers_and_claims_only_raise_invalid_token(
        self, header: dict[str, Any], claims: dict[str, Any]
    ) -> None:
        """Validly signed tokens with arbitrary members still fail only as InvalidToken."""
        key = SigningKey.hmac(b"k" * 32, kid="k")
        service = TokenService(key, issuer=ISS, audience=AUD)
        token = forge({**header, "alg": "HS256", "kid": "k"}, claims, key.sign)
        with pytest.raises(InvalidToken):
            service.verify(token)

    def test_non_string_tokens(self, service: TokenService) -> None:
        """None, bytes and numbers are InvalidToken, not TypeError."""
        for value in (None, b"a.b.c", 5):
            with pytest.raises(InvalidToken):
                service.verify(value)  # type: ignore[arg-type]


class TestKeyRotation:
    def test_key_rotation(self, clock: FakeClock) -> None:
        """Old tokens verify while the old key is in the ring and fail once it leaves."""
        old = SigningKey.generate("ES256", kid="2026-10")
        new = SigningKey.generate("ES256", kid="2026-11")
        before = TokenService(old, issuer=ISS, audience=AUD, clock=clock)
        token = before.issue("u").access_token
        during = TokenService(KeyRing(new, old), issuer=ISS, audience=AUD, clock=clock)
        assert during.verify(token)["sub"] == "u"
        assert jwt.get_unverified_header(during.issue("u").access_token)["kid"] == "2026-11"
        after = TokenService(new, issuer=ISS, audience=AUD, clock=clock)
        with pytest.raises(InvalidToken, match="kid"):
            after.verify(token)


class TestConfigurationAndAudit:
    @pytest.mark.parametrize(
        "kwargs",
        [
            {"issuer": ""},
            {"audience": []},
            {"audience": ""},
            {"access_ttl": 0},
            {"access_ttl": -5},
            {"refresh_ttl": 60},
            {"leeway": 3600},
            {"refresh_grace": 120},
            {"max_token_bytes": 10},
            {"keys": "secret"},
        ],
    )
    def test_bad_configuration_is_refused(self, hs_key: SigningKey, kwargs: dict[str, Any]) -> None:
        """Unsafe or nonsensical settings raise ConfigurationError when built."""
        args: dict[str, Any] = {"keys": hs_key, "issuer": ISS, "audience": AUD, **kwargs}
        with pytest.raises(ConfigurationError):
            TokenService(**args)

    def test_durations_accept_timedeltas(self, hs_key: SigningKey, clock: FakeClock) -> None:
        """TTLs may be timedeltas."""
        service = TokenService(
            hs_key,
            issuer=ISS,
            audience=AUD,
            clock=clock,
            access_ttl=timedelta(minutes=5),
            refresh_ttl=timedelta(days=1),
        )
        assert service.issue("u").expires_in == 300

    def test_failures_are_audited_without_the_token(
        self, service: TokenService, audit_records: list[logging.LogRecord]
    ) -> None:
        """A failed verification emits auth.failure; the token never reaches the record."""
        token = service.issue("user_1").access_token
        with pytest.raises(InvalidToken):
            service.verify(token[:-4] + "AAAA")
        record = next(r for r in audit_records if r.event == "auth.failure")  # type: ignore[attr-defined]
        assert record.reason == "invalid-token"  # type: ignore[attr-defined]
        text = repr(record.__dict__) + record.getMessage()
        assert token[:40] not in text

    def test_problem_and_challenge(self, service: TokenService) -> None:
        """InvalidToken renders a 401 problem with a Bearer challenge and a generic detail."""
        with pytest.raises(InvalidToken) as caught:
            service.verify("x.y.z")
        err = caught.value
        assert err.status == 401
        assert ("WWW-Authenticate", 'Bearer error="invalid_token"') in err.headers
        assert err.to_problem().detail == "The access token is invalid or expired."


class TestEcdsaSpellings:
    """ES256 signatures are malleable: (r, s) and (r, n - s) both verify."""

    P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551

    def _twin(self, token: str) -> str:
        head, payload, signature = token.split(".")
        raw = base64.urlsafe_b64decode(signature + "==")
        r, s = raw[:32], int.from_bytes(raw[32:], "big")
        return f"{head}.{payload}.{b64(r + (self.P256_ORDER - s).to_bytes(32, 'big'))}"

    def test_both_spellings_verify_to_the_same_token(
        self, audit_records: list[logging.LogRecord]
    ) -> None:
        """Other issuers' high-s signatures verify; claims, jti and audit records do not
        depend on which spelling was presented (nothing keys on the token's text)."""
        clock = FakeClock()
        service = TokenService(SigningKey.generate("ES256", kid="es"), ISS, AUD, clock=clock)
        token = service.issue("user_1").access_token
        twin = self._twin(token)
        assert twin != token
        assert service.verify(twin) == service.verify(token)
        clock.advance(service.access_ttl + 1)
        seen = []
        for spelling in (token, twin):
            audit_records.clear()
            with pytest.raises(ExpiredToken):
                service.verify(spelling)
            [record] = audit_records
            seen.append((record.event, record.principal, record.reason, record.details))  # type: ignore[attr-defined]
            assert spelling.split(".")[2] not in repr(record.__dict__)
        assert seen[0] == seen[1]
