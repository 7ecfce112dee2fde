"""The client IP for per-IP limits: X-Forwarded-For only through trusted proxies, read from
the right, so a client cannot pick its own address."""

from __future__ import annotations

import pytest

from sitechat.gate.client_ip import ClientIpResolver

NGINX = ClientIpResolver(["127.0.0.1", "::1", "10.0.0.0/8"])


@pytest.mark.parametrize(
    ("peer", "forwarded", "client"),
    [
        ("127.0.0.1", None, "127.0.0.1"),
        ("127.0.0.1", "203.0.113.9", "203.0.113.9"),
        # The client wrote "1.1.1.1" itself; nginx appended the address it saw.
        ("127.0.0.1", "1.1.1.1, 203.0.113.9", "203.0.113.9"),
        # Two trusted hops (a load balancer in 10/8, then nginx).
        ("127.0.0.1", "6.6.6.6, 203.0.113.9, 10.1.2.3", "203.0.113.9"),
        # Not from a trusted proxy: the header is ignored.
        ("198.51.100.4", "203.0.113.9", "198.51.100.4"),
        # Garbage stops the walk at the last good hop.
        ("127.0.0.1", "not-an-ip, 203.0.113.9", "203.0.113.9"),
        ("127.0.0.1", "203.0.113.9, garbage", "127.0.0.1"),
        # Ports and IPv6 forms.
        ("127.0.0.1", "203.0.113.9:5555", "203.0.113.9"),
        ("::1", "[2001:db8::1]:443", "2001:db8::1"),
        ("::ffff:127.0.0.1", "203.0.113.9", "203.0.113.9"),
        # Every hop trusted: the leftmost.
        ("127.0.0.1", "10.0.0.5", "10.0.0.5"),
    ],
)
def test_forwarded_for_is_believed_only_from_trusted_proxies(
    peer: str, forwarded: str | None, client: str
) -> None:
    assert NGINX.resolve(peer, forwarded) == client


def test_no_trusted_proxies_means_the_peer_always() -> None:
    assert ClientIpResolver([]).resolve("127.0.0.1", "203.0.113.9") == "127.0.0.1"
    assert ClientIpResolver([]).resolve(None, "203.0.113.9") == "unknown"
