"""Verified webhook bodies: read once (capped), verified, handed on unchanged."""

from __future__ import annotations

from collections.abc import Mapping

from apisec._http import PathRules, check_limit
from apisec._types import ASGIApp, Message, Receive, Scope, Send
from apisec.asgi._base import route_path, send_problem
from apisec.errors import ApiSecError, ConfigurationError, PayloadTooLarge
from apisec.webhooks import AsyncWebhookVerifier, WebhookVerifier
from apisec.webhooks._headers import HeadersLike

__all__ = ["WebhookMiddleware", "read_body", "verified_body"]

#: Where the verified body is left for the app: ``scope["state"][WEBHOOK_BODY_KEY]``.
WEBHOOK_BODY_KEY = "apisec.webhook_body"


#: What the ASGI side verifies with: the async twin, or a sync verifier (its guard
#: then runs in a worker thread, as the async twin runs a sync guard).
Verifier = AsyncWebhookVerifier | WebhookVerifier


async def verify_async(verifier: Verifier, body: bytes, headers: HeadersLike) -> None:
    """Verify with the async twin, or a sync verifier whose replay guard runs off the loop."""
    if isinstance(verifier, AsyncWebhookVerifier):
        await verifier.verify(body, headers)
    else:
        await verifier._verify_async(body, headers)


class ClientDisconnected(Exception):
    """The client went away before sending its whole body."""


async def read_body(receive: Receive, max_bytes: int) -> bytes:
    """The whole request body, refusing (413) as soon as it passes ``max_bytes``."""
    chunks = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnected
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > max_bytes:
            raise PayloadTooLarge(f"webhook body over {max_bytes} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def verified_body(
    scope: Scope, receive: Receive, verifier: Verifier, max_bytes: int = 1 << 20
) -> bytes:
    """Read the raw body once and verify it; return the very bytes that were signed.

    Raises the verifier's ``WebhookError`` (400/401/409/413) or
    ``PayloadTooLarge``.
    """
    body = await read_body(receive, max_bytes)
    await verify_async(verifier, body, scope.get("headers") or [])
    return body


def replaying(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that yields ``body`` once, then whatever the client sends next."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


class WebhookMiddleware:
    """Verify webhook deliveries on their paths before the app sees them.

    The app reads the same raw bytes that were verified (through ``receive``,
    as usual, and at ``scope["state"]["apisec.webhook_body"]``). A delivery
    that fails verification is answered here with its problem.

    Args:
        app: the ASGI application.
        verifiers: an :class:`~apisec.webhooks.AsyncWebhookVerifier` per path
            (``{"/webhooks/stripe": stripe_verifier}``); a ``WebhookVerifier``
            works too, its replay guard run in a worker thread.
        max_bytes: the body cap while reading.
    """

    def __init__(
        self,
        app: ASGIApp,
        verifiers: Mapping[str, Verifier],
        *,
        max_bytes: int = 1 << 20,
    ) -> None:
        if not verifiers or not all(
            isinstance(v, (AsyncWebhookVerifier, WebhookVerifier)) for v in verifiers.values()
        ):
            raise ConfigurationError("verifiers maps paths to WebhookVerifier objects")
        self.app = app
        self.routes: PathRules[Verifier] = PathRules(verifiers)
        self.max_bytes = check_limit(max_bytes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        matched = self.routes.match_all(scope["method"], route_path(scope))
        if not matched:
            await self.app(scope, receive, send)
            return
        try:
            body = await read_body(receive, self.max_bytes)
            for verifier in matched:  # a path read two ways needs both senders' signatures
                await verify_async(verifier, body, scope.get("headers") or [])
        except ClientDisconnected:
            return
        except ApiSecError as exc:
            await send_problem(send, scope, exc)
            return
        state = scope.get("state")
        if state is None:
            state = scope["state"] = {}
        state[WEBHOOK_BODY_KEY] = body
        await self.app(scope, replaying(body, receive), send)
