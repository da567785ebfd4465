"""Outbound transports against real servers on loopback: vetting, pinning, TLS, limits."""

from __future__ import annotations

import contextlib
import gzip
import json
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from apisec import ConfigurationError
from apisec.outbound import (
    AsyncSafeTransport,
    ResponseTimeout,
    ResponseTooLarge,
    SafeTransport,
)
from apisec.ssrf import UnsafeURL
from apisec.testing import FakeClock
from tests.support.http_servers import Handler, LoopbackServer
from tests.support.tls import ThrowawayCA
from tests.test_ssrf import BYPASSES

LOOPBACK = ["127.0.0.1/32"]  # the one address test servers may be reached on
HTTP = ["http", "https"]


class Resolver:
    """A resolver that answers from a script (the last answer repeats) and counts its calls."""

    def __init__(self, *answers: list[str]) -> None:
        self.answers = list(answers)
        self.calls: list[tuple[str, int]] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.calls.append((host, port))
        return self.answers[min(len(self.calls), len(self.answers)) - 1]

    async def aresolve(self, host: str, port: int) -> list[str]:
        return self(host, port)


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    """An allowed test server on 127.0.0.1."""
    with LoopbackServer("127.0.0.1") as running:
        yield running


@pytest.fixture
def internal() -> Iterator[LoopbackServer]:
    """A server on 127.0.0.2: loopback, and never in the tests' allowed networks."""
    with LoopbackServer("127.0.0.2") as running:
        yield running


@pytest.fixture(scope="module")
def ca() -> ThrowawayCA:
    return ThrowawayCA.create()


def client(**options: Any) -> httpx.Client:
    """A plain httpx client over a SafeTransport that allows http and the test server."""
    options.setdefault("allowed_schemes", HTTP)
    options.setdefault("allow_networks", LOOPBACK)
    follow = options.pop("follow_redirects", True)
    return httpx.Client(transport=SafeTransport(**options), follow_redirects=follow)


def async_client(resolver: Resolver | None = None, **options: Any) -> httpx.AsyncClient:
    options.setdefault("allowed_schemes", HTTP)
    options.setdefault("allow_networks", LOOPBACK)
    if resolver is not None:
        options["resolver"] = resolver.aresolve
    return httpx.AsyncClient(transport=AsyncSafeTransport(**options), follow_redirects=True)


class TestRefusals:
    """Internal targets are refused with UnsafeURL, raised out of the client call."""

    def test_a_public_looking_name_that_resolves_to_loopback_is_refused(
        self, server: LoopbackServer
    ) -> None:
        """api.example.com answering 127.0.0.1 is refused; the server there sees nothing."""
        dns = Resolver(["127.0.0.1"])
        with client(resolver=dns, allow_networks=()) as http, pytest.raises(UnsafeURL) as caught:
            http.get(server.url(host="api.example.com"))
        assert caught.value.reason == "loopback"
        assert server.seen == []
        assert dns.calls == [("api.example.com", server.port)]

    async def test_the_async_transport_refuses_it_too(self, server: LoopbackServer) -> None:
        """The same refusal through AsyncSafeTransport and httpx.AsyncClient."""
        async with async_client(Resolver(["127.0.0.1"]), allow_networks=()) as http:
            with pytest.raises(UnsafeURL) as caught:
                await http.get(server.url(host="api.example.com"))
        assert caught.value.reason == "loopback"
        assert server.seen == []

    @pytest.mark.parametrize(("url", "reason"), BYPASSES)
    def test_the_ssrf_spellings_are_refused_through_the_transport(
        self, url: str, reason: str
    ) -> None:
        """Every spelling check_url refuses is refused by httpx itself or by the transport."""
        # httpx rewrites these before the transport sees them; the transport vets
        # httpx's reading (the one it would connect to), so the reason follows it.
        httpx_reads = {
            "https://example.com\\@127.0.0.1/": "credentials",  # "\" percent-encoded in userinfo
            "https:/127.0.0.1/": "scheme",  # a relative URL to httpx
            "https:127.0.0.1/": "scheme",
            "https://example.com:+443/": "loopback",  # port 443; our resolver says loopback
        }
        dns = Resolver(["127.0.0.1"])  # any name that got through would still be refused
        with httpx.Client(transport=SafeTransport(resolver=dns)) as http:
            try:
                http.get(url)
            except httpx.InvalidURL:
                return  # httpx refused to build the request: nothing was sent
            except UnsafeURL as err:
                assert err.reason == httpx_reads.get(url, reason)
            else:
                raise AssertionError(f"{url} was fetched")

    def test_most_spellings_reach_the_transport(self) -> None:
        """The test above is not vacuous: httpx itself refuses only a few of the spellings."""
        refused_by_httpx = 0
        for url, _ in BYPASSES:
            try:
                httpx.URL(url)
            except httpx.InvalidURL:
                refused_by_httpx += 1
        assert refused_by_httpx < len(BYPASSES) // 4

    def test_a_host_header_naming_another_host_is_refused(self, server: LoopbackServer) -> None:
        """A Host header or sni_hostname that differs from the vetted URL's host is refused."""
        with client() as http:
            for request in (
                http.build_request("GET", server.url(), headers={"Host": "admin.internal"}),
                http.build_request("GET", server.url(), extensions={"sni_hostname": "admin.in"}),
            ):
                with pytest.raises(UnsafeURL) as caught:
                    http.send(request)
                assert caught.value.reason == "host_mismatch"
        assert server.seen == []

    def test_refusals_are_audited(self, server: LoopbackServer, audit_records: list[Any]) -> None:
        """A refused hop emits ssrf.blocked, like check_url."""
        with client(allow_networks=()) as http, pytest.raises(UnsafeURL):
            http.get(server.url())
        assert [getattr(r, "event", None) for r in audit_records] == ["ssrf.blocked"]


