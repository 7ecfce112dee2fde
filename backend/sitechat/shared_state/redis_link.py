"""The process's one Redis connection pool, and what sitechat does when Redis is away.

Redis is shared state between API processes (rate-limit windows, stream slots, cached
chatbot configs, cache invalidation), never the only copy of anything. So its failure is
handled, not fatal:

- the public path keeps answering on per-process state; each fallback is logged (at most
  once per ``cooldown`` seconds, so an outage does not flood the log) and counted in
  ``failures``;
- admin writes ask ``require_writable``, which refuses with 503: a config change that
  cannot reach the other processes' caches would leave them serving the old one.

After a failure the link stays "down" for ``cooldown`` seconds, in which callers skip Redis
at once instead of each waiting for a connect timeout; the first call after that tries again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from sitechat.errors import SharedStateUnavailable

logger = logging.getLogger(__name__)

# Errors that mean "Redis is not answering": the network, a timeout, or Redis itself.
REDIS_ERRORS: tuple[type[BaseException], ...] = (RedisError, OSError, TimeoutError)


class RedisLink:
    def __init__(
        self,
        url: str,
        *,
        prefix: str = "",
        timeout_seconds: float = 0.5,
        cooldown_seconds: float = 2.0,
        max_connections: int = 200,
    ) -> None:
        self.url = url
        self.prefix = prefix
        self.cooldown_seconds = cooldown_seconds
        self.failures = 0
        self._down_until = 0.0
        self._last_logged = -float("inf")
        # One quick retry covers a pooled connection that died with a Redis restart; more
        # would only make a real outage slower to detect.
        self.client: Redis = Redis.from_url(
            url,
            socket_connect_timeout=timeout_seconds,
            socket_timeout=timeout_seconds,
            retry=Retry(NoBackoff(), 1),
            max_connections=max_connections,
            health_check_interval=30,
        )

    def key(self, *parts: str) -> str:
        return self.prefix + ":".join(parts)

    @property
    def usable(self) -> bool:
        """False during the cooldown after a failure: skip Redis, use the local fallback."""
        return time.monotonic() >= self._down_until

    def record_failure(self, what: str, exc: BaseException) -> None:
        self.failures += 1
        now = time.monotonic()
        self._down_until = now + self.cooldown_seconds
        if now - self._last_logged >= self.cooldown_seconds:
            self._last_logged = now
            logger.warning(
                "redis unreachable during %s (%s); using per-process state (failures: %d)",
                what,
                type(exc).__name__,
                self.failures,
            )

    @asynccontextmanager
    async def translated(self, doing: str) -> AsyncIterator[None]:
        """Where Redis errors become sitechat's: a failure inside is recorded (the link goes
        down for ``cooldown`` seconds, logged at most once per cooldown) and raised as
        ``SharedStateUnavailable``, which callers answer with their per-process fallback."""
        try:
            yield
        except REDIS_ERRORS as exc:
            self.record_failure(doing, exc)
            raise SharedStateUnavailable() from exc

    async def ping(self) -> bool:
        try:
            await self.client.ping()
        except REDIS_ERRORS as exc:
            self.record_failure("ping", exc)
            return False
        self._down_until = 0.0
        return True

    async def require_writable(self) -> None:
        """503 unless Redis answers now; a write must be able to invalidate every cache."""
        if not await self.ping():
            raise SharedStateUnavailable()

    async def aclose(self) -> None:
        await self.client.aclose()
