"""A real three-node Redis Cluster on loopback ports, for tests."""

from __future__ import annotations

import secrets
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import redis


def free_cluster_port() -> int:
    """A loopback port p with p + 10000 (the cluster bus port) free as well."""
    for _ in range(200):
        port = secrets.randbelow(30_000) + 20_000
        sockets = []
        try:
            for candidate in (port, port + 10_000):
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sockets.append(sock)
                sock.bind(("127.0.0.1", candidate))
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
        return port
    raise RuntimeError("no free port pair for a cluster node")


class RedisCluster:
    """Three ``redis-server --cluster-enabled yes`` joined by ``redis-cli --cluster create``."""

    def __init__(self, server_binary: str, cli_binary: str, nodes: int = 3) -> None:
        self.server_binary = server_binary
        self.cli_binary = cli_binary
        self.ports: list[int] = []
        self._processes: list[subprocess.Popen[bytes]] = []
        self._dir = tempfile.TemporaryDirectory(prefix="apisec-cluster-")
        self._nodes = nodes

    def start(self) -> RedisCluster:
        try:
            return self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> RedisCluster:
        for index in range(self._nodes):
            port = free_cluster_port()
            workdir = Path(self._dir.name) / str(index)
            workdir.mkdir()
            self._processes.append(
                subprocess.Popen(
                    [
                        self.server_binary,
                        "--bind",
                        "127.0.0.1",
                        "--port",
                        str(port),
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        "nodes.conf",
                        "--cluster-node-timeout",
                        "2000",
                        "--save",
                        "",
                        "--appendonly",
                        "no",
                        "--dir",
                        str(workdir),
                        "--logfile",
                        str(workdir / "redis.log"),
                    ],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
            self.ports.append(port)
        for port in self.ports:
            self._wait(lambda p=port: self._ask(p, "PING"))
        subprocess.run(
            [
                self.cli_binary,
                "--cluster",
                "create",
                *(f"127.0.0.1:{p}" for p in self.ports),
                "--cluster-replicas",
                "0",
                "--cluster-yes",
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
        self._wait(self._ready)
        return self

    @staticmethod
    def _ask(port: int, *command: str) -> object:
        client = redis.Redis(host="127.0.0.1", port=port)
        try:
            return client.execute_command(*command)  # type: ignore[no-untyped-call]
        finally:
            client.close()

    @classmethod
    def _ask_bytes(cls, port: int, *command: str) -> bytes:
        reply = cls._ask(port, *command)
        return reply if isinstance(reply, bytes) else str(reply).encode()

    def _ready(self) -> bool:
        return all(
            b"cluster_state:ok" in self._ask_bytes(port, "CLUSTER", "INFO") for port in self.ports
        )

    @staticmethod
    def _wait(check: object, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if callable(check) and check():
                    return
            except redis.RedisError:
                pass
            time.sleep(0.1)
        raise RuntimeError("redis cluster did not come up")

    def client(self) -> redis.cluster.RedisCluster:
        return redis.cluster.RedisCluster(host="127.0.0.1", port=self.ports[0])

    def stop(self) -> None:
        for process in self._processes:
            process.terminate()
        for process in self._processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
        self._dir.cleanup()
