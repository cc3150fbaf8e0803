"""Where webhooks may be sent: no server-side request forgery through a subscription URL.

A subscription URL is an address *we* connect to from inside the deployment, so it must not
reach what only the deployment can reach: cloud metadata services and other link-local
addresses (always refused), loopback and private networks (refused unless
``webhook_allow_private``), or weightgate itself. Every address a hostname resolves to is
checked, at subscription time and again before every delivery, and the delivery then
connects to the address that was checked (the hostname still goes in ``Host`` and TLS SNI),
so DNS that answers differently the second time (rebinding) gains nothing; once connected,
the peer the socket reached is checked again before anything is sent (:func:`peer_refusal`).

An IPv6 address can carry an IPv4 one that the network delivers to: IPv4-mapped
(``::ffff:127.0.0.1``), IPv4-compatible (``::7f00:1``), NAT64 (``64:ff9b::a9fe:a9fe`` reaches
169.254.169.254 through a translator), 6to4 (``2002:7f00:1::``) and Teredo. Such an address
is judged by the IPv4 address inside it too, and the self-endpoint guard compares addresses
in that unwrapped form.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from app.settings import Settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Always refused, even with webhook_allow_private: metadata endpoints and link-local space.
_NEVER = tuple(
    ipaddress.ip_network(n)
    for n in (
        "169.254.0.0/16",  # IPv4 link-local, incl. 169.254.169.254 (AWS, GCP, Azure metadata)
        "fe80::/10",  # IPv6 link-local
        "fd00:ec2::254/128",  # AWS metadata over IPv6
        "100.100.100.200/32",  # Alibaba Cloud metadata
        "0.0.0.0/8",  # "this host": connects to the local machine on Linux
        "::/128",
    )
)
_COMPATIBLE = ipaddress.ip_network("::/96")  # IPv4-compatible (RFC 4291, deprecated)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # well-known NAT64 prefix (RFC 6052)
# Local-use NAT64 (RFC 8215): the operator picks the prefix length, /96 most often.
_LOCAL_NAT64 = ipaddress.ip_network("64:ff9b:1::/48")
_SIX_TO_FOUR = ipaddress.ip_network("2002::/16")  # 6to4 (RFC 3056)
# Not global, whatever Python's tables say: deprecated site-local space (RFC 3879) and the
# local-use NAT64 prefix (RFC 8215), which a translator maps to addresses of its choosing.
_PRIVATE_V6 = (ipaddress.ip_network("fec0::/10"), _LOCAL_NAT64)


class TargetRefused(ValueError):
    """The URL or an address it resolves to is not a place webhooks may go."""


@dataclass(frozen=True)
class Target:
    url: str  # as subscribed
    scheme: str
    host: str  # as written (hostname or IP literal), without brackets
    port: int
    path: str  # path + query, what goes on the request line

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"

    def pinned_url(self, address: IPAddress) -> str:
        """The same URL with the host replaced by the checked address."""
        host = f"[{address}]" if address.version == 6 else str(address)
        return urlunsplit((self.scheme, f"{host}:{self.port}", self.path, "", ""))


def parse_target(url: str) -> Target:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise TargetRefused("webhook URLs must be http:// or https://")
    if parts.username or parts.password:
        raise TargetRefused("webhook URLs must not carry credentials; use the signing secret")
    if parts.fragment:
        raise TargetRefused("webhook URLs must not have a #fragment")
    host = parts.hostname
    if not host:
        raise TargetRefused("webhook URL has no host")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as e:
        raise TargetRefused("webhook URL has an invalid port") from e
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return Target(url=url, scheme=parts.scheme, host=host.rstrip("."), port=port, path=path)


def embedded_ipv4(address: IPAddress) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses a packet to ``address`` may be delivered to, besides itself."""
    if not isinstance(address, ipaddress.IPv6Address):
        return []
    if address.ipv4_mapped is not None:
        return [address.ipv4_mapped]
    low32 = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if (
        address in _NAT64
        or address in _LOCAL_NAT64
        or (address in _COMPATIBLE and int(address) > 1)
    ):
        return [low32]
    if address in _SIX_TO_FOUR:
        return [ipaddress.IPv4Address((int(address) >> 80) & 0xFFFFFFFF)]
    if address.teredo is not None:
        return list(address.teredo)  # (server, client)
    return []


def canonical(address: IPAddress) -> IPAddress:
    """The address as the network delivers to it: the IPv4 address an IPv4-mapped,
    -compatible or NAT64 address carries, else itself."""
    inner = embedded_ipv4(address)
    return inner[0] if len(inner) == 1 and address not in _SIX_TO_FOUR else address


