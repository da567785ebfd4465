"""Client addresses: canonical forms, limiting keys, and trusted proxies.

An address becomes a key (a rate-limit budget, a lockout) only in its
canonical form, so ``2001:DB8::1``, ``2001:db8:0:0:0:0:0:1`` and
``[2001:db8::1]:443`` are one client, ``::ffff:192.0.2.7`` is the IPv4
client ``192.0.2.7``, and every address of one IPv6 /64 (what one
subscriber usually holds) shares one budget:

>>> client_key("2001:DB8::1"), client_key("2001:db8::abcd:1")
('2001:db8::/64', '2001:db8::/64')
>>> client_key("::ffff:192.0.2.7"), client_key("192.0.2.7:51234")
('192.0.2.7', '192.0.2.7')

``X-Forwarded-For`` and ``Forwarded`` are believed only through an explicit
:class:`TrustedProxies` setting; by default the socket peer is the client:

>>> proxies = TrustedProxies(networks=["10.0.0.0/8"])
>>> proxies.client("10.1.2.3", forwarded_for=["198.51.100.4, 10.9.9.9"])
'198.51.100.4'
>>> TrustedProxies().client("10.1.2.3", forwarded_for=["198.51.100.4"])
'10.1.2.3'
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from collections.abc import Iterable, Sequence

import attrs

from apisec.errors import ConfigurationError

__all__ = [
    "DEFAULT_IPV6_PREFIX",
    "IPAddress",
    "TrustedProxies",
    "canonical_ip",
    "client_key",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: IPv6 clients are grouped by this prefix length wherever an address becomes a key.
DEFAULT_IPV6_PREFIX = 64
#: Longest address text considered at all (a bracketed, zoned IPv6 with a port fits easily).
_MAX_ADDRESS_TEXT = 100
#: Forwarding headers longer than this are not believed at all.
_MAX_FORWARDED_TEXT = 8192
#: At most this many hops are walked from the right of a forwarding chain.
_MAX_HOPS = 32
_PRINTABLE = re.compile(r"[\x21-\x7e]{1,64}")
_IPV4_WITH_PORT = re.compile(r"(\d{1,3}(?:\.\d{1,3}){3}):\d{1,5}")
_BRACKETED = re.compile(r"\[([0-9A-Fa-f:.]+(?:%[^\]]*)?)\](?::\d{1,5})?")


def canonical_ip(text: object) -> IPAddress | None:
    """The address in ``text`` (brackets, port and zone removed, IPv4 unmapped), or None.

    >>> canonical_ip(" [2001:DB8::1]:8443 ")
    IPv6Address('2001:db8::1')
    >>> canonical_ip("::ffff:10.0.0.1"), canonical_ip("unknown")
    (IPv4Address('10.0.0.1'), None)
    """
    if not isinstance(text, str) or len(text) > _MAX_ADDRESS_TEXT:
        return None
    text = text.strip(" \t")
    bracketed = _BRACKETED.fullmatch(text)
    if bracketed is not None:
        text = bracketed.group(1)
    else:
        with_port = _IPV4_WITH_PORT.fullmatch(text)
        if with_port is not None:
            text = with_port.group(1)
    text = text.split("%", 1)[0]  # an IPv6 zone names an interface, not a client
    if not text or not text.isascii():
        return None
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def client_key(address: object, *, ipv6_prefix: int = DEFAULT_IPV6_PREFIX) -> str:
    """The limiting key for a client address: canonical IPv4, or its IPv6 network.

    Text that is not an IP address (a Unix socket peer, a test client's name)
    keeps its own key under ``name:``; it can never collide with an address.

    >>> client_key("2001:db8:0:0:1::5", ipv6_prefix=128)
    '2001:db8::1:0:0:5'
    >>> client_key("testclient")
    'name:testclient'
    """
    if not isinstance(ipv6_prefix, int) or not 0 < ipv6_prefix <= 128:
        raise ConfigurationError("ipv6_prefix must be between 1 and 128")
    ip = canonical_ip(address)
    if ip is None:
        text = address if isinstance(address, str) else ""
        # Hashed names live under "name:#": a literal name starting with "#" is hashed too.
        if _PRINTABLE.fullmatch(text) is None or text.startswith("#"):
            digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]
            return "name:#" + digest
        return "name:" + text
    if ip.version == 4:
        return str(ip)
    if ipv6_prefix == 128:
        return str(ip)
    network = ipaddress.IPv6Network(
        (int(ip) >> (128 - ipv6_prefix) << (128 - ipv6_prefix), ipv6_prefix)
    )
    return str(network)


def _networks(values: Iterable[str]) -> tuple[IPNetwork, ...]:
    if isinstance(values, str):
        raise ConfigurationError("networks must be a list of CIDRs, not one string")
    result = []
    for value in values:
        try:
            result.append(ipaddress.ip_network(value, strict=False))
        except (TypeError, ValueError) as exc:
            raise ConfigurationError(f"not a network: {value!r}") from exc
    return tuple(result)


def _count(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0 or value > _MAX_HOPS:
        raise ConfigurationError(f"count must be an integer between 0 and {_MAX_HOPS}")
    return value


@attrs.frozen(kw_only=True)
class TrustedProxies:
    """Which proxies in front of the application may name the client.

    Give either ``count`` (exactly that many proxies always sit in front, as
    behind one load balancer: the client is the ``count``-th address from the
    right of the forwarding chain) or ``networks`` (the proxies' CIDRs: the
    chain is walked from the socket peer leftwards while addresses are
    trusted proxies; the first that is not is the client). With neither —
    the default — forwarding headers are ignored and the socket peer is the
    client. The forwarding header is only read when the socket peer itself
    is a trusted proxy (``networks``), so a client that reaches the
    application directly cannot name itself.

    Args:
        count: number of trusted proxy hops (``0``: none).
        networks: CIDRs of trusted proxies.
        header: ``"x-forwarded-for"`` or ``"forwarded"`` (RFC 7239).
    """

    count: int = attrs.field(default=0, converter=_count)
    networks: tuple[IPNetwork, ...] = attrs.field(default=(), converter=_networks)
    header: str = attrs.field(default="x-forwarded-for")

    def __attrs_post_init__(self) -> None:
        if self.count and self.networks:
            raise ConfigurationError("give either count or networks, not both")
        if self.header not in ("x-forwarded-for", "forwarded"):
            raise ConfigurationError('header must be "x-forwarded-for" or "forwarded"')

    @property
    def enabled(self) -> bool:
        """Whether any forwarding header is believed."""
        return bool(self.count or self.networks)

    def _trusted(self, ip: IPAddress) -> bool:
        return any(ip in network for network in self.networks)

    def client(
        self,
        peer: str | None,
        *,
        forwarded_for: Sequence[str] = (),
        forwarded: Sequence[str] = (),
    ) -> str | None:
        """The client address for a request, as canonical text (None if unknown).

        Args:
            peer: the socket peer's address (without port, or with it).
            forwarded_for: every ``X-Forwarded-For`` field value, in order.
            forwarded: every ``Forwarded`` field value, in order.
        """
        peer_ip = canonical_ip(peer)
        peer_text = str(peer_ip) if peer_ip is not None else peer
        if not self.enabled:
            return peer_text
        if self.networks and (peer_ip is None or not self._trusted(peer_ip)):
            return peer_text
        values = forwarded_for if self.header == "x-forwarded-for" else forwarded
        hops = _hops(values, forwarded=self.header == "forwarded")
        if not hops:
            return peer_text
        if self.count:
            return self._from_count(hops, peer_text)
        return self._from_networks(hops, peer_text)

    def scheme(
        self,
        peer: str | None,
        scheme: str,
        forwarded_proto: Sequence[str] = (),
        *,
        forwarded: Sequence[str] = (),
    ) -> str:
        """The scheme the client used, as told by a trusted proxy, else ``scheme``.

        The proxy's word is read from the header this instance trusts:
        ``X-Forwarded-Proto`` with ``header="x-forwarded-for"``, the
        ``proto=`` parameter of ``Forwarded`` (RFC 7239) with
        ``header="forwarded"`` — never the other one, which a client could
        have written itself.

        >>> TrustedProxies(count=1).scheme("10.0.0.1", "http", ["https"])
        'https'
        >>> TrustedProxies().scheme("10.0.0.1", "http", ["https"])
        'http'
        >>> TrustedProxies(count=1, header="forwarded").scheme(
        ...     "10.0.0.1", "http", ["http"], forwarded=["for=192.0.2.7;proto=https"]
        ... )
        'https'
        """
        values = forwarded_proto if self.header == "x-forwarded-for" else forwarded
        if not self.enabled or not values:
            return scheme
        if self.networks:
            peer_ip = canonical_ip(peer)
            if peer_ip is None or not self._trusted(peer_ip):
                return scheme
        if isinstance(values, str):
            values = [values]
        joined = ",".join(values)
        if len(joined) > _MAX_FORWARDED_TEXT:
            return scheme
        parts = [part.strip(" \t") for part in joined.split(",")]
        if self.header == "forwarded":
            parts = [_forwarded_param(part, "proto") or "" for part in parts if part]
        index = -self.count if self.count else -1
        if len(parts) < abs(index):
            return scheme
        told = parts[index].lower()
        return told if told in ("http", "https") else scheme

    def _from_count(self, hops: list[str], peer_text: str | None) -> str | None:
        # The last `count` entries were appended by our proxies; fewer means
        # the request did not come through all of them: believe nothing.
        if len(hops) < self.count:
            return peer_text
        ip = canonical_ip(hops[-self.count])
        return str(ip) if ip is not None else peer_text

    def _from_networks(self, hops: list[str], peer_text: str | None) -> str | None:
        client = peer_text
        for hop in reversed(hops):
            ip = canonical_ip(hop)
            if ip is None:  # garbage or an obfuscated node: stop at the last vetted hop
                return client
            client = str(ip)
            if not self._trusted(ip):
                return client
        return client


def _hops(values: Sequence[str], *, forwarded: bool) -> list[str]:
    """The chain's addresses, oldest first, at most the last _MAX_HOPS.

    Only the right end is read: the proxies append there, and what the client
    wrote to the left (however long, whatever its characters) must not make
    the proxies' entries unreadable. A non-ASCII entry is no address.
    """
    if isinstance(values, str):
        values = [values]
    joined = ",".join(values)
    if len(joined) > _MAX_FORWARDED_TEXT:
        joined = joined[-_MAX_FORWARDED_TEXT:].partition(",")[2]  # whole elements only
    elements = [element.strip(" \t") for element in joined.split(",")][-_MAX_HOPS:]
    if not forwarded:
        return [e for e in elements if e]
    hops = []
    for element in elements:
        if not element:
            continue
        node = _forwarded_param(element, "for")
        hops.append(node if node is not None else "unknown")
    return hops


def _forwarded_param(element: str, wanted: str) -> str | None:
    """One parameter (``for``, ``proto`` …) of an RFC 7239 forwarded-element, unquoted."""
    for pair in element.split(";"):
        name, sep, value = pair.strip(" \t").partition("=")
        if sep and name.strip().lower() == wanted:
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1].replace('\\"', '"').replace("\\\\", "\\")
            return value
    return None
