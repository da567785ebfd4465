"""The `apisec` command, run as the installed console script in a subprocess."""

from __future__ import annotations

import contextlib
import io
import json
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import attrs
import jwt as pyjwt
import pytest
import standardwebhooks

from apisec import pkce
from apisec.apikeys import ApiKeyRecord, ApiKeyService, InvalidApiKey, MemoryApiKeyStore
from apisec.cli import main
from apisec.tokens import KeyRing, SigningKey, TokenService
from apisec.webhooks import WebhookSigner, WebhookVerifier, generate_secret

APISEC = Path(sys.executable).with_name("apisec")
ISSUER, AUDIENCE = "https://auth.example.com", "https://api.example.com"


@attrs.frozen
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)

    @property
    def output(self) -> str:
        return self.out + self.err


def apisec(*args: str | Path, stdin: str | bytes = b"", cwd: Path | None = None) -> Result:
    """Run the installed `apisec` script in a subprocess; never raises on a non-zero exit."""
    assert APISEC.exists(), "the console script is missing: pip install -e '.[dev]'"
    data = stdin.encode() if isinstance(stdin, str) else stdin
    done = subprocess.run(
        [str(APISEC), *map(str, args)],
        input=data,
        capture_output=True,
        timeout=60,
        cwd=cwd,
        check=False,
    )
    return Result(done.returncode, done.stdout.decode(), done.stderr.decode())


