"""Real HTTP servers on loopback for the tests: uvicorn in a thread, gunicorn as a process.

Both listen on 127.0.0.1 and, where the machine has it, on ::1, each on a
port the kernel picks (no race for a "free" port). Neither server is
allowed to interpret forwarding headers itself (uvicorn's
``proxy_headers``, gunicorn's ``forwarded_allow_ips`` both trust loopback
by default): what a proxy may say is apisec's ``TrustedProxies`` decision.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import uvicorn

ROOT = Path(__file__).resolve().parents[2]
_STARTUP_TIMEOUT = 20.0


def ipv6_loopback() -> bool:
    """Whether this machine can listen on and connect to ::1."""
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as server:
            server.bind(("::1", 0))
            server.listen()
            with socket.create_connection(("::1", server.getsockname()[1]), timeout=2):
                return True
    except OSError:
        return False


def loopback_hosts() -> tuple[str, ...]:
    return ("127.0.0.1", "::1") if ipv6_loopback() else ("127.0.0.1",)


def url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def listening_socket(host: str) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    sock.bind((host, 0))
    sock.listen(128)
    sock.setblocking(False)
    return sock


class _Server:
    ports: dict[str, int]

    def url(self, host: str = "127.0.0.1", index: int = 0) -> str:
        """The base URL on one loopback address."""
        return f"http://{url_host(host)}:{self.port(host, index)}"

    def port(self, host: str = "127.0.0.1", index: int = 0) -> int:
        return self.ports[f"{host}#{index}"]

    def wait_healthy(self, path: str = "/health") -> None:
        """Until every address answers ``path`` with any HTTP response (or the server died)."""
        deadline = time.monotonic() + _STARTUP_TIMEOUT
        for key in self.ports:
            host, _, index = key.partition("#")
            while True:
                self.check_alive()
                try:
                    httpx.get(self.url(host, int(index)) + path, timeout=2)
                    break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{type(self).__name__} did not become healthy")
                time.sleep(0.02)

    def check_alive(self) -> None:
        raise NotImplementedError


AppFactory = Callable[[], AbstractAsyncContextManager[Any]]


def plain(app: Any) -> AppFactory:
    """An app factory for an app that needs no set-up on the server's loop."""

    @asynccontextmanager
    async def factory() -> AsyncIterator[Any]:
        yield app

    return factory


class UvicornServer(_Server):
    """uvicorn serving an ASGI app in a thread with its own event loop.

    ``factory`` is entered on the server's loop (so async clients such as
    ``redis.asyncio`` are created and closed there). ``sockets`` per host:
    more than one gives the same app several ports.
    """

    def __init__(
        self,
        factory: AppFactory,
        *,
        hosts: Sequence[str] | None = None,
        sockets: int = 1,
        health: str | None = "/health",
    ) -> None:
        self.factory = factory
        self.hosts = tuple(hosts) if hosts is not None else loopback_hosts()
        self.sockets_per_host = sockets
        self.health = health
        self.ports = {}
        self._sockets: list[socket.socket] = []
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._ready = threading.Event()

    def start(self) -> UvicornServer:
        for host in self.hosts:
            for index in range(self.sockets_per_host):
                sock = listening_socket(host)
                self._sockets.append(sock)
                self.ports[f"{host}#{index}"] = sock.getsockname()[1]
        self._thread = threading.Thread(target=self._run, name="uvicorn-test", daemon=True)
        self._thread.start()
        if not self._ready.wait(_STARTUP_TIMEOUT):
            raise RuntimeError("uvicorn did not start")
        self.check_alive()
        if self.health is not None:
            self.wait_healthy(self.health)
        return self

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported by check_alive() / stop()
            self._error = exc
        finally:
            self._ready.set()

    async def _main(self) -> None:
        async with self.factory() as app:
            config = uvicorn.Config(
                app,
                lifespan="off",
                ws="none",
                log_level="warning",
                access_log=False,
                proxy_headers=False,
                timeout_graceful_shutdown=2,
            )
            self._server = uvicorn.Server(config)
            serving = asyncio.ensure_future(self._server.serve(sockets=self._sockets))
            while not self._server.started and not serving.done():
                await asyncio.sleep(0.005)
            self._ready.set()
            await serving

    def check_alive(self) -> None:
        if self._error is not None:
            raise RuntimeError("uvicorn failed") from self._error
        if self._thread is not None and not self._thread.is_alive():
            raise RuntimeError("uvicorn stopped")

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(10)
        for sock in self._sockets:
            sock.close()
        if self._error is not None:
            raise RuntimeError("uvicorn failed") from self._error

    def __enter__(self) -> UvicornServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


