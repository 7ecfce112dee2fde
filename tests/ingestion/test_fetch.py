"""Fetching a tenant's URL: SSRF checks on every hop, robots.txt, time and size limits.

Every server here is on 127.0.0.1; the policies allow exactly that address.
"""

from __future__ import annotations

import dataclasses
import time

import pytest

from sitechat.errors import IngestionError
from sitechat.ingestion.fetch import Fetcher, FetchPolicy
from sitechat.ingestion.netguard import BLOCKED_ADDRESS

from .site import Site


async def fetch(policy: FetchPolicy, url: str) -> object:
    fetcher = Fetcher(policy)
    try:
        return await fetcher.fetch(url)
    finally:
        await fetcher.aclose()


async def test_a_page_is_fetched_with_its_own_host_name(site: Site, policy: FetchPolicy) -> None:
    site.html("/hello", "Hello", "World")
    page = await fetch(policy, site.url("/hello", host="localhost"))
    assert page.status == 200 and b"World" in page.data  # type: ignore[attr-defined]
    assert page.content_type.startswith("text/html")  # type: ignore[attr-defined]
    hit = site.hits[-1]
    # Connected to the checked address, but the server sees the name that was asked for.
    assert hit.path == "/hello" and hit.host == f"localhost:{site.port}"
    assert hit.user_agent.startswith("sitechat/")


async def test_loopback_is_refused_without_being_contacted(site: Site) -> None:
    site.html("/", "Home", "secret admin page")
    with pytest.raises(IngestionError) as caught:
        await fetch(FetchPolicy(), site.url("/"))
    assert caught.value.message == BLOCKED_ADDRESS
    assert site.hits == []


async def test_a_redirect_to_a_refused_address_is_not_followed(
    site: Site, policy: FetchPolicy
) -> None:
    site.add("/go", status=302, headers={"Location": f"http://127.0.0.2:{site.port}/inside"})
    site.html("/inside", "Inside", "internal")
    with pytest.raises(IngestionError) as caught:
        await fetch(policy, site.url("/go"))
    assert caught.value.message == BLOCKED_ADDRESS
    assert "/inside" not in site.paths()


async def test_redirects_are_followed_hop_by_hop(site: Site, policy: FetchPolicy) -> None:
    site.add("/old", status=301, headers={"Location": "/newer"})
    site.add("/newer", status=307, headers={"Location": site.url("/new", host="localhost")})
    site.html("/new", "New", "moved here")
    page = await fetch(policy, site.url("/old"))
    assert page.url == site.url("/new", host="localhost")  # type: ignore[attr-defined]
    assert [p for p in site.paths() if p != "/robots.txt"] == ["/old", "/newer", "/new"]


async def test_endless_redirects_stop(site: Site, policy: FetchPolicy) -> None:
    site.add("/loop", status=302, headers={"Location": "/loop"})
    with pytest.raises(IngestionError, match="redirects too many times"):
        await fetch(policy, site.url("/loop"))


async def test_a_declared_size_over_the_cap_is_refused(site: Site, policy: FetchPolicy) -> None:
    site.add("/big", b"x" * 300_000, content_type="text/plain")
    with pytest.raises(IngestionError, match="larger than"):
        await fetch(dataclasses.replace(policy, max_bytes=100_000), site.url("/big"))


async def test_an_undeclared_size_is_capped_while_reading(site: Site, policy: FetchPolicy) -> None:
    site.add("/stream", b"start", content_type="text/plain", endless_bytes=50_000_000)
    with pytest.raises(IngestionError, match="larger than"):
        await fetch(dataclasses.replace(policy, max_bytes=200_000), site.url("/stream"))


async def test_a_slow_server_times_out(site: Site, policy: FetchPolicy) -> None:
    site.html("/slow", "Slow", "eventually")
    site.pages["/slow"].delay = 3.0
    started = time.monotonic()
    with pytest.raises(IngestionError, match="timed out"):
        await fetch(dataclasses.replace(policy, timeout_seconds=0.5), site.url("/slow"))
    assert time.monotonic() - started < 2.5  # 0.5 s deadline, generous margin


async def test_robots_txt_rules_for_our_agent_are_obeyed(site: Site, policy: FetchPolicy) -> None:
    site.add(
        "/robots.txt",
        "User-agent: sitechat\nDisallow: /private\n\nUser-agent: *\nDisallow: /\n",
        content_type="text/plain",
    )
    site.html("/private/page", "Private", "no")
    site.html("/public", "Public", "yes")
    with pytest.raises(IngestionError, match=r"robots\.txt"):
        await fetch(policy, site.url("/private/page"))
    assert "/private/page" not in site.paths()
    assert (await fetch(policy, site.url("/public"))).status == 200  # type: ignore[attr-defined]


async def test_without_robots_txt_everything_may_be_fetched(
    site: Site, policy: FetchPolicy
) -> None:
    site.html("/page", "Page", "fine")  # /robots.txt answers 404
    assert (await fetch(policy, site.url("/page"))).status == 200  # type: ignore[attr-defined]


async def test_a_failing_robots_txt_means_nothing_may_be_fetched(
    site: Site, policy: FetchPolicy
) -> None:
    site.add("/robots.txt", "oops", status=503, content_type="text/plain")
    site.html("/page", "Page", "fine")
    with pytest.raises(IngestionError, match=r"robots\.txt"):
        await fetch(policy, site.url("/page"))


async def test_an_error_status_fails_with_it(site: Site, policy: FetchPolicy) -> None:
    with pytest.raises(IngestionError, match="HTTP 404"):
        await fetch(policy, site.url("/missing"))


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://127.0.0.1/file", "Only http and https"),
        ("file:///etc/passwd", "Only http and https"),
        ("http://user:secret@127.0.0.1/", "user name or password"),
        ("http://[::1", "not valid"),
    ],
)
async def test_unsafe_or_malformed_urls_are_refused(
    policy: FetchPolicy, url: str, message: str
) -> None:
    with pytest.raises(IngestionError, match=message):
        await fetch(policy, url)
