"""A real, throw-away redis-server on a free loopback port."""

from __future__ import annotations

import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

import redis


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RedisServer:
    """Starts ``redis-server`` bound to 127.0.0.1 with persistence off; stops it on exit."""

    def __init__(self, binary: str, *, startup_timeout: float = 10.0) -> None:
        self.binary = binary
        self.host = "127.0.0.1"
        self.port = 0
        self.startup_timeout = startup_timeout
        self._process: subprocess.Popen[bytes] | None = None
        self._workdir: tempfile.TemporaryDirectory[str] | None = None

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    def start(self) -> RedisServer:
        self._workdir = tempfile.TemporaryDirectory(prefix="apisec-redis-")
        # Retry on the rare race where another process grabs the port first.
        for _attempt in range(5):
            self.port = free_loopback_port()
            if self._spawn():
                return self
            self._terminate()
        raise RuntimeError(f"redis-server did not start; log:\n{self._log()}")

    def stop_process(self) -> None:
        """Kill the server but keep its port and directory, to test outages."""
        self._terminate()

    def restart(self) -> None:
        """Start a fresh server process on the same port (scripts and data are gone)."""
        self._terminate()
        if not self._spawn():
            raise RuntimeError(f"redis-server did not restart; log:\n{self._log()}")

    def _spawn(self) -> bool:
        assert self._workdir is not None
        self._process = subprocess.Popen(
            [
                self.binary,
                "--bind",
                self.host,
                "--port",
                str(self.port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
                "--protected-mode",
                "yes",
                "--dir",
                self._workdir.name,
                "--logfile",
                str(Path(self._workdir.name) / "redis.log"),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        return self._wait_ready()

    def _wait_ready(self) -> bool:
        assert self._process is not None
        deadline = time.monotonic() + self.startup_timeout
        client = redis.Redis(host=self.host, port=self.port, socket_timeout=1)
        try:
            while time.monotonic() < deadline:
                if self._process.poll() is not None:
                    return False
                try:
                    if client.ping():
                        return True
                except redis.ConnectionError:
                    time.sleep(0.02)
            return False
        finally:
            client.close()

    def _log(self) -> str:
        if self._workdir is None:
            return ""
        log = Path(self._workdir.name) / "redis.log"
        return log.read_text(errors="replace") if log.exists() else ""

    def _terminate(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None

    def stop(self) -> None:
        self._terminate()
        if self._workdir is not None:
            self._workdir.cleanup()
            self._workdir = None

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
