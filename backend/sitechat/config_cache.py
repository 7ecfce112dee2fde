"""Chatbot configs for the public path, cached so a warm request never reads the database.

``ConfigCache`` is a short in-process TTL cache in front of a loader (the database). Misses
for the same id are coalesced: a burst of first requests for a chatbot costs one query.
Unknown ids are cached too (briefly), so a flood of requests for a made-up id does not reach
the database either.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import anyio

from sitechat.domain import ChatbotConfig

Loader = Callable[[str], Awaitable[ChatbotConfig | None]]

NEGATIVE_TTL_SECONDS = 2.0


@dataclass(slots=True)
class _Entry:
    value: ChatbotConfig | None
    expires_at: float


class ConfigCache:
    def __init__(self, loader: Loader, *, ttl_seconds: float, max_entries: int = 10_000) -> None:
        self._loader = loader
        self._ttl = ttl_seconds
        self._max_entries = max_entries
        self._entries: dict[str, _Entry] = {}
        self._locks: dict[str, anyio.Lock] = {}
        self.hits = 0
        self.misses = 0

    async def get(self, chatbot_id: str) -> ChatbotConfig | None:
        entry = self._fresh(chatbot_id)
        if entry is not None:
            self.hits += 1
            return entry.value
        lock = self._locks.setdefault(chatbot_id, anyio.Lock())
        async with lock:
            entry = self._fresh(chatbot_id)  # another task loaded it while we waited
            if entry is not None:
                self.hits += 1
                return entry.value
            self.misses += 1
            value = await self._loader(chatbot_id)
            self._store(chatbot_id, value)
        self._locks.pop(chatbot_id, None)
        return value

    def invalidate(self, chatbot_id: str) -> None:
        self._entries.pop(chatbot_id, None)

    def clear(self) -> None:
        self._entries.clear()

    def _fresh(self, chatbot_id: str) -> _Entry | None:
        entry = self._entries.get(chatbot_id)
        if entry is None or entry.expires_at <= time.monotonic():
            return None
        return entry

    def _store(self, chatbot_id: str, value: ChatbotConfig | None) -> None:
        if self._ttl <= 0:
            return
        if len(self._entries) >= self._max_entries:
            # Drop the entry closest to expiry: cheap, and good enough for a TTL cache.
            oldest = min(self._entries, key=lambda k: self._entries[k].expires_at)
            del self._entries[oldest]
        ttl = self._ttl if value is not None else min(self._ttl, NEGATIVE_TTL_SECONDS)
        self._entries[chatbot_id] = _Entry(value, time.monotonic() + ttl)
