from __future__ import annotations

import asyncio

from sitechat.domain import ChatbotConfig
from sitechat.shared_state.config_cache import ConfigCache


async def test_warm_cache_does_not_call_the_loader_and_misses_are_coalesced() -> None:
    calls: list[str] = []

    async def loader(chatbot_id: str) -> ChatbotConfig | None:
        calls.append(chatbot_id)
        await asyncio.sleep(0.01)
        return ChatbotConfig(id=chatbot_id, org_id="o", name="n")

    cache = ConfigCache(loader, ttl_seconds=60)
    results = await asyncio.gather(*(cache.get("a") for _ in range(20)))
    assert {r.id for r in results if r} == {"a"}
    assert calls == ["a"]
    await cache.get("a")
    assert calls == ["a"]
    cache.invalidate("a")
    await cache.get("a")
    assert calls == ["a", "a"]


async def test_unknown_ids_are_cached_briefly_too() -> None:
    calls = 0

    async def loader(chatbot_id: str) -> ChatbotConfig | None:
        nonlocal calls
        calls += 1
        return None

    cache = ConfigCache(loader, ttl_seconds=60)
    assert await cache.get("ghost") is None
    assert await cache.get("ghost") is None
    assert calls == 1


async def test_zero_ttl_disables_caching() -> None:
    calls = 0

    async def loader(chatbot_id: str) -> ChatbotConfig | None:
        nonlocal calls
        calls += 1
        return None

    cache = ConfigCache(loader, ttl_seconds=0)
    await cache.get("a")
    await cache.get("a")
    assert calls == 2
