"""Rate limits on the public path: moving windows.

With Redis configured, the windows are shared by every API process: the ``limits``
library's moving windows through its asyncio API (``limits.aio``, the ``redis-py`` asyncio
client on the process's one connection pool). Otherwise, and whenever Redis fails, they are
this process's own (``MemoryWindows``, the same rule), and a Redis failure is logged and
counted on the ``RedisLink``: visitors keep chatting, held to per-process limits.

Checks come in stages, narrowest first: a request over its IP, visitor or session limit is
refused before it is counted against the chatbot-wide limit, so one abusive client cannot
use up a chatbot's shared allowance for everyone else.

On Redis a whole check is one round trip (``_CHECK_STAGES``): every window of every stage is
taken as ``limits``' own acquire script takes it (the same keys, entries and expiry, so its
window stats and ``clear`` see them), stage after stage, and a stage with a refusal ends it
there. A request's windows are counted by one script, where a round trip per stage (and a
task per window) took most of the gate's time.
"""

from __future__ import annotations

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


# KEYS: every window, stage after stage. ARGV: the time (unix seconds), each window's
# amount and expiry (seconds) in the order of KEYS, then the number of windows in each
# stage. Each window is ``limits``' acquire_moving_window.lua for a cost of 1: refused if
# its oldest kept entry is still inside the window, else a new entry, trimmed to the
# amount, the key expiring with the window. Returns 1 or 0 per window up to the end of the
# first stage with a 0 (the windows of later stages are not touched).
_CHECK_STAGES = """
local now = tonumber(ARGV[1])
local results = {}
local k = 0
local s = 2 + 2 * #KEYS
while s <= #ARGV do
    local refused = false
    for _ = 1, tonumber(ARGV[s]) do
        k = k + 1
        local limit = tonumber(ARGV[2 * k])
        local expiry = tonumber(ARGV[2 * k + 1])
        local entry = redis.call('lindex', KEYS[k], limit - 1)
        if entry and tonumber(entry) >= now - expiry then
            results[k] = 0
            refused = true
        else
            redis.call('lpush', KEYS[k], now)
            redis.call('ltrim', KEYS[k], 0, limit - 1)
            redis.call('expire', KEYS[k], expiry)
            results[k] = 1
        end
    end
    if refused then
        return results
    end
    s = s + 1
end
return results
"""

Pairs = list[tuple[LimitCheck, RateLimitItem]]


class RateLimiter:
    def __init__(self, redis: RedisLink | None = None) -> None:
        self.redis = redis
        self._memory = MemoryWindows()
        self._shared: MovingWindowRateLimiter | None = None
        if redis is not None:
            self._prefix = redis.key("limits")
            storage = RedisStorage(
                "async+" + redis.url,
                implementation="redispy",
                key_prefix=self._prefix,
                # Share the process's pool (the stub types options as scalars only).
                connection_pool=redis.client.connection_pool,  # type: ignore[arg-type]
            )
            self._shared = MovingWindowRateLimiter(storage)
            self._check_stages = redis.client.register_script(_CHECK_STAGES)

    def _limiter(self) -> MovingWindowRateLimiter | None:
        """The shared windows if Redis is usable now; None for this process's own."""
        if self._shared is not None and self.redis is not None and self.redis.usable:
            return self._shared
        return None

    async def check(self, stages: Sequence[Sequence[LimitCheck]]) -> LimitVerdict:
        """Count this request against every limit, stage by stage; the first refusal wins."""
        pairs = [p for p in ([(c, i) for c in stage for i in c.items] for stage in stages) if p]
        for stage, results in zip(pairs, await self._hit_stages(pairs), strict=False):
            for (check, item), ok in zip(stage, results, strict=True):
                if not ok:
                    return await self._refusal(check, item)
        return ALLOWED

    async def _hit_stages(self, stages: list[Pairs]) -> list[list[bool]]:
        """Each stage's results, up to the first stage with a refusal."""
        if self._limiter() is None or self.redis is None:
            return self._memory_stages(stages)
        try:
            async with self.redis.translated("a rate-limit check"):
                return await self._redis_stages(stages)
        except SharedStateUnavailable:
            return self._memory_stages(stages)  # the link is now down: memory this time

    def _memory_stages(self, stages: list[Pairs]) -> list[list[bool]]:
        results: list[list[bool]] = []
        for stage in stages:
            results.append([self._memory.hit(i, c.scope, *c.identity) for c, i in stage])
            if not all(results[-1]):
                break
        return results

    async def _redis_stages(self, stages: list[Pairs]) -> list[list[bool]]:
        keys: list[str] = []
        args: list[float | int] = [time.time()]
        for stage in stages:
            for check, item in stage:
                keys.append(f"{self._prefix}:{item.key_for(check.scope, *check.identity)}")
                args += (item.amount, item.get_expiry())
        args += [len(stage) for stage in stages]
        flat: list[int] = await self._check_stages(keys=keys, args=args)
        results: list[list[bool]] = []
        for stage in stages:
            taken, flat = flat[: len(stage)], flat[len(stage) :]
            if taken:
                results.append([bool(ok) for ok in taken])
        return results

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
