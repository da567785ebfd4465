"""The ``apisec`` command: keys, secrets, tokens, webhooks, PKCE, SSRF and CORS checks, the demo.

Every subcommand has ``--help`` with an example and ``--json`` for machine
output. Secrets are read from a file or stdin (``-``), never from the
command line, and are never printed back: the command prints only secrets it
has just created. Exit codes: 0 success; 1 a check said no (a token or
signature that does not verify, an unsafe URL, CORS lint findings); 2 bad
input, with one line on stderr and never a traceback; 130 interrupted.

>>> main(["pkce", "--json"]) # doctest: +ELLIPSIS
{"challenge": "...", "method": "S256", "verifier": "..."}
0
"""

from __future__ import annotations

import argparse
import getpass
import importlib
import json
import logging
import os
import secrets
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, NoReturn

import attrs

from apisec import __version__
from apisec.errors import ApiSecError, ConfigurationError

# Each command imports what it uses when it runs: `apisec --help` and the light
# commands do not pay for loading every module (tokens, cryptography, webhooks...).

__all__ = ["build_parser", "main"]

EXIT_OK, EXIT_REFUSED, EXIT_USAGE, EXIT_INTERNAL, EXIT_INTERRUPTED = 0, 1, 2, 70, 130
MAX_SECRET_BYTES = 64 * 1024
MAX_BODY_BYTES = 16 * 1024 * 1024
_WEBHOOK_SCHEMES = ("standard", "stripe", "github", "hmac-sha256")
_UNVERIFIED = "UNVERIFIED: the signature was not checked; do not trust these claims"


class _UsageError(Exception):
    """Bad input: reported as one line on stderr, exit code 2."""


class _Refused(Exception):
    """A check said no: reported as one line on stderr, exit code 1."""


class _Parser(argparse.ArgumentParser):
    """argparse, but an error is one line (raised, so ``main`` reports it)."""

    def error(self, message: str) -> NoReturn:
        raise _UsageError(f"{message} (see {self.prog} --help)")


class _Inputs:
    """Reads files and stdin with size caps; remembers secrets to keep them out of messages."""

    def __init__(self) -> None:
        self.stdin_used = False
        self.secrets: list[str] = []

    def read(self, path: str, what: str, limit: int, *, secret: bool = False) -> bytes:
        if path == "-":
            if self.stdin_used:
                raise _UsageError("only one input can come from stdin")
            self.stdin_used = True
            if secret and sys.stdin.isatty():
                return getpass.getpass(f"{what}: ", stream=sys.stderr).encode()
            data = sys.stdin.buffer.read(limit + 1)
        else:
            try:
                with open(path, "rb") as handle:
                    data = handle.read(limit + 1)
            except OSError as exc:
                raise _UsageError(f"cannot read the {what} from {path}: {exc.strerror}") from None
        if len(data) > limit:
            raise _UsageError(f"the {what} is larger than {limit} bytes")
        return data

    def text(self, path: str, what: str, *, secret: bool = False) -> str:
        """A small text input (a secret, a token, a key), surrounding whitespace removed."""
        data = self.read(path, what, MAX_SECRET_BYTES, secret=secret)
        try:
            value = data.decode("utf-8").strip()
        except UnicodeDecodeError:
            raise _UsageError(f"the {what} is not UTF-8 text") from None
        if secret:
            self.secrets.extend([value, *(line.strip() for line in value.splitlines())])
        if not value:
            raise _UsageError(f"the {what} is empty")
        return value

    def scrub(self, message: str) -> str:
        """``message`` without any secret this run has read (belt and braces)."""
        for value in sorted(self.secrets, key=len, reverse=True):
            if len(value) >= 4:
                message = message.replace(value, "[redacted]")
        return message


def _print(args: argparse.Namespace, data: Mapping[str, Any], text: str) -> None:
    if args.json:
        print(json.dumps(data, sort_keys=True))
    else:
        print(text)


def _pretty(obj: Any) -> str:
    return json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False)


# --- keygen, secret, pkce ----------------------------------------------------------------


