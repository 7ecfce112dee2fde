from __future__ import annotations

import asyncio

from sitechat.domain import ChatbotConfig
from sitechat.shared_state.config_cache import ConfigCache


class Loader:
    """A config loader that records every chatbot id it is asked for."""

    def __init__(self, *, found: bool = True, delay: float = 0.0) -> None:
        self.found = found
        self.delay = delay
        self.calls: list[str] = []

    async def __call__(self, chatbot_id: str) -> ChatbotConfig | None:
        self.calls.append(chatbot_id)
        if self.delay:
            await asyncio.sleep(self.delay)
        return ChatbotConfig(id=chatbot_id, org_id="o", name="n") if self.found else None


async def test_warm_cache_does_not_call_the_loader_and_misses_are_coalesced() -> None:
    loader = Loader(delay=0.01)
    cache = ConfigCache(loader, ttl_seconds=60)
    results = await asyncio.gather(*(cache.get("a") for _ in range(20)))
    assert {r.id for r in results if r} == {"a"}
    assert loader.calls == ["a"]
    await cache.get("a")
    assert loader.calls == ["a"]
    cache.invalidate("a")
    await cache.get("a")
    assert loader.calls == ["a", "a"]


async def test_unknown_ids_are_cached_briefly_too() -> None:
    loader = Loader(found=False)
    cache = ConfigCache(loader, ttl_seconds=60)
    assert await cache.get("ghost") is None
    assert await cache.get("ghost") is None
    assert len(loader.calls) == 1


async def test_zero_ttl_disables_caching() -> None:
    loader = Loader(found=False)
    cache = ConfigCache(loader, ttl_seconds=0)
    await cache.get("a")
    await cache.get("a")
    assert len(loader.calls) == 2