def apisec_all(calls: Sequence[tuple[Sequence[str | Path], str | bytes]]) -> list[Result]:
    """Several independent script runs at once (process start-up dominates their time)."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        return list(pool.map(lambda call: apisec(*call[0], stdin=call[1]), calls))


def in_process(*args: str | Path, stdin: str | bytes = b"") -> Result:
    """The same command through ``main()`` in this process: for variations on a theme."""
    data = stdin.encode() if isinstance(stdin, str) else stdin
    out, err = io.StringIO(), io.StringIO()
    saved = sys.stdin
    sys.stdin = io.TextIOWrapper(io.BytesIO(data))
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main([str(arg) for arg in args])
            except SystemExit as exc:  # --help and --version
                code = int(exc.code or 0)
    finally:
        sys.stdin = saved
    return Result(code, out.getvalue(), err.getvalue())


def assert_usage_error(result: Result) -> None:
    """Exit code 2, nothing on stdout, exactly one line on stderr, no traceback."""
    assert result.code == 2, result
    assert result.out == ""
    assert result.err.endswith("\n") and result.err.count("\n") == 1, result.err
    assert "Traceback" not in result.err


def write(path: Path, data: str | bytes) -> Path:
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


COMMANDS = [
    ["keygen"],
    ["secret"],
    ["jwk"],
    ["jwks"],
    ["jwt"],
    ["jwt", "inspect"],
    ["jwt", "verify"],
    ["webhook"],
    ["webhook", "sign"],
    ["webhook", "verify"],
    ["pkce"],
    ["check-url"],
    ["cors"],
    ["cors", "lint"],
    ["demo"],
]


class TestHelp:
    @pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
    def test_every_command_has_help_with_an_example(self, command: list[str]) -> None:
        """`--help` exits 0 and shows an example that starts with `apisec`."""
        result = in_process(*command, "--help")
        assert result.code == 0, result
        assert "example" in result.out
        assert "  apisec " in result.out.split("example", 1)[1]

    def test_console_script_and_python_dash_m(self) -> None:
        """The installed script and `python -m apisec` run the same parser."""
        script = apisec("--help")
        assert script.code == 0 and "keygen" in script.out and "check-url" in script.out
        done = subprocess.run(
            [sys.executable, "-m", "apisec", "--version"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0 and done.stdout.startswith("apisec ")


#: One bad input per subcommand, through the installed script.
SCRIPT_BAD_INPUT: dict[str, tuple[list[str], str]] = {
    "no command": ([], ""),
    "keygen": (["keygen", "--prefix", "not a prefix"], ""),
    "secret": (["secret", "rot13"], ""),
    "jwk": (["jwk", "HS256", "--format", "pem"], ""),
    "jwks": (["jwks", "-"], '{"kty": "oct", "k": "c2hvcnQ", "alg": "HS256"}'),
    "jwt inspect": (["jwt", "inspect"], "not-a-token"),
    "jwt verify": (["jwt", "verify", "--issuer", ISSUER, "--audience", AUDIENCE], "a.b.c"),
    "webhook sign": (["webhook", "sign", "--secret-file", "-", "-"], "whsec_abc"),
    "webhook verify": (["webhook", "verify", "--secret-file", "/nonexistent", "/dev/null"], ""),
    "pkce": (["pkce", "--length", "12"], ""),
    "check-url": (["check-url", "https://example.com/", "--resolve", "example.com"], ""),
    "cors lint": (["cors", "lint", "-"], "{not json"),
    "demo": (["demo", "--port", "70000"], ""),
}


@pytest.fixture(scope="module")
def script_bad_input() -> dict[str, Result]:
    results = apisec_all([(args, stdin) for args, stdin in SCRIPT_BAD_INPUT.values()])
    return dict(zip(SCRIPT_BAD_INPUT, results, strict=True))


class TestBadInput:
    @pytest.mark.parametrize("case", SCRIPT_BAD_INPUT)
    def test_script_exits_two_with_one_line(
        self, case: str, script_bad_input: dict[str, Result]
    ) -> None:
        """Bad input to each subcommand exits 2 with one line on stderr, nothing on stdout."""
        assert_usage_error(script_bad_input[case])

    @pytest.mark.parametrize(
        ("args", "stdin"),
        [
            (["bogus"], ""),
            (["jwt"], ""),
            (["webhook"], ""),
            (["keygen", "--expires-in", "soon"], ""),
            (["keygen", "--scope", "two words"], ""),
            (["secret", "hmac", "--bytes", "8"], ""),
            (["jwk", "EdDSA", "--out", "/nonexistent/dir/key.pem"], ""),
            (["jwks", "/nonexistent/key.pem"], ""),
            (["jwks", "-"], "[1, 2]"),
            (["jwks", "-", "-"], "{}"),
            (["jwt", "inspect"], ""),
            (["jwt", "inspect"], "rt_AAAAAAAAAAAAAAAAAAAAAA.BBBB"),
            (["jwt", "verify", "--key", "-", "--issuer", "i", "--audience", "a"], "{}"),
            (["webhook", "sign", "--secret-file", "-", "/nonexistent"], "whsec_abc"),
            (["webhook", "sign", "--secret-file", "-", "--scheme", "github", "-"], "x"),
            (["webhook", "verify", "--secret-file", "-", "/dev/null"], generate_secret()),
            (["webhook", "verify", "--secret-file", "-", "-H", "oops", "/dev/null"], "x"),
            (["check-url", "https://example.com/", "--port", "http"], ""),
            (["cors", "lint", "-"], "[1, 2]"),
            (["cors", "lint", "/nonexistent.json"], ""),
            (["demo", "--port", "8123", "--web-port", "8123"], ""),
        ],
        ids=repr,
    )
    def test_more_bad_input_in_process(self, args: list[str], stdin: str) -> None:
        """The same rule for more shapes of bad input (through ``main``, faster)."""
        assert_usage_error(in_process(*args, stdin=stdin))

    def test_demo_on_a_taken_port_is_one_line(self) -> None:
        """A port already in use is reported in one line, before anything starts."""
        with socket.create_server(("127.0.0.1", 0)) as taken:
            port = taken.getsockname()[1]
            result = apisec("demo", "--port", str(port), "--web-port", "0")
        assert_usage_error(result)
        assert f"port {port}" in result.err


class TestSecretsStayOut:
    """A secret given on stdin or in a file never shows in any output, errors included."""

    def test_malformed_webhook_secret_is_not_echoed(self, tmp_path: Path) -> None:
        """A refused webhook secret is named, never shown."""
        secret = "whsec_" + "Zm9vYmFy" * 5 + "!!"  # not base64: refused
        body = write(tmp_path / "body.json", b"{}")
        result = apisec("webhook", "sign", "--secret-file", "-", body, stdin=secret)
        assert_usage_error(result)
        assert "Zm9vYmFy" not in result.output

    def test_pem_refused_as_hmac_secret_is_not_echoed(self, tmp_path: Path) -> None:
        """Algorithm confusion is refused without printing the key material."""
        pem = in_process("jwk", "ES256").out
        token = write(tmp_path / "token.txt", "a.b.c")
        result = apisec(
            "jwt", "verify", "--hmac-secret-file", "-", "--issuer", ISSUER,
            "--audience", AUDIENCE, token, stdin=pem,
        )  # fmt: skip
        assert_usage_error(result)
        for line in pem.splitlines()[1:-1]:
            assert line not in result.output

    def test_undecodable_token_is_not_echoed(self) -> None:
        """`jwt inspect` on a broken token names the problem, not the token."""
        token = "eyJhbGciOiJFUzI1NiJ9.c2VjcmV0LXBheWxvYWQtbm90LWpzb24.c2lnbmF0dXJl"
        result = apisec("jwt", "inspect", stdin=token)
        assert_usage_error(result)
        for part in token.split("."):
            assert part not in result.output

    def test_rejected_token_is_not_echoed(self, tmp_path: Path) -> None:
        """A well-formed token that fails verification is refused (exit 1) unseen."""
        key = SigningKey.generate("EdDSA", kid="k1")
        token = TokenService(key, issuer=ISSUER, audience=AUDIENCE).issue("user_1").access_token
        jwks = write(tmp_path / "jwks.json", json.dumps(KeyRing(key).jwks()))
        result = apisec(
            "jwt", "verify", "--key", jwks, "--issuer", "https://other.example.com",
            "--audience", AUDIENCE, stdin=token,
        )  # fmt: skip
        assert result.code == 1 and result.out == "" and result.err.count("\n") == 1
        assert "wrong issuer" in result.err
        for part in token.split("."):
            assert part not in result.output

    def test_short_pepper_is_not_echoed(self) -> None:
        """A pepper too short to use is refused without being printed."""
        result = apisec("keygen", "--pepper-file", "-", stdin="pepper-too-short")
        assert_usage_error(result)
        assert "pepper-too-short" not in result.output

    def test_private_key_file_never_leaks_into_the_jwks(self, tmp_path: Path) -> None:
        """`jwks` over a private JWK prints only public members."""
        private = in_process("jwk", "EdDSA", "--format", "jwk").out
        result = apisec("jwks", write(tmp_path / "k.json", private))
        assert result.code == 0
        assert json.loads(private)["d"] not in result.output
        assert all("d" not in key for key in json.loads(result.out)["keys"])

    def test_signing_prints_headers_not_the_secret(self, tmp_path: Path) -> None:
        """`webhook sign` output holds signatures only."""
        secret = generate_secret("standard")
        result = apisec("webhook", "sign", "--secret-file", "-", write(tmp_path / "b", b"x"),
                        stdin=secret)  # fmt: skip
        assert result.code == 0 and result.err == ""
        assert secret not in result.output and secret[6:] not in result.output


class TestKeygen:
    def test_printed_record_authenticates_the_printed_key(self) -> None:
        """The key from `keygen` authenticates through ApiKeyService given the printed record."""
        result = apisec(
            "keygen", "--prefix", "sk_test", "--owner", "acct_42", "--scope", "orders:read",
            "--scope", "orders:write", "--json",
        )  # fmt: skip
        assert result.code == 0, result
        data = result.json()
        store = MemoryApiKeyStore()
        store.add(ApiKeyRecord(**data["record"]))
        record = ApiKeyService(store).authenticate(data["key"])
        assert record.owner == "acct_42"
        assert record.scopes == ("orders:read", "orders:write")
        assert data["hash"] == record.key_hash and data["key"].startswith("sk_test_")

    def test_peppered_hash_needs_the_pepper(self) -> None:
        """With --pepper-file the stored hash only verifies with that pepper."""
        pepper = "p" * 40
        data = apisec("keygen", "--pepper-file", "-", "--json", stdin=pepper).json()
        assert data["hash"].startswith("hmac-sha256$")
        store = MemoryApiKeyStore()
        store.add(ApiKeyRecord(**data["record"]))
        assert ApiKeyService(store, pepper=pepper.encode()).authenticate(data["key"])
        with pytest.raises(InvalidApiKey):
            ApiKeyService(store).authenticate(data["key"])

    def test_text_output_shows_key_once_and_record(self) -> None:
        """Human output: the key once, then the storable hash and hint."""
        result = in_process("keygen", "--expires-in", "3600")
        assert result.code == 0
        key = result.out.splitlines()[1].strip()
        assert key.startswith("sk_live_") and result.out.count(key) == 1
        assert "sha256$" in result.out and "hint:" in result.out and "expires: 20" in result.out


class TestSecret:
    def test_standard_secret_from_the_script(self) -> None:
        """`secret --json` prints a whsec_ secret that signs and verifies."""
        data = apisec("secret", "--json").json()
        assert data["kind"] == "standard" and data["secret"].startswith("whsec_")
        WebhookVerifier(data["secret"]).verify(b"{}", WebhookSigner(data["secret"]).sign(b"{}"))

    @pytest.mark.parametrize(
        ("kind", "prefix"), [("stripe", "whsec_"), ("github", ""), ("hmac-sha256", "")]
    )
    def test_other_schemes(self, kind: str, prefix: str) -> None:
        """Each scheme's secret is accepted by that scheme's signer and verifier."""
        secret = in_process("secret", kind).out.strip()
        assert secret.startswith(prefix)
        WebhookVerifier(secret, kind).verify(b"{}", WebhookSigner(secret, kind).sign(b"{}"))

    def test_ed25519_pair(self, tmp_path: Path) -> None:
        """The Ed25519 pair: the signing key signs, the public key verifies (through the CLI)."""
        pair = in_process("secret", "ed25519", "--json").json()
        assert pair["signing_key"].startswith("whsk_") and pair["public_key"].startswith("whpk_")
        body = write(tmp_path / "body.json", b'{"a":1}')
        signed = in_process(
            "webhook", "sign", "--secret-file", "-", body, stdin=pair["signing_key"]
        )
        assert "v1a," in signed.out
        headers = write(tmp_path / "headers.txt", signed.out)
        check = in_process("webhook", "verify", "--secret-file", "-", "--headers-file", headers,
                           body, stdin=pair["public_key"])  # fmt: skip
        assert check.code == 0 and check.out.strip() == "valid"

    def test_hmac_key_size(self) -> None:
        """`secret hmac --bytes 64` makes a key long enough for HS512."""
        value = in_process("secret", "hmac", "--bytes", "64").out.strip()
        SigningKey.hmac(value, alg="HS512")
        assert len(value) >= 64


def _issue_and_check(alg: str, pem_file: Path, jwks: dict[str, Any], kid: str) -> str:
    """Issue a token with the PEM through TokenService; check it with PyJWT over the JWKS."""
    key = SigningKey.from_pem(pem_file.read_text(), alg=alg)
    assert key.kid == kid
    token = TokenService(key, issuer=ISSUER, audience=AUDIENCE).issue("user_7").access_token
    public = pyjwt.PyJWK(jwks["keys"][0])
    claims = pyjwt.decode(token, public.key, algorithms=[alg], audience=AUDIENCE, issuer=ISSUER)
    assert claims["sub"] == "user_7"
    return token


class TestJwk:
    def test_pem_and_jwks_from_the_script_verify_a_token(self, tmp_path: Path) -> None:
        """`jwk --out` then `jwks`: a TokenService token verifies (PyJWT, and `jwt verify`)."""
        key_file = tmp_path / "signing.pem"
        made = apisec("jwk", "ES256", "--out", key_file, "--json").json()
        assert key_file.stat().st_mode & 0o777 == 0o600
        assert "private_pem" not in made and made["public_jwk"]["kid"] == made["kid"]
        jwks = apisec("jwks", key_file, "--json").json()
        assert jwks["keys"] == [made["public_jwk"]]
        token = _issue_and_check("ES256", key_file, jwks, made["kid"])
        jwks_file = write(tmp_path / "jwks.json", json.dumps(jwks))
        verified = apisec("jwt", "verify", "--key", jwks_file, "--issuer", ISSUER,
                          "--audience", AUDIENCE, "--json", stdin=token)  # fmt: skip
        assert verified.code == 0 and verified.json()["claims"]["sub"] == "user_7"

    @pytest.mark.parametrize("alg", ["EdDSA", "RS256", "PS256"])
    def test_other_algorithms(self, alg: str, tmp_path: Path) -> None:
        """The same round trip for the other asymmetric algorithms (through ``main``)."""
        key_file = tmp_path / "signing.pem"
        made = in_process("jwk", alg, "--json").json()
        key_file.write_text(made["private_pem"])
        jwks = in_process("jwks", key_file, "--alg", alg, "--json").json()
        assert jwks["keys"] == [made["public_jwk"]] and jwks["keys"][0]["alg"] == alg
        _issue_and_check(alg, key_file, jwks, made["kid"])

    def test_hmac_jwk_verifies_through_the_cli(self, tmp_path: Path) -> None:
        """An HS256 JWK from `jwk` signs with TokenService and verifies with `jwt verify`."""
        jwk = in_process("jwk", "HS256").out
        key = SigningKey.from_jwk(jwk)
        token = TokenService(key, issuer=ISSUER, audience=AUDIENCE).issue("svc").access_token
        verified = in_process("jwt", "verify", "--key", write(tmp_path / "k.json", jwk),
                              "--issuer", ISSUER, "--audience", AUDIENCE, stdin=token)  # fmt: skip
        assert verified.code == 0 and verified.out.startswith("valid")
        assert_usage_error(in_process("jwks", tmp_path / "k.json"))  # no public form

    def test_refuses_to_overwrite_a_key_file(self, tmp_path: Path) -> None:
        """--out never replaces an existing file."""
        existing = write(tmp_path / "key.pem", "keep me")
        assert_usage_error(in_process("jwk", "--out", existing))
        assert existing.read_text() == "keep me"


class TestJwt:
    def test_inspect_labels_the_claims_unverified(self) -> None:
        """`jwt inspect` decodes header and claims and says UNVERIFIED, in JSON and text."""
        service = TokenService(SigningKey.generate("ES256", kid="k9"), ISSUER, AUDIENCE)
        token = service.issue("user_9", scope="read").access_token
        data = apisec("jwt", "inspect", "--json", stdin=token).json()
        assert data["verified"] is False and "UNVERIFIED" in data["warning"]
        assert data["header"] == {"alg": "ES256", "typ": "at+jwt", "kid": "k9"}
        assert data["claims"]["sub"] == "user_9" and data["claims"]["scope"] == "read"
        text = in_process("jwt", "inspect", stdin=token)
        assert text.code == 0 and text.out.startswith("UNVERIFIED")
        assert token not in text.output

    def test_verify_refuses_an_expired_token(self, tmp_path: Path) -> None:
        """An expired token exits 1 with the reason; --json says valid false."""
        key = SigningKey.generate("EdDSA", kid="old")
        issued_at = time.time() - 3600
        service = TokenService(key, ISSUER, AUDIENCE, access_ttl=60, clock=lambda: issued_at)
        token = service.issue("user_1").access_token
        jwks = write(tmp_path / "jwks.json", json.dumps(KeyRing(key).jwks()))
        result = apisec("jwt", "verify", "--key", jwks, "--issuer", ISSUER,
                        "--audience", AUDIENCE, "--json", stdin=token)  # fmt: skip
        assert result.code == 1
        assert result.json() == {
            "valid": False,
            "reason": "expired-token",
            "message": "token expired",
        }


class TestWebhook:
    def test_standard_signature_verifies_with_apisec_and_standardwebhooks(
        self, tmp_path: Path
    ) -> None:
        """`webhook sign` headers verify with WebhookVerifier and the standardwebhooks package."""
        secret = generate_secret("standard")
        body = b'{"type":"invoice.paid","amount":100}'
        signed = apisec("webhook", "sign", "--secret-file", "-", "--json",
                        write(tmp_path / "body.json", body), stdin=secret)  # fmt: skip
        headers = signed.json()["headers"]
        WebhookVerifier(secret).verify(body, headers)
        assert standardwebhooks.Webhook(secret).verify(body, headers) == json.loads(body)

    def test_verify_through_the_script_refuses_tampering(self, tmp_path: Path) -> None:
        """`webhook verify` accepts `sign`'s headers and refuses them over another body (exit 1)."""
        secret_file = write(tmp_path / "secret.txt", generate_secret("github") + "\n")
        body = write(tmp_path / "body.json", b'{"n": 1}')
        signed = in_process("webhook", "sign", "--scheme", "github", "--secret-file", secret_file,
                            body)  # fmt: skip
        headers = write(tmp_path / "headers.txt", signed.out)
        ok, tampered = apisec_all(
            [
                (["webhook", "verify", "--scheme", "github", "--secret-file", secret_file,
                  "--headers-file", headers, body], b""),
                (["webhook", "verify", "--scheme", "github", "--secret-file", secret_file,
                  "--headers-file", headers, "--json"], b'{"n": 2}'),
            ]
        )  # fmt: skip
        assert ok.code == 0 and ok.out.strip() == "valid"
        assert tampered.code == 1 and tampered.err.count("\n") == 1
        assert tampered.json()["reason"] == "webhook-invalid-signature"

    @pytest.mark.parametrize("scheme", ["standard", "stripe", "hmac-sha256"])
    def test_other_schemes_round_trip(self, scheme: str, tmp_path: Path) -> None:
        """sign then verify passes for each scheme; another body is refused."""
        secret = generate_secret(scheme)
        body = write(tmp_path / "body.json", b'{"n": 1}')
        signed = in_process("webhook", "sign", "--scheme", scheme, "--secret-file", "-", body,
                            "--timestamp", str(int(time.time())), stdin=secret)  # fmt: skip
        pairs = dict(line.split(": ", 1) for line in signed.out.splitlines())
        WebhookVerifier(secret, scheme).verify(body.read_bytes(), pairs)
        args = ["webhook", "verify", "--scheme", scheme, "--secret-file", "-"]
        headers = [arg for line in signed.out.splitlines() for arg in ("-H", line)]
        assert in_process(*args, *headers, body, stdin=secret).code == 0
        other = write(tmp_path / "other.json", b'{"n": 2}')
        assert in_process(*args, *headers, other, stdin=secret).code == 1


