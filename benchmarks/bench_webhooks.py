"""Webhook verification: apisec vs the `standardwebhooks` package vs the raw `hmac` floor.

Run:  python benchmarks/bench_webhooks.py [--quick] [--json PATH]

All contenders verify the same Standard Webhooks delivery (and, for the
floor comparison, a GitHub-style one) in one process, one after another,
interleaved over several rounds; the median per-call time of each is
reported with its ratio to the others. Bodies of about 640 bytes, 1 KB,
4 KB and 64 KB; the last shows the HMAC's own share. Nothing here is asserted: the
numbers are for humans (and the issue's closing note).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import statistics
import sys
import time
import timeit
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from standardwebhooks.webhooks import Webhook

from apisec.webhooks import WebhookSigner, WebhookVerifier, generate_secret
from benchmarks._results import Results


def make_body(lines: int) -> bytes:
    """A JSON event; 20 lines is ~640 bytes, 150 lines ~4.5 KB (a typical Stripe event)."""
    event = {
        "type": "invoice.paid",
        "timestamp": "2026-11-28T09:00:00Z",
        "data": {
            "id": "in_" + "x" * 24,
            "amount": 4200,
            "currency": "eur",
            "lines": [{"sku": f"sku_{i}", "qty": i} for i in range(lines)],
        },
    }
    return json.dumps(event, separators=(",", ":")).encode()


BODY = make_body(20)


def body_of(size: int) -> bytes:
    """The largest event of ``make_body``'s shape that is at most ``size`` bytes."""
    lines = 0
    while len(make_body(lines + 1)) <= size:
        lines += 1
    return make_body(lines)


def measure(fn: Callable[[], object], *, rounds: int, number: int) -> list[float]:
    """Per-call seconds, one sample per round."""
    fn()  # warm up and prove it does not raise
    return [t / number for t in timeit.repeat(fn, repeat=rounds, number=number)]


def standard_contenders(body: bytes) -> dict[str, Callable[[], object]]:
    secret = generate_secret("standard")
    headers = WebhookSigner(secret).sign(body)
    ours = WebhookVerifier(secret)
    theirs = Webhook(secret)
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signature = headers["webhook-signature"].split(",", 1)[1].encode()
    prefix = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode()

    def floor() -> bool:
        # The least any verifier must do: one HMAC over id.ts.body, base64, compare.
        mac = base64.b64encode(hmac.digest(key, prefix + body, "sha256"))
        return hmac.compare_digest(mac, signature)

    return {
        "apisec": lambda: ours.verify(body, headers),
        "standardwebhooks": lambda: theirs.verify(body, headers, json_parse=False),
        "hmac floor": floor,
    }


def github_contenders(body: bytes) -> dict[str, Callable[[], object]]:
    secret = generate_secret("github")
    headers = WebhookSigner(secret, "github").sign(body)
    ours = WebhookVerifier(secret, "github")
    key = secret.encode()
    expected = headers["X-Hub-Signature-256"]

    def floor() -> bool:
        mac = "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(mac, expected)

    return {"apisec": lambda: ours.verify(body, headers), "hmac floor": floor}


def report(
    title: str, body: bytes, contenders: dict[str, Callable[[], object]], rounds: int, number: int
) -> dict[str, float]:
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    # Interleave rounds so drift on the machine hits every contender alike.
    for _ in range(rounds):
        for name, fn in contenders.items():
            samples[name] += measure(fn, rounds=1, number=number)
    medians = {name: statistics.median(s) for name, s in samples.items()}
    base = medians["apisec"]
    print(f"\n{title}  (body {len(body)} bytes, {rounds} rounds x {number} calls)")
    for name, value in medians.items():
        print(f"  {name:<18} {value * 1e6:8.2f} us/call   {value / base:5.2f}x apisec")
    return medians


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="fewer rounds, for a smoke run")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    args = parser.parse_args()
    rounds, number = (3, 2_000) if args.quick else (15, 20_000)
    results = Results("webhooks", ("standardwebhooks",), quick=args.quick)
    print(f"python {sys.version.split()[0]}, {time.strftime('%Y-%m-%d %H:%M:%S')}")
    sizes: list[int] = []
    to_peer: list[float] = []
    to_floor: list[float] = []
    # Up to 1 KB the target is at most 0.6x standardwebhooks; 64 KB shows where the
    # HMAC itself dominates (reported, no target).
    for body in (make_body(20), body_of(1024), make_body(150), body_of(64 * 1024)):
        title = "Standard Webhooks v1"
        big = len(body) > 16 * 1024
        medians = report(
            title,
            body,
            standard_contenders(body),
            rounds,
            max(number // 20, 100) if big else number,
        )
        sizes.append(len(body))
        to_peer.append(medians["apisec"] / medians["standardwebhooks"])
        to_floor.append(medians["apisec"] / medians["hmac floor"])
        print(f"  apisec / standardwebhooks = {to_peer[-1]:.2f}x")
        results.comparison(
            f"standard-{len(body)}",
            f"{title} verification, {len(body)}-byte body",
            medians,
            baseline="apisec",
            ours=["apisec"],
            headline=[("apisec", "standardwebhooks"), ("apisec", "hmac floor")],
        )
        if big:
            continue
        title = "GitHub X-Hub-Signature-256"
        medians = report(title, body, github_contenders(body), rounds, number)
        results.comparison(
            f"github-{len(body)}",
            f"{title} verification, {len(body)}-byte body",
            medians,
            baseline="apisec",
            ours=["apisec"],
            headline=[("apisec", "hmac floor")],
        )
    results.series(
        "standard-by-size",
        "Standard Webhooks verification by body size: apisec's time over the others'",
        x_label="body bytes",
        y_label="ratio",
        x=sizes,
        lines={"apisec / standardwebhooks": to_peer, "apisec / hmac floor": to_floor},
        log_x=True,
    )
    results.write(args.json)


if __name__ == "__main__":
    main()
