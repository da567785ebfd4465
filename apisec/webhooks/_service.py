"""WebhookSigner, WebhookVerifier and AsyncWebhookVerifier: the public face of the schemes."""

from __future__ import annotations

import asyncio
import hashlib
import math
import secrets
import time
import warnings
from collections.abc import Sequence
from typing import NoReturn

from apisec._async import has_async_method, resolved
from apisec._clock import Clock, Duration, seconds, wall_clock
from apisec.audit import AuditEvent, emit
from apisec.errors import ConfigurationError
from apisec.webhooks import _headers
from apisec.webhooks._errors import (
    InvalidSignature,
    ReplayedWebhook,
    StaleTimestamp,
    WebhookError,
    WebhookPayloadTooLarge,
)
from apisec.webhooks._headers import HeadersLike
from apisec.webhooks._keys import SecretLike, parse_keys
from apisec.webhooks._replay import AsyncReplayGuard, MemoryReplayGuard, ReplayGuard
from apisec.webhooks._schemes import SCHEMES, Delivery, Scheme, plain_standard

__all__ = ["AsyncWebhookVerifier", "WebhookSigner", "WebhookVerifier"]

DEFAULT_MAX_BODY_BYTES = 1024 * 1024
DEFAULT_UNTIMED_REPLAY_TTL = 24 * 3600.0


def _raw_body(payload: object) -> bytes:
    if isinstance(payload, bytes):
        return payload
    if isinstance(payload, (bytearray, memoryview)):
        return bytes(payload)
    raise ConfigurationError(
        "webhook payloads must be the raw body bytes exactly as received; a decoded or"
        " re-serialized body does not carry the same signature"
    )


class WebhookSigner:
    """Signs outgoing webhooks.

    Args:
        secret: one secret, or several during a rotation window (every one
            signs, so receivers holding either the old or the new secret
            accept the delivery). For ``"standard"``, ``whsec_`` secrets make
            ``v1`` signatures and ``whsk_`` keys make ``v1a`` (Ed25519) ones.
        scheme: ``"standard"``, ``"stripe"``, ``"github"`` or ``"hmac-sha256"``.
        clock: the time source for the default timestamp.

    >>> from apisec.webhooks import generate_secret
    >>> signer = WebhookSigner(generate_secret())
    >>> sorted(signer.sign(b'{"ok":true}'))
    ['webhook-id', 'webhook-signature', 'webhook-timestamp']
    """

    def __init__(
        self,
        secret: SecretLike | Sequence[SecretLike],
        scheme: str = "standard",
        *,
        clock: Clock = wall_clock,
    ) -> None:
        self._keys = parse_keys(secret, scheme)
        self._scheme = SCHEMES[scheme]
        if not self._keys.hmac and not self._keys.ed25519_private:
            raise ConfigurationError("a public (whpk_) key can verify webhooks but not sign them")
        self._clock = clock

    @property
    def scheme(self) -> str:
        return self._scheme.name

    def __repr__(self) -> str:
        return f"WebhookSigner(scheme={self._scheme.name!r}, keys={self._keys!r})"

    def sign(
        self, payload: bytes, msg_id: str | None = None, timestamp: int | None = None
    ) -> dict[str, str]:
        """The headers to send with ``payload``.

        ``msg_id`` defaults to a fresh ``msg_...`` id for the standard scheme
        (other schemes send one only when given); ``timestamp`` defaults to now.
        """
        body = _raw_body(payload)
        if timestamp is None:
            timestamp = math.floor(self._clock())
        elif isinstance(timestamp, bool) or not isinstance(timestamp, int) or timestamp < 0:
            raise ConfigurationError("timestamp must be a non-negative int of Unix seconds")
        if msg_id is None and self._scheme.name == "standard":
            msg_id = "msg_" + secrets.token_urlsafe(18)
        if msg_id is not None:
            try:
                _headers.message_id(msg_id, "msg_id")
            except WebhookError as exc:
                raise ConfigurationError(
                    "msg_id must be 1-256 printable ASCII characters without '.' or spaces"
                ) from exc
        return self._scheme.sign(self._keys, body, msg_id, timestamp)


