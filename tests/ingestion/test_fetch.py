"""Fetching a tenant's URL: SSRF checks on every hop, robots.txt, time and size limits.

The first tests fetch from a real website on 127.0.0.1 (``site.py``); the policies allow
exactly that address. The last ones inject an ``httpx.MockTransport`` for what that site
cannot easily be: HTTPS, a redirect into a private network or to cloud metadata, a lying
``Content-Length``, a connection that breaks off. The transport sits behind the guards, so
these also show that an injected transport never sees a request the policy refused.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from sitechat.errors import IngestionError
from sitechat.ingestion.fetch import FetchedPage, Fetcher, FetchPolicy
from sitechat.ingestion.loaders import load_document
from sitechat.ingestion.netguard import BLOCKED_ADDRESS
from tests.support.pdfgen import make_pdf

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


# --- through an injected transport ---------------------------------------------------------

Answer = Callable[[httpx.Request], httpx.Response]


class FakeWeb:
    """An ``httpx.MockTransport`` handler: answers by the name the fetcher asked for (the
    ``Host`` header; the URL itself carries the checked address) and records every request.
    Unknown pages, robots.txt included, answer 404."""

    def __init__(self) -> None:
        self.pages: dict[str, Answer] = {}
        self.requests: list[httpx.Request] = []

    def add(self, url: str, answer: Answer) -> None:
        self.pages[url] = answer

    def page(self, url: str, body: bytes, content_type: str = "text/html") -> None:
        self.add(
            url, lambda _: httpx.Response(200, content=body, headers={"content-type": content_type})
        )

    def redirect(self, url: str, location: str, status: int = 302) -> None:
        self.add(url, lambda _: httpx.Response(status, headers={"location": location}))

    def asked_for(self) -> list[str]:
        """The URLs requested, as names (not addresses), robots.txt left out."""
        return [u for u in map(_asked_url, self.requests) if not u.endswith("/robots.txt")]

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.pages.get(_asked_url(request))
        return answer(request) if answer is not None else httpx.Response(404)


def _asked_url(request: httpx.Request) -> str:
    return f"{request.url.scheme}://{request.headers['host']}{request.url.raw_path.decode()}"


@pytest.fixture
def web() -> FakeWeb:
    return FakeWeb()


async def fetch_through(web: FakeWeb, policy: FetchPolicy, url: str) -> FetchedPage:
    fetcher = Fetcher(policy, transport=httpx.MockTransport(web))
    try:
        return await fetcher.fetch(url)
    finally:
        await fetcher.aclose()


async def test_an_injected_transport_gets_the_checked_address_and_the_name_for_tls(
    web: FakeWeb, policy: FetchPolicy
) -> None:
    web.page("https://localhost:8443/docs", b"<html><title>Docs</title><p>hi</p></html>")

    page = await fetch_through(web, policy, "https://localhost:8443/docs")

    assert page.status == 200 and page.url == "https://localhost:8443/docs"
    sent = web.requests[-1]
    # Connect to the address that was checked; TLS verifies the name asked for.
    assert sent.url.scheme == "https" and sent.url.host in ("127.0.0.1", "::1")
    assert sent.headers["host"] == "localhost:8443"
    assert sent.extensions["sni_hostname"] == "localhost"
    assert sent.headers["user-agent"].startswith("sitechat/")


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/admin",
        "http://169.254.169.254/latest/meta-data/",  # cloud metadata
        "http://[::ffff:10.0.0.7]/",  # a private IPv4 address spelt as IPv6
        "http://localhost:6379/",
    ],
)
async def test_the_default_policy_refuses_before_an_injected_transport_is_asked(
    web: FakeWeb, url: str
) -> None:
    with pytest.raises(IngestionError) as caught:
        await fetch_through(web, FetchPolicy(), url)

    assert caught.value.message == BLOCKED_ADDRESS
    assert web.requests == []


@pytest.mark.parametrize(
    ("location", "message"),
    [
        ("http://10.0.0.7/admin", BLOCKED_ADDRESS),
        ("http://169.254.169.254/latest/meta-data/", BLOCKED_ADDRESS),
        ("http://[::ffff:169.254.169.254]/latest/meta-data/", BLOCKED_ADDRESS),
        ("http://[fd00::1]/", BLOCKED_ADDRESS),  # IPv6 unique-local
        ("http://0.0.0.0:8080/", BLOCKED_ADDRESS),
        ("//192.168.1.1/router", BLOCKED_ADDRESS),  # scheme-relative
        ("file:///etc/passwd", "Only http and https"),
    ],
)
async def test_a_redirect_chain_into_a_refused_network_stops_at_the_hop_that_leaves(
    web: FakeWeb, policy: FetchPolicy, location: str, message: str
) -> None:
    web.redirect("http://localhost/start", "http://127.0.0.1/next", status=301)
    web.redirect("http://127.0.0.1/next", location)

    with pytest.raises(IngestionError, match=message):
        await fetch_through(web, policy, "http://localhost/start")

    # The two allowed hops were asked for; nothing was sent to the refused address.
    assert web.asked_for() == ["http://localhost/start", "http://127.0.0.1/next"]
    assert {r.url.host for r in web.requests} <= {"127.0.0.1", "::1"}


async def test_a_content_length_that_lies_does_not_get_past_the_size_cap(
    web: FakeWeb, policy: FetchPolicy
) -> None:
    sent = 0

    async def body() -> AsyncIterator[bytes]:
        nonlocal sent
        for _ in range(1000):
            sent += 65536
            yield b"x" * 65536

    web.add(
        "http://localhost/small",
        lambda _: httpx.Response(
            200, headers={"content-length": "100", "content-type": "text/plain"}, content=body()
        ),
    )

    with pytest.raises(IngestionError, match="larger than"):
        await fetch_through(
            web, dataclasses.replace(policy, max_bytes=200_000), "http://localhost/small"
        )

    assert sent < 1000 * 65536  # reading stopped at the cap, not at the end of the body


async def test_a_body_that_breaks_off_is_a_connection_failure(
    web: FakeWeb, policy: FetchPolicy
) -> None:
    async def body() -> AsyncIterator[bytes]:
        yield b"<html><p>first half"
        raise httpx.ReadError("Connection reset by peer (from 10.1.2.3)")

    web.add("http://localhost/cut", lambda _: httpx.Response(200, content=body()))

    with pytest.raises(IngestionError) as caught:
        await fetch_through(web, policy, "http://localhost/cut")

    assert caught.value.message == "The page could not be fetched (connection failed)."


async def test_a_transport_error_is_reported_without_its_internal_text(
    web: FakeWeb, policy: FetchPolicy
) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused (10.1.2.3)", request=request)

    web.add("http://localhost/down", refuse)

    with pytest.raises(IngestionError) as caught:
        await fetch_through(web, policy, "http://localhost/down")

    assert caught.value.message == "The page could not be fetched (connection failed)."


async def test_a_type_ingestion_cannot_read_is_handed_over_as_sent_for_the_loader_to_refuse(
    web: FakeWeb, policy: FetchPolicy
) -> None:
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256))
    web.page("http://localhost/logo", png, content_type="image/png")

    page = await fetch_through(web, policy, "http://localhost/logo")

    assert page.data == png and page.content_type == "image/png"
    with pytest.raises(IngestionError, match="Unsupported content type 'image/png'"):
        load_document(page.data, content_type=page.content_type)


async def test_a_pdf_arrives_byte_for_byte_and_loads_as_a_pdf(
    web: FakeWeb, policy: FetchPolicy
) -> None:
    pdf = make_pdf(["Refunds are paid within fourteen days."], title="Refund policy")
    # No .pdf in the URL and a generic type: the loader recognises the bytes themselves.
    web.page("http://localhost/download?id=7", pdf, content_type="application/octet-stream")

    page = await fetch_through(web, policy, "http://localhost/download?id=7")

    assert page.data == pdf
    loaded = load_document(page.data, content_type=page.content_type)
    assert loaded.source_type == "pdf" and "fourteen days" in loaded.text


class CountingTransport(httpx.AsyncBaseTransport):
    def __init__(self, web: FakeWeb) -> None:
        self._inner = httpx.MockTransport(web)
        self.closed = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        self.closed += 1


@pytest.mark.parametrize("used", [True, False], ids=["used", "never-used"])
async def test_the_fetcher_closes_an_injected_transport(
    web: FakeWeb, policy: FetchPolicy, used: bool
) -> None:
    web.page("http://localhost/a", b"<p>a</p>")
    web.page("http://127.0.0.1/b", b"<p>b</p>")
    transport = CountingTransport(web)
    fetcher = Fetcher(policy, transport=transport)
    if used:
        await fetcher.fetch("http://localhost/a")
        await fetcher.fetch("http://127.0.0.1/b")  # another host: the same transport

    await fetcher.aclose()

    assert transport.closed == 1
    assert len(web.asked_for()) == (2 if used else 0)
