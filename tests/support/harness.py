"""Drive an ASGI or a WSGI stack with one synchronous API, byte for byte.

The requests are built by hand rather than through an HTTP client, so tests
can send what clients normalize away (dot segments, repeated fields,
non-ASCII bytes, bodies without a length). WSGI headers are joined the way
real servers join repeated fields (PEP 3333, comma-separated).
"""

from __future__ import annotations

import asyncio
import io
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal

import httpx

from apisec import asgi, wsgi
from tests.support.apps import asgi_app, wsgi_app

Kind = Literal["asgi", "wsgi"]
HeaderInput = Mapping[str, str] | list[tuple[str, str]] | None


def _pairs(headers: HeaderInput) -> list[tuple[str, str]]:
    if headers is None:
        return []
    return list(headers.items()) if isinstance(headers, Mapping) else list(headers)


class Harness:
    """One protected stack, built the same way for ASGI and WSGI.

    ``build(module, app)`` receives :mod:`apisec.asgi` or :mod:`apisec.wsgi`
    and the bare app of that kind, and returns the wrapped app.
    """

    def __init__(
        self, kind: Kind, build: Callable[[Any, Any], Any], app: Any | None = None
    ) -> None:
        self.kind = kind
        module = asgi if kind == "asgi" else wsgi
        inner = app if app is not None else (asgi_app if kind == "asgi" else wsgi_app)
        self.app = build(module, inner)
        self._loop = asyncio.new_event_loop() if kind == "asgi" else None

    def close(self) -> None:
        if self._loop is not None:
            self._loop.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        headers: HeaderInput = None,
        content: bytes | Iterable[bytes] | None = None,
        client: str = "198.51.100.7",
        scheme: str = "https",
        host: str = "testserver",
    ) -> httpx.Response:
        pairs = _pairs(headers)
        if not any(name.lower() == "host" for name, _ in pairs):
            pairs.insert(0, ("Host", host))
        chunks = [content] if isinstance(content, bytes) else list(content or [])
        if isinstance(content, bytes) and not any(n.lower() == "content-length" for n, _ in pairs):
            pairs.append(("Content-Length", str(len(content))))
        raw_path, _, query = path.partition("?")
        if self.kind == "wsgi":
            return self._wsgi(method, raw_path, query, pairs, chunks, client, scheme)
        assert self._loop is not None
        return self._loop.run_until_complete(
            self._asgi(method, raw_path, query, pairs, chunks, client, scheme)
        )

    async def _asgi(
        self,
        method: str,
        path: str,
        query: str,
        headers: list[tuple[str, str]],
        chunks: list[bytes],
        client: str,
        scheme: str,
    ) -> httpx.Response:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": scheme,
            "path": path,
            "raw_path": path.encode("utf-8"),
            "query_string": query.encode("latin-1"),
            "root_path": "",
            "headers": [(n.lower().encode("latin-1"), v.encode("utf-8")) for n, v in headers],
            "client": (client, 40000),
            "server": ("testserver", 443),
        }
        pending = list(chunks) or [b""]
        status = 0
        out_headers: list[tuple[bytes, bytes]] = []
        body = bytearray()
        ended = False

        async def receive() -> dict[str, Any]:
            if pending:
                chunk = pending.pop(0)
                return {"type": "http.request", "body": chunk, "more_body": bool(pending)}
            await asyncio.sleep(0)
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            nonlocal status, out_headers, ended
            if message["type"] == "http.response.start":
                assert status == 0, "a second response start was sent"
                status = message["status"]
                out_headers = list(message.get("headers", []))
            elif message["type"] == "http.response.body":
                assert status, "body before start"
                assert not ended, "body after the end"
                body.extend(message.get("body", b""))
                ended = not message.get("more_body", False)

        try:
            await self.app(scope, receive, send)
        except Exception:
            if not status:
                raise
        return httpx.Response(status, headers=out_headers, content=bytes(body))

    def _wsgi(
        self,
        method: str,
        path: str,
        query: str,
        headers: list[tuple[str, str]],
        chunks: list[bytes],
        client: str,
        scheme: str,
    ) -> httpx.Response:
        body = b"".join(chunks)
        environ: dict[str, Any] = {
            "REQUEST_METHOD": method,
            "SCRIPT_NAME": "",
            "PATH_INFO": path.encode("utf-8").decode("latin-1"),
            "QUERY_STRING": query,
            "SERVER_NAME": "testserver",
            "SERVER_PORT": "443",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": client,
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": scheme,
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": False,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
        }
        if not any(n.lower() == "content-length" for n, _ in headers):
            environ["wsgi.input_terminated"] = True
        for name, value in headers:
            key = name.upper().replace("-", "_")
            if key not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
                key = "HTTP_" + key
            text = value.encode("utf-8").decode("latin-1")
            environ[key] = f"{environ[key]}, {text}" if key in environ else text
        started: list[Any] = []

        def start_response(
            status: str, response_headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Any:
            if started and exc_info is None:
                raise AssertionError("start_response called twice without exc_info")
            if started and sent:
                raise exc_info[1]
            started[:] = [status, response_headers]
            return lambda data: None

        sent = False
        out = bytearray()
        result = self.app(environ, start_response)
        try:
            for chunk in result:
                if chunk:
                    sent = True
                out.extend(chunk)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        status, response_headers = started
        return httpx.Response(int(status[:3]), headers=response_headers, content=bytes(out))