class _VerifierCore:
    """Configuration and every check but the replay guard's, shared by both twins."""

    def __init__(
        self,
        secrets: SecretLike | Sequence[SecretLike],
        scheme: str = "standard",
        *,
        tolerance: Duration = 300,
        clock: Clock = wall_clock,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        replay_guard: ReplayGuard | AsyncReplayGuard | None = None,
        replay_ttl: Duration | None = None,
    ) -> None:
        self._keys = parse_keys(secrets, scheme)
        self._scheme: Scheme = SCHEMES[scheme]
        self._plain_standard = scheme == "standard" and bool(self._keys.hmac)
        self._tolerance = seconds(tolerance, name="tolerance")
        if isinstance(max_body_bytes, bool) or not isinstance(max_body_bytes, int):
            raise ConfigurationError("max_body_bytes must be an int")
        if max_body_bytes < 1:
            raise ConfigurationError("max_body_bytes must be positive")
        self._max_body = max_body_bytes
        # time.time itself when no clock is injected: one call less per delivery.
        self._clock = time.time if clock is wall_clock else clock
        if replay_guard is not None and not callable(getattr(replay_guard, "first_seen", None)):
            raise ConfigurationError("replay_guard must have a first_seen(key, ttl) method")
        self._guard = replay_guard
        self._guard_is_async = has_async_method(replay_guard, "first_seen")
        # A sync guard may do I/O: the async twin runs it in a worker thread. The
        # memory guard only takes a lock for microseconds, so it runs in place.
        self._guard_in_thread = (
            replay_guard is not None
            and not self._guard_is_async
            and type(replay_guard) is not MemoryReplayGuard
        )
        if replay_ttl is not None:
            self._replay_ttl = seconds(replay_ttl, name="replay_ttl")
        elif self._scheme.timestamped:
            self._replay_ttl = 2 * self._tolerance + 1
        else:
            self._replay_ttl = DEFAULT_UNTIMED_REPLAY_TTL

    @property
    def scheme(self) -> str:
        return self._scheme.name

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(scheme={self._scheme.name!r}, keys={self._keys!r},"
            f" tolerance={self._tolerance!r})"
        )

    def _checked(self, payload: bytes, headers: HeadersLike) -> str | None:
        """Everything but the replay guard; returns the replay key when a guard is set."""
        if (
            self._plain_standard
            and type(headers) is dict
            and type(payload) is bytes
            and len(payload) <= self._max_body
        ):
            # The fast path (see _schemes.plain_standard); None sends it the general way.
            verified = plain_standard(self._keys, headers, payload)
            if verified is not None and abs(self._clock() - verified[1]) <= self._tolerance:
                return None if self._guard is None else f"standard:{verified[0]}:{verified[1]}"
        body = payload if type(payload) is bytes else _raw_body(payload)
        try:
            if len(body) > self._max_body:
                raise WebhookPayloadTooLarge(f"body of {len(body)} bytes over {self._max_body}")
            found = _headers.collect(headers, self._scheme.header_names)
            delivery = self._scheme.parse(found)
            if delivery.timestamp is not None:
                skew = self._clock() - delivery.timestamp
                if abs(skew) > self._tolerance:
                    raise StaleTimestamp(f"timestamp {skew:+.0f}s from now")
            if not self._scheme.matches(self._keys, delivery, body):
                raise InvalidSignature("no signature matches a configured secret")
        except WebhookError as exc:
            self._refuse(exc)
        return None if self._guard is None else self._replay_key(delivery, body)

    async def _verify_async(self, payload: bytes, headers: HeadersLike) -> None:
        """The body of :meth:`AsyncWebhookVerifier.verify` (and of the deprecated ``averify``)."""
        key = self._checked(payload, headers)
        if key is not None and self._guard is not None:
            guard, ttl = self._guard, self._replay_ttl
            if self._guard_in_thread:
                result = await asyncio.to_thread(guard.first_seen, key, ttl)
            else:
                result = guard.first_seen(key, ttl)
            if not await resolved(result):
                self._refuse(ReplayedWebhook("delivery already accepted once"))

    def _replay_key(self, delivery: Delivery, body: bytes) -> str:
        if self._scheme.name == "standard":
            # id and timestamp are both signed: the pair names one attempt.
            return f"standard:{delivery.msg_id}:{delivery.timestamp}"
        # Other schemes sign no id, so the signed content itself is the key.
        digest = hashlib.sha256(delivery.prefix)
        digest.update(body)
        return f"{self._scheme.name}:{digest.hexdigest()}"

    def _refuse(self, exc: WebhookError) -> NoReturn:
        emit(
            AuditEvent.WEBHOOK_FAILURE,
            reason=exc.slug.removeprefix("webhook-"),
            scheme=self._scheme.name,
        )
        raise exc


