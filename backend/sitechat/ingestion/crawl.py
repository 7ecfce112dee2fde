"""Finding the pages of a site: from its sitemap, or by following links.

- Sitemap: the start URL when it names an XML sitemap, else ``/sitemap.xml`` of its origin;
  sitemap indexes are followed (at most ``MAX_SITEMAPS`` files).
- Links: breadth-first from the start URL, up to ``max_depth`` clicks away.

Either way only pages on the start URL's host are taken (``www.`` or not), at most
``max_pages`` of them, each fetched through the guarded ``Fetcher`` (robots.txt, SSRF, size
and time limits), one at a time and honouring ``Crawl-delay``. A page that fails is reported
and the crawl goes on.
"""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ElementTree
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import urldefrag, urlsplit

import anyio

from sitechat.errors import IngestionError
from sitechat.ingestion.fetch import FetchedPage, Fetcher
from sitechat.ingestion.html import parse_html
from sitechat.ingestion.loaders import decode_text

logger = logging.getLogger(__name__)

MAX_PAGES_LIMIT = 1000
MAX_DEPTH_LIMIT = 5
MAX_SITEMAPS = 10
_SKIP_SUFFIXES = (
    ".png", ".jpg", ".jpeg", ".gif", ".webp", ".svg", ".ico", ".css", ".js", ".json",
    ".zip", ".gz", ".tar", ".mp3", ".mp4", ".webm", ".woff", ".woff2", ".ttf", ".exe",
    ".dmg", ".doc", ".docx", ".xls", ".xlsx", ".ppt", ".pptx",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class CrawlOptions:
    max_pages: int = 50
    max_depth: int = 2
    use_sitemap: bool = False

    def __post_init__(self) -> None:
        if not 1 <= self.max_pages <= MAX_PAGES_LIMIT:
            raise ValueError(f"max_pages must be between 1 and {MAX_PAGES_LIMIT}")
        if not 0 <= self.max_depth <= MAX_DEPTH_LIMIT:
            raise ValueError(f"max_depth must be between 0 and {MAX_DEPTH_LIMIT}")


@dataclass(frozen=True, slots=True)
class CrawlResult:
    url: str
    page: FetchedPage | None
    error: str | None = None  # why the page could not be fetched


def same_site(url: str, start: str) -> bool:
    def host(u: str) -> str:
        name = (urlsplit(u).hostname or "").lower()
        return name[4:] if name.startswith("www.") else name

    return host(url) == host(start)


def crawlable(url: str, start: str) -> bool:
    path = urlsplit(url).path.lower()
    return (
        url.startswith(("http://", "https://"))
        and same_site(url, start)
        and not path.endswith(_SKIP_SUFFIXES)
    )


class Crawler:
    def __init__(self, fetcher: Fetcher, options: CrawlOptions) -> None:
        self._fetcher = fetcher
        self._options = options

    async def pages(self, start_url: str) -> AsyncIterator[CrawlResult]:
        start_url = urldefrag(start_url)[0]
        if self._options.use_sitemap:
            urls = await self._sitemap_urls(start_url)
            for url in urls[: self._options.max_pages]:
                yield await self._get(url)
            return
        async for result in self._follow_links(start_url):
            yield result

    async def _get(self, url: str) -> CrawlResult:
        delay = await self._delay(url)
        if delay:
            await anyio.sleep(delay)
        try:
            return CrawlResult(url, await self._fetcher.fetch(url))
        except IngestionError as exc:
            return CrawlResult(url, None, exc.message)

    async def _delay(self, url: str) -> float:
        try:
            return await self._fetcher.robots.crawl_delay(url)
        except IngestionError:
            return 0.0

    async def _follow_links(self, start_url: str) -> AsyncIterator[CrawlResult]:
        seen = {start_url}
        queue: deque[tuple[str, int]] = deque([(start_url, 0)])
        taken = 0
        while queue and taken < self._options.max_pages:
            url, depth = queue.popleft()
            result = await self._get(url)
            taken += 1
            yield result
            if result.page is None or depth >= self._options.max_depth:
                continue
            for link in await anyio.to_thread.run_sync(_html_links, result.page):
                if link not in seen and crawlable(link, start_url):
                    seen.add(link)
                    queue.append((link, depth + 1))

    async def _sitemap_urls(self, start_url: str) -> list[str]:
        parts = urlsplit(start_url)
        first = (
            start_url
            if parts.path.lower().endswith(".xml")
            else f"{parts.scheme}://{parts.netloc}/sitemap.xml"
        )
        pending = deque([first])
        fetched = 0
        found: dict[str, None] = {}
        while pending and fetched < MAX_SITEMAPS and len(found) < self._options.max_pages:
            sitemap = pending.popleft()
            fetched += 1
            page = await self._fetcher.fetch(sitemap)  # a missing sitemap fails the crawl
            children, urls = _parse_sitemap(page.data)
            pending.extend(c for c in children if same_site(c, start_url))
            for url in urls:
                if crawlable(url, start_url):
                    found.setdefault(url, None)
        if not found:
            raise IngestionError("The sitemap lists no pages of this site.")
        return list(found)


def _html_links(page: FetchedPage) -> tuple[str, ...]:
    content_type = (page.content_type or "").lower()
    if "html" not in content_type:
        return ()
    try:
        return parse_html(decode_text(page.data), base_url=page.url).links
    except IngestionError:
        return ()


def _parse_sitemap(data: bytes) -> tuple[list[str], list[str]]:
    """(nested sitemaps, page URLs). Python's expat refuses entity-expansion bombs."""
    try:
        root = ElementTree.fromstring(data)
    except ElementTree.ParseError as exc:
        raise IngestionError("The sitemap is not valid XML.") from exc
    kind = root.tag.rsplit("}", 1)[-1]
    locs = [
        (el.text or "").strip()
        for el in root.iter()
        if el.tag.rsplit("}", 1)[-1] == "loc" and (el.text or "").strip()
    ]
    if kind == "sitemapindex":
        return locs, []
    return [], [urldefrag(loc)[0] for loc in locs]
