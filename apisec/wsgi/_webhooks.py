"""Verified webhook bodies (WSGI): read once (capped), verified, handed on unchanged."""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping

from apisec._http import PathRules, check_limit, declared_length
from apisec._types import Environ, StartResponse, WSGIApp
from apisec.errors import ApiSecError, ConfigurationError, PayloadTooLarge
from apisec.webhooks import WebhookVerifier
from apisec.wsgi._base import header_values, path_of, problem_response

__all__ = ["WEBHOOK_BODY_KEY", "WebhookMiddleware", "read_body", "verified_body"]

#: Where the verified body is left for the app: ``environ[WEBHOOK_BODY_KEY]``.
WEBHOOK_BODY_KEY = "apisec.webhook_body"
_CHUNK = 65536


def read_body(environ: Environ, max_bytes: int) -> bytes:
    """The whole request body from ``wsgi.input``, refusing (413) past ``max_bytes``."""
    declared = declared_length(header_values(environ, "content-length"))
    if declared is not None and declared > max_bytes:
        raise PayloadTooLarge(f"declared {declared} > {max_bytes}")
    stream = environ.get("wsgi.input")
    if stream is None:
        return b""
    if declared is not None:
        body: bytes = stream.read(declared)
        return body
    if not environ.get("wsgi.input_terminated"):
        return b""  # no length and no end marker: PEP 3333 says read nothing
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = stream.read(min(_CHUNK, max_bytes - size + 1))
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > max_bytes:
            raise PayloadTooLarge(f"webhook body over {max_bytes} bytes")
        chunks.append(chunk)


def verified_body(environ: Environ, verifier: WebhookVerifier, max_bytes: int = 1 << 20) -> bytes:
    """Read the raw body once and verify it; ``wsgi.input`` then replays the same bytes."""
    body = read_body(environ, max_bytes)
    verifier.verify(body, request_headers(environ))
    _replay(environ, body)
    return body


def request_headers(environ: Environ) -> dict[str, str]:
    """The request's headers as a lower-case name -> value dict (WSGI joins repeats)."""
    headers = {
        key[5:].replace("_", "-").lower(): value
        for key, value in environ.items()
        if key.startswith("HTTP_") and isinstance(value, str)
    }
    for key, name in (("CONTENT_TYPE", "content-type"), ("CONTENT_LENGTH", "content-length")):
        value = environ.get(key)
        if isinstance(value, str) and value:
            headers[name] = value
    return headers


def _replay(environ: Environ, body: bytes) -> None:
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    environ[WEBHOOK_BODY_KEY] = body


class WebhookMiddleware:
    """The WSGI twin of :class:`apisec.asgi.WebhookMiddleware`."""

    def __init__(
        self, app: WSGIApp, verifiers: Mapping[str, WebhookVerifier], *, max_bytes: int = 1 << 20
    ) -> None:
        if not verifiers or not all(isinstance(v, WebhookVerifier) for v in verifiers.values()):
            raise ConfigurationError("verifiers maps paths to WebhookVerifier objects")
        self.app = app
        self.routes: PathRules[WebhookVerifier] = PathRules(verifiers)
        self.max_bytes = check_limit(max_bytes)

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        matched = self.routes.match_all(environ.get("REQUEST_METHOD", "GET"), path_of(environ))
        if not matched:
            return self.app(environ, start_response)
        try:
            body = read_body(environ, self.max_bytes)
            for verifier in matched:  # a path read two ways needs both senders' signatures
                verifier.verify(body, request_headers(environ))
        except ApiSecError as exc:
            return problem_response(environ, start_response, exc)
        _replay(environ, body)
        return self.app(environ, start_response)
