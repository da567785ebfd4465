"""SSRF guard: bypass spellings refused, public targets allowed, resolution vetted."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from apisec import ConfigurationError
from apisec.ssrf import (
    UnsafeURL,
    acheck_url,
    async_system_resolver,
    check_url,
    classify_ip,
    system_resolver,
)

PUBLIC_V4 = "93.184.215.14"


def public_resolver(host: str, port: int) -> list[str]:
    return [PUBLIC_V4]


# (url, reason) — every one must be refused, with that reason.
BYPASSES = [
    ("https://127.0.0.1/", "loopback"),
    ("https://127.0.0.1:8443/admin", "loopback"),
    ("https://127.255.255.254/", "loopback"),
    ("https://2130706433/", "loopback"),  # decimal
    ("https://0x7f000001/", "loopback"),  # hex
    ("https://0X7F000001/", "loopback"),
    ("https://017700000001/", "loopback"),  # octal, one part
    ("https://0177.0.0.1/", "loopback"),  # octal part
    ("https://0x7f.0x0.0x0.0x1/", "loopback"),
    ("https://0x7f.1/", "loopback"),
    ("https://127.1/", "loopback"),  # short form
    ("https://127.0.1/", "loopback"),
    ("https://127.0.0.1./", "loopback"),  # trailing dot
    ("https://%31%32%37%2e%30%2e%30%2e%31/", "loopback"),  # percent-encoded
    ("https://１２７.０.０.１/", "loopback"),  # full-width digits
    ("https://127。0。0。1/", "loopback"),  # ideographic full stops
    ("https://localhost/", "loopback"),
    ("https://LocalHost./", "loopback"),
    ("https://ｌｏｃａｌｈｏｓｔ/", "loopback"),
    ("https://api.localhost/", "loopback"),
    ("https://[::1]/", "loopback"),
    ("https://[0:0:0:0:0:0:0:1]/", "loopback"),
    ("https://[::ffff:127.0.0.1]/", "loopback"),  # IPv4-mapped
    ("https://[::ffff:7f00:1]/", "loopback"),
    ("https://[::127.0.0.1]/", "loopback"),  # IPv4-compatible
    ("https://[64:ff9b::127.0.0.1]/", "loopback"),  # NAT64
    ("https://[2002:7f00:1::1]/", "loopback"),  # 6to4
    ("https://127.0.0.1#@example.com/", "loopback"),  # fragment trick
    ("https://0.0.0.0/", "unspecified"),
    ("https://0/", "unspecified"),
    ("https://[::]/", "unspecified"),
    ("https://10.0.0.1/", "private"),
    ("https://10.1/", "private"),
    ("https://172.16.0.1/", "private"),
    ("https://172.31.255.255/", "private"),
    ("https://192.168.0.1/", "private"),
    ("https://3232235521/", "private"),  # 192.168.0.1 in decimal
    ("https://[fc00::1]/", "private"),
    ("https://[fd12:3456::1]/", "private"),
    ("https://[::ffff:10.0.0.1]/", "private"),
    ("https://100.64.0.1/", "carrier_grade_nat"),
    ("https://100.127.255.254/", "carrier_grade_nat"),
    ("https://169.254.169.254/latest/meta-data/", "metadata"),
    ("https://0xa9fea9fe/", "metadata"),
    ("https://2852039166/", "metadata"),
    ("https://[::ffff:169.254.169.254]/", "metadata"),
    ("https://[fd00:ec2::254]/", "metadata"),
    ("https://100.100.100.200/", "metadata"),
    ("https://metadata.google.internal/", "metadata"),
    ("https://169.254.1.1/", "link_local"),
    ("https://[fe80::1]/", "link_local"),
    ("https://[fe80::1%25eth0]/", "link_local"),  # zone id
    ("https://224.0.0.1/", "multicast"),
    ("https://[ff02::1]/", "multicast"),
    ("https://240.0.0.1/", "reserved"),
    ("https://255.255.255.255/", "broadcast"),
    ("https://192.0.2.1/", "reserved"),
    ("https://198.18.0.1/", "reserved"),
    ("https://[2001:db8::1]/", "reserved"),
    ("https://[2001::1]/", "reserved"),  # Teredo
    ("https://user:pass@example.com/", "credentials"),
    ("https://example.com@127.0.0.1/", "credentials"),
    ("https://example.com\\@127.0.0.1/", "invalid_url"),
    ("https://127.0.0.1\t/", "invalid_url"),
    ("https://127.0.0.1\n.example.com/", "invalid_url"),
    ("https:/127.0.0.1/", "invalid_url"),
    ("https:127.0.0.1/", "invalid_url"),
    ("http://example.com/", "scheme"),
    ("file:///etc/passwd", "scheme"),
    ("gopher://127.0.0.1:6379/_INFO", "scheme"),
    ("ftp://example.com/", "scheme"),
    ("https://08.0.0.1/", "invalid_host"),  # invalid octal
    ("https://1.2.3.4.5/", "invalid_host"),
    ("https://256.0.0.1/", "invalid_host"),
    ("https://[::1/", "invalid_host"),
    ("https://::1/", "invalid_host"),
    ("https://ex%ample.com/", "invalid_host"),
    ("https://%ff%fe.example/", "invalid_host"),
    ("https://example.com:0/", "port"),
    ("https://example.com:65536/", "port"),
    ("https://example.com:+443/", "port"),
]


class TestBypassSpellings:
    @pytest.mark.parametrize(("url", "reason"), BYPASSES)
    def test_bypass_spellings_are_refused(self, url: str, reason: str) -> None:
        """Each known SSRF spelling is refused with the reason that names it."""
        with pytest.raises(UnsafeURL) as caught:
            check_url(url, resolver=public_resolver)
        assert caught.value.reason == reason
        assert caught.value.status == 400

    def test_the_table_is_big_enough(self) -> None:
        """The issue asks for at least 40 bypass spellings."""
        assert len(BYPASSES) >= 40


class TestResolution:
    @pytest.mark.parametrize(
        ("url", "address"),
        [
            ("https://93.184.215.14/", "93.184.215.14"),
            ("https://1572394766/", "93.184.215.14"),  # decimal spelling of a public address
            ("https://8.8.8.8:8443/dns", "8.8.8.8"),
            ("https://[2606:4700:4700::1111]/", "2606:4700:4700::1111"),
            ("https://[64:ff9b::808:808]/", "64:ff9b::808:808"),  # NAT64 of a public address
            ("https://[::ffff:8.8.8.8]/", "::ffff:808:808"),
            ("HTTPS://100.63.255.255/", "100.63.255.255"),  # just below CGNAT
            ("https://172.32.0.1/", "172.32.0.1"),  # just above 172.16/12
        ],
    )
    def test_public_literals_are_allowed(self, url: str, address: str) -> None:
        """Public addresses pass, in whatever spelling, and come back as the vetted target."""
        target = check_url(url, resolver=public_resolver)
        assert [str(a) for a in target.addresses] == [address]

    def test_names_resolve_and_every_address_is_vetted(self) -> None:
        """A name that resolves to a public and a private address is refused."""
        with pytest.raises(UnsafeURL) as caught:
            check_url("https://mixed.example.com/", resolver=lambda h, p: [PUBLIC_V4, "10.0.0.7"])
        assert caught.value.reason == "private"
        target = check_url(
            "https://ok.example.com:8443/x", resolver=lambda h, p: [PUBLIC_V4, "2606:4700::1"]
        )
        assert target.host == "ok.example.com"
        assert target.port == 8443
        assert [str(a) for a in target.addresses] == [PUBLIC_V4, "2606:4700::1"]

    def test_resolver_gets_the_normalized_host_and_port(self) -> None:
        """The resolver is asked for the IDNA, lower-case, dot-less name and the effective port."""
        calls: list[tuple[str, int]] = []

        def resolver(host: str, port: int) -> Iterable[str]:
            calls.append((host, port))
            return [PUBLIC_V4]

        check_url("https://BÜCHER.example./", resolver=resolver)
        assert calls == [("xn--bcher-kva.example", 443)]

    @pytest.mark.parametrize(
        "resolver",
        [
            lambda h, p: [],
            lambda h, p: ["not-an-ip"],
            lambda h, p: (_ for _ in ()).throw(OSError()),
        ],
    )
    def test_unresolvable_names_are_refused(self, resolver: object) -> None:
        """No addresses, junk addresses or resolver errors mean refusal."""
        with pytest.raises(UnsafeURL) as caught:
            check_url("https://nowhere.example/", resolver=resolver)  # type: ignore[arg-type]
        assert caught.value.reason == "unresolvable"

    def test_dns_rebinding_is_defeated_by_returning_the_vetted_addresses(self) -> None:
        """The caller gets the addresses vetted now, not whatever the name resolves to later."""
        answers = iter([[PUBLIC_V4], ["127.0.0.1"]])
        target = check_url("https://rebind.example/", resolver=lambda h, p: next(answers))
        assert [str(a) for a in target.addresses] == [PUBLIC_V4]
        with pytest.raises(UnsafeURL):
            check_url("https://rebind.example/", resolver=lambda h, p: next(answers))

    def test_resolver_zone_suffixes_are_stripped_then_vetted(self) -> None:
        """A resolver answer like fe80::1%eth0 is read and refused as link-local."""
        with pytest.raises(UnsafeURL) as caught:
            check_url("https://zone.example/", resolver=lambda h, p: ["fe80::1%eth0"])
        assert caught.value.reason == "link_local"


class TestOptions:
    def test_allow_hosts_restricts_further(self) -> None:
        """Only listed hosts (exact or *.suffix) pass, and addresses are still vetted."""
        allow = ["api.partner.com", "*.hooks.example.com"]
        check_url("https://api.partner.com/", allow_hosts=allow, resolver=public_resolver)
        check_url("https://a.b.hooks.example.com/", allow_hosts=allow, resolver=public_resolver)
        for url in [
            "https://hooks.example.com/",
            "https://evil.com/",
            "https://api.partner.com.evil/",
        ]:
            with pytest.raises(UnsafeURL) as caught:
                check_url(url, allow_hosts=allow, resolver=public_resolver)
            assert caught.value.reason == "not_allowed"
        with pytest.raises(UnsafeURL) as caught:
            check_url(
                "https://api.partner.com/", allow_hosts=allow, resolver=lambda h, p: ["10.0.0.1"]
            )
        assert caught.value.reason == "private"
        with pytest.raises(ConfigurationError):
            check_url("https://api.partner.com/", allow_hosts="api.partner.com")

    def test_schemes_and_ports_are_configurable(self) -> None:
        """http can be allowed explicitly; allowed_ports narrows the ports."""
        assert (
            check_url("http://example.com/", ("http", "https"), resolver=public_resolver).port == 80
        )
        with pytest.raises(UnsafeURL) as caught:
            check_url("https://example.com:8080/", allowed_ports=[443], resolver=public_resolver)
        assert caught.value.reason == "port"

    def test_resolve_false_skips_dns_but_not_literal_checks(self) -> None:
        """Without resolution, names pass with no addresses; literals are still vetted."""
        target = check_url("https://example.com/", resolve=False)
        assert target.addresses == ()
        with pytest.raises(UnsafeURL):
            check_url("https://10.0.0.1/", resolve=False)
        with pytest.raises(UnsafeURL):
            check_url("https://localhost/", resolve=False)

    def test_system_resolver_returns_addresses(self) -> None:
        """The default resolver answers numeric hosts offline through getaddrinfo."""
        assert "127.0.0.1" in system_resolver("127.0.0.1", 443)


class TestAuditAndProblems:
    def test_refusals_are_audited_without_the_url(
        self, audit_records: list[logging.LogRecord]
    ) -> None:
        """A refusal emits ssrf.blocked with the reason; the URL (and its query) is not logged."""
        with pytest.raises(UnsafeURL):
            check_url("https://10.0.0.1/cb?token=abc123secret", resolver=public_resolver)
        record = audit_records[-1]
        assert record.event == "ssrf.blocked"  # type: ignore[attr-defined]
        assert record.reason == "private"  # type: ignore[attr-defined]
        assert "abc123secret" not in repr(record.__dict__)

    def test_problem_is_generic(self) -> None:
        """The client problem does not say which internal address was hit."""
        with pytest.raises(UnsafeURL) as caught:
            check_url("https://10.0.0.1/")
        body = caught.value.to_problem().to_json().decode()
        assert "10.0.0.1" not in body
        assert "private" not in body


class TestClassifyIp:
    @pytest.mark.parametrize(
        ("address", "reason"),
        [
            ("127.0.0.1", "loopback"),
            ("8.8.8.8", None),
            ("::ffff:192.168.1.1", "private"),
            ("2001:4860:4860::8888", None),
            ("64:ff9b:1::1", "private"),
            ("100::1", "reserved"),
            ("fec0::1", "reserved"),
            ("::2", "unspecified"),
            ("4000::1", "reserved"),
        ],
    )
    def test_classify_ip(self, address: str, reason: str | None) -> None:
        """classify_ip names the reason an address is internal, or None for public ones."""
        assert classify_ip(ipaddress.ip_address(address)) == reason

    @given(st.text(max_size=120))
    def test_arbitrary_strings_never_raise_anything_but_unsafe_url(self, text: str) -> None:
        """Any string is either vetted or refused with UnsafeURL."""
        for candidate in (text, "https://" + text):
            try:
                target = check_url(candidate, resolver=public_resolver)
            except UnsafeURL:
                continue
            assert all(classify_ip(a) is None for a in target.addresses)


def _whatwg_host(url: str) -> str | None:
    """The host a WHATWG URL parser (ada, as in Node.js) reads, or None if it refuses the URL."""
    import ada_url

    try:
        return str(ada_url.URL(url).hostname)
    except ValueError:
        return None


def _digits(base: int, text: str) -> str:
    """``text`` with its ASCII digits replaced by the lookalikes starting at code point ``base``."""
    return "".join(chr(base + int(c)) if c.isdigit() else c for c in text)


SEGMENTED = 0x1FBF0  # SEGMENTED DIGIT ZERO..NINE, Unicode 13.0
OUTLINED = 0x1CCF0  # OUTLINED DIGIT ZERO..NINE, Unicode 16.0

# Hosts a WHATWG client reads as 169.254.169.254, spelled with characters that
# Python's own idna codec (Unicode 3.2 tables) leaves unmapped.
LOOKALIKE_METADATA_HOSTS = [
    _digits(SEGMENTED, "169.254.169.254"),
    _digits(OUTLINED, "169.254.169.254"),
    _digits(SEGMENTED, "169") + "．254。" + _digits(OUTLINED, "169") + "｡254",
    _digits(SEGMENTED, "2852039166"),  # one decimal number
    "0x" + _digits(SEGMENTED, "a9fea9fe"),  # hex with lookalike digits
    "1\u00ad69.254.169.2\u00ad54",  # soft hyphens are ignored by the mapping
]


class TestUts46HostMapping:
    """Hosts are mapped with current UTS #46 tables, as WHATWG clients map them."""

    @pytest.mark.parametrize("host", LOOKALIKE_METADATA_HOSTS)
    def test_post_unicode_3_2_lookalikes_of_the_metadata_address_are_refused(
        self, host: str
    ) -> None:
        """A host a WHATWG parser reads as 169.254.169.254 is refused as metadata."""
        url = f"https://{host}/latest/meta-data/"
        assert _whatwg_host(url) == "169.254.169.254"
        with pytest.raises(UnsafeURL) as caught:
            check_url(url, resolver=public_resolver)
        assert caught.value.reason == "metadata"

    def test_the_stdlib_codec_would_have_read_them_as_a_name(self) -> None:
        """The gap being closed: Python's idna codec turns the lookalikes into Punycode."""
        encoded = _digits(SEGMENTED, "169.254.169.254").encode("idna")
        assert encoded.startswith(b"xn--")

    @pytest.mark.parametrize(
        ("host", "expected"),
        [
            ("faß.de", "xn--fa-hia.de"),  # non-transitional, as WHATWG
            ("ＡＰＩ.example.com", "api.example.com"),
            ("a_b.bücher.de", "a_b.xn--bcher-kva.de"),
        ],
    )
    def test_names_map_like_a_whatwg_client(self, host: str, expected: str) -> None:
        """Unicode names map and Punycode-encode to the host a WHATWG parser produces."""
        url = f"https://{host}/"
        assert check_url(url, resolver=public_resolver).host == expected
        assert _whatwg_host(url) == expected

    @pytest.mark.parametrize("host", ["ex\u200dample.com", "a\u0000b.com", "a／b.com", "a＠b.com"])
    def test_names_that_map_to_forbidden_or_invalid_text_are_refused(self, host: str) -> None:
        """Joiners out of context and characters that map to URL delimiters are refused."""
        with pytest.raises(UnsafeURL) as caught:
            check_url(f"https://{host}/", resolver=public_resolver)
        assert caught.value.reason in {"invalid_host", "invalid_url"}

    @given(
        st.text(
            alphabet=st.sampled_from(
                "0123456789.x"
                + "".join(chr(SEGMENTED + d) + chr(OUTLINED + d) for d in range(10))
                + "．。｡\u00adａｂｃ１２%-ß"
            ),
            min_size=1,
            max_size=18,
        )
    )
    def test_an_accepted_host_is_the_host_a_whatwg_client_reads(self, host: str) -> None:
        """Whenever check_url accepts a URL, it vetted the host a WHATWG parser connects to."""
        url = f"https://{host}/"
        try:
            target = check_url(url, resolver=public_resolver)
        except UnsafeURL:
            return  # refusing is always allowed
        whatwg = _whatwg_host(url)
        assert whatwg is not None, url
        whatwg = whatwg.removesuffix(".")  # a name's trailing dot is kept by WHATWG, not by us
        if target.host != whatwg:
            raise AssertionError(f"{url!r}: vetted {target.host!r}, a client reads {whatwg!r}")
        if _ends_like_ipv4(whatwg):
            assert [str(a) for a in target.addresses] == [whatwg]