def _cmd_keygen(args: argparse.Namespace) -> int:
    from apisec.apikeys import ApiKeyService

    pepper = None
    if args.pepper_file is not None:
        pepper = args.inputs.read(args.pepper_file, "pepper", MAX_SECRET_BYTES, secret=True).strip()
        args.inputs.secrets.append(pepper.decode("latin-1"))
    service = ApiKeyService(default_prefix=args.prefix, pepper=pepper)
    new = service.create(args.owner, scopes=args.scope, expires_in=args.expires_in)
    record = new.record
    fields = {
        "id": record.id,
        "prefix": record.prefix,
        "hint": record.hint,
        "key_hash": record.key_hash,
        "owner": record.owner,
        "scopes": list(record.scopes),
        "created_at": record.created_at,
        "expires_at": record.expires_at,
        "revoked_at": record.revoked_at,
        "last_used_at": record.last_used_at,
        "metadata": dict(record.metadata),
    }
    text = "\n".join(
        [
            "API key (shown once: hand it to its owner now, it is not stored anywhere):",
            f"  {new.plaintext}",
            "",
            "Store this record (it holds the hash, never the key):",
            f"  id:      {record.id}",
            f"  hash:    {record.key_hash}",
            f"  hint:    {record.hint}",
            f"  owner:   {record.owner}",
            f"  scopes:  {' '.join(record.scopes) or '-'}",
            f"  expires: {_when(record.expires_at) if record.expires_at else 'never'}",
        ]
    )
    _print(args, {"key": new.plaintext, "hash": record.key_hash, "record": fields}, text)
    return EXIT_OK


def _cmd_secret(args: argparse.Namespace) -> int:
    from apisec.webhooks import generate_keypair, generate_secret

    kind = args.kind
    if kind == "ed25519":
        signing, public = generate_keypair()
        data = {"kind": kind, "signing_key": signing, "public_key": public}
        text = f"signing key (sender keeps it): {signing}\npublic key (receivers verify): {public}"
    elif kind == "hmac":
        if args.bytes < 32:
            raise _UsageError("an HMAC key needs at least 32 random bytes")
        value = secrets.token_urlsafe(args.bytes)
        data = {"kind": kind, "secret": value}
        text = value
    else:
        value = generate_secret(kind)
        data = {"kind": kind, "secret": value}
        text = value
    _print(args, data, text)
    return EXIT_OK


def _cmd_pkce(args: argparse.Namespace) -> int:
    from apisec.pkce import challenge, create_verifier

    verifier = create_verifier(args.length)
    data = {"verifier": verifier, "challenge": challenge(verifier), "method": "S256"}
    text = f"code_verifier:         {verifier}\ncode_challenge:        {data['challenge']}\n"
    _print(args, data, text + "code_challenge_method: S256")
    return EXIT_OK


# --- signing keys and tokens -------------------------------------------------------------


def _cmd_jwk(args: argparse.Namespace) -> int:
    from apisec._cli_keys import generate_key

    form = args.format or ("jwk" if args.alg.startswith("HS") else "pem")
    key = generate_key(args.alg, args.kid, form)
    if args.out is not None:
        _write_private(Path(args.out), key.private_text)
        data: dict[str, Any] = {"alg": key.alg, "kid": key.kid, "private_key_file": args.out}
        data["public_jwk"] = key.public_jwk
        text = f"wrote the private key to {args.out} (mode 0600)\nkid: {key.kid}"
        if key.public_jwk is not None:
            text += f"\npublic JWK:\n{_pretty(key.public_jwk)}"
        _print(args, data, text)
        return EXIT_OK
    data = {"alg": key.alg, "kid": key.kid, "public_jwk": key.public_jwk}
    data["private_pem" if form == "pem" else "private_jwk"] = key.private_value
    if not args.json:
        print(f"{args.prog}: {key.alg} key, kid {key.kid}", file=sys.stderr)
    _print(args, data, key.private_text.rstrip("\n"))
    return EXIT_OK


def _write_private(path: Path, text: str) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise _UsageError(f"{path} exists; refusing to overwrite a key") from None
    except OSError as exc:
        raise _UsageError(f"cannot write {path}: {exc.strerror}") from None
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(text)


def _load_keys(
    inputs: _Inputs, paths: Sequence[str], alg: str | None, kid: str | None
) -> list[Any]:
    from apisec._cli_keys import parse_keys

    if kid is not None and len(paths) != 1:
        raise _UsageError("--kid names the key of a single key file")
    keys = []
    for path in paths:
        keys.extend(parse_keys(inputs.text(path, "key", secret=True), alg=alg, kid=kid))
    seen: set[str] = set()
    for key in keys:
        if key.kid in seen:
            raise _UsageError(f"two keys share the kid {key.kid!r}")
        seen.add(key.kid)
    return keys