def _refusal(address: IPAddress, *, allow_private: bool) -> str | None:
    if any(address in net for net in _NEVER if net.version == address.version):
        return "a link-local or cloud metadata address"
    if address.is_multicast or address.is_unspecified:
        return "a multicast or unspecified address"
    private = not address.is_global or any(address in net for net in _PRIVATE_V6)
    if not allow_private and private:
        return "a loopback, private or reserved address (see webhook_allow_private)"
    return None


def address_refusal(address: IPAddress, *, allow_private: bool) -> str | None:
    """Why ``address`` may not receive webhooks, or ``None`` if it may: the address itself
    and every IPv4 address inside it must be allowed."""
    for candidate in (*embedded_ipv4(address), address):
        why = _refusal(candidate, allow_private=allow_private)
        if why is not None:
            return why
    return None


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _from_addrinfo(infos: Iterable[tuple[object, ...]]) -> list[IPAddress]:
    out: list[IPAddress] = []
    for info in infos:
        sockaddr = info[4]
        assert isinstance(sockaddr, tuple)
        # Scoped IPv6 addresses come back as "fe80::1%eth0"; the scope is not part of it.
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in out:
            out.append(address)
    return out


def resolve(target: Target) -> list[IPAddress]:
    literal = _literal(target.host)
    if literal is not None:
        return [literal]
    try:
        infos = socket.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as e:
        raise TargetRefused(f"cannot resolve {target.host}") from e
    return _from_addrinfo(infos)


async def resolve_async(target: Target) -> list[IPAddress]:
    literal = _literal(target.host)
    if literal is not None:
        return [literal]
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(
            target.host, target.port, type=socket.SOCK_STREAM
        )
    except (OSError, UnicodeError) as e:
        raise TargetRefused(f"cannot resolve {target.host}") from e
    return _from_addrinfo(infos)


OwnEndpoint = tuple[Target, list[IPAddress]] | None


def own_endpoint(settings: Settings) -> OwnEndpoint:
    """This server's public address (blocking DNS), to refuse webhooks pointing back at it.
    If its name does not resolve here, the name and port alone are compared."""
    try:
        own = parse_target(settings.effective_public_url)
    except TargetRefused:
        return None
    try:
        return own, resolve(own)
    except TargetRefused:
        return own, []


def check_addresses(
    target: Target,
    addresses: list[IPAddress],
    settings: Settings,
    *,
    own: OwnEndpoint,
) -> IPAddress:
    """Refuse unless every address is allowed; returns the one to connect to."""
    if not addresses:
        raise TargetRefused(f"{target.host} resolves to no address")
    for address in addresses:
        why = address_refusal(address, allow_private=settings.webhook_allow_private)
        if why is not None:
            raise TargetRefused(f"{target.host} resolves to {why}")
    if own is not None and target.port == own[0].port and _same_host(target, addresses, own):
        raise TargetRefused("webhook URLs must not point at this server itself")
    return addresses[0]


def _same_host(
    target: Target, addresses: list[IPAddress], own: tuple[Target, list[IPAddress]]
) -> bool:
    """Whether ``target`` names this server: the same name, or an address of it in any of its
    spellings (``[::ffff:127.0.0.1]`` is 127.0.0.1; every loopback address is this host)."""
    own_target, own_addresses = own
    if target.host.lower() == own_target.host.lower():
        return True
    ours = {canonical(a) for a in own_addresses}
    theirs = {canonical(a) for a in addresses}
    if any(a.is_loopback for a in ours) and any(a.is_loopback for a in theirs):
        return True
    return bool(ours & theirs)


def peer_refusal(peer: object, expected: IPAddress, settings: Settings) -> str | None:
    """Why the socket a delivery opened may not be sent to: ``peer`` is its remote address
    as the connection reports it (``(host, port, ...)``); it must be the address that was
    checked, and allowed itself."""
    if not isinstance(peer, tuple) or not peer:
        return None  # not a network socket (a test transport): nothing was connected to
    try:
        address = ipaddress.ip_address(str(peer[0]).split("%", 1)[0])
    except ValueError:
        return f"connected to {str(peer[0])[:64]!r}, which is not an IP address"
    if canonical(address) != canonical(expected):
        return f"connected to {address}, not the checked {expected}"
    why = address_refusal(address, allow_private=settings.webhook_allow_private)
    return None if why is None else f"connected to {why}"


def check_target(url: str, settings: Settings) -> Target:
    """Validate a subscription URL now (blocking DNS; call from a worker thread)."""
    target = parse_target(url)
    check_addresses(target, resolve(target), settings, own=own_endpoint(settings))
    return target


async def pin_target(url: str, settings: Settings, *, own: OwnEndpoint) -> tuple[Target, IPAddress]:
    """Re-check a subscription URL right before a delivery; returns the address to use."""
    target = parse_target(url)
    addresses = await resolve_async(target)
    return target, check_addresses(target, addresses, settings, own=own)
