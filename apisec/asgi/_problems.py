"""ProblemDetailsMiddleware: every error leaves as application/problem+json."""

from __future__ import annotations

import uuid

from apisec._adapter_core import log_unhandled
from apisec._http import is_problem_or_json, render_problem, render_status_problem
from apisec._types import ASGIApp, Message, Receive, Scope, Send
from apisec.asgi._base import TYPE_BASE_KEY, send_response
from apisec.errors import ApiSecError

__all__ = ["ProblemDetailsMiddleware"]

# _READY: a held 5xx response is complete; it is sent once the app returns or raises.
_IDLE, _HELD, _READY, _SENT, _DONE = range(5)


class ProblemDetailsMiddleware:
    """Turn exceptions and the framework's own error pages into RFC 9457 problems.

    * An :class:`~apisec.ApiSecError` becomes its problem, status and headers.
    * Any other exception becomes a 500 problem without internal detail; its
      ``instance`` is a correlation id (``urn:uuid:...``) that is also logged
      with the traceback on the ``apisec.adapters`` logger.
    * With ``rewrite_errors`` (the default) a 4xx/5xx response the app sent in
      another format than JSON (a framework's HTML or plain-text 404, 405,
      500) is replaced by a problem with the same status; headers that do
      not describe the old body (``Allow``, ``WWW-Authenticate``...) stay.
      JSON error bodies are the application's own and pass unchanged.
    * Once a response has started nothing is sent twice: an exception after
      the start is logged and re-raised so the server closes the connection.
    * A framework that answers an exception with its own 500 page and then
      re-raises it (Starlette's ``ServerErrorMiddleware``) is not believed
      for an ``ApiSecError``: the error's own problem and status are sent.

    Args:
        app: the ASGI application.
        type_base: problem ``type`` URIs become ``type_base + slug``.
        rewrite_errors: rewrite non-JSON error responses (see above).
    """

    def __init__(
        self, app: ASGIApp, *, type_base: str | None = None, rewrite_errors: bool = True
    ) -> None:
        self.app = app
        self.type_base = type_base
        self.rewrite_errors = rewrite_errors

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.type_base is not None:
            scope[TYPE_BASE_KEY] = self.type_base
        response = _Response(send, scope, self.rewrite_errors)
        try:
            await self.app(scope, receive, response.send)
        except Exception as exc:
            await response.failed(exc)
            return
        if response.state == _READY:
            await response.send_rewritten()


def _ends(message: Message) -> bool:
    """Whether a message is the last body message of a response (trailers may follow)."""
    kind = message["type"]
    if kind == "http.response.pathsend":
        return True
    return kind in ("http.response.body", "http.response.zerocopysend") and not message.get(
        "more_body", False
    )


class _Response:
    """Tracks what reached the client; holds back error responses to be rewritten."""

    __slots__ = ("_head", "_rewrite", "_send", "_type_base", "correlation", "held", "state")

    def __init__(self, send: Send, scope: Scope, rewrite: bool) -> None:
        self._send = send
        self._rewrite = rewrite
        self._head = scope.get("method") == "HEAD"
        self._type_base: str | None = scope.get(TYPE_BASE_KEY)
        self.state = _IDLE
        self.held: tuple[int, list[tuple[str, str]]] = (0, [])
        self.correlation: str | None = None

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            if self.state != _IDLE:
                raise RuntimeError("the response has already started")
            status = int(message["status"])
            if self._rewrite and status >= 400:
                headers = [
                    (n.decode("latin-1"), v.decode("latin-1"))
                    for n, v in message.get("headers", ())
                ]
                content_type = next((v for n, v in headers if n.lower() == "content-type"), None)
                if not is_problem_or_json(content_type):
                    self.held = (status, headers)
                    self.state = _HELD
                    return
            self.state = _SENT
            await self._send(message)
            return
        if self.state in (_HELD, _READY):
            if self.state == _HELD and _ends(message):
                if self.held[0] < 500:
                    await self.send_rewritten()
                else:  # wait: a framework's 500 page may be followed by the exception itself
                    self.state = _READY
            return  # the replaced body is dropped
        if self.state == _DONE and self.held[0]:
            return  # and so are the replaced response's trailers
        if _ends(message):
            self.state = _DONE
        await self._send(message)

    async def send_rewritten(self) -> None:
        status, kept = self.held
        if status >= 500:
            self.correlation = uuid.uuid4().urn
        status, headers, body = render_status_problem(
            status, kept, type_base=self._type_base, head=self._head, instance=self.correlation
        )
        self.state = _DONE
        await send_response(self._send, status, headers, body)

    async def failed(self, exc: Exception) -> None:
        """Answer an exception from the app, or re-raise it when a response is on the wire."""
        if self.state == _SENT:
            log_unhandled(exc, self.correlation)
            raise exc
        if self.state == _DONE:
            log_unhandled(exc, self.correlation)
            return
        if self.state == _READY and not isinstance(exc, ApiSecError):
            await self.send_rewritten()  # the framework's own 500 page for a crash, re-raised
            log_unhandled(exc, self.correlation)
            return
        error = exc if isinstance(exc, ApiSecError) else ApiSecError(type(exc).__name__)
        correlation = None
        if error.status >= 500:
            correlation = uuid.uuid4().urn
            log_unhandled(exc, correlation)
        status, headers, body = render_problem(
            error, type_base=self._type_base, head=self._head, instance=correlation
        )
        self.state = _DONE
        await send_response(self._send, status, headers, body)