def _ends_like_ipv4(host: str) -> bool:
    try:
        ipaddress.IPv4Address(host)
    except ValueError:
        return False
    return True


class TestAllowNetworks:
    """allow_networks lets chosen internal CIDRs through, and nothing more."""

    def test_an_allowed_network_passes_and_others_stay_refused(self) -> None:
        """127.0.0.0/8 allowed: loopback passes, private stays refused."""
        allow = ["127.0.0.0/8"]
        target = check_url("https://127.0.0.1:8443/", allow_networks=allow)
        assert [str(a) for a in target.addresses] == ["127.0.0.1"]
        with pytest.raises(UnsafeURL) as caught:
            check_url("https://10.0.0.1/", allow_networks=allow)
        assert caught.value.reason == "private"
        with pytest.raises(UnsafeURL):
            check_url("https://[::1]/", allow_networks=allow)

    def test_resolved_addresses_are_judged_with_the_allowed_networks(self) -> None:
        """A name resolving into an allowed network passes; one answer outside it refuses all."""
        allow = ["10.1.0.0/16", "fd00:1::/64"]
        target = check_url(
            "https://billing.internal.example/",
            resolver=lambda h, p: ["10.1.2.3", "fd00:1::5"],
            allow_networks=allow,
        )
        assert [str(a) for a in target.addresses] == ["10.1.2.3", "fd00:1::5"]
        with pytest.raises(UnsafeURL) as caught:
            check_url(
                "https://billing.internal.example/",
                resolver=lambda h, p: ["10.1.2.3", "10.2.0.1"],
                allow_networks=allow,
            )
        assert caught.value.reason == "private"

    def test_ipv4_embedded_in_ipv6_is_judged_by_the_ipv4_network(self) -> None:
        """::ffff:127.0.0.1 passes when 127.0.0.0/8 is allowed."""
        target = check_url("https://[::ffff:127.0.0.1]/", allow_networks=["127.0.0.0/8"])
        assert [str(a) for a in target.addresses] == ["::ffff:7f00:1"]

    def test_metadata_needs_its_own_address_listed(self) -> None:
        """169.254.0.0/16 does not open 169.254.169.254; listing it as a /32 does."""
        with pytest.raises(UnsafeURL) as caught:
            check_url("https://169.254.169.254/", allow_networks=["169.254.0.0/16"])
        assert caught.value.reason == "metadata"
        check_url("https://169.254.1.1/", allow_networks=["169.254.0.0/16"])
        check_url("https://169.254.169.254/", allow_networks=["169.254.169.254/32"])

    def test_internal_names_stay_refused(self) -> None:
        """localhost is refused by name even with loopback allowed."""
        with pytest.raises(UnsafeURL) as caught:
            check_url("https://localhost/", allow_networks=["127.0.0.0/8"])
        assert caught.value.reason == "loopback"

    @pytest.mark.parametrize(
        "networks", [["127.0.0.1/8"], ["not-a-cidr"], ["0.0.0.0/0"], ["::/0"], "127.0.0.0/8", [7]]
    )
    def test_bad_networks_are_configuration_errors(self, networks: object) -> None:
        """Host bits set, junk, a whole address family, or one bare string are refused."""
        with pytest.raises(ConfigurationError):
            check_url("https://127.0.0.1/", allow_networks=networks)  # type: ignore[arg-type]


