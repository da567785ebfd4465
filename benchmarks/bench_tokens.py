"""Access-token verification: apisec `TokenService.verify` vs bare PyJWT vs joserfc.

Run:  python benchmarks/bench_tokens.py [--quick] [--json PATH]

Every contender checks the same things on the same token: signature with
the pinned algorithm, `typ` (at+jwt), exact `iss`, `aud`, `exp`, `iat`,
and the presence of `sub` and `jti`. Rounds interleave the contenders; the
median per call is reported, with ratios to PyJWT (lower is faster).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import jwt
from joserfc import jwt as jose_jwt
from joserfc.jwk import OctKey
from joserfc.jwt import JWTClaimsRegistry

from apisec.tokens import SigningKey, TokenService
from benchmarks._results import Results

ISS, AUD = "https://auth.example.com", "https://api.example.com"
REQUIRED = ["exp", "iat", "sub", "jti", "iss", "aud"]


def pyjwt_verifier(key: Any, alg: str) -> Callable[[str], object]:
    def verify(token: str) -> object:
        decoded = jwt.decode_complete(
            token, key, algorithms=[alg], audience=AUD, issuer=ISS, options={"require": REQUIRED}
        )
        if decoded["header"].get("typ") != "at+jwt":
            raise ValueError("typ")
        return decoded["payload"]

    return verify


def joserfc_verifier(secret: bytes) -> Callable[[str], object]:
    key = OctKey.import_key(secret)
    registry = JWTClaimsRegistry(
        iss={"essential": True, "value": ISS},
        aud={"essential": True, "value": AUD},
        sub={"essential": True},
        jti={"essential": True},
        exp={"essential": True},
        iat={"essential": True},
    )

    def verify(token: str) -> object:
        decoded = jose_jwt.decode(token, key, algorithms=["HS256"])
        if decoded.header.get("typ") != "at+jwt":
            raise ValueError("typ")
        registry.validate(decoded.claims)
        return decoded.claims

    return verify


def bench(fn: Callable[[], object], number: int) -> float:
    fn()
    start = time.perf_counter()
    for _ in range(number):
        fn()
    return (time.perf_counter() - start) / number


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    args = parser.parse_args()
    rounds, number = (3, 1_000) if args.quick else (11, 10_000)
    results = Results("tokens", ("pyjwt", "joserfc", "cryptography"), quick=args.quick)
    print(
        f"python {sys.version.split()[0]}, pyjwt {jwt.__version__}, "
        f"{time.strftime('%Y-%m-%d %H:%M:%S')}, {rounds} rounds"
    )

    for alg in ("HS256", "ES256", "EdDSA"):
        secret = b"b" * 32
        key = (
            SigningKey.hmac(secret, kid="k1")
            if alg == "HS256"
            else SigningKey.generate(alg, kid="k1")
        )
        service = TokenService(key, issuer=ISS, audience=AUD)
        token = service.issue("user_42", scope="read write").access_token
        verify_key = secret if alg == "HS256" else jwt.PyJWK(key.public_jwk() or {}).key
        pyjwt_verify = pyjwt_verifier(verify_key, alg)
        contenders: dict[str, Callable[[], object]] = {
            "apisec verify": partial(service.verify, token),
            "PyJWT decode": partial(pyjwt_verify, token),
        }
        if alg == "HS256":
            joserfc = joserfc_verifier(secret)
            contenders["joserfc decode"] = partial(joserfc, token)
        n = number if alg == "HS256" else number // 2
        samples: dict[str, list[float]] = {name: [] for name in contenders}
        for _ in range(rounds):
            for name, fn in contenders.items():
                samples[name].append(bench(fn, n))
        medians = {name: statistics.median(s) for name, s in samples.items()}
        base = medians["PyJWT decode"]
        title = f"{alg} ({len(token)}-byte token)"
        print(f"\n{title}")
        for name, value in medians.items():
            print(f"  {name:<16} {value * 1e6:8.2f} us   {value / base:5.2f}x PyJWT")
        results.comparison(
            f"verify-{alg.lower()}",
            f"Access-token verification, {title}",
            medians,
            baseline="PyJWT decode",
            ours=["apisec verify"],
            headline=[("apisec verify", peer) for peer in medians if peer != "apisec verify"],
        )
    results.write(args.json)


if __name__ == "__main__":
    main()
