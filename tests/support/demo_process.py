"""`apisec demo` as a real process on free loopback ports, for the demo and browser tests."""

from __future__ import annotations

import json
import selectors
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import attrs

APISEC = Path(sys.executable).with_name("apisec")


@attrs.frozen
class DemoInfo:
    """What the demo printed at start (``--json``): its two origins and the seeded secrets."""

    api: str
    web: str
    store: str
    username: str
    password: str = attrs.field(repr=False)
    api_key: str = attrs.field(repr=False)
    webhook_secret: str = attrs.field(repr=False)
    webhook_path: str


@attrs.frozen
class Stopped:
    returncode: int
    stderr: str


class DemoProcess:
    """Start ``apisec demo --port 0 --web-port 0 --json [extra...]``; stop it with a signal.

    Usage: ``with DemoProcess() as demo:`` then ``demo.info`` (the origins and
    the seeded credentials) and ``demo.stop()`` (SIGINT by default), which
    returns the exit code and everything the demo wrote to stderr.
    """

    def __init__(self, *extra: str, startup_timeout: float = 60.0) -> None:
        self.args = [str(APISEC), "demo", "--port", "0", "--web-port", "0", "--json", *extra]
        self.startup_timeout = startup_timeout
        self._process: subprocess.Popen[bytes] | None = None
        self._stderr: IO[bytes] | None = None
        self.info: DemoInfo | None = None

    def start(self) -> DemoInfo:
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - closed by __exit__
        self._process = subprocess.Popen(
            self.args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self._stderr
        )
        line = self._first_line()
        try:
            data: dict[str, Any] = json.loads(line)
        except ValueError:
            self.stop(signal.SIGKILL)
            raise RuntimeError(f"the demo did not start: {line!r} {self._read_stderr()}") from None
        self.info = DemoInfo(**data)
        return self.info

    def _first_line(self) -> str:
        assert self._process is not None and self._process.stdout is not None
        stdout = self._process.stdout
        deadline = time.monotonic() + self.startup_timeout
        with selectors.DefaultSelector() as selector:
            selector.register(stdout, selectors.EVENT_READ)
            while time.monotonic() < deadline:
                if selector.select(timeout=0.1):
                    return stdout.readline().decode()
                if self._process.poll() is not None:
                    break
        return ""

    def _read_stderr(self) -> str:
        assert self._stderr is not None
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace")

    def stop(self, signum: int = signal.SIGINT, timeout: float = 20.0) -> Stopped:
        """Send ``signum`` and wait for the exit (killed after ``timeout``)."""
        assert self._process is not None
        if self._process.poll() is None:
            self._process.send_signal(signum)
            try:
                self._process.wait(timeout)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        if self._process.stdout is not None:
            self._process.stdout.close()
        return Stopped(self._process.returncode, self._read_stderr())

    def __enter__(self) -> DemoProcess:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._process is not None and self._process.poll() is None:
            self.stop(signal.SIGKILL)
        if self._stderr is not None:
            self._stderr.close()
