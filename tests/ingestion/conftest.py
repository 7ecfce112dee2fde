"""Fixtures for ingestion: a loopback website and fetch policies that allow only it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sitechat.ingestion.fetch import FetchPolicy
from sitechat.ingestion.netguard import AddressPolicy, parse_networks

from .site import Site


@pytest.fixture
def site() -> Iterator[Site]:
    with Site() as running:
        yield running


@pytest.fixture
def policy() -> FetchPolicy:
    """Loopback is refused by default; the tests allow exactly 127.0.0.1 (and ::1)."""
    return FetchPolicy(
        addresses=AddressPolicy(parse_networks(["127.0.0.1/32", "::1/128"])),
        timeout_seconds=5.0,
        connect_timeout_seconds=2.0,
    )
