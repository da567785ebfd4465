"""Safe outbound calls (OWASP API7 and API10): httpx transports that vet every hop.

Plug :class:`SafeTransport` (or :class:`AsyncSafeTransport`) into a plain
``httpx.Client`` (``AsyncClient``) and every request, and every redirect hop
the client follows, is vetted by the SSRF policy of :func:`apisec.ssrf.check_url`
before anything is sent:

* the name is resolved once per request and the connection is pinned to a
  vetted address: the network backend is handed that address, never the
  name, so a second DNS answer (rebinding) cannot be reached;
* TLS (SNI and certificate verification) and the ``Host`` header still use
  the name from the URL;
* a refused target raises :class:`apisec.ssrf.UnsafeURL` out of the client call;
* every network operation has a timeout and the whole exchange a deadline,
  even when the client disables its own; the response body is capped while
  it streams in;
* proxies from the environment are never used (a proxy resolves names
  itself); one can be given explicitly with ``proxy=``.

:func:`fetch_json` / :func:`afetch_json` consume a third-party JSON API
(API10): content type, strict parsing and a schema, each with its own error.
Needs the ``httpx`` extra: ``pip install 'apisec[httpx]'``.
"""

from __future__ import annotations

import contextvars
import math
import socket
import ssl
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from typing import Any, TypeVar, cast, overload

import attrs

try:
    import anyio
    import httpcore
    import httpx
except ImportError as exc:
    raise ImportError(
        "apisec.outbound needs the httpx extra: pip install 'apisec[httpx]'"
        f" ({exc.name or 'a dependency'} is missing)",
        name=exc.name,
    ) from exc

from apisec._async import is_async_callable
from apisec.errors import ApiSecError, ConfigurationError, PayloadTooLarge, ValidationError
from apisec.problems import FieldError
from apisec.ssrf import (
    AsyncResolver,
    IPNetwork,
    Resolver,
    SafeURL,
    _acheck,
    _check,
    _Policy,
    _refuse,
    system_resolver,
)
from apisec.validation import MalformedJSON, parse_json, validate
from apisec.validation._json import JSON_MEDIA_TYPE

__all__ = [
    "DEFAULT_MAX_JSON_BYTES",
    "DEFAULT_MAX_RESPONSE_BYTES",
    "DEFAULT_TIMEOUT",
    "DEFAULT_TOTAL_TIMEOUT",
    "AsyncSafeTransport",
    "InvalidResponse",
    "MalformedResponse",
    "OutboundError",
    "ResponseTimeout",
    "ResponseTooLarge",
    "SafeTransport",
    "UnexpectedContentType",
    "UnexpectedStatus",
    "afetch_json",
    "fetch_json",
]

#: The longest any one connect, read, write or pool wait may take (seconds).
DEFAULT_TIMEOUT = 10.0
#: The longest one exchange may take, from vetting to the last body byte (seconds).
DEFAULT_TOTAL_TIMEOUT = 60.0
#: The largest response body accepted, counted on the wire (bytes).
DEFAULT_MAX_RESPONSE_BYTES = 10 * 1024 * 1024
#: What :func:`fetch_json` accepts by default (decoded bytes).
DEFAULT_MAX_JSON_BYTES = 1024 * 1024

_T = TypeVar("_T")
_TIMEOUT_KEYS = ("connect", "read", "write", "pool")
_DEFAULT_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20)


class OutboundError(ApiSecError):
    """An outbound call returned something apisec refuses to use (502 to your client)."""

    status = 502
    slug = "bad-upstream-response"
    title = "Bad upstream response"


class ResponseTooLarge(OutboundError):
    """The response body is larger than allowed; reading stopped at the cap."""

    slug = "upstream-response-too-large"


class ResponseTimeout(OutboundError):
    """The exchange took longer than its deadline; it was cut off."""

    status = 504
    slug = "upstream-timeout"


class UnexpectedStatus(OutboundError):
    """The upstream answered with a status outside the expected ones."""

    slug = "upstream-unexpected-status"

    def __init__(self, message: str, *, status_code: int) -> None:
        super().__init__(message)
        self.status_code = status_code


