"""Client addresses: canonical keys, IPv6 grouping and trusted proxies."""

from __future__ import annotations

import ipaddress
import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st

from apisec import ConfigurationError
from apisec.audit import AuditEvent, audit_context, emit
from apisec.clientaddr import TrustedProxies, canonical_ip, client_key


class TestClientKey:
    @pytest.mark.parametrize(
        "spelling",
        [
            "2001:db8::1",
            "2001:DB8::1",
            "2001:db8:0:0:0:0:0:1",
            "[2001:db8::1]",
            "[2001:db8::1]:443",
            "2001:db8::ffff:ffff:ffff:ffff",
            "2001:db8::1%eth0",
            " 2001:db8::1 ",
        ],
    )
    def test_every_spelling_of_one_v6_subnet_is_one_key(self, spelling: str) -> None:
        """Case, zero runs, brackets, ports and zones never make a new budget."""
        assert client_key(spelling) == "2001:db8::/64"

    def test_next_v6_subnet_is_another_key(self) -> None:
        """The /64 next door is a different client."""
        assert client_key("2001:db8:0:1::1") == "2001:db8:0:1::/64"

    def test_prefix_is_configurable(self) -> None:
        """A /56 groups wider; a /128 keeps each address."""
        assert client_key("2001:db8:0:ff::1", ipv6_prefix=56) == "2001:db8::/56"
        assert client_key("2001:db8::1", ipv6_prefix=128) == "2001:db8::1"

    @pytest.mark.parametrize("spelling", ["192.0.2.7", "::ffff:192.0.2.7", "192.0.2.7:8080"])
    def test_ipv4_and_its_mapped_form_are_one_key(self, spelling: str) -> None:
        """IPv4-mapped IPv6 is unmapped first; a port is never part of the client."""
        assert client_key(spelling) == "192.0.2.7"

    @pytest.mark.parametrize("text", ["testclient", "unix:/run/app.sock", ""])
    def test_names_get_their_own_namespace(self, text: str) -> None:
        """Text that is no address can never equal an address key."""
        key = client_key(text)
        assert key.startswith("name:")
        assert canonical_ip(key) is None

    def test_long_or_odd_names_are_hashed(self) -> None:
        """Control characters and huge names never reach a store key as they are."""
        key = client_key("a\nb" * 50)
        assert key.startswith("name:#") and len(key) == len("name:#") + 32

    def test_a_literal_name_cannot_name_a_hashed_one(self) -> None:
        """A name spelled like a hashed one ('#<digest>') is hashed too: its own budget."""
        hashed = client_key("a\nb" * 50)
        literal = hashed.removeprefix("name:")
        assert client_key(literal) != hashed
        assert client_key(literal).startswith("name:#")

    def test_bad_prefix_is_refused(self) -> None:
        """A prefix outside 1..128 is a configuration error."""
        with pytest.raises(ConfigurationError):
            client_key("::1", ipv6_prefix=0)

    @given(st.ip_addresses())
    def test_key_is_stable_under_respelling(self, ip: ipaddress.IPv4Address) -> None:
        """Exploded and compressed spellings of any address give one key."""
        assert client_key(ip.exploded) == client_key(str(ip)) == client_key(ip.exploded.upper())

    @given(st.text(max_size=120))
    def test_never_raises_on_garbage(self, text: str) -> None:
        """Arbitrary text gives a key, never an exception."""
        assert isinstance(client_key(text), str)


