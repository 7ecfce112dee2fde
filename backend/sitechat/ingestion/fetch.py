"""Fetching a URL for ingestion: async httpx, with every guard a tenant-chosen URL needs.

- Only ``http`` and ``https``, without credentials in the URL.
- SSRF: each hop's host is resolved and checked by ``AddressPolicy`` and the connection is
  made to that checked address (the ``Host`` header and TLS SNI/verification keep the real
  name), so DNS cannot answer differently between check and connect. Redirects are followed
  here, one hop at a time, each hop checked the same way (``max_redirects``).
- robots.txt is respected for every hop (``robots.py``).
- A deadline for the whole fetch, a connect timeout, and a size cap enforced while reading
  (a lying or missing ``Content-Length`` does not get past it).

The HTTP transport can be injected, as httpx does it: ``Fetcher(policy,
transport=httpx.MockTransport(handler))``. Every guard above runs before a request reaches
the transport, so an injected one only ever sees requests to addresses the policy allowed
(the checked address as the URL's host, the name in ``Host`` and the ``sni_hostname``
extension); it cannot widen what a tenant's URL may reach.

Everything that goes wrong is an ``IngestionError`` whose message says what happened in
words an admin can act on, never internal exception text.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from urllib.parse import urljoin

import anyio
import httpx

from sitechat import __version__
from sitechat.errors import IngestionError
from sitechat.ingestion.netguard import AddressPolicy, first_usable
from sitechat.ingestion.robots import RobotsCache

logger = logging.getLogger(__name__)

REDIRECTS = frozenset({301, 302, 303, 307, 308})
MAX_ROBOTS_BYTES = 512 * 1024  # RFC 9309: at least 500 KiB must be parsed


@dataclass(frozen=True, slots=True)
class FetchPolicy:
    addresses: AddressPolicy = field(default_factory=AddressPolicy)
    timeout_seconds: float = 20.0  # the whole fetch of one URL, redirects included
    connect_timeout_seconds: float = 5.0
    max_bytes: int = 10 * 1024 * 1024
    max_redirects: int = 5
    user_agent: str = f"sitechat/{__version__} (document ingestion)"
    robots_agent: str = "sitechat"  # the product token robots.txt rules are matched against
    respect_robots: bool = True


@dataclass(frozen=True, slots=True)
class FetchedPage:
    url: str  # after redirects
    status: int
    content_type: str | None
    data: bytes


class Fetcher:
    """Fetches URLs under one ``FetchPolicy``. Owns its HTTP clients: ``aclose()`` them.

    ``transport`` (default: httpx's own, one connection pool per host name) sends every
    request instead; the fetcher owns it then too, and ``aclose()`` closes it.
    """

    def __init__(
        self,
        policy: FetchPolicy | None = None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.policy = policy or FetchPolicy()
        self._transport = transport
        self._clients: dict[tuple[str, str], httpx.AsyncClient] = {}
        self.robots = RobotsCache(self._fetch_robots, self.policy.robots_agent)

    async def fetch(self, url: str) -> FetchedPage:
        """The page at ``url``: a 2xx body within the size cap, or ``IngestionError``."""
        try:
            with anyio.fail_after(self.policy.timeout_seconds):
                return await self._follow(url, check_robots=self.policy.respect_robots)
        except TimeoutError as exc:
            raise IngestionError("Fetching the page timed out.") from exc

    async def _fetch_robots(self, url: str) -> FetchedPage:
        with anyio.fail_after(self.policy.timeout_seconds):
            return await self._follow(
                url, check_robots=False, max_bytes=MAX_ROBOTS_BYTES, allow_errors=True
            )

    async def _follow(
        self,
        url: str,
        *,
        check_robots: bool,
        max_bytes: int | None = None,
        allow_errors: bool = False,
    ) -> FetchedPage:
        current = url
        for _ in range(self.policy.max_redirects + 1):
            _validated(current)  # before robots.txt: a bad URL has no robots.txt to ask
            if check_robots and not await self.robots.allowed(current):
                raise IngestionError("robots.txt does not allow fetching this page.")
            page, location = await self._hop(current, max_bytes or self.policy.max_bytes)
            if location is None:
                if page.status >= 400 and not allow_errors:
                    raise IngestionError(f"The page could not be fetched (HTTP {page.status}).")
                return page
            current = location
        raise IngestionError("The page redirects too many times.")

    async def _hop(self, url: str, max_bytes: int) -> tuple[FetchedPage, str | None]:
        """One request. Returns the page, or the absolute URL it redirects to."""
        target, headers, extensions, scheme, host = await self._checked(url)
        client = self._client(scheme, host)
        try:
            request = client.build_request("GET", target, headers=headers, extensions=extensions)
            response = await client.send(request, stream=True)
        except httpx.HTTPError as exc:
            logger.info("fetching %s failed: %r", url, exc)
            raise IngestionError("The page could not be fetched (connection failed).") from exc
        try:
            if response.status_code in REDIRECTS and "location" in response.headers:
                location = urljoin(url, response.headers["location"])
                return FetchedPage(url, response.status_code, None, b""), location
            data = await _read_capped(response, max_bytes)
        finally:
            await response.aclose()
        return FetchedPage(
            url, response.status_code, response.headers.get("content-type"), data
        ), None

    async def _checked(
        self, url: str
    ) -> tuple[httpx.URL, dict[str, str], dict[str, object], str, str]:
        parsed = _validated(url)
        host = parsed.host
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        address = first_usable(await self.policy.addresses.check(host, port))
        # Connect to the address that was checked; the name travels in Host and SNI.
        target = parsed.copy_with(host=str(address))
        host_header = parsed.netloc.decode("ascii").rsplit("@", 1)[-1]
        headers = {
            "Host": host_header,
            "User-Agent": self.policy.user_agent,
            "Accept": "text/html,application/xhtml+xml,application/pdf,text/plain,"
            "text/markdown;q=0.9,*/*;q=0.5",
        }
        extensions: dict[str, object] = {}
        if parsed.scheme == "https":
            extensions["sni_hostname"] = host
        return target, headers, extensions, parsed.scheme, host

    def _client(self, scheme: str, host: str) -> httpx.AsyncClient:
        # One client per host name: pooled connections are keyed by address, and a
        # connection's TLS identity belongs to the name it was opened for. An injected
        # transport is one object serving every host, so it gets one client (which closes it).
        key = ("", "") if self._transport is not None else (scheme, host)
        client = self._clients.get(key)
        if client is None:
            client = httpx.AsyncClient(
                transport=self._transport,
                follow_redirects=False,
                trust_env=False,  # no proxy from the environment: it would bypass the checks
                timeout=httpx.Timeout(
                    self.policy.timeout_seconds, connect=self.policy.connect_timeout_seconds
                ),
                limits=httpx.Limits(max_connections=4, max_keepalive_connections=2),
            )
            self._clients[key] = client
        return client

    async def aclose(self) -> None:
        clients, self._clients = self._clients, {}
        for client in clients.values():
            await client.aclose()  # an httpx client closes its transport, an injected one too
        if self._transport is not None and not clients:
            await self._transport.aclose()  # no client ever used it; it is still ours to close


def _validated(url: str) -> httpx.URL:
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        raise IngestionError("The URL is not valid.") from exc
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise IngestionError("Only http and https URLs can be fetched.")
    if parsed.userinfo:
        raise IngestionError("URLs with a user name or password are not accepted.")
    return parsed


async def _read_capped(response: httpx.Response, max_bytes: int) -> bytes:
    too_large = IngestionError(f"The page is larger than {max_bytes // (1024 * 1024) or 1} MB.")
    declared = response.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise too_large
    parts: list[bytes] = []
    size = 0
    try:
        async for part in response.aiter_bytes():
            size += len(part)
            if size > max_bytes:
                raise too_large
            parts.append(part)
    except httpx.HTTPError as exc:
        raise IngestionError("The page could not be fetched (connection failed).") from exc
    return b"".join(parts)
