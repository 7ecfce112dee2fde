"""SSRF protection: which addresses ingestion may fetch from, decided after DNS."""

from __future__ import annotations

import ipaddress

import pytest

from sitechat.errors import IngestionError
from sitechat.ingestion.netguard import (
    BLOCKED_ADDRESS,
    AddressPolicy,
    is_public,
    parse_networks,
)


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1", "127.8.9.10", "10.0.0.1", "172.16.5.4", "192.168.1.1", "169.254.169.254",
        "100.64.0.1", "0.0.0.0", "224.0.0.1", "255.255.255.255", "192.0.2.1", "::1", "::",
        "fe80::1", "fc00::1", "ff02::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1",
        "2002:7f00:1::", "2001:0:4136:e378:8000:63bf:3fff:fdd2",
    ],
)  # fmt: skip
def test_non_public_addresses_are_not_public(address: str) -> None:
    assert not is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["8.8.8.8", "93.184.216.34", "2606:4700:4700::1111"])
def test_public_addresses_are_public(address: str) -> None:
    assert is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1", "localhost", "2130706433", "0x7f000001", "[::1]", "169.254.169.254", "10.1.2.3"],
)
async def test_the_default_policy_refuses_local_and_private_hosts(host: str) -> None:
    with pytest.raises(IngestionError) as caught:
        await AddressPolicy().check(host, 80)
    assert caught.value.message == BLOCKED_ADDRESS


async def test_an_allowed_network_is_let_through_and_nothing_more() -> None:
    policy = AddressPolicy(parse_networks(["127.0.0.1/32"]))
    assert await policy.check("127.0.0.1", 80) == [ipaddress.ip_address("127.0.0.1")]
    with pytest.raises(IngestionError):
        await policy.check("127.0.0.2", 80)


async def test_a_name_that_does_not_resolve_is_refused() -> None:
    with pytest.raises(IngestionError, match="could not be resolved"):
        await AddressPolicy().check("no-such-host.invalid", 80)


def test_bad_network_settings_are_rejected() -> None:
    with pytest.raises(ValueError):
        parse_networks(["not-a-network"])