class TestRedirects:
    """httpx follows redirects through the transport, so every hop is vetted."""

    @pytest.mark.parametrize(
        ("location", "reason"),
        [
            ("http://169.254.169.254/latest/meta-data/", "metadata"),
            ("http://169.254.1.1/", "link_local"),
            ("http://[::1]:{port}/", "loopback"),
            ("http://10.0.0.1/", "private"),
            ("file:///etc/passwd", "scheme"),
        ],
    )
    def test_a_redirect_to_a_refused_target_is_refused_at_the_hop(
        self, server: LoopbackServer, location: str, reason: str
    ) -> None:
        """An allowed server redirecting inward gets UnsafeURL at that hop."""

        @server.route("/hop")
        def hop(h: Handler) -> None:
            h.reply(302, headers={"Location": location.format(port=server.port)})

        with client() as http, pytest.raises((UnsafeURL, httpx.UnsupportedProtocol)) as caught:
            http.get(server.url("/hop"))
        if isinstance(caught.value, UnsafeURL):
            assert caught.value.reason == reason
        assert [s.path for s in server.seen] == ["/hop"]

    def test_a_redirect_to_a_loopback_server_is_refused_before_it_is_contacted(
        self, server: LoopbackServer, internal: LoopbackServer
    ) -> None:
        """A redirect to a live server outside the allowed networks never reaches it."""

        @server.route("/hop")
        def hop(h: Handler) -> None:
            h.reply(307, headers={"Location": internal.url("/admin")})

        with client() as http, pytest.raises(UnsafeURL) as caught:
            http.post(server.url("/hop"), content=b"payload")
        assert caught.value.reason == "loopback"
        assert internal.seen == []

    def test_a_redirect_to_a_name_is_resolved_and_vetted_at_the_hop(
        self, server: LoopbackServer
    ) -> None:
        """Each hop is resolved once; a hop whose name answers inward is refused."""

        @server.route("/hop")
        def hop(h: Handler) -> None:
            h.reply(302, headers={"Location": f"http://evil.example:{server.port}/"})

        dns = Resolver(["127.0.0.1"], ["127.0.0.2"])  # first hop fine, second inward
        with client(resolver=dns) as http, pytest.raises(UnsafeURL) as caught:
            http.get(server.url("/hop", host="partner.example"))
        assert caught.value.reason == "loopback"
        assert dns.calls == [("partner.example", server.port), ("evil.example", server.port)]

    def test_allowed_hops_are_followed_and_each_is_vetted(self, server: LoopbackServer) -> None:
        """A chain of allowed redirects works, with one resolution per hop."""

        @server.route("/a")
        def first(h: Handler) -> None:
            h.reply(302, headers={"Location": "/b"})

        @server.route("/b")
        def second(h: Handler) -> None:
            h.reply(302, headers={"Location": f"http://other.example:{server.port}/c"})

        dns = Resolver(["127.0.0.1"])
        with client(resolver=dns) as http:
            response = http.get(server.url("/a", host="partner.example"))
        assert response.json()["host"] == f"other.example:{server.port}"
        assert [s.path for s in server.seen] == ["/a", "/b", "/c"]
        assert [host for host, _ in dns.calls] == [
            "partner.example",
            "partner.example",
            "other.example",
        ]

    async def test_async_hops_are_vetted_too(
        self, server: LoopbackServer, internal: LoopbackServer
    ) -> None:
        """AsyncClient's redirects go through AsyncSafeTransport's vetting."""

        @server.route("/hop")
        def hop(h: Handler) -> None:
            h.reply(302, headers={"Location": internal.url("/admin")})

        async with async_client() as http:
            with pytest.raises(UnsafeURL):
                await http.get(server.url("/hop"))
        assert internal.seen == []


