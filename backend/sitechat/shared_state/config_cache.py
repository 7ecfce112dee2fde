"""Chatbot configs for the public path, cached so a warm request never reads the database.

Two layers, each optional below the first:

- ``ConfigCache``: a short in-process TTL cache in front of a loader. Misses for the same
  id are coalesced: a burst of first requests for a chatbot costs one load. Unknown ids are
  cached too (briefly), so a flood of requests for a made-up id does not reach the loader.
- ``SharedConfigLoader`` (with Redis): the loader behind it, reading ``chatbot_config:{id}``
  from Redis and only on a Redis miss the database, so a new process or an expired entry
  does not send every process to the database.

A change through the admin API calls ``ConfigInvalidator.invalidate``: it bumps the id's
*generation* in Redis (so a value loaded from the database before the change and written
to Redis after it is recognised as stale) and publishes the id on a channel that every
process's ``ConfigInvalidator.run`` listens to and evicts from its in-process cache.
Without Redis there is one process, and the eviction is direct.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import anyio

from sitechat.domain import ChatbotConfig
from sitechat.errors import SharedStateUnavailable
from sitechat.shared_state.redis_link import RedisLink

logger = logging.getLogger(__name__)

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
        # Bumped by every invalidation, so a load that started before one is not stored.
        self._generations: dict[str, int] = {}
        self._epoch = 0
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
            stamp = (self._epoch, self._generations.get(chatbot_id, 0))
            value = await self._loader(chatbot_id)
            if stamp == (self._epoch, self._generations.get(chatbot_id, 0)):
                self._store(chatbot_id, value)
        self._locks.pop(chatbot_id, None)
        return value

    def invalidate(self, chatbot_id: str) -> None:
        self._entries.pop(chatbot_id, None)
        if len(self._generations) >= self._max_entries:
            self._generations.clear()
            self._epoch += 1
        self._generations[chatbot_id] = self._generations.get(chatbot_id, 0) + 1

    def clear(self) -> None:
        self._entries.clear()
        self._epoch += 1

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


# --- the Redis layer ----------------------------------------------------------------------


def config_to_json(config: ChatbotConfig) -> dict[str, Any]:
    data = asdict(config)
    for name in ("created_at", "updated_at"):
        value = data[name]
        data[name] = value.isoformat() if value is not None else None
    data["fallback_providers"] = list(config.fallback_providers)
    data["starter_questions"] = list(config.starter_questions)
    data["allowed_origins"] = list(config.allowed_origins)
    return data


def config_from_json(data: dict[str, Any]) -> ChatbotConfig:
    values = dict(data)
    for name in ("created_at", "updated_at"):
        if values.get(name) is not None:
            values[name] = datetime.fromisoformat(values[name])
    values["fallback_providers"] = tuple(values.get("fallback_providers") or ())
    values["starter_questions"] = tuple(values.get("starter_questions") or ())
    values["allowed_origins"] = tuple(values.get("allowed_origins") or ())
    return ChatbotConfig(**values)


class SharedConfigLoader:
    """Load a config from Redis (``chatbot_config:{id}``), else from ``database``.

    The Redis value carries the generation it was loaded under; a value whose generation is
    behind the id's current one (an invalidation happened while it was being loaded) is
    ignored. Redis failing is never fatal here: the database answers instead.
    """

    def __init__(self, redis: RedisLink, database: Loader, *, ttl_seconds: float) -> None:
        self.redis = redis
        self.database = database
        self.ttl_seconds = ttl_seconds
        self.redis_hits = 0

    def _keys(self, chatbot_id: str) -> tuple[str, str]:
        return (
            self.redis.key("chatbot_config", chatbot_id),
            self.redis.key("chatbot_config_generation", chatbot_id),
        )

    async def __call__(self, chatbot_id: str) -> ChatbotConfig | None:
        if not self.redis.usable:
            return await self.database(chatbot_id)
        config_key, generation_key = self._keys(chatbot_id)
        try:
            async with self.redis.translated("reading a cached config"):
                raw, raw_generation = await self.redis.client.mget(config_key, generation_key)
        except SharedStateUnavailable:
            return await self.database(chatbot_id)
        generation = int(raw_generation or 0)
        if raw is not None:
            try:
                cached = json.loads(raw)
                if cached.get("generation") == generation:
                    shared = config_from_json(cached["config"])
                    self.redis_hits += 1
                    return shared
            except (ValueError, TypeError, KeyError, AttributeError):
                # Unreadable (e.g. written by a version with other fields): load it afresh.
                logger.info("ignored an unreadable cached config for %s", chatbot_id)
        config = await self.database(chatbot_id)
        if config is not None:
            value = json.dumps({"generation": generation, "config": config_to_json(config)})
            try:
                async with self.redis.translated("caching a config"):
                    await self.redis.client.set(config_key, value, px=int(self.ttl_seconds * 1000))
            except SharedStateUnavailable:
                pass  # served from the database; the next read caches it
        return config


Listener = Callable[[str, str], None]  # (kind, id): kind is "chatbot" or "org"


class ConfigInvalidator:
    """Spreads "this changed" to every process: its caches, and other processes' caches."""

    def __init__(self, cache: ConfigCache, redis: RedisLink | None) -> None:
        self.cache = cache
        self.redis = redis
        self._listeners: list[Listener] = []
        self.received = 0
        self.subscribed = anyio.Event()

    @property
    def channel(self) -> str:
        assert self.redis is not None
        return self.redis.key("chatbot_config", "invalidate")

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def _apply(self, kind: str, item_id: str) -> None:
        if kind == "chatbot":
            self.cache.invalidate(item_id)
        for listener in self._listeners:
            listener(kind, item_id)

    async def invalidate(self, kind: str, item_id: str) -> None:
        """After a write: forget ``item_id`` here, in Redis, and in every other process.

        Raises ``SharedStateUnavailable`` when Redis is configured but fails, so the admin
        write answers 503 (the other processes might keep serving the old config for a TTL).
        """
        self._apply(kind, item_id)
        if self.redis is None:
            return
        message = json.dumps({"kind": kind, "id": item_id})
        async with (
            self.redis.translated("publishing a config change"),
            self.redis.client.pipeline(transaction=True) as pipe,
        ):
            if kind == "chatbot":
                config_key = self.redis.key("chatbot_config", item_id)
                generation_key = self.redis.key("chatbot_config_generation", item_id)
                pipe.incr(generation_key)
                pipe.expire(generation_key, 7 * 24 * 3600)
                pipe.delete(config_key)
            pipe.publish(self.channel, message)
            await pipe.execute()

    async def run(self, *, retry_seconds: float = 1.0) -> None:
        """Listen for invalidations from other processes until cancelled.

        Messages sent while this process was not subscribed are lost, so every (re)subscribe
        clears the whole in-process cache: at worst a few extra loads, never a stale config.
        """
        if self.redis is None:
            return
        while True:
            try:
                async with (
                    self.redis.translated("listening for config changes"),
                    self.redis.client.pubsub(ignore_subscribe_messages=True) as pubsub,
                ):
                    await pubsub.subscribe(self.channel)
                    self.cache.clear()
                    self._apply("all", "")
                    self.subscribed.set()
                    while True:
                        message = await pubsub.get_message(timeout=5.0)
                        if message is None:
                            continue
                        self._receive(message.get("data"))
            except SharedStateUnavailable:
                self.subscribed = anyio.Event()
                await anyio.sleep(retry_seconds)

    def _receive(self, data: Any) -> None:
        try:
            body = json.loads(data)
            kind, item_id = str(body["kind"]), str(body["id"])
        except (TypeError, ValueError, KeyError):
            logger.warning("ignored a malformed config invalidation message")
            return
        self.received += 1
        self._apply(kind, item_id)
