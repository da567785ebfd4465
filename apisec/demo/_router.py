"""A tiny ASGI router: exact paths, one handler per method, JSON in and out.

Just enough for the demo, so that it needs no web framework: errors are
raised as :class:`~apisec.ApiSecError` and rendered by apisec's
``ProblemDetailsMiddleware`` like any other.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import attrs

from apisec._types import Receive, Scope, Send
from apisec.asgi import read_body
from apisec.audit import audit_context
from apisec.clientaddr import client_key
from apisec.errors import ClientError, NotFound
from apisec.validation import parse_json

__all__ = ["JSONResponse", "MethodNotAllowed", "Request", "Router"]

MAX_JSON_BODY = 16 * 1024


class MethodNotAllowed(ClientError):
    """The path exists, the method does not (405, with ``Allow``)."""

    status = 405
    slug = "method-not-allowed"
    default_detail = "The method is not allowed on this resource."


@attrs.frozen
class Request:
    """One request as a handler sees it."""

    scope: Scope
    receive: Receive = attrs.field(repr=False)

    def headers(self, name: str) -> list[str]:
        """Every value of the header ``name`` (case-insensitive)."""
        wanted = name.lower().encode("latin-1")
        return [v.decode("latin-1") for k, v in self.scope.get("headers") or () if k == wanted]

    async def json(self) -> Any:
        """The body as strict JSON (400 malformed, 413 too large, 415 not JSON)."""
        content_type = self.headers("content-type")
        body = await read_body(self.receive, MAX_JSON_BODY)
        return parse_json(
            body, max_bytes=MAX_JSON_BODY, content_type=content_type[0] if content_type else ""
        )


@attrs.frozen
class JSONResponse:
    """A JSON response; ``headers`` are extra (name, value) pairs."""

    body: Any
    status: int = 200
    headers: Sequence[tuple[str, str]] = ()

    async def send(self, send: Send) -> None:
        data = b"" if self.status == 204 else json.dumps(self.body).encode()
        fields = [(n.lower().encode("latin-1"), v.encode("latin-1")) for n, v in self.headers]
        if self.status != 204:
            fields += [
                (b"content-type", b"application/json"),
                (b"content-length", b"%d" % len(data)),
            ]
        await send({"type": "http.response.start", "status": self.status, "headers": fields})
        await send({"type": "http.response.body", "body": data, "more_body": False})


Handler = Callable[[Request], Awaitable[JSONResponse]]


class Router:
    """Dispatch ``(method, path)`` to a handler; 404 and 405 as problems."""

    def __init__(self) -> None:
        self._routes: dict[str, dict[str, Handler]] = {}

    def add(self, method: str, path: str, handler: Handler) -> None:
        self._routes.setdefault(path, {})[method] = handler

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return  # no lifespan or websocket handling: the servers run with lifespan="off"
        methods = self._routes.get(scope["path"])
        if methods is None:
            raise NotFound(f"no route for {scope['path'][:100]!r}")
        handler = methods.get(scope["method"])
        if handler is None:
            raise MethodNotAllowed(
                f"{scope['method']} not allowed", headers=[("Allow", ", ".join(sorted(methods)))]
            )
        peer = scope.get("client")
        with audit_context(client=client_key(peer[0]) if peer else None):
            response = await handler(Request(scope, receive))
        await response.send(send)