_LISTENING = re.compile(r"Listening at: (\S+)")
_BOOTED = re.compile(r"Booting worker with pid: (\d+)")


class GunicornServer(_Server):
    """gunicorn (a real master and worker processes) serving a WSGI app factory.

    The app is loaded once in the master (``--preload``) so a broken app
    fails the start at once; each worker then opens its own connections.
    """

    def __init__(
        self,
        app: str,
        *,
        env: Mapping[str, str],
        workers: int = 1,
        worker_class: str = "gthread",
        threads: int = 8,
        hosts: Sequence[str] | None = None,
        health: str = "/health",
    ) -> None:
        self.app = app
        self.env = dict(env)
        self.workers = workers
        self.worker_class = worker_class
        self.threads = threads
        self.hosts = tuple(hosts) if hosts is not None else loopback_hosts()
        self.health = health
        self.ports = {}
        self.worker_pids: list[int] = []
        self._process: subprocess.Popen[bytes] | None = None
        self._workdir: tempfile.TemporaryDirectory[str] | None = None

    @property
    def log_path(self) -> Path:
        assert self._workdir is not None
        return Path(self._workdir.name) / "gunicorn.log"

    def log(self) -> str:
        path = self.log_path
        return path.read_text(errors="replace") if path.exists() else ""

    def start(self) -> GunicornServer:
        self._workdir = tempfile.TemporaryDirectory(prefix="apisec-gunicorn-")
        command = [sys.executable, "-m", "gunicorn", "--preload"]
        for host in self.hosts:
            command += ["--bind", f"{url_host(host)}:0"]
        command += [
            "--workers",
            str(self.workers),
            "--worker-class",
            self.worker_class,
            "--threads",
            str(self.threads),
            "--forwarded-allow-ips",
            "",
            "--graceful-timeout",
            "2",
            "--log-level",
            "info",
            "--error-logfile",
            str(self.log_path),
            "--worker-tmp-dir",
            self._workdir.name,
            self.app,
        ]
        self._process = subprocess.Popen(
            command,
            cwd=ROOT,
            env={**os.environ, **self.env},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            self._wait_booted()
            self.wait_healthy(self.health)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_booted(self) -> None:
        deadline = time.monotonic() + _STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            self.check_alive()
            text = self.log()
            listening = _LISTENING.search(text)
            booted = _BOOTED.findall(text)
            if listening is not None and len(booted) >= self.workers:
                self.worker_pids = [int(pid) for pid in booted]
                for url in listening.group(1).split(","):
                    host, _, port = url.removeprefix("http://").rpartition(":")
                    self.ports[f"{host.strip('[]')}#0"] = int(port)
                return
            time.sleep(0.02)
        raise RuntimeError(f"gunicorn did not boot; log:\n{self.log()}")

    def check_alive(self) -> None:
        if self._process is not None and self._process.poll() is not None:
            raise RuntimeError(f"gunicorn exited; log:\n{self.log()}")

    def stop(self) -> None:
        if self._process is not None:
            if self._process.poll() is None:
                self._process.send_signal(signal.SIGINT)  # quick shutdown: the tests are done
                try:
                    self._process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self._process.kill()
                    self._process.wait()
            self._process = None
        if self._workdir is not None:
            self._workdir.cleanup()
            self._workdir = None

    def __enter__(self) -> GunicornServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
