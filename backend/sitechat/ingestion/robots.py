"""robots.txt, fetched once per origin and obeyed (RFC 9309).

- 2xx: the rules are parsed (``urllib.robotparser``) and applied to our product token.
- 4xx (no robots.txt, or forbidden): everything may be fetched, as the RFC says.
- 5xx or unreachable: nothing may be fetched from that origin (the RFC's "complete
  disallow"), so an overloaded site is not crawled.

``Crawl-delay`` is reported for the crawler to honour.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING
from urllib.parse import urlsplit
from urllib.robotparser import RobotFileParser

import anyio

from sitechat.errors import AddressRefused, IngestionError

if TYPE_CHECKING:
    from sitechat.ingestion.fetch import FetchedPage

MAX_CRAWL_DELAY = 10.0


class _Rules:
    def __init__(self, parser: RobotFileParser | None, allow_all: bool) -> None:
        self._parser = parser
        self._allow_all = allow_all

    def allowed(self, agent: str, url: str) -> bool:
        if self._parser is None:
            return self._allow_all
        return self._parser.can_fetch(agent, url)

    def delay(self, agent: str) -> float:
        if self._parser is None:
            return 0.0
        value = self._parser.crawl_delay(agent)
        return min(float(value), MAX_CRAWL_DELAY) if value else 0.0


class RobotsCache:
    def __init__(self, fetch: Callable[[str], Awaitable[FetchedPage]], agent: str) -> None:
        self._fetch = fetch
        self._agent = agent
        self._rules: dict[str, _Rules] = {}
        self._locks: dict[str, anyio.Lock] = {}

    async def allowed(self, url: str) -> bool:
        return (await self._for(url)).allowed(self._agent, url)

    async def crawl_delay(self, url: str) -> float:
        return (await self._for(url)).delay(self._agent)

    async def _for(self, url: str) -> _Rules:
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        rules = self._rules.get(origin)
        if rules is not None:
            return rules
        lock = self._locks.setdefault(origin, anyio.Lock())
        async with lock:
            rules = self._rules.get(origin)
            if rules is None:
                rules = await self._load(origin)
                self._rules[origin] = rules
        return rules

    async def _load(self, origin: str) -> _Rules:
        try:
            page = await self._fetch(f"{origin}/robots.txt")
        except AddressRefused:
            raise  # the page itself is refused for that reason, not for robots.txt
        except (IngestionError, TimeoutError):
            return _Rules(None, allow_all=False)
        if 400 <= page.status < 500:
            return _Rules(None, allow_all=True)
        if page.status >= 500 or page.status < 200:
            return _Rules(None, allow_all=False)
        parser = RobotFileParser()
        parser.parse(page.data.decode("utf-8", errors="replace").splitlines())
        return _Rules(parser, allow_all=True)
