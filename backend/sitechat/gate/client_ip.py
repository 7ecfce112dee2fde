"""The client's IP address, for per-IP limits.

``X-Forwarded-For`` is a list anyone can write. It is believed only when the TCP peer is a
configured trusted proxy, and then read from the right: each trusted proxy appended the
address it got the request from, so the first address from the right that is *not* a
trusted proxy is the client. Addresses left of it were written by the client itself and
are ignored. An unparsable entry stops the walk (the peer or the last good hop is used).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def _address(text: str) -> IPAddress | None:
    text = text.strip()
    if text.startswith("[") and "]" in text:  # "[::1]:1234"
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # "1.2.3.4:5678"
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


class ClientIpResolver:
    def __init__(self, trusted_proxies: Iterable[str]) -> None:
        self._trusted: tuple[IPNetwork, ...] = tuple(
            ipaddress.ip_network(entry, strict=False) for entry in trusted_proxies
        )

    def is_trusted(self, address: IPAddress) -> bool:
        return any(address in network for network in self._trusted)

    def trusts(self, peer: str | None) -> bool:
        """Whether the TCP peer ``peer`` (an address as the server gives it) is a trusted
        proxy, whose headers about the request are believed."""
        address = _address(peer) if peer else None
        return address is not None and self.is_trusted(address)

    def resolve(self, peer: str | None, forwarded_for: str | None) -> str:
        """The client address for a request from ``peer`` carrying ``forwarded_for``."""
        peer_address = _address(peer) if peer else None
        if peer_address is None:
            return peer or "unknown"
        if not forwarded_for or not self.is_trusted(peer_address):
            return str(peer_address)
        client = peer_address
        for hop in reversed(forwarded_for.split(",")):
            address = _address(hop)
            if address is None:
                break
            client = address
            if not self.is_trusted(address):
                break
        return str(client)