class UnexpectedContentType(OutboundError):
    """The upstream response is not declared as JSON."""

    slug = "upstream-unexpected-content-type"


class MalformedResponse(OutboundError):
    """The upstream body is not acceptable JSON (see ``__cause__``)."""

    slug = "upstream-malformed-response"


class InvalidResponse(OutboundError):
    """The upstream JSON does not match the schema; ``errors`` says where."""

    slug = "upstream-invalid-response"

    def __init__(self, errors: Iterable[FieldError], message: str = "") -> None:
        self.errors: tuple[FieldError, ...] = tuple(errors)
        super().__init__(message or f"upstream response: {len(self.errors)} invalid field(s)")


# --- pinning -------------------------------------------------------------------------------


@attrs.frozen
class _Pin:
    """Where the current request may connect: the vetted addresses of one origin."""

    host: str
    port: int
    addresses: tuple[str, ...]
    deadline: float
    clock: Callable[[], float]

    def check(self, host: str, port: int) -> tuple[str, ...]:
        if (host, port) != (self.host, self.port):
            raise _refuse(f"connection to {host}:{port} was not vetted", "not_vetted", host)
        return self.addresses

    def timeout(self, timeout: float | None) -> float:
        remaining = self.deadline - self.clock()
        if remaining <= 0:
            raise ResponseTimeout("deadline passed before connecting")
        return remaining if timeout is None else min(timeout, remaining)


# Set around one request's trip through the connection pool; the pool connects
# in the same thread (sync) or task (async), so the backend sees this request's pin.
_PIN: contextvars.ContextVar[_Pin | None] = contextvars.ContextVar("apisec_outbound_pin")


def _current_pin(host: str, port: int) -> tuple[_Pin, tuple[str, ...]]:
    pin = _PIN.get(None)
    if pin is None:
        raise _refuse(f"connection to {host}:{port} was not vetted", "not_vetted", host)
    return pin, pin.check(host, port)