def _cmd_jwks(args: argparse.Namespace) -> int:
    keys = _load_keys(args.inputs, args.files, args.alg, args.kid)
    published = []
    for key in keys:
        jwk = key.public_jwk()
        if jwk is None:
            raise _UsageError(f"key {key.kid!r} is an HMAC secret: it has no public form")
        published.append(jwk)
    jwks = {"keys": published}
    _print(args, jwks, _pretty(jwks))
    return EXIT_OK


def _cmd_jwt_inspect(args: argparse.Namespace) -> int:
    from apisec.tokens import InvalidToken, _jws

    token = args.inputs.text(args.token, "token", secret=True)
    try:
        compact = _jws.parse(token, 64 * 1024)
        claims = _jws.parse_json_object(compact.payload, "claims")
    except InvalidToken as exc:
        raise _UsageError(f"not a JWT: {exc.message}") from None
    data = {"verified": False, "warning": _UNVERIFIED, "header": compact.header, "claims": claims}
    lines = [_UNVERIFIED, f"header: {_pretty(compact.header)}", f"claims: {_pretty(claims)}"]
    for name in ("iat", "nbf", "exp"):
        if isinstance(claims.get(name), (int, float)) and not isinstance(claims[name], bool):
            lines.append(f"{name}: {_when(claims[name])}")
    _print(args, data, "\n".join(lines))
    return EXIT_OK


def _cmd_jwt_verify(args: argparse.Namespace) -> int:
    from apisec.tokens import InvalidToken, KeyRing, SigningKey, TokenService

    if not args.key and args.hmac_secret_file is None:
        raise _UsageError("give --key (PEM, JWK or JWKS file) or --hmac-secret-file")
    keys = _load_keys(args.inputs, args.key, args.alg, args.kid if args.key else None)
    if args.hmac_secret_file is not None:
        secret = args.inputs.text(args.hmac_secret_file, "HMAC secret", secret=True)
        keys.append(SigningKey.hmac(secret, alg=args.alg or "HS256", kid=args.kid))
    token = args.inputs.text(args.token, "token", secret=True)
    signers = [key for key in keys if key.can_sign]
    if signers:
        ring = KeyRing(signers[0], *(key for key in keys if key is not signers[0]))
    else:
        # A ring needs a key that signs; this throwaway one signs nothing and no token names it.
        throwaway = SigningKey.generate("EdDSA", kid="apisec-cli-" + secrets.token_hex(16))
        ring = KeyRing(throwaway, *keys)
    service = TokenService(ring, issuer=args.issuer, audience=args.audience, leeway=args.leeway)
    try:
        claims = dict(service.verify(token))
    except InvalidToken as exc:
        if args.json:
            print(json.dumps({"valid": False, "reason": exc.slug, "message": exc.message}))
        raise _Refused(f"invalid token: {exc.message}") from None
    _print(args, {"valid": True, "claims": claims}, f"valid\nclaims: {_pretty(claims)}")
    return EXIT_OK


def _when(timestamp: float) -> str:
    try:
        moment = datetime.fromtimestamp(timestamp, timezone.utc)
    except (OverflowError, OSError, ValueError):
        return "out of range"
    delta = int(timestamp - datetime.now(timezone.utc).timestamp())
    relative = f"in {delta} s" if delta >= 0 else f"{-delta} s ago"
    return f"{moment.isoformat()} ({relative})"


# --- webhooks ----------------------------------------------------------------------------


def _webhook_secrets(inputs: _Inputs, path: str) -> list[str]:
    text = inputs.text(path, "webhook secret", secret=True)
    return [line.strip() for line in text.splitlines() if line.strip()]


def _cmd_webhook_sign(args: argparse.Namespace) -> int:
    from apisec.webhooks import WebhookSigner

    secrets_ = _webhook_secrets(args.inputs, args.secret_file)
    body = args.inputs.read(args.body, "body", MAX_BODY_BYTES)
    signer = WebhookSigner(secrets_, args.scheme)
    headers = signer.sign(body, msg_id=args.id, timestamp=args.timestamp)
    text = "\n".join(f"{name}: {value}" for name, value in headers.items())
    _print(args, {"headers": headers}, text)
    return EXIT_OK