class TestPkce:
    def test_pair_verifies(self) -> None:
        """The printed verifier matches the printed S256 challenge."""
        data = apisec("pkce", "--length", "43", "--json").json()
        assert len(data["verifier"]) == 43 and data["method"] == "S256"
        assert pkce.verify(data["verifier"], data["challenge"])


class TestCheckUrl:
    def test_public_literal_is_safe(self) -> None:
        """A public IP literal is safe and its address is listed (no DNS)."""
        result = apisec("check-url", "https://93.184.216.34/hook", "--json")
        assert result.code == 0
        assert result.json() == {
            "safe": True,
            "scheme": "https",
            "host": "93.184.216.34",
            "port": 443,
            "addresses": ["93.184.216.34"],
        }

    def test_resolve_pins_a_name_without_dns(self) -> None:
        """--resolve HOST=ADDRESS vets the given addresses instead of asking DNS."""
        pinned = ["--resolve", "files.example=93.184.216.34"]
        safe, unsafe = apisec_all(
            [
                (["check-url", "https://files.example/x", *pinned, "--json"], b""),
                (["check-url", "https://files.example/x", *pinned,
                  "--resolve", "files.example=10.0.0.7"], b""),
            ]
        )  # fmt: skip
        assert safe.code == 0 and safe.json()["addresses"] == ["93.184.216.34"]
        assert unsafe.code == 1 and unsafe.out == "" and unsafe.err.count("\n") == 1
        assert "private" in unsafe.err

    @pytest.mark.parametrize(
        ("url", "reason"),
        [
            ("https://127.0.0.1/", "loopback"),
            ("https://0x7f.1/", "loopback"),
            ("https://[::ffff:127.0.0.1]/", "loopback"),
            ("https://169.254.169.254/latest/meta-data/", "metadata"),
            ("http://93.184.216.34/", "scheme"),
        ],
    )
    def test_unsafe_urls_exit_one_with_the_reason(self, url: str, reason: str) -> None:
        """Internal targets in any spelling are refused with their reason."""
        result = in_process("check-url", url, "--json")
        assert result.code == 1 and result.err.count("\n") == 1
        assert result.json()["safe"] is False and result.json()["reason"] == reason