class WebhookVerifier(_VerifierCore):
    """Verifies incoming webhooks over their raw body bytes.

    Args:
        secrets: one secret or several (rotation: any of them may match).
        scheme: ``"standard"``, ``"stripe"``, ``"github"`` or ``"hmac-sha256"``.
        tolerance: how far (seconds or ``timedelta``) a timestamp may be from
            now, in the past *or* the future. Unused by ``"github"``, which
            sends no timestamp.
        clock: the time source.
        max_body_bytes: larger bodies are refused before any hashing.
        replay_guard: optional :class:`ReplayGuard` that refuses a delivery
            already accepted once (an :class:`AsyncReplayGuard` needs
            :class:`AsyncWebhookVerifier`).
        replay_ttl: how long accepted deliveries are remembered; defaults to
            twice the tolerance (24 hours for ``"github"``).

    Raises (from ``verify``): ``MissingHeader``, ``MalformedHeader``,
    ``StaleTimestamp``, ``InvalidSignature``, ``ReplayedWebhook`` and
    ``WebhookPayloadTooLarge`` — all ``WebhookError`` — and ``StoreError``
    when a replay-guard backend fails.
    """

    def verify(self, payload: bytes, headers: HeadersLike) -> None:
        """Verify one delivery; return quietly or raise a ``WebhookError``."""
        if self._guard_is_async:
            raise ConfigurationError(
                "this verifier has an async replay guard: use AsyncWebhookVerifier"
                " (WebhookVerifier.averify is deprecated)"
            )
        key = self._checked(payload, headers)
        if key is not None and self._guard is not None:
            first = self._guard.first_seen(key, self._replay_ttl)
            if not first:
                self._refuse(ReplayedWebhook("delivery already accepted once"))

    async def averify(self, payload: bytes, headers: HeadersLike) -> None:
        """Deprecated: use :class:`AsyncWebhookVerifier` (same arguments), whose ``verify`` this is.

        Kept while existing callers move; it warns with a ``DeprecationWarning``.
        """
        warnings.warn(
            "WebhookVerifier.averify is deprecated: use AsyncWebhookVerifier(...).verify",
            DeprecationWarning,
            stacklevel=2,
        )
        await self._verify_async(payload, headers)


class AsyncWebhookVerifier(_VerifierCore):
    """The asyncio twin of :class:`WebhookVerifier` (same arguments; ``verify`` is awaited).

    ``replay_guard`` may be an :class:`AsyncReplayGuard`, awaited, or a
    :class:`ReplayGuard`: a synchronous one other than
    :class:`MemoryReplayGuard` runs in a worker thread, so its I/O never
    blocks the event loop.
    """

    async def verify(self, payload: bytes, headers: HeadersLike) -> None:
        """Same as :meth:`WebhookVerifier.verify`, awaiting the replay guard."""
        await self._verify_async(payload, headers)