def _parse_header_lines(lines: Iterable[str]) -> list[tuple[str, str]]:
    pairs = []
    for line in lines:
        if not line.strip():
            continue
        name, sep, value = line.partition(":")
        if not sep or not name.strip() or name != name.strip():
            raise _UsageError("headers are 'Name: value' lines")
        pairs.append((name, value.strip()))
    return pairs


def _cmd_webhook_verify(args: argparse.Namespace) -> int:
    from apisec.webhooks import WebhookError, WebhookVerifier

    secrets_ = _webhook_secrets(args.inputs, args.secret_file)
    lines = list(args.header)
    if args.headers_file is not None:
        raw = args.inputs.read(args.headers_file, "headers", MAX_SECRET_BYTES)
        lines.extend(raw.decode("latin-1").splitlines())
    headers = _parse_header_lines(lines)
    if not headers:
        raise _UsageError("give the delivery's headers with -H or --headers-file")
    body = args.inputs.read(args.body, "body", MAX_BODY_BYTES)
    verifier = WebhookVerifier(
        secrets_, args.scheme, tolerance=args.tolerance, max_body_bytes=MAX_BODY_BYTES
    )
    try:
        verifier.verify(body, headers)
    except WebhookError as exc:
        if args.json:
            print(json.dumps({"valid": False, "reason": exc.slug, "message": exc.message}))
        raise _Refused(f"refused: {exc.message}") from None
    _print(args, {"valid": True}, "valid")
    return EXIT_OK


# --- check-url, cors lint ----------------------------------------------------------------


def _resolver(pinned: Mapping[str, list[str]]) -> Callable[[str, int], list[str]] | None:
    if not pinned:
        return None

    from apisec.ssrf import system_resolver

    def resolve(host: str, port: int) -> list[str]:
        found = pinned.get(host.lower().rstrip("."))
        return list(found) if found is not None else system_resolver(host, port)

    return resolve


def _cmd_check_url(args: argparse.Namespace) -> int:
    from apisec.ssrf import UnsafeURL, check_url

    pinned: dict[str, list[str]] = {}
    for item in args.resolve:
        host, sep, address = item.partition("=")
        if not sep or not host or not address:
            raise _UsageError("--resolve takes HOST=ADDRESS")
        pinned.setdefault(host.lower().rstrip("."), []).append(address.strip("[]"))
    try:
        safe = check_url(
            args.url,
            allowed_schemes=args.scheme or ("https",),
            allow_hosts=args.allow_host or None,
            resolve=not args.no_resolve,
            resolver=_resolver(pinned),
            allowed_ports=args.port or None,
        )
    except UnsafeURL as exc:
        if args.json:
            print(json.dumps({"safe": False, "reason": exc.reason, "message": exc.message}))
        raise _Refused(f"unsafe ({exc.reason}): {exc.message}") from None
    addresses = [str(address) for address in safe.addresses]
    data = {
        "safe": True,
        "scheme": safe.scheme,
        "host": safe.host,
        "port": safe.port,
        "addresses": addresses,
    }
    shown = ", ".join(addresses) if addresses else "not resolved (--no-resolve)"
    _print(args, data, f"safe: {safe.scheme}://{safe.host}:{safe.port} -> {shown}")
    return EXIT_OK


def _load_policy(inputs: _Inputs, path: str) -> Any:
    raw = inputs.read(path, "policy", MAX_SECRET_BYTES)
    if path.endswith(".toml"):
        try:
            tomllib: Any = importlib.import_module("tomllib")  # Python 3.11+
        except ImportError:
            raise _UsageError("TOML policies need Python 3.11 or later; use JSON") from None
        try:
            return tomllib.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise _UsageError(f"the policy is not valid TOML: {exc}") from None
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, ValueError) as exc:
        raise _UsageError(f"the policy is not valid JSON: {exc}") from None