class TestPinning:
    """The connection goes to the address that was vetted, resolved once per request."""

    def test_dns_rebinding_cannot_reach_the_second_answer(
        self, server: LoopbackServer, internal: LoopbackServer
    ) -> None:
        """First answer allowed, every later one internal: the request reaches the first only."""
        dns = Resolver(["127.0.0.1"], ["127.0.0.2"])
        with client(resolver=dns) as http:
            response = http.get(server.url("/feed", host="rebind.example"))
            assert response.json()["path"] == "/feed"
            assert len(dns.calls) == 1  # resolved once for the request, then pinned
            with pytest.raises(UnsafeURL):  # the next request resolves again, and is refused
                http.get(server.url("/feed", host="rebind.example"))
        assert [s.path for s in server.seen] == ["/feed"]
        assert internal.seen == []

    async def test_async_rebinding_cannot_reach_the_second_answer(
        self, server: LoopbackServer, internal: LoopbackServer
    ) -> None:
        """The async transport resolves once through the async resolver and pins."""
        dns = Resolver(["127.0.0.1"], ["127.0.0.2"])
        async with async_client(dns) as http:
            response = await http.get(server.url("/feed", host="rebind.example"))
        assert response.status_code == 200
        assert len(dns.calls) == 1
        assert internal.seen == []

    def test_the_next_vetted_address_is_tried_when_one_refuses(
        self, server: LoopbackServer
    ) -> None:
        """Several vetted answers: a refused connection falls through to the next one."""
        dns = Resolver(["127.0.0.3", "127.0.0.1"])  # nothing listens on 127.0.0.3
        with client(resolver=dns, allow_networks=["127.0.0.0/8"]) as http:
            assert http.get(server.url(host="multi.example")).status_code == 200

    def test_ipv6_literals_and_ipv6_answers_are_pinned_too(self) -> None:
        """A bracketed ::1 URL and a name answering ::1 both reach the server on [::1]."""
        with LoopbackServer("::1") as v6:
            dns = Resolver(["::1"])
            with client(resolver=dns, allow_networks=["::1/128"]) as http:
                assert http.get(v6.url("/literal")).json()["host"] == f"[::1]:{v6.port}"
                assert http.get(v6.url("/name", host="v6.example")).status_code == 200
            with client(resolver=dns) as http, pytest.raises(UnsafeURL):
                http.get(v6.url("/refused", host="v6.example"))
        assert [s.path for s in v6.seen] == ["/literal", "/name"]
        assert dns.calls == [("v6.example", v6.port), ("v6.example", v6.port)]

    def test_the_backend_refuses_connections_nobody_vetted(self, server: LoopbackServer) -> None:
        """The pinned backend opens nothing outside a vetted request, nor for another origin."""
        import httpcore

        from apisec.outbound import _PIN, _Pin, _PinnedBackend

        backend = _PinnedBackend(httpcore.SyncBackend())
        with pytest.raises(UnsafeURL) as caught:
            backend.connect_tcp("127.0.0.1", server.port)
        assert caught.value.reason == "not_vetted"
        pin = _Pin("partner.example", 443, ("127.0.0.1",), deadline=1e9, clock=lambda: 0.0)
        token = _PIN.set(pin)
        try:
            with pytest.raises(UnsafeURL):
                backend.connect_tcp("127.0.0.1", server.port)
        finally:
            _PIN.reset(token)
        assert server.seen == []

    def test_each_request_is_vetted_even_on_a_kept_alive_connection(
        self, server: LoopbackServer
    ) -> None:
        """Two requests share one TCP connection, and each one was resolved and vetted."""
        dns = Resolver(["127.0.0.1"])
        with client(resolver=dns) as http:
            http.get(server.url("/1", host="keep.example"))
            http.get(server.url("/2", host="keep.example"))
        assert len({s.client_port for s in server.seen}) == 1
        assert len(dns.calls) == 2