class TestCorsLint:
    def test_findings_exit_one(self, tmp_path: Path) -> None:
        """Risky settings are listed as warnings (exit 1), in JSON and text."""
        policy = {
            "allow_origins": ["https://app.example.com", "http://app.example.com"],
            "max_age": 86400,
        }
        path = write(tmp_path / "cors.json", json.dumps(policy))
        result = apisec("cors", "lint", path, "--json")
        assert result.code == 1
        data = result.json()
        assert data["ok"] is False and data["errors"] == [] and len(data["warnings"]) == 2
        assert in_process("cors", "lint", path).out.count("warning: ") == 2

    def test_construction_errors_and_unknown_settings(self, tmp_path: Path) -> None:
        """A policy that cannot be built is reported, as is a misspelt setting."""
        bad = {"allow_origins": ["*"], "allow_credentials": True}
        result = in_process("cors", "lint", write(tmp_path / "a.json", json.dumps(bad)), "--json")
        assert result.code == 1 and len(result.json()["errors"]) == 1
        typo = {"allow_origins": ["https://a.example"], "allow_origin": ["x"]}
        result = in_process("cors", "lint", write(tmp_path / "b.json", json.dumps(typo)), "--json")
        assert result.json()["errors"] == ["unknown setting 'allow_origin'"]

    @pytest.mark.skipif(sys.version_info < (3, 11), reason="tomllib is Python 3.11+")
    def test_clean_toml_policy(self, tmp_path: Path) -> None:
        """A clean TOML policy passes with exit 0."""
        path = write(
            tmp_path / "cors.toml",
            '[cors]\nallow_origins = ["https://app.example.com"]\nallow_credentials = true\n',
        )
        result = in_process("cors", "lint", path)
        assert result.code == 0 and result.out.strip() == "ok: no findings"