def _cmd_cors_lint(args: argparse.Namespace) -> int:
    from apisec.cors import CorsPolicy

    data = _load_policy(args.inputs, args.policy)
    if isinstance(data, dict) and isinstance(data.get("cors"), dict):
        data = data["cors"]
    if not isinstance(data, dict):
        raise _UsageError("the policy must be an object of CorsPolicy settings")
    known = {field.name for field in attrs.fields(CorsPolicy) if field.init}
    errors = [f"unknown setting {name!r}" for name in sorted(set(data) - known)]
    warnings: list[str] = []
    if "allow_origins" not in data:
        errors.append("allow_origins is required")
    if not errors:
        try:
            policy = CorsPolicy(**data)
        except ConfigurationError as exc:
            errors.append(exc.message)
        except (TypeError, ValueError) as exc:
            errors.append(f"invalid value: {exc}")
        else:
            warnings = policy.lint()
    findings = [f"error: {e}" for e in errors] + [f"warning: {w}" for w in warnings]
    result = {"ok": not findings, "errors": errors, "warnings": warnings}
    _print(args, result, "\n".join(findings) if findings else "ok: no findings")
    return EXIT_REFUSED if findings else EXIT_OK


# --- demo --------------------------------------------------------------------------------


def _cmd_demo(args: argparse.Namespace) -> int:
    from apisec.demo import DemoConfig, run

    config = DemoConfig(
        host=args.host, port=args.port, web_port=args.web_port, redis_url=args.redis
    )
    return run(config, json_output=args.json)


# --- the parser --------------------------------------------------------------------------


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 <= value < 10**10:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}")
    return value