class TestTLS:
    """TLS checks the URL's name while the socket goes to the vetted address."""

    def test_the_certificate_is_verified_against_the_original_name(self, ca: ThrowawayCA) -> None:
        """A server on 127.0.0.1 with a certificate for api.partner.test is reached by name."""
        with LoopbackServer("127.0.0.1", tls=ca.server_context("api.partner.test")) as tls:
            dns = Resolver(["127.0.0.1"])
            with client(resolver=dns, verify=ca.client_context()) as http:
                response = http.get(tls.url("/secure", host="api.partner.test"))
            assert response.json() == {
                "path": "/secure",
                "host": f"api.partner.test:{tls.port}",
                "method": "GET",
            }
            assert tls.server_names == ["api.partner.test"]  # SNI names the host, not the IP

    def test_a_certificate_for_another_name_is_refused(self, ca: ThrowawayCA) -> None:
        """Pinning does not weaken verification: the wrong name fails the handshake."""
        with LoopbackServer("127.0.0.1", tls=ca.server_context("other.test")) as tls:
            http = client(resolver=Resolver(["127.0.0.1"]), verify=ca.client_context())
            with http, pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                http.get(tls.url(host="api.partner.test"))
            assert tls.seen == []

    def test_the_vetted_address_is_not_what_is_verified(self, ca: ThrowawayCA) -> None:
        """The same server asked for by its IP fails: its certificate names the host only."""
        tls = LoopbackServer("127.0.0.1", tls=ca.server_context("api.partner.test"))
        http = client(verify=ca.client_context())
        failed = pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED")
        with tls, http, failed:
            http.get(tls.url())

    async def test_async_tls_verifies_the_original_name(self, ca: ThrowawayCA) -> None:
        """The async transport keeps SNI and verification on the URL's name."""
        with LoopbackServer("127.0.0.1", tls=ca.server_context("api.partner.test")) as tls:
            dns = Resolver(["127.0.0.1"])
            async with async_client(dns, verify=ca.client_context()) as http:
                response = await http.get(tls.url(host="api.partner.test"))
            assert response.status_code == 200
            assert tls.server_names == ["api.partner.test"]


def _drain(chunks: Iterator[bytes], into: list[bytes]) -> None:
    for chunk in chunks:
        into.append(chunk)


def _endless(chunk: bytes) -> Callable[[int], bytes]:
    return lambda index: chunk


def _ticking(clock: FakeClock, count: int) -> Callable[[int], bytes | None]:
    """``count`` one-byte chunks, each taking one second of ``clock``."""

    def chunk(index: int) -> bytes | None:
        if index >= count:
            return None
        clock.advance(1)
        return b"."

    return chunk


