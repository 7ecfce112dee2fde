"""Which network addresses ingestion may fetch from (SSRF protection).

A URL given to ingestion is chosen by a tenant, so it must not reach the deployment's own
network: cloud metadata (169.254.169.254), the database, Redis, an admin port on localhost.
The rule is on *addresses*, after DNS, because names lie: ``AddressPolicy.check`` resolves a
host and refuses it when **any** of its addresses is not public (loopback, private, link-local,
multicast, reserved, unspecified, carrier-grade NAT, IPv4-mapped forms of those...), unless
the address is inside a network the operator allowed explicitly. The fetcher then connects to
the very address that was checked (``fetch.py``), so a second DNS answer cannot swap it
(DNS rebinding), and every redirect goes through the same check.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import anyio

from sitechat.errors import AddressRefused

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

BLOCKED_ADDRESS = "The address points to a private or reserved network, which is not allowed."
UNRESOLVABLE = "The host name could not be resolved."


def parse_networks(values: Iterable[str]) -> tuple[IPNetwork, ...]:
    """``["127.0.0.0/8", "10.1.2.3"]`` as networks; ``ValueError`` on a bad entry."""
    return tuple(ipaddress.ip_network(v.strip(), strict=False) for v in values if v.strip())


def is_public(address: IPAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address):
        mapped = address.ipv4_mapped or address.sixtofour
        if mapped is not None:
            return is_public(mapped)
        if address.teredo is not None:
            return False
    return address.is_global and not (
        address.is_multicast
        or address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_reserved
        or address.is_unspecified
    )


@dataclass(frozen=True, slots=True)
class AddressPolicy:
    """Public addresses, plus the networks in ``allowed`` (e.g. loopback for tests)."""

    allowed: tuple[IPNetwork, ...] = field(default_factory=tuple)

    def permits(self, address: IPAddress) -> bool:
        if any(address in network for network in self.allowed):
            return True
        return is_public(address)

    async def check(self, host: str, port: int) -> list[IPAddress]:
        """The addresses of ``host``, every one of them permitted; ``IngestionError`` else."""
        host = host.strip("[]")
        try:
            literal: IPAddress | None = ipaddress.ip_address(host)
        except ValueError:
            literal = None
        if literal is not None:
            addresses = [literal]
        else:
            addresses = await _resolve(host, port)
        refused = [a for a in addresses if not self.permits(a)]
        if refused or not addresses:
            raise AddressRefused(BLOCKED_ADDRESS if refused else UNRESOLVABLE)
        return addresses


async def _resolve(host: str, port: int) -> list[IPAddress]:
    try:
        infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise AddressRefused(UNRESOLVABLE) from exc
    found: dict[IPAddress, None] = {}
    for _family, _type, _proto, _canon, sockaddr in infos:
        # Drop an IPv6 scope id ("fe80::1%eth0"): the address itself decides.
        text = str(sockaddr[0]).split("%", 1)[0]
        found.setdefault(ipaddress.ip_address(text), None)
    return list(found)


def first_usable(addresses: Sequence[IPAddress]) -> IPAddress:
    """IPv4 first: this machine (and many hosts) have no IPv6 route."""
    return sorted(addresses, key=lambda a: a.version)[0]
