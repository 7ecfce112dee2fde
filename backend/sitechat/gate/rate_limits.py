"""Rate limits on the public path: moving windows.

With Redis configured, the windows are shared by every API process (``RedisWindows``: the
``limits`` library's moving windows and keys, every stage of a request in one script call,
with the stream slot when the gate asks for one). Otherwise, and whenever Redis fails, they
are this process's own (``MemoryWindows``, the same rule), and a Redis failure is logged and
counted on the ``RedisLink``: visitors keep chatting, held to per-process limits.

Checks come in stages, narrowest first: a request over its IP, visitor or session limit is
refused before it is counted against the chatbot-wide limit, so one abusive client cannot
use up a chatbot's shared allowance for everyone else.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

from limits import RateLimitItem

from sitechat.errors import SharedStateUnavailable
from sitechat.gate.memory_windows import MemoryWindows
from sitechat.gate.redis_windows import RedisWindows
from sitechat.gate.stream_slots import SlotRequest, StreamSlot, StreamSlots
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
        self._shared = RedisWindows(redis) if redis is not None else None

    def _windows(self) -> RedisWindows | None:
        """The shared windows if Redis is usable now; None for this process's own."""
        if self._shared is not None and self.redis is not None and self.redis.usable:
            return self._shared
        return None

    async def check(self, stages: Sequence[Sequence[LimitCheck]]) -> LimitVerdict:
        """Count this request against every limit, stage by stage; the first refusal wins."""
        verdict, _ = await self._check(stages, None)
        return verdict

    async def check_and_take(
        self,
        stages: Sequence[Sequence[LimitCheck]],
        slots: StreamSlots,
        slot: SlotRequest,
    ) -> tuple[LimitVerdict, StreamSlot | None]:
        """``check``, then, if no limit refused, the stream ``slot`` from ``slots`` (None when
        a cap is reached): on Redis, one round trip for both."""
        verdict, taken = await self._check(stages, slot)
        if not verdict.allowed:
            return verdict, None
        if taken is not None:  # decided in Redis
            return verdict, slots.adopt(slot) if taken else None
        return verdict, await slots.take(slot)

    async def _check(
        self, stages: Sequence[Sequence[LimitCheck]], slot: SlotRequest | None
    ) -> tuple[LimitVerdict, bool | None]:
        """The verdict, and whether Redis took ``slot`` (None: not asked there)."""
        checks = [[(check, item) for check in stage for item in check.items] for stage in stages]
        if slot is None and not any(checks):
            return ALLOWED, None
        windows = self._windows()
        if windows is not None and self.redis is not None:
            try:
                async with self.redis.translated("a rate-limit check"):
                    outcome = await windows.admit(
                        [
                            [(item, (check.scope, *check.identity)) for check, item in stage]
                            for stage in checks
                        ],
                        slot,
                    )
            except SharedStateUnavailable:
                pass  # the link is now down: this process's windows this time
            else:
                if outcome.refused is None:
                    return ALLOWED, outcome.slot_taken if slot is not None else None
                check, item = [pair for stage in checks for pair in stage][outcome.refused]
                reset_at = outcome.oldest + item.get_expiry()
                return _refused(check, item, reset_at, remaining=0), None
        for stage in checks:
            results = [
                self._memory.hit(item, check.scope, *check.identity) for check, item in stage
            ]
            for (check, item), ok in zip(stage, results, strict=True):
                if not ok:
                    reset_at, remaining = self._memory.window_stats(
                        item, check.scope, *check.identity
                    )
                    return _refused(check, item, reset_at, remaining), None
        return ALLOWED, None

    async def reset(self, check: LimitCheck) -> None:
        """Forget a window (tests and operators)."""
        windows = self._windows()
        for item in check.items:
            if windows is None:
                self._memory.clear(item, check.scope, *check.identity)
            else:
                await windows.clear(item, check.scope, *check.identity)


def _refused(
    check: LimitCheck, item: RateLimitItem, reset_at: float, remaining: int
) -> LimitVerdict:
    return LimitVerdict(
        allowed=False,
        scope=check.scope,
        limit=item.amount,
        window=f"{item.amount} per {item.multiples} {item.GRANULARITY.name}",
        remaining=remaining,
        reset_at=reset_at,
        retry_after=max(reset_at - time.time(), 1.0),
    )
