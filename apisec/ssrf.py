"""SSRF guard: refuse URLs that point inside your network, in every spelling.

>>> check_url("https://127.1/")
Traceback (most recent call last):
...
apisec.ssrf.UnsafeURL: loopback address 127.0.0.1
>>> target = check_url("https://93.184.215.14/feed")
>>> [str(a) for a in target.addresses]
['93.184.215.14']

The host is read the way browsers and HTTP clients read it (the WHATWG URL
host parser): percent-decoding, UTS #46 mapping (current Unicode, so
lookalike digits and dots added after Unicode 3.2 map as a browser maps
them), and IPv4 numbers in decimal,
hex or octal with one to four parts (``2130706433``, ``0x7f.1``,
``0177.0.0.1``, ``127.1``). IPv6 literals are unwrapped when they carry an
IPv4 address (mapped, compatible, NAT64, 6to4). Credentials in the URL,
backslashes, control characters, zone IDs and non-default schemes are
refused outright.

Names are resolved and *every* address must be public; the vetted addresses
come back in :class:`SafeURL` so the caller can connect to exactly those,
which defeats DNS rebinding between this check and the connection.
:func:`acheck_url` is the asyncio twin: it resolves through the running loop.
To have all of that done for every request and redirect hop of an httpx
client, use :mod:`apisec.outbound`.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Awaitable, Callable, Iterable
from urllib.parse import unquote

import attrs
import idna

from apisec._async import is_awaitable
from apisec.audit import AuditEvent, emit
from apisec.errors import ClientError, ConfigurationError

__all__ = [
    "AsyncResolver",
    "Resolver",
    "SafeURL",
    "UnsafeURL",
    "acheck_url",
    "async_system_resolver",
    "check_url",
    "classify_ip",
    "system_resolver",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
#: ``resolver(host, port)`` returns the address strings ``host`` resolves to.
Resolver = Callable[[str, int], Iterable[str]]
#: ``await resolver(host, port)`` returns the address strings ``host`` resolves to.
AsyncResolver = Callable[[str, int], Awaitable[Iterable[str]]]

MAX_URL_LENGTH = 2048
DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443, "ftp": 21}

_V4 = ipaddress.IPv4Network
_V6 = ipaddress.IPv6Network
_METADATA = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean...
        "169.254.170.2",  # AWS ECS task metadata
        "100.100.100.200",  # Alibaba Cloud
        "192.0.0.192",  # Oracle Cloud
        "fd00:ec2::254",  # AWS over IPv6
    )
)
_V4_TABLE: tuple[tuple[ipaddress.IPv4Network, str], ...] = (
    (_V4("0.0.0.0/8"), "unspecified"),
    (_V4("10.0.0.0/8"), "private"),
    (_V4("100.64.0.0/10"), "carrier_grade_nat"),
    (_V4("127.0.0.0/8"), "loopback"),
    (_V4("169.254.0.0/16"), "link_local"),
    (_V4("172.16.0.0/12"), "private"),
    (_V4("192.0.0.0/24"), "reserved"),
    (_V4("192.0.2.0/24"), "reserved"),
    (_V4("192.88.99.0/24"), "reserved"),
    (_V4("192.168.0.0/16"), "private"),
    (_V4("198.18.0.0/15"), "reserved"),
    (_V4("198.51.100.0/24"), "reserved"),
    (_V4("203.0.113.0/24"), "reserved"),
    (_V4("224.0.0.0/4"), "multicast"),
    (_V4("240.0.0.0/4"), "reserved"),
)
_V6_TABLE: tuple[tuple[ipaddress.IPv6Network, str], ...] = (
    (_V6("::1/128"), "loopback"),
    (_V6("::/128"), "unspecified"),
    (_V6("64:ff9b:1::/48"), "private"),
    (_V6("100::/64"), "reserved"),
    (_V6("2001::/23"), "reserved"),  # Teredo, ORCHID, benchmarking...
    (_V6("2001:db8::/32"), "reserved"),
    (_V6("3fff::/20"), "reserved"),
    (_V6("5f00::/16"), "reserved"),
    (_V6("fc00::/7"), "private"),
    (_V6("fe80::/10"), "link_local"),
    (_V6("fec0::/10"), "reserved"),
    (_V6("ff00::/8"), "multicast"),
)
_NAT64 = _V6("64:ff9b::/96")
_IPV4_COMPATIBLE = _V6("::/96")
_SIX_TO_FOUR = _V6("2002::/16")
_GLOBAL_UNICAST = _V6("2000::/3")

_BLOCKED_NAMES = frozenset(
    {
        "localhost",
        "metadata",
        "metadata.google.internal",
        "instance-data",
        "instance-data.ec2.internal",
    }
)
_LABEL = re.compile(r"[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?")
_FORBIDDEN_IN_HOST = frozenset("%/\\@:?#[] ")
_DIGITS = re.compile(r"[0-9]+")
_HEX = re.compile(r"0[xX][0-9a-fA-F]*")


class UnsafeURL(ClientError):
    """The URL may not be fetched; ``reason`` says why (for logs)."""

    slug = "unsafe-url"
    title = "URL not allowed"
    default_detail = "The URL is not allowed."

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


@attrs.frozen
class SafeURL:
    """A vetted URL and the addresses its host resolved to (connect to these)."""

    url: str
    scheme: str
    host: str
    port: int
    addresses: tuple[IPAddress, ...]


def classify_ip(ip: IPAddress) -> str | None:  # noqa: PLR0911 - one return per address class
    """Why ``ip`` must not be contacted (``"loopback"``, ``"private"``...), or None if public."""
    if ip in _METADATA:
        return "metadata"
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            return classify_ip(embedded)
        for network, reason in _V6_TABLE:
            if ip in network:
                return reason
        if ip in _IPV4_COMPATIBLE or ip not in _GLOBAL_UNICAST:
            return "reserved"
        return None
    if ip == ipaddress.IPv4Address("255.255.255.255"):
        return "broadcast"
    for network4, reason in _V4_TABLE:
        if ip in network4:
            return reason
    # A second net under our own table, in case a registry entry is missing.
    return None if ip.is_global else "reserved"


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip in _SIX_TO_FOUR:
        return ip.sixtofour
    if ip in _IPV4_COMPATIBLE and int(ip) > 1:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def system_resolver(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to, through the system's resolver."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


async def async_system_resolver(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to, through the running loop (never blocking it)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def _refuse(message: str, reason: str, host: str | None = None) -> UnsafeURL:
    emit(AuditEvent.SSRF_BLOCKED, reason=reason, host=host)
    return UnsafeURL(message, reason=reason)


def _parse_ipv4_number(part: str) -> int | None:
    if _HEX.fullmatch(part):
        return int(part[2:] or "0", 16)
    if not _DIGITS.fullmatch(part):
        return None
    if len(part) > 1 and part.startswith("0"):
        if any(c in "89" for c in part):
            return None
        return int(part, 8)
    return int(part)


def _ends_in_number(host: str) -> bool:
    last = host.rsplit(".", 1)[-1]
    return bool(_DIGITS.fullmatch(last) or _HEX.fullmatch(last))


def _parse_ipv4(host: str) -> ipaddress.IPv4Address:
    """The WHATWG IPv4 parser: 1-4 parts, each decimal, 0x-hex or 0-octal."""
    parts = host.split(".")
    if len(parts) > 4 or any(p == "" for p in parts):
        raise _refuse("malformed IPv4 address", "invalid_host", host)
    numbers = [_parse_ipv4_number(p) for p in parts]
    if any(n is None for n in numbers):
        raise _refuse("malformed IPv4 address", "invalid_host", host)
    values = [n for n in numbers if n is not None]
    if any(n > 255 for n in values[:-1]) or values[-1] >= 256 ** (5 - len(values)):
        raise _refuse("IPv4 address out of range", "invalid_host", host)
    address = values[-1]
    for index, n in enumerate(values[:-1]):
        address += n << (8 * (3 - index))
    return ipaddress.IPv4Address(address)


def _split_netloc(netloc: str) -> tuple[str, str | None, bool]:
    """(host, port text or None, bracketed)."""
    if netloc.startswith("["):
        end = netloc.find("]")
        if end < 0:
            raise _refuse("unterminated IPv6 literal", "invalid_host")
        rest = netloc[end + 1 :]
        if rest and not rest.startswith(":"):
            raise _refuse("junk after IPv6 literal", "invalid_host")
        return netloc[1:end], (rest[1:] if rest else None), True
    if netloc.count(":") > 1:
        raise _refuse("IPv6 literals must be bracketed", "invalid_host")
    host, sep, port = netloc.partition(":")
    return host, (port if sep else None), False


def _has_forbidden(host: str) -> bool:
    return any(c in _FORBIDDEN_IN_HOST or ord(c) < 0x21 for c in host)


def _normalize_name(raw: str) -> str:
    try:
        host = unquote(raw, errors="strict") if "%" in raw else raw
    except UnicodeError as exc:
        raise _refuse("host has invalid percent-encoding", "invalid_host") from exc
    if _has_forbidden(host):
        raise _refuse("forbidden character in host", "invalid_host", raw)
    if not host.isascii():
        host = _uts46_to_ascii(host)
        if _has_forbidden(host):
            raise _refuse("forbidden character in host", "invalid_host", raw)
    host = host.lower()
    if host.endswith("."):
        host = host[:-1]
    if not host or len(host) > 253:
        raise _refuse("empty or overlong host", "invalid_host", raw)
    return host


def _uts46_to_ascii(host: str) -> str:
    """Map with UTS #46 (non-transitional, as WHATWG does), then Punycode what stays Unicode.

    Python's own ``idna`` codec uses Unicode 3.2 tables: characters added
    since (segmented or outlined digits, ...) would stay unmapped and pass as
    a Punycode name while a browser reads the host as an IPv4 address.
    """
    try:
        mapped = idna.uts46_remap(host, std3_rules=False, transitional=False)
        return ".".join(
            label if label.isascii() else idna.alabel(label).decode("ascii")
            for label in mapped.split(".")
        )
    except (idna.IDNAError, UnicodeError) as exc:
        raise _refuse("host is not a valid internationalized name", "invalid_host") from exc


def _host_allowed(host: str, allow_hosts: frozenset[str]) -> bool:
    if host in allow_hosts:
        return True
    return any(
        pattern.startswith("*.") and host.endswith(pattern[1:]) and host != pattern[2:]
        for pattern in allow_hosts
    )


def _normalize_allowlist(allow_hosts: Iterable[str]) -> frozenset[str]:
    if isinstance(allow_hosts, str):
        raise ConfigurationError("allow_hosts must be a collection of host names, not one string")
    return frozenset(h.lower().rstrip(".") for h in allow_hosts)


def _networks(allow_networks: Iterable[str | IPNetwork]) -> tuple[IPNetwork, ...]:
    if isinstance(allow_networks, str):
        raise ConfigurationError("allow_networks must be a collection of CIDRs, not one string")
    networks: list[IPNetwork] = []
    for item in allow_networks:
        try:
            if not isinstance(item, (str, _V4, _V6)):
                raise TypeError(type(item).__name__)
            network = ipaddress.ip_network(item)
        except (TypeError, ValueError) as exc:
            raise ConfigurationError(f"allow_networks: {item!r} is not a CIDR") from exc
        if network.prefixlen == 0:
            raise ConfigurationError("allow_networks: a whole address family cannot be allowed")
        networks.append(network)
    return tuple(networks)


@attrs.frozen
class _Pending:
    """A vetted URL whose host name still has to be resolved."""

    url: str
    scheme: str
    host: str
    port: int


@attrs.frozen(kw_only=True)
class _Policy:
    """``check_url``'s options, validated once; the vetting steps around the resolve call.

    ``start`` and ``finish`` hold all of the logic; ``check_url`` and
    ``acheck_url`` (and the outbound transports) differ only in how they
    call the resolver between the two.
    """

    schemes: frozenset[str]
    allow_hosts: frozenset[str] | None = None
    ports: frozenset[int] | None = None
    networks: tuple[IPNetwork, ...] = ()
    resolve: bool = True

    @classmethod
    def build(
        cls,
        allowed_schemes: Iterable[str] = ("https",),
        allow_hosts: Iterable[str] | None = None,
        allowed_ports: Iterable[int] | None = None,
        allow_networks: Iterable[str | IPNetwork] = (),
        resolve: bool = True,
    ) -> _Policy:
        if isinstance(allowed_schemes, str):
            raise ConfigurationError("allowed_schemes must be a collection, not one string")
        return cls(
            schemes=frozenset(s.lower() for s in allowed_schemes),
            allow_hosts=None if allow_hosts is None else _normalize_allowlist(allow_hosts),
            ports=None if allowed_ports is None else frozenset(allowed_ports),
            networks=_networks(allow_networks),
            resolve=resolve,
        )

    def start(self, url: str) -> SafeURL | _Pending:
        """Everything before resolution: a finished :class:`SafeURL` for IP literals."""
        scheme, netloc = _split_url(url, self.schemes)
        raw_host, port_text, bracketed = _split_netloc(netloc)
        port = _port(scheme, port_text, self.ports)
        host, literal = _parse_host(raw_host, bracketed)
        if self.allow_hosts is not None and not _host_allowed(host, self.allow_hosts):
            raise _refuse(f"host {host} is not in the allowlist", "not_allowed", host)
        if literal is not None:
            target = SafeURL(url=url, scheme=scheme, host=host, port=port, addresses=(literal,))
            return self._vetted(target)
        if host in _BLOCKED_NAMES or host.endswith(".localhost"):
            loopback = host == "localhost" or host.endswith(".localhost")
            raise _refuse(f"host {host} is internal", "loopback" if loopback else "metadata", host)
        if not self.resolve:
            return SafeURL(url=url, scheme=scheme, host=host, port=port, addresses=())
        return _Pending(url=url, scheme=scheme, host=host, port=port)

    def finish(self, pending: _Pending, answers: Iterable[object]) -> SafeURL:
        """Read the resolver's answers and vet every address."""
        addresses = _addresses(pending.host, answers)
        target = SafeURL(
            url=pending.url,
            scheme=pending.scheme,
            host=pending.host,
            port=pending.port,
            addresses=addresses,
        )
        return self._vetted(target)

    def _vetted(self, target: SafeURL) -> SafeURL:
        for address in target.addresses:
            why = classify_ip(address)
            if why is not None and not self._permitted(address, why):
                raise _refuse(f"{why.replace('_', '-')} address {address}", why, target.host)
        return target

    def _permitted(self, address: IPAddress, why: str) -> bool:
        candidates = [address]
        if isinstance(address, ipaddress.IPv6Address):
            embedded = _embedded_ipv4(address)
            if embedded is not None:
                candidates.append(embedded)
        return any(
            candidate.version == network.version
            and candidate in network
            # Cloud metadata stays refused unless its own address is allowed.
            and (why != "metadata" or network.num_addresses == 1)
            for candidate in candidates
            for network in self.networks
        )


