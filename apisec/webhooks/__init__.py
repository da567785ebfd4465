"""Webhook signatures: sign and verify Standard Webhooks, Stripe, GitHub and plain HMAC.

Always verify the raw body bytes exactly as they arrived. A body parsed as
JSON and serialized again differs in whitespace, key order or number
formatting, and its signature no longer matches::

    >>> from apisec.webhooks import WebhookSigner, WebhookVerifier, generate_secret
    >>> secret = generate_secret("standard")
    >>> body = b'{"type": "invoice.paid", "amount": 100}'
    >>> headers = WebhookSigner(secret).sign(body)
    >>> WebhookVerifier(secret).verify(body, headers)  # returns None: genuine

Schemes:

* ``"standard"`` — Standard Webhooks 1.0 (``webhook-id``,
  ``webhook-timestamp``, ``webhook-signature: v1,<base64>``), HMAC with
  ``whsec_`` secrets or Ed25519 (``v1a``) with ``whsk_``/``whpk_`` keys;
* ``"stripe"`` — ``Stripe-Signature: t=<ts>,v1=<hex>``;
* ``"github"`` — ``X-Hub-Signature-256: sha256=<hex>`` (no timestamp);
* ``"hmac-sha256"`` — ``X-Webhook-Timestamp`` and ``X-Webhook-Signature: v1=<hex>``
  over ``"{timestamp}.{body}"``.

In asyncio code use :class:`AsyncWebhookVerifier`, whose ``verify`` is
awaited. Redis replay guards live in :mod:`apisec.webhooks.redis`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from apisec._lazy import lazy_attributes
from apisec.webhooks._errors import (
    InvalidSignature,
    MalformedHeader,
    MissingHeader,
    ReplayedWebhook,
    StaleTimestamp,
    WebhookError,
    WebhookPayloadTooLarge,
)
from apisec.webhooks._keys import generate_keypair, generate_secret
from apisec.webhooks._replay import AsyncReplayGuard, MemoryReplayGuard, ReplayGuard
from apisec.webhooks._service import AsyncWebhookVerifier, WebhookSigner, WebhookVerifier

if TYPE_CHECKING:
    from apisec.webhooks.redis import AsyncRedisReplayGuard, RedisReplayGuard

__all__ = [
    "AsyncRedisReplayGuard",
    "AsyncReplayGuard",
    "AsyncWebhookVerifier",
    "InvalidSignature",
    "MalformedHeader",
    "MemoryReplayGuard",
    "MissingHeader",
    "RedisReplayGuard",
    "ReplayGuard",
    "ReplayedWebhook",
    "StaleTimestamp",
    "WebhookError",
    "WebhookPayloadTooLarge",
    "WebhookSigner",
    "WebhookVerifier",
    "generate_keypair",
    "generate_secret",
]


# The Redis stores import redis-py, so they load on first use only.
__getattr__ = lazy_attributes(
    __name__, "apisec.webhooks.redis", ["AsyncRedisReplayGuard", "RedisReplayGuard"]
)
