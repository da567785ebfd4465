"""BodyLimitMiddleware (WSGI): a 413 problem before the app reads more than the limit."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator, Mapping
from typing import IO, Any

from apisec._http import InvalidRequest, PathRules, check_limit, declared_length
from apisec._types import Environ, ExcInfo, StartResponse, WSGIApp
from apisec.errors import PayloadTooLarge
from apisec.wsgi._base import closing, header_values, path_of, problem_response

__all__ = ["BodyLimitMiddleware"]


class BodyLimitMiddleware:
    """The WSGI twin of :class:`apisec.asgi.BodyLimitMiddleware`.

    ``wsgi.input`` is wrapped: a read that passes the limit raises
    ``PayloadTooLarge`` in the app, and whatever the app answers then is
    replaced by the 413 problem.
    """

    def __init__(
        self, app: WSGIApp, max_bytes: int = 1 << 20, *, routes: Mapping[str, int] | None = None
    ) -> None:
        self.app = app
        self.max_bytes = check_limit(max_bytes)
        self.routes: PathRules[int] = PathRules(
            {rule: check_limit(limit) for rule, limit in (routes or {}).items()}
        )

    def limit_for(self, method: str, path: str) -> int:
        if not self.routes:
            return self.max_bytes
        limits = self.routes.match_all(method, path)
        return min(limits) if limits else self.max_bytes

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        limit = self.limit_for(environ.get("REQUEST_METHOD", "GET"), path_of(environ))
        try:
            declared = declared_length(header_values(environ, "content-length"))
        except InvalidRequest as exc:
            return problem_response(environ, start_response, exc)
        if declared is not None and declared > limit:
            return problem_response(
                environ, start_response, PayloadTooLarge(f"declared {declared} > {limit}")
            )
        reader = LimitedInput(environ.get("wsgi.input"), limit)
        environ["wsgi.input"] = reader
        started: list[bool] = []  # whether the app's own start reached the server

        def start_unless_tripped(
            status: str, headers: list[tuple[str, str]], exc_info: ExcInfo | None = None
        ) -> object:
            if reader.tripped is not None:
                return _discard  # the app's answer to the failed read is replaced
            started.append(True)
            return start_response(status, headers, exc_info)

        try:
            result = self.app(environ, start_unless_tripped)
        except Exception:
            tripped = reader.tripped
            if tripped is None:
                raise
            return problem_response(environ, start_response, tripped, exc_info=_info(started))
        return self._iterate(environ, start_response, result, reader, started)

    @staticmethod
    def _iterate(
        environ: Environ,
        start_response: StartResponse,
        result: Iterable[bytes],
        reader: LimitedInput,
        started: list[bool],
    ) -> Iterator[bytes]:
        close = closing(result)
        sent = False
        try:
            for chunk in result:
                if reader.tripped is not None:
                    break
                sent = sent or bool(chunk)
                yield chunk
        except Exception:
            if reader.tripped is None:
                raise
        finally:
            close()
        tripped = reader.tripped
        if tripped is not None:
            if sent:  # bytes are out: the server must abort the response
                raise tripped
            yield from problem_response(environ, start_response, tripped, exc_info=_info(started))


def _discard(data: bytes) -> None:
    return None


def _info(started: list[bool]) -> ExcInfo | None:
    """The exc_info for a second start (PEP 3333); None for a first one."""
    exc = sys.exc_info()[1]
    return (type(exc), exc, exc.__traceback__) if started and exc is not None else None


class LimitedInput:
    """A ``wsgi.input`` that refuses to hand out more than ``limit`` bytes."""

    def __init__(self, stream: IO[bytes] | Any, limit: int) -> None:
        self._stream = stream
        self.limit = limit
        self.read_bytes = 0
        self.tripped: PayloadTooLarge | None = None

    def _count(self, data: bytes) -> bytes:
        self.read_bytes += len(data)
        if self.read_bytes > self.limit:
            self.tripped = PayloadTooLarge(f"body over {self.limit} bytes")
            raise self.tripped
        return data

    def read(self, size: int | None = -1) -> bytes:
        if self.tripped is not None:
            raise self.tripped
        if self._stream is None:
            return b""
        room = self.limit - self.read_bytes + 1  # one more than allowed reveals an overflow
        wanted = room if size is None or size < 0 else min(size, room)
        return self._count(self._stream.read(wanted))

    def readline(self, size: int | None = -1) -> bytes:
        if self.tripped is not None:
            raise self.tripped
        if self._stream is None:
            return b""
        room = self.limit - self.read_bytes + 1
        wanted = room if size is None or size < 0 else min(size, room)
        return self._count(self._stream.readline(wanted))

    def readlines(self, hint: int = -1) -> list[bytes]:
        return list(iter(self.readline, b""))

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.readline, b"")