def check_url(
    url: str,
    allowed_schemes: Iterable[str] = ("https",),
    allow_hosts: Iterable[str] | None = None,
    resolve: bool = True,
    *,
    resolver: Resolver | None = None,
    allowed_ports: Iterable[int] | None = None,
    allow_networks: Iterable[str | IPNetwork] = (),
) -> SafeURL:
    """Vet ``url`` for server-side fetching.

    Args:
        url: the untrusted URL.
        allowed_schemes: schemes that may be fetched (lower-case).
        allow_hosts: when given, only these hosts (exact, or ``*.example.com``
            for any subdomain) may be fetched — in addition to the address checks.
        resolve: resolve host names and vet every address (recommended).
        resolver: ``resolver(host, port) -> address strings``; defaults to the
            system resolver.
        allowed_ports: when given, only these ports may be used.
        allow_networks: CIDRs deliberately permitted although internal (your
            own services, loopback in tests). Cloud metadata addresses stay
            refused unless listed on their own (``"169.254.169.254/32"``);
            internal names such as ``localhost`` stay refused.

    Returns:
        The :class:`SafeURL`, with the vetted addresses to connect to.

    Raises:
        UnsafeURL: with a ``reason`` such as ``loopback``, ``private``,
            ``carrier_grade_nat``, ``link_local``, ``metadata``, ``multicast``,
            ``reserved``, ``unspecified``, ``unresolvable``, ``scheme``,
            ``credentials``, ``port``, ``not_allowed`` or ``invalid_host``.
        ConfigurationError: for invalid options.
    """
    policy = _Policy.build(allowed_schemes, allow_hosts, allowed_ports, allow_networks, resolve)
    return _check(policy, url, resolver or system_resolver)


