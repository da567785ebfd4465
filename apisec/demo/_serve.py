"""Serve the demo: two uvicorn servers on one event loop, stopped by SIGINT or SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import signal
import socket
import sys
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import attrs

from apisec._types import ASGIApp
from apisec.demo._api import (
    KEY_SCOPES,
    PRINCIPAL_LIMIT,
    PRINCIPAL_WINDOW,
    USER_SCOPES,
    WEBHOOK_PATH,
    DemoCredentials,
    build_api,
)
from apisec.demo._web import build_web
from apisec.errors import ConfigurationError

__all__ = ["DemoConfig", "run"]


def _port(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 65535:
        raise ConfigurationError("ports are integers from 0 (any free port) to 65535")
    return value


@attrs.frozen(kw_only=True)
class DemoConfig:
    """Where the demo listens and where it keeps its state.

    Args:
        host: the interface for both servers (loopback by default).
        port: the API's port (0: any free port).
        web_port: the page's port, another origin (0: any free port).
        redis_url: ``redis://host:port/db`` to keep every store in Redis; None for memory.
    """

    host: str = "127.0.0.1"
    port: int = attrs.field(default=8000, converter=_port)
    web_port: int = attrs.field(default=8001, converter=_port)
    redis_url: str | None = attrs.field(default=None, repr=False)

    def __attrs_post_init__(self) -> None:
        if self.port == self.web_port != 0:
            raise ConfigurationError("the API and the page need two different ports")


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family, backlog=128)
    except OSError as exc:
        raise ConfigurationError(f"cannot listen on {host} port {port}: {exc.strerror}") from None


def _origin(host: str, sock: socket.socket) -> str:
    """The origin browsers use for a listening socket (an unspecified address -> loopback)."""
    port = sock.getsockname()[1]
    shown = host
    with contextlib.suppress(ValueError):
        ip = ipaddress.ip_address(host)
        if ip.is_unspecified:
            ip = ipaddress.ip_address("::1" if ip.version == 6 else "127.0.0.1")
        shown = f"[{ip}]" if ip.version == 6 else str(ip)
    return f"http://{shown}:{port}"


def _redis_label(url: str) -> str:
    """Host, port and database of a Redis URL, never its password."""
    parts = urlsplit(url)
    return f"{parts.hostname or 'localhost'}:{parts.port or 6379}{parts.path or '/0'}"


async def _redis(url: str) -> Any:
    try:
        import redis.asyncio  # noqa: PLC0415 - optional: pip install 'apisec[demo]'
    except ImportError:
        raise ConfigurationError("--redis needs redis-py: pip install 'apisec[demo]'") from None
    try:
        client = redis.asyncio.Redis.from_url(url)
    except ValueError:
        raise ConfigurationError("--redis takes a URL such as redis://127.0.0.1:6379/0") from None
    try:
        await client.ping()
    except (redis.RedisError, OSError):
        await client.aclose()
        raise ConfigurationError(f"cannot reach Redis at {_redis_label(url)}") from None
    return client


def _configure_logging(json_output: bool) -> None:
    """Security events on stderr, so a person watching sees them; uvicorn's notices quieter."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    library = logging.getLogger("apisec")
    library.addHandler(handler)
    library.setLevel(logging.WARNING if json_output else logging.INFO)
    logging.getLogger("uvicorn.error").setLevel(logging.WARNING)


