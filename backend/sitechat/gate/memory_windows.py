"""Moving windows in this process's memory: the rate limiter's embedded default.

The same moving-window rule as ``limits``' ``MovingWindowRateLimiter`` and sitechat's Redis
windows (``redis_windows``): a hit is allowed when fewer than ``amount`` hits of the same
limit and identity fall in the last ``window`` seconds. Kept here rather than taken from
``limits.aio``'s memory storage because that one, on every hit, starts a task that hands
each key's expiry to a worker thread: two thread hops per chat request, more than the rest
of the gate together.

Each key holds the times of its hits still in the window (oldest first, at most ``amount``):
a hit drops the expired ones from the front, so checking costs O(1) amortised. Keys nobody
has hit for a whole window are forgotten by a sweep every ``SWEEP_EVERY`` hits. Everything
runs in the event loop without awaiting, so a check of several limits is atomic.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

from limits import RateLimitItem

SWEEP_EVERY = 4096


class _Window:
    __slots__ = ("hits", "seconds")

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.hits: deque[float] = deque()

    def expire(self, now: float) -> None:
        hits, start = self.hits, now - self.seconds
        while hits and hits[0] <= start:
            hits.popleft()


class MemoryWindows:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._windows: dict[str, _Window] = {}
        self._until_sweep = SWEEP_EVERY

    def hit(self, item: RateLimitItem, *identifiers: str) -> bool:
        """Count a hit if the window has room for it; whether it had."""
        now = self._clock()
        self._until_sweep -= 1
        if self._until_sweep <= 0:
            self._sweep(now)
        key = item.key_for(*identifiers)
        window = self._windows.get(key)
        if window is None:
            window = self._windows[key] = _Window(item.get_expiry())
        else:
            window.expire(now)
        if len(window.hits) >= item.amount:
            return False
        window.hits.append(now)
        return True

    def window_stats(self, item: RateLimitItem, *identifiers: str) -> tuple[float, int]:
        """(when the oldest hit in the window leaves it, in unix seconds; hits remaining)."""
        now = self._clock()
        window = self._windows.get(item.key_for(*identifiers))
        if window is not None:
            window.expire(now)
        hits = window.hits if window is not None else ()
        # An empty window, as in ``limits``: its reset is a whole window from now.
        oldest = hits[0] if hits else now
        return oldest + item.get_expiry(), item.amount - len(hits)

    def clear(self, item: RateLimitItem, *identifiers: str) -> None:
        self._windows.pop(item.key_for(*identifiers), None)

    def __len__(self) -> int:
        return len(self._windows)

    def _sweep(self, now: float) -> None:
        self._until_sweep = SWEEP_EVERY
        for key, window in list(self._windows.items()):
            window.expire(now)
            if not window.hits:
                del self._windows[key]