async def acheck_url(
    url: str,
    allowed_schemes: Iterable[str] = ("https",),
    allow_hosts: Iterable[str] | None = None,
    resolve: bool = True,
    *,
    resolver: AsyncResolver | None = None,
    allowed_ports: Iterable[int] | None = None,
    allow_networks: Iterable[str | IPNetwork] = (),
) -> SafeURL:
    """The asyncio twin of :func:`check_url`: same options, same checks.

    Names are resolved through the running loop (``loop.getaddrinfo``, which
    runs in the loop's executor) or with ``await resolver(host, port)``; a
    resolver that is not a coroutine function is refused with
    :class:`~apisec.ConfigurationError` rather than run on the loop.
    """
    policy = _Policy.build(allowed_schemes, allow_hosts, allowed_ports, allow_networks, resolve)
    return await _acheck(policy, url, resolver or async_system_resolver)


def _check(policy: _Policy, url: str, resolver: Resolver) -> SafeURL:
    step = policy.start(url)
    if isinstance(step, SafeURL):
        return step
    try:
        answers = list(resolver(step.host, step.port))
    except (OSError, UnicodeError) as exc:
        raise _refuse(f"host {step.host} does not resolve", "unresolvable", step.host) from exc
    return policy.finish(step, answers)


async def _acheck(policy: _Policy, url: str, resolver: AsyncResolver) -> SafeURL:
    step = policy.start(url)
    if isinstance(step, SafeURL):
        return step
    pending = resolver(step.host, step.port)
    if not is_awaitable(pending):
        raise ConfigurationError("acheck_url needs an async resolver (async def)")
    try:
        answers = list(await pending)
    except (OSError, UnicodeError) as exc:
        raise _refuse(f"host {step.host} does not resolve", "unresolvable", step.host) from exc
    return policy.finish(step, answers)


