"""Errors of webhook verification, all under :class:`WebhookError`."""

from __future__ import annotations

from apisec.errors import ClientError, PayloadTooLarge

__all__ = [
    "InvalidSignature",
    "MalformedHeader",
    "MissingHeader",
    "ReplayedWebhook",
    "StaleTimestamp",
    "WebhookError",
    "WebhookPayloadTooLarge",
]


class WebhookError(ClientError):
    """A webhook delivery failed verification."""

    status = 400
    slug = "webhook-rejected"
    title = "Webhook rejected"
    default_detail = "The webhook could not be verified."


class MissingHeader(WebhookError):
    """A header the scheme needs is absent."""

    slug = "webhook-missing-header"


class MalformedHeader(WebhookError):
    """A webhook header is present but unusable (syntax, size, duplicates, non-ASCII)."""

    slug = "webhook-malformed-header"


class StaleTimestamp(WebhookError):
    """The delivery's timestamp is too far in the past or the future."""

    slug = "webhook-stale-timestamp"


class InvalidSignature(WebhookError):
    """No signature in the delivery matches any configured secret."""

    status = 401
    slug = "webhook-invalid-signature"


class ReplayedWebhook(WebhookError):
    """This exact delivery was already accepted once (replay guard)."""

    status = 409
    slug = "webhook-replayed"


class WebhookPayloadTooLarge(WebhookError, PayloadTooLarge):
    """The body is larger than the verifier accepts."""

    status = 413
    slug = "webhook-payload-too-large"
    default_detail = "The webhook body is too large."
