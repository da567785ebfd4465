"""Small real HTTP(S) servers on loopback addresses, for the outbound transport tests.

Each server runs in a thread, records every request it got (and the TLS
server name the client asked for), and answers through per-path routes.
Streaming routes are bounded in count and stop when the client goes away.
"""

from __future__ import annotations

import http.server
import json
import socket
import ssl
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any

import attrs

#: How many chunks an endless route sends at most before giving up by itself.
MAX_CHUNKS = 20_000


@attrs.define
class Seen:
    """One request as the server received it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    client_port: int


Route = Callable[["Handler"], None]


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.server.owner.seen.append(
            Seen(
                method=self.command,
                path=self.path,
                headers={k.lower(): v for k, v in self.headers.items()},
                body=body,
                client_port=self.client_address[1],
            )
        )
        route = self.server.owner.routes.get(self.path.split("?", 1)[0], echo)
        try:
            route(self)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, TimeoutError):
            self.close_connection = True

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_HEAD(self) -> None:
        self._handle()

    def reply(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        """A complete response with a Content-Length."""
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def reply_json(self, value: object, status: int = 200) -> None:
        self.reply(status, json.dumps(value).encode(), {"Content-Type": "application/json"})

    def stream(
        self,
        chunks: Callable[[int], bytes | None],
        headers: dict[str, str] | None = None,
        *,
        hold: bool = False,
    ) -> None:
        """A body without a length, ended by closing: ``chunks(i)`` until it returns None.

        With ``hold`` the connection then stays open, silent, until the server stops.
        """
        self.send_response(200)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        for index in range(MAX_CHUNKS):
            chunk = chunks(index)
            if chunk is None:
                break
            self.wfile.write(chunk)
            self.wfile.flush()
        if hold:
            self.server.owner.stopping.wait(10)


def echo(handler: Handler) -> None:
    """The default route: what the server saw, as JSON."""
    seen = handler.server.owner.seen[-1]
    handler.reply_json({"path": seen.path, "host": seen.headers.get("host"), "method": seen.method})


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, owner: LoopbackServer, host: str) -> None:
        self.owner = owner
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.address_family = family
        super().__init__((host, 0), Handler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        tls = self.owner.tls
        if tls is None:
            super().finish_request(request, client_address)
            return
        try:
            wrapped = tls.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            self.owner.tls_failures.append(exc)
            return
        with wrapped:
            super().finish_request(wrapped, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that went away is part of several tests


class LoopbackServer:
    """An HTTP server on ``host`` (a loopback address), HTTPS when given ``tls``."""

    def __init__(self, host: str = "127.0.0.1", *, tls: ssl.SSLContext | None = None) -> None:
        self.host = host
        self.tls = tls
        self.routes: dict[str, Route] = {}
        self.seen: list[Seen] = []
        self.server_names: list[str | None] = []
        self.tls_failures: list[Exception] = []
        self.stopping = threading.Event()
        if tls is not None:
            tls.sni_callback = self._record_sni
        self._server = _Server(self, host)
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def _record_sni(self, sock: ssl.SSLObject, name: str | None, context: ssl.SSLContext) -> None:
        self.server_names.append(name)

    def route(self, path: str) -> Callable[[Route], Route]:
        def register(fn: Route) -> Route:
            self.routes[path] = fn
            return fn

        return register

    def url(self, path: str = "/", *, host: str | None = None) -> str:
        scheme = "https" if self.tls is not None else "http"
        name = host or (f"[{self.host}]" if ":" in self.host else self.host)
        return f"{scheme}://{name}:{self.port}{path}"

    def __enter__(self) -> LoopbackServer:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