def _split_url(url: object, schemes: frozenset[str]) -> tuple[str, str]:
    """(lower-case scheme, authority) of an absolute URL with ``//``."""
    if not isinstance(url, str) or len(url) > MAX_URL_LENGTH:
        raise _refuse("URL must be a string of at most 2048 characters", "invalid_url")
    if any(ord(c) <= 0x20 or ord(c) == 0x7F for c in url) or "\\" in url:
        raise _refuse("URL has whitespace, control characters or backslashes", "invalid_url")
    scheme, sep, rest = url.partition(":")
    scheme = scheme.lower()
    if not sep or scheme not in schemes:
        raise _refuse(f"scheme {scheme[:16]!r} is not allowed", "scheme")
    # Browsers read "https:/host" and "https:host" as "https://host"; we refuse them.
    if not rest.startswith("//"):
        raise _refuse("URL has no authority", "invalid_url")
    end = len(rest)
    for delimiter in "/?#":
        found = rest.find(delimiter, 2)
        if found >= 0:
            end = min(end, found)
    netloc = rest[2:end]
    if "@" in netloc:
        raise _refuse("credentials in URLs are not allowed", "credentials")
    return scheme, netloc


def _port(scheme: str, port_text: str | None, allowed: frozenset[int] | None) -> int:
    if not port_text:
        if scheme not in DEFAULT_PORTS:
            raise _refuse(f"no default port for scheme {scheme!r}", "port")
        port = DEFAULT_PORTS[scheme]
    elif _DIGITS.fullmatch(port_text) and 0 < int(port_text) < 65536:
        port = int(port_text)
    else:
        raise _refuse("invalid port", "port")
    if allowed is not None and port not in allowed:
        raise _refuse(f"port {port} is not allowed", "port")
    return port