class TestLimits:
    """Timeouts on by default; bodies capped while they stream; a deadline per exchange."""

    def test_a_declared_oversized_body_is_refused_before_reading(
        self, server: LoopbackServer
    ) -> None:
        """A Content-Length over the cap raises ResponseTooLarge right after the headers."""

        @server.route("/big")
        def big(h: Handler) -> None:
            h.send_response(200)
            h.send_header("Content-Length", str(50 * 1024 * 1024))
            h.end_headers()
            h.wfile.write(b"x" * 1024)

        with client(max_response_bytes=64 * 1024) as http, pytest.raises(ResponseTooLarge):
            http.get(server.url("/big"))

    def test_an_endless_body_is_cut_off_at_the_cap(self, server: LoopbackServer) -> None:
        """A body without a length stops at the cap, while streaming (it would never end)."""
        server.route("/endless")(lambda h: h.stream(_endless(b"x" * 4096)))
        with client(max_response_bytes=64 * 1024) as http:
            with pytest.raises(ResponseTooLarge) as caught:
                http.get(server.url("/endless"))
            received: list[bytes] = []
            streamed = http.stream("GET", server.url("/endless"))
            with streamed as response, pytest.raises(ResponseTooLarge):
                _drain(response.iter_raw(), received)
        assert 0 < sum(map(len, received)) <= 64 * 1024
        assert caught.value.status == 502

    def test_a_body_at_the_cap_passes(self, server: LoopbackServer) -> None:
        """Exactly max_response_bytes is allowed."""
        server.route("/exact")(lambda h: h.reply(200, b"y" * 1000))
        with client(max_response_bytes=1000) as http:
            assert len(http.get(server.url("/exact")).content) == 1000

    def test_a_slow_response_is_cut_off_at_the_deadline(self, server: LoopbackServer) -> None:
        """Each chunk takes a (fake) second: the 5 s total timeout cuts the body off mid-stream."""
        clock = FakeClock(0.0)
        server.route("/slow")(lambda h: h.stream(_ticking(clock, 50), hold=True))
        # The body never ends (the server holds the connection open): only a
        # check made while streaming can end it with ResponseTimeout.
        http = client(total_timeout=5, timeout=3, clock=clock)
        with http, pytest.raises(ResponseTimeout) as caught:
            http.get(server.url("/slow"))
        assert caught.value.status == 504

    def test_timeouts_apply_even_when_the_client_disables_them(
        self, server: LoopbackServer
    ) -> None:
        """httpx.Client(timeout=None) still gets the transport's read timeout on a silent peer."""

        @server.route("/silent")
        def silent(h: Handler) -> None:
            h.send_response(200)
            h.send_header("Content-Length", "10")
            h.end_headers()
            h.wfile.flush()
            server.stopping.wait(10)

        transport = SafeTransport(allowed_schemes=HTTP, allow_networks=LOOPBACK, timeout=0.2)
        http = httpx.Client(transport=transport, timeout=None)  # noqa: S113 - the point
        with http, pytest.raises(httpx.ReadTimeout):
            http.get(server.url("/silent"))

    async def test_async_limits_hold(self, server: LoopbackServer) -> None:
        """The async transport caps the body and enforces the deadline the same way."""
        clock = FakeClock(0.0)
        server.route("/endless")(lambda h: h.stream(_endless(b"x" * 4096)))
        server.route("/slow")(lambda h: h.stream(_ticking(clock, 50), hold=True))
        limits: dict[str, Any] = {"max_response_bytes": 64 * 1024, "total_timeout": 5, "timeout": 3}
        async with async_client(clock=clock, **limits) as http:
            with pytest.raises(ResponseTooLarge):
                await http.get(server.url("/endless"))
            with pytest.raises(ResponseTimeout):
                await http.get(server.url("/slow"))

    def test_the_cap_counts_bytes_on_the_wire(self, server: LoopbackServer) -> None:
        """A gzip body small on the wire passes the transport cap (fetch_json caps decoded)."""
        packed = gzip.compress(b" " * 200_000)

        @server.route("/gz")
        def gz(h: Handler) -> None:
            h.reply(200, packed, {"Content-Encoding": "gzip"})

        with client(max_response_bytes=len(packed)) as http:
            assert len(http.get(server.url("/gz")).content) == 200_000


class TestProxies:
    """Environment proxies are never used; an explicit proxy is."""

    def test_environment_proxies_are_ignored(
        self,
        server: LoopbackServer,
        internal: LoopbackServer,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """HTTP(S)_PROXY / ALL_PROXY pointing elsewhere change nothing: the request goes direct."""
        for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "all_proxy"):
            monkeypatch.setenv(name, internal.url())
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        with httpx.Client(
            transport=SafeTransport(allowed_schemes=HTTP, allow_networks=LOOPBACK)
        ) as http:
            assert http.get(server.url("/direct")).json()["path"] == "/direct"
        assert internal.seen == []

    def test_an_explicit_proxy_is_used_and_vetting_still_applies(
        self, server: LoopbackServer, internal: LoopbackServer
    ) -> None:
        """proxy= sends allowed requests through the proxy; refused ones never leave."""
        transport = SafeTransport(
            allowed_schemes=HTTP,
            resolver=Resolver(["93.184.215.14"]),
            proxy=internal.url(),
        )
        with httpx.Client(transport=transport) as http:
            seen = http.get("http://partner.example/feed").json()
            with pytest.raises(UnsafeURL):
                http.get("http://10.0.0.1/")
        assert [s.path for s in internal.seen] == ["http://partner.example/feed"]
        assert seen["host"] == "partner.example"


