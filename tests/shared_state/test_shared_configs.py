"""The Redis layer of the config cache (``chatbot_config:{id}``) on the real Redis: a new
process finds configs there instead of in the database, an invalidation reaches other
processes' caches, and a value loaded before a change never outlives it."""

from __future__ import annotations

import asyncio

import pytest

from sitechat.domain import ChatbotConfig
from sitechat.shared_state.config_cache import ConfigCache, ConfigInvalidator, SharedConfigLoader
from sitechat.shared_state.redis_link import RedisLink


class Database:
    """Stands in for the database behind the loader, counting reads (a dict of configs)."""

    def __init__(self) -> None:
        self.configs = {"shop": ChatbotConfig(id="shop", org_id="o", name="v1")}
        self.reads = 0
        self.during_read: list[asyncio.Event] = []

    async def load(self, chatbot_id: str) -> ChatbotConfig | None:
        self.reads += 1
        value = self.configs.get(chatbot_id)
        for gate in self.during_read:
            await gate.wait()
        return value


@pytest.fixture
def link(redis_link: RedisLink) -> RedisLink:
    return redis_link


async def test_a_second_process_reads_the_config_from_redis_not_the_database(
    link: RedisLink,
) -> None:
    database = Database()
    first = SharedConfigLoader(link, database.load, ttl_seconds=60)
    second = SharedConfigLoader(link, database.load, ttl_seconds=60)
    assert (await first("shop")).name == "v1"  # type: ignore[union-attr]
    assert (await second("shop")).name == "v1"  # type: ignore[union-attr]
    assert database.reads == 1 and second.redis_hits == 1
    assert await link.client.exists(link.key("chatbot_config", "shop"))


async def test_an_invalidation_reaches_another_processes_cache(link: RedisLink) -> None:
    database = Database()
    mine = ConfigCache(SharedConfigLoader(link, database.load, ttl_seconds=60), ttl_seconds=600)
    theirs = ConfigCache(SharedConfigLoader(link, database.load, ttl_seconds=60), ttl_seconds=600)
    listener = ConfigInvalidator(theirs, link)
    listening = asyncio.create_task(listener.run())
    try:
        await listener.subscribed.wait()
        assert (await theirs.get("shop")).name == "v1"  # type: ignore[union-attr]
        database.configs["shop"] = ChatbotConfig(id="shop", org_id="o", name="v2")
        await ConfigInvalidator(mine, link).invalidate("chatbot", "shop")
        for _ in range(200):
            if listener.received:
                break
            await asyncio.sleep(0.005)
        assert (await theirs.get("shop")).name == "v2"  # type: ignore[union-attr]
    finally:
        listening.cancel()
        await asyncio.gather(listening, return_exceptions=True)


async def test_a_value_loaded_before_a_change_is_not_served_after_it(link: RedisLink) -> None:
    database = Database()
    slow_read = asyncio.Event()
    database.during_read.append(slow_read)
    loader = SharedConfigLoader(link, database.load, ttl_seconds=60)
    loading = asyncio.create_task(loader("shop"))  # reads v1, then waits
    await asyncio.sleep(0.05)
    database.configs["shop"] = ChatbotConfig(id="shop", org_id="o", name="v2")
    await ConfigInvalidator(ConfigCache(database.load, ttl_seconds=0), link).invalidate(
        "chatbot", "shop"
    )
    slow_read.set()
    assert (await loading).name == "v1"  # type: ignore[union-attr]  # it was read before
    database.during_read.clear()
    # ...but the v1 it wrote to Redis carries the old generation and is ignored.
    assert (await loader("shop")).name == "v2"  # type: ignore[union-attr]


async def test_the_in_process_cache_ignores_a_load_overtaken_by_an_invalidation() -> None:
    database = Database()
    slow_read = asyncio.Event()
    database.during_read.append(slow_read)
    cache = ConfigCache(database.load, ttl_seconds=600)
    loading = asyncio.create_task(cache.get("shop"))
    await asyncio.sleep(0.01)
    database.configs["shop"] = ChatbotConfig(id="shop", org_id="o", name="v2")
    cache.invalidate("shop")
    slow_read.set()
    await loading
    database.during_read.clear()
    assert (await cache.get("shop")).name == "v2"  # type: ignore[union-attr]