def _parse_host(raw_host: str, bracketed: bool) -> tuple[str, IPAddress | None]:
    """(normalized host, IP literal or None)."""
    if bracketed:
        if "%" in raw_host:
            raise _refuse("IPv6 zone identifiers are not allowed", "link_local", raw_host)
        try:
            literal = ipaddress.IPv6Address(raw_host)
        except ValueError as exc:
            raise _refuse("malformed IPv6 address", "invalid_host", raw_host) from exc
        return str(literal), literal
    host = _normalize_name(raw_host)
    if _ends_in_number(host):
        v4 = _parse_ipv4(host)
        return str(v4), v4
    if any(_LABEL.fullmatch(label) is None for label in host.split(".")):
        raise _refuse("malformed host name", "invalid_host", host)
    return host, None


def _addresses(host: str, answers: Iterable[object]) -> tuple[IPAddress, ...]:
    addresses: list[IPAddress] = []
    for text in answers:
        try:
            # Resolvers may append a zone to link-local results ("fe80::1%eth0").
            addresses.append(ipaddress.ip_address(str(text).split("%", 1)[0]))
        except ValueError as exc:
            raise _refuse("resolver returned a malformed address", "unresolvable", host) from exc
    if not addresses:
        raise _refuse(f"host {host} does not resolve", "unresolvable", host)
    return tuple(dict.fromkeys(addresses))