class _PinnedBackend(httpcore.NetworkBackend):
    """Connects to the vetted addresses of the current request, never to a name."""

    def __init__(self, inner: httpcore.NetworkBackend) -> None:
        self._inner = inner

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        pin, addresses = _current_pin(host, port)
        failure: Exception | None = None
        for address in addresses:
            try:
                return self._inner.connect_tcp(
                    address, port, pin.timeout(timeout), local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        raise failure or httpcore.ConnectError("no vetted address")

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        raise _refuse("unix sockets are not vetted", "not_vetted")

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class _AsyncPinnedBackend(httpcore.AsyncNetworkBackend):
    """The async twin of :class:`_PinnedBackend`."""

    def __init__(self, inner: httpcore.AsyncNetworkBackend) -> None:
        self._inner = inner

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        pin, addresses = _current_pin(host, port)
        failure: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    address, port, pin.timeout(timeout), local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        raise failure or httpcore.ConnectError("no vetted address")

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise _refuse("unix sockets are not vetted", "not_vetted")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


# --- the shared logic of both transports ---------------------------------------------------


class _Budget:
    """What one response may still use: bytes and time, checked per chunk."""

    __slots__ = ("_clock", "_deadline", "_left")

    def __init__(self, max_bytes: int, deadline: float, clock: Callable[[], float]) -> None:
        self._left = max_bytes
        self._deadline = deadline
        self._clock = clock

    def take(self, chunk: bytes) -> bytes:
        self._left -= len(chunk)
        if self._left < 0:
            raise ResponseTooLarge("response body over the size cap")
        if self._clock() > self._deadline:
            raise ResponseTimeout("response took longer than the total timeout")
        return chunk


class _LimitedStream(httpx.SyncByteStream):
    def __init__(self, inner: httpx.SyncByteStream, budget: _Budget) -> None:
        self._inner = inner
        self._budget = budget

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._inner:
            yield self._budget.take(chunk)

    def close(self) -> None:
        self._inner.close()


class _AsyncLimitedStream(httpx.AsyncByteStream):
    def __init__(self, inner: httpx.AsyncByteStream, budget: _Budget) -> None:
        self._inner = inner
        self._budget = budget

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._inner:
            yield self._budget.take(chunk)

    async def aclose(self) -> None:
        await self._inner.aclose()


def _positive(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigurationError(f"{name} must be a number of seconds")
    if not (math.isfinite(value) and value > 0):
        raise ConfigurationError(f"{name} must be positive and finite")
    return float(value)


@attrs.frozen(kw_only=True)
class _Guard:
    """Everything both transports decide; they differ only in the resolve and send calls."""

    policy: _Policy
    timeout: float
    total_timeout: float
    max_response_bytes: int
    clock: Callable[[], float]

    @classmethod
    def build(
        cls,
        *,
        allowed_schemes: Iterable[str],
        allow_hosts: Iterable[str] | None,
        allowed_ports: Iterable[int] | None,
        allow_networks: Iterable[str | IPNetwork],
        timeout: float,
        total_timeout: float,
        max_response_bytes: int,
        clock: Callable[[], float],
    ) -> _Guard:
        if (
            isinstance(max_response_bytes, bool)
            or not isinstance(max_response_bytes, int)
            or max_response_bytes <= 0
        ):
            raise ConfigurationError("max_response_bytes must be a positive integer")
        return cls(
            policy=_Policy.build(allowed_schemes, allow_hosts, allowed_ports, allow_networks),
            timeout=_positive("timeout", timeout),
            total_timeout=_positive("total_timeout", total_timeout),
            max_response_bytes=max_response_bytes,
            clock=clock,
        )

    def prepare(self, request: httpx.Request) -> tuple[str, float]:
        """Start the deadline, clamp the timeouts; the URL to vet and the deadline."""
        deadline = self.clock() + self.total_timeout
        given = request.extensions.get("timeout") or {}
        request.extensions["timeout"] = {
            key: self.timeout if given.get(key) is None else min(self.timeout, given[key])
            for key in _TIMEOUT_KEYS
        }
        return str(request.url), deadline

    def pin(self, request: httpx.Request, target: SafeURL, deadline: float) -> _Pin:
        """Where the vetted request may connect; TLS and ``Host`` must name the URL's host."""
        if "sni_hostname" in request.extensions:
            raise _refuse("the sni_hostname extension is not allowed", "host_mismatch")
        netloc = request.url.netloc.decode("ascii").lower()
        hosts = request.headers.get_list("host")
        if len(hosts) != 1 or hosts[0].lower() != netloc:
            raise _refuse("the Host header must name the URL's host", "host_mismatch")
        return _Pin(
            host=request.url.raw_host.decode("ascii"),
            port=target.port,
            addresses=tuple(str(a) for a in target.addresses),
            deadline=deadline,
            clock=self.clock,
        )

    def budget(self, request: httpx.Request, response: httpx.Response, deadline: float) -> _Budget:
        """Refuse a declared length over the cap before reading; else the per-chunk budget."""
        declared = response.headers.get("content-length", "")
        over = (
            declared.isascii()
            and declared.isdigit()
            and int(declared[:20]) > self.max_response_bytes
        )
        if request.method != "HEAD" and over:
            raise ResponseTooLarge(f"declared body of {declared[:20]} bytes over the size cap")
        return _Budget(self.max_response_bytes, deadline, self.clock)


def _sync_resolver(resolver: Resolver | None) -> Resolver:
    if resolver is not None and is_async_callable(resolver):
        raise ConfigurationError("SafeTransport needs a sync resolver; use AsyncSafeTransport")
    return resolver or system_resolver


def _async_resolver(resolver: AsyncResolver | None) -> AsyncResolver:
    if resolver is None:
        return _anyio_resolver
    if not is_async_callable(resolver):
        raise ConfigurationError("AsyncSafeTransport needs an async resolver (async def)")
    return resolver


async def _anyio_resolver(host: str, port: int) -> list[str]:
    """The system resolver in a worker thread, under asyncio and trio alike."""
    infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def _ssl_context(verify: ssl.SSLContext | bool) -> ssl.SSLContext:
    if not isinstance(verify, (ssl.SSLContext, bool)):
        raise ConfigurationError("verify must be an ssl.SSLContext or a bool")
    return httpx.create_ssl_context(verify=verify)


# --- the transports ------------------------------------------------------------------------


class SafeTransport(httpx.HTTPTransport):
    """An ``httpx.HTTPTransport`` that vets every request and pins it to what it vetted.

    Args:
        allowed_schemes, allow_hosts, allowed_ports, allow_networks: the SSRF
            policy, as in :func:`apisec.ssrf.check_url`.
        resolver: ``resolver(host, port) -> address strings`` (the system's by default).
        timeout: the longest any one connect, read, write or pool wait may
            take; the client's own timeouts apply when shorter.
        total_timeout: the deadline of one exchange, from vetting to the last
            body byte (checked per chunk; a silent peer is cut by ``timeout``).
        max_response_bytes: the body cap, counted on the wire while streaming.
        proxy: an explicit proxy. The proxy then resolves and connects by
            itself: vetting still runs, pinning cannot (use an egress proxy
            that enforces its own policy). Environment proxies are never used.
        verify: ``True``, ``False`` or an ``ssl.SSLContext`` (custom CAs, client certs).
        http2, limits, retries: as for ``httpx.HTTPTransport``.
        clock: monotonic seconds, for the total deadline (injectable for tests).

    Raises:
        ConfigurationError: for invalid options, when built.
    """

    def __init__(
        self,
        *,
        allowed_schemes: Iterable[str] = ("https",),
        allow_hosts: Iterable[str] | None = None,
        allowed_ports: Iterable[int] | None = None,
        allow_networks: Iterable[str | IPNetwork] = (),
        resolver: Resolver | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        total_timeout: float = DEFAULT_TOTAL_TIMEOUT,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        proxy: str | httpx.URL | httpx.Proxy | None = None,
        verify: ssl.SSLContext | bool = True,
        http2: bool = False,
        limits: httpx.Limits = _DEFAULT_LIMITS,
        retries: int = 0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._guard = _Guard.build(
            allowed_schemes=allowed_schemes,
            allow_hosts=allow_hosts,
            allowed_ports=allowed_ports,
            allow_networks=allow_networks,
            timeout=timeout,
            total_timeout=total_timeout,
            max_response_bytes=max_response_bytes,
            clock=clock,
        )
        self._resolver = _sync_resolver(resolver)
        context = _ssl_context(verify)
        super().__init__(verify=context, http2=http2, limits=limits, proxy=proxy, retries=retries)
        if proxy is None:
            self._pool = httpcore.ConnectionPool(
                ssl_context=context,
                max_connections=limits.max_connections,
                max_keepalive_connections=limits.max_keepalive_connections,
                keepalive_expiry=limits.keepalive_expiry,
                http2=http2,
                retries=retries,
                network_backend=_PinnedBackend(httpcore.SyncBackend()),
            )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Vet ``request`` (every hop comes through here), then send it pinned."""
        url, deadline = self._guard.prepare(request)
        target = _check(self._guard.policy, url, self._resolver)
        token = _PIN.set(self._guard.pin(request, target, deadline))
        try:
            response = super().handle_request(request)
        finally:
            _PIN.reset(token)
        try:
            budget = self._guard.budget(request, response, deadline)
        except ResponseTooLarge:
            response.close()
            raise
        response.stream = _LimitedStream(cast(httpx.SyncByteStream, response.stream), budget)
        return response


class AsyncSafeTransport(httpx.AsyncHTTPTransport):
    """The async twin of :class:`SafeTransport` (same options, same checks).

    ``resolver`` is an ``async def resolver(host, port)``; by default the
    system resolver runs in a worker thread (asyncio or trio), never on the loop.
    """

    def __init__(
        self,
        *,
        allowed_schemes: Iterable[str] = ("https",),
        allow_hosts: Iterable[str] | None = None,
        allowed_ports: Iterable[int] | None = None,
        allow_networks: Iterable[str | IPNetwork] = (),
        resolver: AsyncResolver | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        total_timeout: float = DEFAULT_TOTAL_TIMEOUT,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        proxy: str | httpx.URL | httpx.Proxy | None = None,
        verify: ssl.SSLContext | bool = True,
        http2: bool = False,
        limits: httpx.Limits = _DEFAULT_LIMITS,
        retries: int = 0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._guard = _Guard.build(
            allowed_schemes=allowed_schemes,
            allow_hosts=allow_hosts,
            allowed_ports=allowed_ports,
            allow_networks=allow_networks,
            timeout=timeout,
            total_timeout=total_timeout,
            max_response_bytes=max_response_bytes,
            clock=clock,
        )
        self._resolver = _async_resolver(resolver)
        context = _ssl_context(verify)
        super().__init__(verify=context, http2=http2, limits=limits, proxy=proxy, retries=retries)
        if proxy is None:
            self._pool = httpcore.AsyncConnectionPool(
                ssl_context=context,
                max_connections=limits.max_connections,
                max_keepalive_connections=limits.max_keepalive_connections,
                keepalive_expiry=limits.keepalive_expiry,
                http2=http2,
                retries=retries,
                network_backend=_AsyncPinnedBackend(httpcore.AnyIOBackend()),
            )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Vet ``request`` (every hop comes through here), then send it pinned."""
        url, deadline = self._guard.prepare(request)
        target = await _acheck(self._guard.policy, url, self._resolver)
        token = _PIN.set(self._guard.pin(request, target, deadline))
        try:
            response = await super().handle_async_request(request)
        finally:
            _PIN.reset(token)
        try:
            budget = self._guard.budget(request, response, deadline)
        except ResponseTooLarge:
            await response.aclose()
            raise
        response.stream = _AsyncLimitedStream(cast(httpx.AsyncByteStream, response.stream), budget)
        return response


# --- API10: consuming third-party JSON -----------------------------------------------------


@attrs.frozen(kw_only=True)
class _JsonFetch:
    """The checks of :func:`fetch_json`, shared by its sync and async drivers."""

    max_bytes: int
    max_depth: int
    expected_status: frozenset[int] | None
    allow_unknown: bool

    def request_options(self, options: dict[str, Any]) -> dict[str, Any]:
        headers = httpx.Headers(options.pop("headers", None))
        headers.setdefault("Accept", "application/json")
        return {**options, "headers": headers}

    def check_head(self, response: httpx.Response) -> None:
        status = response.status_code
        expected = self.expected_status
        if not (200 <= status < 300 if expected is None else status in expected):
            raise UnexpectedStatus(f"upstream answered {status}", status_code=status)
        media_type = response.headers.get("content-type", "").split(";", 1)[0].strip()
        if JSON_MEDIA_TYPE.fullmatch(media_type) is None:
            raise UnexpectedContentType(f"upstream content type {media_type[:60]!r} is not JSON")

    def add(self, body: bytearray, chunk: bytes) -> None:
        body += chunk
        if len(body) > self.max_bytes:
            raise ResponseTooLarge(f"upstream JSON over {self.max_bytes} bytes")

    def finish(self, body: bytes, schema: type[Any] | None) -> Any:
        try:
            data = parse_json(body, max_bytes=self.max_bytes, max_depth=self.max_depth)
        except MalformedJSON as exc:
            raise MalformedResponse(f"upstream JSON refused: {exc.message}") from exc
        except PayloadTooLarge as exc:  # pragma: no cover - add() stops first
            raise ResponseTooLarge(exc.message) from exc
        if schema is None:
            return data
        try:
            return validate(schema, data, allow_unknown=self.allow_unknown)
        except ValidationError as exc:
            raise InvalidResponse(exc.errors) from exc


def _json_fetch(
    max_bytes: int, max_depth: int, expected_status: Iterable[int] | None, allow_unknown: bool
) -> _JsonFetch:
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes <= 0:
        raise ConfigurationError("max_bytes must be a positive integer")
    return _JsonFetch(
        max_bytes=max_bytes,
        max_depth=max_depth,
        expected_status=None if expected_status is None else frozenset(expected_status),
        allow_unknown=allow_unknown,
    )


@overload
def fetch_json(
    client: httpx.Client,
    url: str | httpx.URL,
    schema: None = None,
    *,
    method: str = ...,
    max_bytes: int = ...,
    max_depth: int = ...,
    expected_status: Iterable[int] | None = ...,
    allow_unknown: bool = ...,
    **options: Any,
) -> Any: ...
@overload
def fetch_json(
    client: httpx.Client,
    url: str | httpx.URL,
    schema: type[_T],
    *,
    method: str = ...,
    max_bytes: int = ...,
    max_depth: int = ...,
    expected_status: Iterable[int] | None = ...,
    allow_unknown: bool = ...,
    **options: Any,
) -> _T: ...
def fetch_json(
    client: httpx.Client,
    url: str | httpx.URL,
    schema: type[Any] | None = None,
    *,
    method: str = "GET",
    max_bytes: int = DEFAULT_MAX_JSON_BYTES,
    max_depth: int = 32,
    expected_status: Iterable[int] | None = None,
    allow_unknown: bool = True,
    **options: Any,
) -> Any:
    """Fetch JSON from a third party and trust it only once it passed every check.

    Use a client built on :class:`SafeTransport`. In order: the status must be
    2xx (or in ``expected_status``), else :class:`UnexpectedStatus`; the
    content type JSON, else :class:`UnexpectedContentType` (the body is not
    read); the decoded body at most ``max_bytes``, else :class:`ResponseTooLarge`
    (reading stops there); the body strict JSON (:func:`apisec.validation.parse_json`:
    depth, duplicate keys, ...), else :class:`MalformedResponse`; and, with a
    ``schema`` (an attrs class, as for :func:`apisec.validation.validate`), valid,
    else :class:`InvalidResponse` with every field error. Fields the schema does
    not name are dropped unless ``allow_unknown=False`` refuses them.
    ``options`` go to ``client.stream`` (``params``, ``json``, ``headers``...).

    Returns:
        The schema instance, or the parsed JSON when no schema is given.
    """
    plan = _json_fetch(max_bytes, max_depth, expected_status, allow_unknown)
    body = bytearray()
    with client.stream(method, url, **plan.request_options(options)) as response:
        plan.check_head(response)
        for chunk in response.iter_bytes():
            plan.add(body, chunk)
    return plan.finish(bytes(body), schema)


@overload
async def afetch_json(
    client: httpx.AsyncClient,
    url: str | httpx.URL,
    schema: None = None,
    *,
    method: str = ...,
    max_bytes: int = ...,
    max_depth: int = ...,
    expected_status: Iterable[int] | None = ...,
    allow_unknown: bool = ...,
    **options: Any,
) -> Any: ...
@overload
async def afetch_json(
    client: httpx.AsyncClient,
    url: str | httpx.URL,
    schema: type[_T],
    *,
    method: str = ...,
    max_bytes: int = ...,
    max_depth: int = ...,
    expected_status: Iterable[int] | None = ...,
    allow_unknown: bool = ...,
    **options: Any,
) -> _T: ...
async def afetch_json(
    client: httpx.AsyncClient,
    url: str | httpx.URL,
    schema: type[Any] | None = None,
    *,
    method: str = "GET",
    max_bytes: int = DEFAULT_MAX_JSON_BYTES,
    max_depth: int = 32,
    expected_status: Iterable[int] | None = None,
    allow_unknown: bool = True,
    **options: Any,
) -> Any:
    """The async twin of :func:`fetch_json` (same checks, same errors)."""
    plan = _json_fetch(max_bytes, max_depth, expected_status, allow_unknown)
    body = bytearray()
    async with client.stream(method, url, **plan.request_options(options)) as response:
        plan.check_head(response)
        async for chunk in response.aiter_bytes():
            plan.add(body, chunk)
    return plan.finish(bytes(body), schema)