class TestInterop:
    """The transports plug into plain httpx clients; nothing else changes."""

    def test_a_plain_client_works_as_usual(self, server: LoopbackServer) -> None:
        """Params, JSON bodies, headers, cookies and streaming behave as with httpx's transport."""

        @server.route("/cookie")
        def cookie(h: Handler) -> None:
            h.reply(
                200, b"{}", {"Set-Cookie": "sid=abc; Path=/", "Content-Type": "application/json"}
            )

        server.route("/data")(lambda h: h.reply_json({"echo": json.loads(server.seen[-1].body)}))
        transport = SafeTransport(allowed_schemes=HTTP, allow_networks=LOOPBACK)
        with httpx.Client(transport=transport, headers={"User-Agent": "apisec-test"}) as http:
            assert http.get(server.url("/q"), params={"a": "1"}).json()["path"] == "/q?a=1"
            assert http.post(server.url("/data"), json={"n": 1}).json() == {"echo": {"n": 1}}
            http.get(server.url("/cookie"))
            http.get(server.url("/after"))
            with http.stream("GET", server.url("/s")) as response:
                assert b"".join(response.iter_bytes()).startswith(b"{")
        assert server.seen[-2].headers["cookie"] == "sid=abc"
        assert server.seen[0].headers["user-agent"] == "apisec-test"

    async def test_a_plain_async_client_works_as_usual(self, server: LoopbackServer) -> None:
        """AsyncClient over AsyncSafeTransport: requests, JSON and streaming as usual."""
        transport = AsyncSafeTransport(allowed_schemes=HTTP, allow_networks=LOOPBACK)
        async with httpx.AsyncClient(transport=transport) as http:
            assert (await http.get(server.url("/x"))).json()["path"] == "/x"
            async with http.stream("POST", server.url("/y"), content=b"abc") as response:
                assert b"".join([c async for c in response.aiter_bytes()]).startswith(b"{")
        assert server.seen[-1].body == b"abc"

    async def test_the_default_async_resolver_runs_off_the_loop(
        self, server: LoopbackServer, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """With no resolver given, getaddrinfo runs once, in a worker thread, not on the loop."""
        threads: list[int] = []
        real_getaddrinfo = socket.getaddrinfo

        def spy(*args: Any, **kwargs: Any) -> Any:
            threads.append(threading.get_ident())
            return real_getaddrinfo(*args, **kwargs)

        monkeypatch.setattr(socket, "getaddrinfo", spy)
        transport = AsyncSafeTransport(allowed_schemes=HTTP, allow_networks=["127.0.0.0/8"])
        host = socket.gethostname().lower().rstrip(".")
        async with httpx.AsyncClient(transport=transport) as http:
            # Whatever this machine's name resolves to, the lookup left the loop.
            with contextlib.suppress(UnsafeURL, httpx.HTTPError):
                await http.get(server.url(host=host))
        assert threads
        assert threading.get_ident() not in threads


class TestConfiguration:
    """Invalid options are ConfigurationErrors when the transport is built."""

    @pytest.mark.parametrize(
        "options",
        [
            {"timeout": 0},
            {"timeout": float("inf")},
            {"timeout": "5"},
            {"total_timeout": -1},
            {"max_response_bytes": 0},
            {"max_response_bytes": True},
            {"max_response_bytes": 1.5},
            {"allow_networks": ["10.0.0.1/8"]},
            {"allow_networks": "10.0.0.0/8"},
            {"allowed_schemes": "https"},
            {"allow_hosts": "api.example.com"},
            {"verify": "/etc/ssl/certs"},
        ],
    )
    def test_bad_options_are_refused(self, options: dict[str, Any]) -> None:
        """Each invalid option fails at construction, for both transports."""
        with pytest.raises(ConfigurationError):
            SafeTransport(**options)
        with pytest.raises(ConfigurationError):
            AsyncSafeTransport(**options)

    def test_resolvers_must_match_the_transport(self) -> None:
        """A coroutine resolver on the sync transport, or a sync one on the async, is refused."""
        dns = Resolver(["127.0.0.1"])
        with pytest.raises(ConfigurationError):
            SafeTransport(resolver=dns.aresolve)  # type: ignore[arg-type]
        with pytest.raises(ConfigurationError):
            AsyncSafeTransport(resolver=dns)  # type: ignore[arg-type]


class TestMissingExtra:
    @pytest.mark.parametrize("absent", ["anyio", "httpcore", "httpx"])
    def test_import_without_the_extra_names_it(self, absent: str) -> None:
        """Without the httpx extra, `import apisec.outbound` fails with an ImportError naming
        `apisec[httpx]` and the missing module."""
        import subprocess
        import sys

        code = (
            f"import sys; sys.modules[{absent!r}] = None\n"
            "try:\n"
            "    import apisec.outbound\n"
            "except ImportError as exc:\n"
            "    print(type(exc).__name__, exc.name, '|', exc)\n"
        )
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        )
        assert f"ImportError {absent} |" in out.stdout
        assert "pip install 'apisec[httpx]'" in out.stdout