def _command(
    subparsers: Any,
    name: str,
    handler: Callable[[argparse.Namespace], int],
    summary: str,
    example: str,
) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        name,
        help=summary,
        description=summary,
        epilog="example:\n" + "\n".join(f"  {line}" for line in example.splitlines()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--json", action="store_true", help="machine-readable JSON output")
    parser.set_defaults(handler=handler, prog=parser.prog)
    return parser


def build_parser() -> argparse.ArgumentParser:
    """The ``apisec`` argument parser."""
    parser = _Parser(
        prog="apisec",
        description=__doc__.split("\n\n>>>")[0].replace("``", "") if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"apisec {__version__}")
    parser.set_defaults(handler=None, prog="apisec")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")
    _add_secret_commands(sub)
    _add_token_commands(sub)
    _add_webhook_commands(sub)
    _add_check_commands(sub)
    _add_demo_command(sub)
    return parser


def _group(subparsers: Any, name: str, summary: str, examples: str) -> Any:
    parser = subparsers.add_parser(
        name,
        help=summary,
        description=summary,
        epilog="examples:\n" + "\n".join(f"  {line}" for line in examples.splitlines()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.set_defaults(handler=None, prog=parser.prog)
    return parser.add_subparsers(title="commands", metavar="COMMAND")


def _add_secret_commands(sub: Any) -> None:
    p = _command(
        sub,
        "keygen",
        _cmd_keygen,
        "a new API key: the plaintext once, plus the record to store (hash, hint, id)",
        "apisec keygen --prefix sk_test --owner acct_42 --scope orders:read --json",
    )
    p.add_argument("--prefix", default="sk_live", help="key prefix (default sk_live)")
    p.add_argument("--owner", default="unassigned", help="who the key belongs to")
    p.add_argument("--scope", action="append", default=[], help="a scope (repeat for more)")
    p.add_argument("--expires-in", type=_seconds, help="lifetime in seconds (default: none)")
    p.add_argument("--pepper-file", help="file (or - for stdin) holding the hashing pepper")

    p = _command(
        sub,
        "secret",
        _cmd_secret,
        "a webhook secret per scheme, an Ed25519 webhook key pair, or an HMAC key",
        "apisec secret standard      # whsec_... for Standard Webhooks\n"
        "apisec secret ed25519       # whsk_... signing key and whpk_... public key\n"
        "apisec secret hmac --bytes 64   # an HS512 key",
    )
    p.add_argument(
        "kind",
        nargs="?",
        default="standard",
        choices=[*_WEBHOOK_SCHEMES, "ed25519", "hmac"],
        help="what to make (default standard)",
    )
    p.add_argument("--bytes", type=int, default=32, help="random bytes of an hmac key")

    p = _command(
        sub,
        "pkce",
        _cmd_pkce,
        "a PKCE (RFC 7636) code verifier and its S256 challenge",
        "apisec pkce --json",
    )
    p.add_argument("--length", type=int, default=64, help="verifier length, 43-128")


def _add_token_commands(sub: Any) -> None:
    p = _command(
        sub,
        "jwk",
        _cmd_jwk,
        "a new JWT signing key, as PEM or JWK",
        "apisec jwk ES256 --out signing.pem     # prints the public JWK\n"
        "apisec jwk EdDSA --format jwk --kid 2026-11",
    )
    p.add_argument(
        "alg",
        nargs="?",
        default="EdDSA",
        choices=["EdDSA", "ES256", "RS256", "PS256", "HS256", "HS384", "HS512"],
        help="algorithm (default EdDSA)",
    )
    p.add_argument("--kid", help="key id (default: the RFC 7638 thumbprint)")
    p.add_argument("--format", choices=["pem", "jwk"], help="pem (default) or jwk (HS*: jwk)")
    p.add_argument("--out", help="write the private key to this new file (mode 0600)")

    p = _command(
        sub,
        "jwks",
        _cmd_jwks,
        "the public JWK Set of the keys given (PEM, JWK or JWKS files)",
        "apisec jwks signing.pem previous.pem > jwks.json",
    )
    p.add_argument("files", nargs="+", metavar="FILE", help="key files (- for stdin)")
    p.add_argument("--alg", help="algorithm of PEM keys (RSA: RS256 unless PS256)")
    p.add_argument("--kid", help="key id of a single PEM key (default: its thumbprint)")

    jwt_sub = _group(
        sub,
        "jwt",
        "inspect (unverified) or verify a JWT",
        "apisec jwt inspect < token.txt\n"
        "apisec jwt verify --key jwks.json --issuer ISS --audience AUD < token.txt",
    )
    p = _command(
        jwt_sub,
        "inspect",
        _cmd_jwt_inspect,
        "decode a JWT's header and claims WITHOUT verifying it (output says UNVERIFIED)",
        "apisec jwt inspect < token.txt      # or: apisec jwt inspect token.txt",
    )
    p.add_argument("token", nargs="?", default="-", help="file holding the token (default stdin)")
    p = _command(
        jwt_sub,
        "verify",
        _cmd_jwt_verify,
        "verify an access token (at+jwt) with a key or JWKS, an issuer and an audience",
        "apisec jwt verify --key jwks.json --issuer https://auth.example.com \\\n"
        "    --audience https://api.example.com < token.txt",
    )
    p.add_argument("token", nargs="?", default="-", help="file holding the token (default stdin)")
    p.add_argument("--key", action="append", default=[], help="PEM, JWK or JWKS file (repeat)")
    p.add_argument("--hmac-secret-file", help="file holding an HMAC secret")
    p.add_argument("--alg", help="algorithm of PEM or HMAC keys")
    p.add_argument("--kid", help="key id of a single PEM or HMAC key")
    p.add_argument("--issuer", required=True, help="the exact iss to require")
    p.add_argument("--audience", required=True, action="append", help="an accepted aud")
    p.add_argument("--leeway", type=_seconds, default=0, help="clock skew allowed (s, max 300)")


def _add_webhook_commands(sub: Any) -> None:
    hook_sub = _group(
        sub,
        "webhook",
        "sign or verify a webhook delivery (standard, stripe, github, hmac-sha256)",
        "apisec webhook sign --secret-file whsec.txt body.json > headers.txt\n"
        "apisec webhook verify --secret-file whsec.txt --headers-file headers.txt body.json",
    )
    p = _command(
        hook_sub,
        "sign",
        _cmd_webhook_sign,
        "the signature headers of a body, as 'Name: value' lines (curl -H @file reads them)",
        "apisec webhook sign --secret-file whsec.txt body.json > headers.txt\n"
        "curl -H @headers.txt --data-binary @body.json http://127.0.0.1:8000/webhooks/demo",
    )
    p.add_argument("body", nargs="?", default="-", help="file holding the raw body (- for stdin)")
    p.add_argument("--secret-file", required=True, help="secret(s), one per line (- for stdin)")
    p.add_argument("--scheme", choices=_WEBHOOK_SCHEMES, default="standard")
    p.add_argument("--id", help="message id (standard: random msg_... by default)")
    p.add_argument("--timestamp", type=int, help="Unix time to sign (default now)")
    p = _command(
        hook_sub,
        "verify",
        _cmd_webhook_verify,
        "verify a delivery: its raw body and its headers",
        "apisec webhook verify --secret-file whsec.txt --headers-file headers.txt body.json",
    )
    p.add_argument("body", nargs="?", default="-", help="file holding the raw body (- for stdin)")
    p.add_argument("--secret-file", required=True, help="secret(s), one per line (- for stdin)")
    p.add_argument("--scheme", choices=_WEBHOOK_SCHEMES, default="standard")
    p.add_argument("-H", "--header", action="append", default=[], help="'Name: value' (repeat)")
    p.add_argument("--headers-file", help="file of 'Name: value' lines")
    p.add_argument("--tolerance", type=_seconds, default=300, help="timestamp tolerance (s)")


def _add_check_commands(sub: Any) -> None:
    p = _command(
        sub,
        "check-url",
        _cmd_check_url,
        "the SSRF verdict for a URL, with the addresses it resolved to",
        "apisec check-url https://example.com/hook\n"
        "apisec check-url https://files.example.com/x --resolve files.example.com=10.0.0.7",
    )
    p.add_argument("url")
    p.add_argument("--scheme", action="append", help="allowed scheme (default https; repeat)")
    p.add_argument("--allow-host", action="append", help="only these hosts (*.example.com too)")
    p.add_argument("--port", type=_port, action="append", help="only these ports (repeat)")
    p.add_argument("--resolve", action="append", default=[], help="HOST=ADDRESS instead of DNS")
    p.add_argument("--no-resolve", action="store_true", help="vet the URL without resolving")

    cors_sub = _group(sub, "cors", "check a CORS policy", "apisec cors lint cors.json")
    p = _command(
        cors_sub,
        "lint",
        _cmd_cors_lint,
        "construction errors and risky settings of a CorsPolicy in a JSON (or TOML) file",
        'echo \'{"allow_origins": ["https://app.example.com"], "max_age": 86400}\' > cors.json\n'
        "apisec cors lint cors.json",
    )
    p.add_argument("policy", help="a .json or .toml file of CorsPolicy settings (- for stdin)")


def _add_demo_command(sub: Any) -> None:
    p = _command(
        sub,
        "demo",
        _cmd_demo,
        "run a demo API protected by apisec, and a page (another origin) that calls it",
        "apisec demo                        # http://127.0.0.1:8000 and http://127.0.0.1:8001\n"
        "apisec demo --redis redis://127.0.0.1:6379/0",
    )
    p.add_argument("--host", default="127.0.0.1", help="interface to listen on (127.0.0.1)")
    p.add_argument("--port", type=_port, default=8000, help="API port (8000; 0 picks one)")
    p.add_argument("--web-port", type=_port, default=8001, help="page port (8001; 0 picks one)")
    p.add_argument("--redis", metavar="URL", help="keep state in Redis (redis://host:port/db)")


def _one_line(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= 400 else line[:397] + "..."


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit code (``python -m apisec`` exits with it)."""
    parser = build_parser()
    prog = "apisec"
    inputs = _Inputs()
    library = logging.getLogger("apisec")
    if not library.handlers:
        # The command reports its own verdicts; audit events are for applications to route.
        library.addHandler(logging.NullHandler())
    try:
        args = parser.parse_args(argv)
        prog = args.prog
        if args.handler is None:
            raise _UsageError(f"choose a command (see {prog} --help)")
        args.inputs = inputs
        code: int = args.handler(args)
    except _UsageError as exc:
        code, message = EXIT_USAGE, f"error: {exc}"
    except _Refused as exc:
        code, message = EXIT_REFUSED, str(exc)
    except ApiSecError as exc:
        code, message = EXIT_USAGE, f"error: {exc.message}"
    except KeyboardInterrupt:
        code, message = EXIT_INTERRUPTED, "interrupted"
    except BrokenPipeError:
        # The reader went away (apisec jwks | head): nothing left to say to it.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_REFUSED
    except Exception as exc:  # never a traceback: its text might carry input
        code, message = EXIT_INTERNAL, f"internal error ({type(exc).__name__})"
    else:
        return code
    print(f"{prog}: {_one_line(inputs.scrub(message))}", file=sys.stderr)
    return code
