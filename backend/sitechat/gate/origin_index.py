"""Which origins any chatbot allows: the answer to CORS preflights, which carry no chatbot id.

A browser asks ``OPTIONS /api/public/chat/stream`` before the POST whose body names the
chatbot, so the preflight can only be answered for the deployment as a whole: an origin
some chatbot allows (or any origin, if some chatbot allows every origin) passes; nothing
else is ever echoed back. The gate then checks the origin against the chatbot itself (403),
and the response's own CORS headers follow that chatbot (``api/cors.py``).

Loaded from storage, kept for ``ttl_seconds``, and dropped on any chatbot change (the
config invalidation reaches every process), reloads coalesced into one query.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import anyio

Load = Callable[[], Awaitable[list[tuple[list[str], bool]]]]


class OriginIndex:
    def __init__(self, load: Load, *, ttl_seconds: float = 30.0) -> None:
        self._load = load
        self._ttl = ttl_seconds
        self._origins: frozenset[str] = frozenset()
        self._any = False
        self._expires_at = 0.0
        self._generation = 0
        self._lock = anyio.Lock()

    async def allows(self, origin: str) -> bool:
        if time.monotonic() >= self._expires_at:
            await self._refresh()
        return self._any or origin in self._origins

    def invalidate(self) -> None:
        self._expires_at = 0.0
        self._generation += 1

    async def _refresh(self) -> None:
        async with self._lock:
            if time.monotonic() < self._expires_at:
                return  # another task refreshed it while this one waited
            generation = self._generation
            rows = await self._load()
            self._origins = frozenset(o for origins, _ in rows for o in origins)
            self._any = any(any_origin for _, any_origin in rows)
            if generation == self._generation:
                self._expires_at = time.monotonic() + self._ttl
