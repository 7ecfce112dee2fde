"""Rate limits on the public path: moving windows.

With Redis configured, the windows are shared by every API process: the ``limits``
library's moving windows through its asyncio API (``limits.aio``, the ``redis-py`` asyncio
client on the process's one connection pool). Otherwise, and whenever Redis fails, they are
this process's own (``MemoryWindows``, the same rule), and a Redis failure is logged and
counted on the ``RedisLink``: visitors keep chatting, held to per-process limits.

Checks come in stages, narrowest first: a request over its IP, visitor or session limit is
refused before it is counted against the chatbot-wide limit, so one abusive client cannot
use up a chatbot's shared allowance for everyone else.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

from limits import RateLimitItem
from limits.aio.storage import RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter

from sitechat.errors import SharedStateUnavailable
from sitechat.gate.memory_windows import MemoryWindows
from sitechat.shared_state.redis_link import RedisLink


@dataclass(frozen=True, slots=True)
class LimitCheck:
    """One limit for one identity, e.g. ``per_ip`` for ``"203.0.113.7"`` on chatbot ``shop``."""

    scope: str
    identity: tuple[str, ...]
    items: tuple[RateLimitItem, ...]


@dataclass(frozen=True, slots=True)
class LimitVerdict:
    allowed: bool
    scope: str | None = None  # the limit that refused
    limit: int = 0  # its amount per window
    window: str = ""  # e.g. "20 per 1 minute"
    remaining: int = 0
    reset_at: float = 0.0  # unix seconds when a slot frees up
    retry_after: float = 0.0

    def headers(self) -> dict[str, str]:
        """``Retry-After`` and ``X-RateLimit-*`` for a refusal (reset as unix seconds)."""
        return {
            "Retry-After": str(max(1, math.ceil(self.retry_after))),
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(max(self.remaining, 0)),
            "X-RateLimit-Reset": str(math.ceil(self.reset_at)),
        }


ALLOWED = LimitVerdict(allowed=True)


class RateLimiter:
    def __init__(self, redis: RedisLink | None = None) -> None:
        self.redis = redis
        self._memory = MemoryWindows()
        self._shared: MovingWindowRateLimiter | None = None
        if redis is not None:
            storage = RedisStorage(
                "async+" + redis.url,
                implementation="redispy",
                key_prefix=redis.key("limits"),
                # Share the process's pool (the stub types options as scalars only).
                connection_pool=redis.client.connection_pool,  # type: ignore[arg-type]
            )
            self._shared = MovingWindowRateLimiter(storage)

    def _limiter(self) -> MovingWindowRateLimiter | None:
        """The shared windows if Redis is usable now; None for this process's own."""
        if self._shared is not None and self.redis is not None and self.redis.usable:
            return self._shared
        return None

    async def check(self, stages: Sequence[Sequence[LimitCheck]]) -> LimitVerdict:
        """Count this request against every limit, stage by stage; the first refusal wins."""
        for stage in stages:
            pairs = [(check, item) for check in stage for item in check.items]
            if not pairs:
                continue
            results = await self._hit_all(pairs)
            for (check, item), ok in zip(pairs, results, strict=True):
                if not ok:
                    return await self._refusal(check, item)
        return ALLOWED

    async def _hit_all(self, pairs: list[tuple[LimitCheck, RateLimitItem]]) -> list[bool]:
        limiter = self._limiter()
        if limiter is None or self.redis is None:
            return [self._memory.hit(item, check.scope, *check.identity) for check, item in pairs]
        try:
            async with self.redis.translated("a rate-limit check"):
                return await self._hits(limiter, pairs)
        except SharedStateUnavailable:
            return await self._hit_all(pairs)  # the link is now down: memory this time

    @staticmethod
    async def _hits(
        limiter: MovingWindowRateLimiter, pairs: list[tuple[LimitCheck, RateLimitItem]]
    ) -> list[bool]:
        return list(
            await asyncio.gather(
                *(limiter.hit(item, check.scope, *check.identity) for check, item in pairs)
            )
        )

    async def _refusal(self, check: LimitCheck, item: RateLimitItem) -> LimitVerdict:
        limiter = self._limiter()
        try:
            if limiter is None or self.redis is None:
                reset_at, remaining = self._memory.window_stats(item, check.scope, *check.identity)
            else:
                async with self.redis.translated("reading a rate-limit window"):
                    stats = await limiter.get_window_stats(item, check.scope, *check.identity)
                reset_at, remaining = stats.reset_time, stats.remaining
        except SharedStateUnavailable:
            reset_at, remaining = time.time() + item.get_expiry(), 0
        return LimitVerdict(
            allowed=False,
            scope=check.scope,
            limit=item.amount,
            window=f"{item.amount} per {item.multiples} {item.GRANULARITY.name}",
            remaining=remaining,
            reset_at=reset_at,
            retry_after=max(reset_at - time.time(), 1.0),
        )

    async def reset(self, check: LimitCheck) -> None:
        """Forget a window (tests and operators)."""
        limiter = self._limiter()
        for item in check.items:
            if limiter is None:
                self._memory.clear(item, check.scope, *check.identity)
            else:
                await limiter.clear(item, check.scope, *check.identity)