async def async_public_resolver(host: str, port: int) -> list[str]:
    return [PUBLIC_V4]


class _RecordingExecutor(ThreadPoolExecutor):
    """A real thread pool that also notes which functions ran in it."""

    def __init__(self) -> None:
        super().__init__(max_workers=1)
        self.submitted: list[tuple[object, tuple[object, ...]]] = []

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
        self.submitted.append((fn, args))
        return super().submit(fn, *args, **kwargs)


class TestAsyncCheckUrl:
    """acheck_url: the same verdicts as check_url, resolving through the running loop."""

    @pytest.mark.parametrize(("url", "reason"), BYPASSES)
    async def test_bypass_spellings_are_refused_the_same_way(self, url: str, reason: str) -> None:
        """Every spelling check_url refuses is refused by acheck_url with the same reason."""
        with pytest.raises(UnsafeURL) as caught:
            await acheck_url(url, resolver=async_public_resolver)
        assert caught.value.reason == reason

    async def test_names_are_resolved_with_the_async_resolver_and_vetted(self) -> None:
        """The async resolver gets the normalized host and port; every answer is vetted."""
        calls: list[tuple[str, int]] = []

        async def resolver(host: str, port: int) -> list[str]:
            calls.append((host, port))
            return [PUBLIC_V4, "10.0.0.9"] if host.startswith("mixed") else [PUBLIC_V4]

        target = await acheck_url("https://BÜCHER.example.:8443/", resolver=resolver)
        assert [str(a) for a in target.addresses] == [PUBLIC_V4]
        assert calls == [("xn--bcher-kva.example", 8443)]
        with pytest.raises(UnsafeURL) as caught:
            await acheck_url("https://mixed.example/", resolver=resolver)
        assert caught.value.reason == "private"

    async def test_resolver_failures_are_unresolvable(self) -> None:
        """An OSError from the async resolver, or no answer, means refusal."""

        async def failing(host: str, port: int) -> list[str]:
            raise OSError("no such host")

        async def empty(host: str, port: int) -> list[str]:
            return []

        for resolver in (failing, empty):
            with pytest.raises(UnsafeURL) as caught:
                await acheck_url("https://nowhere.example/", resolver=resolver)
            assert caught.value.reason == "unresolvable"

    async def test_a_sync_resolver_is_refused_rather_than_run_on_the_loop(self) -> None:
        """A plain function resolver would block the loop: ConfigurationError."""
        with pytest.raises(ConfigurationError):
            await acheck_url("https://example.com/", resolver=public_resolver)  # type: ignore[arg-type]

    async def test_allow_networks_work_the_same(self) -> None:
        """allow_networks lets loopback through acheck_url too."""
        target = await acheck_url("https://127.0.0.1/", allow_networks=["127.0.0.0/8"])
        assert [str(a) for a in target.addresses] == ["127.0.0.1"]

    async def test_the_default_resolver_runs_getaddrinfo_off_the_loop(self) -> None:
        """async_system_resolver hands getaddrinfo to the loop's executor, never runs it inline."""
        loop = asyncio.get_running_loop()
        executor = _RecordingExecutor()
        loop.set_default_executor(executor)
        assert "127.0.0.1" in await async_system_resolver("127.0.0.1", 443)
        host = socket.gethostname().lower().rstrip(".")
        with contextlib.suppress(UnsafeURL):  # whatever it resolves to (or not), it went off-loop
            await acheck_url(f"https://{host}/")
        calls = [(fn, args[:2]) for fn, args in executor.submitted]
        assert (socket.getaddrinfo, ("127.0.0.1", 443)) in calls
        assert (socket.getaddrinfo, (host, 443)) in calls

    @given(st.text(max_size=60))
    def test_verdicts_match_check_url_for_any_string(self, text: str) -> None:
        """For any input, acheck_url gives what check_url gives, or refuses for the same reason."""
        for candidate in (text, "https://" + text):
            try:
                expected: object = check_url(candidate, resolver=public_resolver)
            except UnsafeURL as err:
                expected = err.reason
            try:
                got: object = asyncio.run(acheck_url(candidate, resolver=async_public_resolver))
            except UnsafeURL as err:
                got = err.reason
            assert got == expected