def _banner(api: str, web: str, store: str, creds: DemoCredentials) -> str:
    host = urlsplit(api).hostname or ""
    note = (
        ""
        if host in ("127.0.0.1", "::1", "localhost")
        else "Note: over plain HTTP, browsers keep the __Host- refresh cookie only on loopback.\n"
    )
    login = json.dumps({"username": creds.username, "password": creds.password})
    token = (
        f"TOKEN=$(curl -s -c jar -H 'Content-Type: application/json' -d '{login}' {api}/auth/login"
        " | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"access_token\"])')"
    )
    return f"""\
apisec demo: an API protected by apisec, and a page on another origin that calls it.

  API   {api}    (state: {store})
  page  {web}    <- open this in your browser

Made for this run, shown once:
  user            {creds.username}  (scopes: {" ".join(USER_SCOPES)})
  password        {creds.password}
  API key         {creds.api_key}  (scopes: {" ".join(KEY_SCOPES)})
  webhook secret  {creds.webhook_secret}  (Standard Webhooks, POST {WEBHOOK_PATH})

Try it with curl:
  curl -i {api}/api/orders                                   # 401 problem+json
  {token}
  curl -i -H "Authorization: Bearer $TOKEN" {api}/api/orders        # 200, RateLimit headers
  curl -i -X POST -H "Authorization: Bearer $TOKEN" {api}/api/orders   # 403 insufficient_scope
  curl -i -b jar -c jar -X POST {api}/auth/refresh            # new access token, rotated cookie
  curl -i -H 'X-API-Key: {creds.api_key}' {api}/api/reports
  for i in $(seq 12); do curl -s -o /dev/null -w '%{{http_code}} ' \\
      -H "Authorization: Bearer $TOKEN" {api}/api/orders; done; echo   # ... 429
  printf '{{"type":"demo.ping"}}' > body.json; printf '%s' '{creds.webhook_secret}' > whsec.txt
  apisec webhook sign --secret-file whsec.txt body.json > headers.txt
  curl -i -H @headers.txt --data-binary @body.json {api}{WEBHOOK_PATH}   # 202

Every caller may make {PRINCIPAL_LIMIT} calls in {PRINCIPAL_WINDOW:g} s. Ctrl-C stops both servers.
{note}"""


async def _serve(
    config: DemoConfig, sockets: tuple[socket.socket, socket.socket], json_output: bool
) -> None:
    import uvicorn  # noqa: PLC0415 - optional: pip install 'apisec[demo]'

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield  # one handler for both servers is installed below

    api_sock, web_sock = sockets
    api_origin, web_origin = _origin(config.host, api_sock), _origin(config.host, web_sock)
    client = None if config.redis_url is None else await _redis(config.redis_url)
    try:
        demo = await build_api(
            api_origin=api_origin, web_origin=web_origin, redis_client=client, hasher=None
        )
        apps: list[tuple[ASGIApp, socket.socket]] = [
            (demo.app, api_sock),
            (build_web(api_origin), web_sock),
        ]
        servers = [
            Server(
                uvicorn.Config(
                    app,
                    lifespan="off",
                    log_level="warning" if json_output else "info",
                    access_log=not json_output,
                    proxy_headers=False,  # the client is the socket peer: nothing is forwarded
                    server_header=False,
                    timeout_graceful_shutdown=5,
                )
            )
            for app, _ in apps
        ]
        _configure_logging(json_output)

        loop = asyncio.get_running_loop()

        def stop() -> None:
            for server in servers:
                server.force_exit = server.should_exit  # a second Ctrl-C: do not wait
                server.should_exit = True

        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop)
        creds = demo.credentials
        store = (
            "memory" if config.redis_url is None else f"Redis at {_redis_label(config.redis_url)}"
        )
        if json_output:
            print(
                json.dumps(
                    {
                        "api": api_origin,
                        "web": web_origin,
                        "store": "memory" if client is None else "redis",
                        "username": creds.username,
                        "password": creds.password,
                        "api_key": creds.api_key,
                        "webhook_secret": creds.webhook_secret,
                        "webhook_path": WEBHOOK_PATH,
                    }
                ),
                flush=True,
            )
        else:
            print(_banner(api_origin, web_origin, store, creds), flush=True)
        try:
            await asyncio.gather(
                *(
                    server.serve(sockets=[sock])
                    for server, (_, sock) in zip(servers, apps, strict=True)
                )
            )
        finally:
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(signum)
    finally:
        if client is not None:
            await client.aclose()


def run(config: DemoConfig, *, json_output: bool = False) -> int:
    """Start the API and the page, serve until SIGINT/SIGTERM, return the exit code (0).

    Raises:
        ConfigurationError: a port is taken, Redis is unreachable, uvicorn is missing.
    """
    try:
        import uvicorn  # noqa: F401, PLC0415
    except ImportError:
        raise ConfigurationError("the demo needs uvicorn: pip install 'apisec[demo]'") from None
    api_sock = _bind(config.host, config.port)
    try:
        web_sock = _bind(config.host, config.web_port)
    except ConfigurationError:
        api_sock.close()
        raise
    with api_sock, web_sock:
        asyncio.run(_serve(config, (api_sock, web_sock), json_output))
    if not json_output:
        print("apisec demo: stopped", file=sys.stderr)
    return 0