class TestTrustedProxies:
    def test_default_ignores_forwarding_headers(self) -> None:
        """With no trust configured, a spoofed X-Forwarded-For changes nothing."""
        proxies = TrustedProxies()
        assert proxies.client("203.0.113.5", forwarded_for=["1.2.3.4"]) == "203.0.113.5"
        assert proxies.client("203.0.113.5", forwarded=["for=1.2.3.4"]) == "203.0.113.5"

    def test_count_takes_the_nth_from_the_right(self) -> None:
        """Behind one proxy, the last entry is the client; earlier ones are the client's lies."""
        proxies = TrustedProxies(count=1)
        assert proxies.client("10.0.0.2", forwarded_for=["6.6.6.6, 198.51.100.4"]) == (
            "198.51.100.4"
        )
        assert TrustedProxies(count=2).client(
            "10.0.0.2", forwarded_for=["6.6.6.6", "198.51.100.4, 10.0.0.9"]
        ) == ("198.51.100.4")

    def test_count_with_too_short_chain_believes_nothing(self) -> None:
        """A chain shorter than the configured hops falls back to the peer."""
        assert TrustedProxies(count=2).client("10.0.0.2", forwarded_for=["1.2.3.4"]) == "10.0.0.2"

    def test_networks_walk_stops_at_first_untrusted(self) -> None:
        """Trusted hops are skipped from the right; the first outsider is the client."""
        proxies = TrustedProxies(networks=["10.0.0.0/8", "fd00::/8"])
        chain = ["6.6.6.6, 198.51.100.4, 10.0.0.7, fd00::2"]
        assert proxies.client("10.0.0.1", forwarded_for=chain) == "198.51.100.4"

    def test_networks_untrusted_peer_is_the_client(self) -> None:
        """A client that connects directly cannot name itself with a header."""
        proxies = TrustedProxies(networks=["10.0.0.0/8"])
        assert proxies.client("198.51.100.9", forwarded_for=["10.0.0.5"]) == "198.51.100.9"

    def test_garbage_hop_stops_at_last_vetted(self) -> None:
        """An unparsable entry is not believed; the last vetted hop stands."""
        proxies = TrustedProxies(networks=["10.0.0.0/8"])
        assert proxies.client("10.0.0.1", forwarded_for=["1.2.3.4, unknown"]) == "10.0.0.1"

    def test_forwarded_header(self) -> None:
        """RFC 7239 for= nodes, quoted IPv6 with ports, several elements and fields."""
        proxies = TrustedProxies(count=1, header="forwarded")
        value = 'for=6.6.6.6;proto=http, For="[2001:db8:cafe::17]:4711";by=10.0.0.1'
        assert proxies.client("10.0.0.1", forwarded=[value]) == "2001:db8:cafe::17"
        assert proxies.client("10.0.0.1", forwarded=["for=_hidden"]) == "10.0.0.1"

    def test_scheme_is_read_from_the_trusted_header_only(self) -> None:
        """With header="forwarded" the scheme is Forwarded's proto=, never X-Forwarded-Proto."""
        proxies = TrustedProxies(count=1, header="forwarded")
        chain = ['for=6.6.6.6;proto=https, for=192.0.2.7;proto="HTTP"']
        assert proxies.scheme("10.0.0.1", "http", ["https"]) == "http"
        assert proxies.scheme("10.0.0.1", "https", ["http"], forwarded=chain) == "http"
        assert proxies.scheme("10.0.0.1", "http", forwarded=["for=192.0.2.7;proto=https"]) == (
            "https"
        )
        assert proxies.scheme("10.0.0.1", "http", forwarded=["for=192.0.2.7"]) == "http"
        assert TrustedProxies(count=1).scheme(
            "10.0.0.1", "http", forwarded=["for=192.0.2.7;proto=https"]
        ) == ("http")
        assert TrustedProxies(count=2, header="forwarded").scheme(
            "10.0.0.1", "http", forwarded=["for=1.1.1.1;proto=https, for=10.0.0.3"]
        ) == ("https")

    def test_oversized_and_non_ascii_headers_are_read_from_the_right(self) -> None:
        """Only the right end of a huge chain is read; a non-ASCII entry is no address."""
        proxies = TrustedProxies(count=1)
        huge = ["6.6.6.6," * 5000 + "1.1.1.1"]
        assert proxies.client("10.0.0.1", forwarded_for=huge) == "1.1.1.1"
        assert proxies.client("10.0.0.1", forwarded_for=["１.2.3.4"]) == "10.0.0.1"

    def test_peer_is_canonicalized(self) -> None:
        """The peer comes back in canonical form (mapped IPv4 unmapped)."""
        assert TrustedProxies().client("::ffff:192.0.2.1") == "192.0.2.1"

    @pytest.mark.parametrize(
        "kwargs",
        [
            {"count": -1},
            {"count": True},
            {"count": 1, "networks": ["10.0.0.0/8"]},
            {"networks": "10.0.0.0/8"},
            {"networks": ["not-a-net"]},
            {"header": "x-real-ip"},
        ],
    )
    def test_bad_configuration_is_refused(self, kwargs: dict[str, object]) -> None:
        """Ambiguous or malformed proxy settings fail at construction."""
        with pytest.raises(ConfigurationError):
            TrustedProxies(**kwargs)  # type: ignore[arg-type]

    @given(
        st.lists(st.text(max_size=60), max_size=5),
        st.sampled_from(["forwarded", "x-forwarded-for"]),
    )
    def test_never_raises(self, values: list[str], header: str) -> None:
        """Any header values give an answer, never an exception."""
        proxies = TrustedProxies(count=1, header=header)
        result = proxies.client("10.0.0.1", forwarded_for=values, forwarded=values)
        assert result is None or isinstance(result, str)


class TestAuditContext:
    def test_context_fills_client_and_principal(
        self, audit_records: list[logging.LogRecord]
    ) -> None:
        """Events emitted inside the block carry the request's client and principal."""
        with audit_context(client="203.0.113.9"), audit_context(principal="user_1"):
            emit(AuditEvent.AUTH_FAILURE, reason="expired")
        emit(AuditEvent.AUTH_FAILURE, reason="outside")
        inside, outside = audit_records
        assert (inside.client, inside.principal) == ("203.0.113.9", "user_1")  # type: ignore[attr-defined]
        assert (outside.client, outside.principal) == (None, None)  # type: ignore[attr-defined]

    def test_explicit_arguments_win(self, audit_records: list[logging.LogRecord]) -> None:
        """A principal given to emit is not overwritten by the context."""
        with audit_context(client="203.0.113.9", principal="ctx"):
            emit(AuditEvent.AUTH_FAILURE, principal="explicit")
        assert audit_records[0].principal == "explicit"  # type: ignore[attr-defined]
        assert audit_records[0].client == "203.0.113.9"  # type: ignore[attr-defined]
