"""ProblemDetailsMiddleware (WSGI): every error leaves as application/problem+json."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterable, Iterator

from apisec._adapter_core import log_unhandled
from apisec._http import is_problem_or_json, render_problem, render_status_problem
from apisec._types import Environ, ExcInfo, StartResponse, WSGIApp
from apisec.errors import ApiSecError
from apisec.wsgi._base import TYPE_BASE_KEY, closing, status_line

__all__ = ["ProblemDetailsMiddleware"]


class ProblemDetailsMiddleware:
    """The WSGI twin of :class:`apisec.asgi.ProblemDetailsMiddleware`.

    Exceptions raised by the app — when it is called or while its body is
    iterated — become problems as long as no body byte has been sent; after
    that the exception is logged and re-raised for the server to abort the
    response. Non-JSON error responses are rewritten (``rewrite_errors``).
    """

    def __init__(
        self, app: WSGIApp, *, type_base: str | None = None, rewrite_errors: bool = True
    ) -> None:
        self.app = app
        self.type_base = type_base
        self.rewrite_errors = rewrite_errors

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        if self.type_base is not None:
            environ[TYPE_BASE_KEY] = self.type_base
        response = _Response(environ, start_response, self.rewrite_errors)
        try:
            result = self.app(environ, response.start_response)
        except Exception as exc:  # nothing may escape unrendered
            return response.failed(exc)
        return response.iterate(result)


def _discard(data: bytes) -> None:
    return None


class _Response:
    """Tracks what reached the server; holds back error responses to be rewritten."""

    __slots__ = (
        "_environ",
        "_head",
        "_rewrite",
        "_start_response",
        "_type_base",
        "body_sent",
        "correlation",
        "held",
        "started",
    )

    def __init__(self, environ: Environ, start_response: StartResponse, rewrite: bool) -> None:
        self._environ = environ
        self._start_response = start_response
        self._rewrite = rewrite
        self._head = environ.get("REQUEST_METHOD") == "HEAD"
        self._type_base: str | None = environ.get(TYPE_BASE_KEY)
        self.held: tuple[int, list[tuple[str, str]]] | None = None
        self.started = False
        self.body_sent = False
        self.correlation: str | None = None

    def start_response(
        self, status: str, headers: list[tuple[str, str]], exc_info: ExcInfo | None = None
    ) -> object:
        if exc_info is not None and self.body_sent:
            raise exc_info[1].with_traceback(exc_info[2])
        code = int(status[:3])
        if self._rewrite and code >= 400:
            content_type = next((v for n, v in headers if n.lower() == "content-type"), None)
            if not is_problem_or_json(content_type):
                self.held = (code, list(headers))
                return _discard
        self.held = None
        self.started = True
        return self._start_response(status, headers, exc_info)

    def iterate(self, result: Iterable[bytes]) -> Iterator[bytes]:
        close = closing(result)
        try:
            try:
                for chunk in result:
                    if self.held is not None:
                        continue  # the body being replaced
                    if chunk:
                        self.body_sent = True
                    yield chunk
            except Exception as exc:  # rendered unless bytes are out
                yield from self.failed(exc)
                return
        finally:
            close()
        if self.held is not None:
            yield from self._rewritten()

    def _rewritten(self) -> list[bytes]:
        assert self.held is not None  # noqa: S101 - only called while holding
        status, kept = self.held
        if status >= 500:
            self.correlation = uuid.uuid4().urn
        status, headers, body = render_status_problem(
            status, kept, type_base=self._type_base, head=self._head, instance=self.correlation
        )
        self.held = None
        self._start_response(status_line(status), headers, None)
        return [body]

    def failed(self, exc: Exception) -> list[bytes]:
        """Answer an exception from the app, or re-raise it when body bytes are out."""
        if self.body_sent:
            log_unhandled(exc, self.correlation)
            raise exc
        error = exc if isinstance(exc, ApiSecError) else ApiSecError(type(exc).__name__)
        correlation = None
        if error.status >= 500:
            correlation = uuid.uuid4().urn
            log_unhandled(exc, correlation)
        status, headers, body = render_problem(
            error, type_base=self._type_base, head=self._head, instance=correlation
        )
        self.held = None
        # exc_info only when a start already reached the server (PEP 3333); some servers'
        # start_response (Werkzeug's test client) re-raise any exc_info they are given.
        self._start_response(status_line(status), headers, sys.exc_info() if self.started else None)
        return [body]
