"""Every client sitechat talks to, built from ``Settings`` and closed in reverse order.

The app's lifespan and the CLI both use ``Services.start``; nothing connects at import time.
Each external system is chosen here by configuration: its embedded default, or the real
server when its URL is set.
"""

from __future__ import annotations

import logging
from contextlib import AsyncExitStack
from dataclasses import dataclass

from sitechat.chat.pipeline import ChatService
from sitechat.config import Settings
from sitechat.config_cache import ConfigCache
from sitechat.ingestion import Ingestor
from sitechat.llm.registry import ModelRegistry
from sitechat.retrieval.base import VectorStore
from sitechat.storage.database import Database
from sitechat.storage.repository import Store

logger = logging.getLogger(__name__)


def build_vector_store(settings: Settings) -> VectorStore:
    if settings.qdrant_url:
        from sitechat.retrieval.server_store import QdrantServerStore

        api_key = settings.qdrant_api_key.get_secret_value() if settings.qdrant_api_key else None
        return QdrantServerStore.from_url(
            settings.qdrant_url, api_key=api_key, collection=settings.qdrant_collection
        )
    from sitechat.retrieval.edge_store import EdgeVectorStore

    return EdgeVectorStore(settings.data_dir / "qdrant")


@dataclass
class Services:
    settings: Settings
    database: Database
    store: Store
    vectors: VectorStore
    models: ModelRegistry
    configs: ConfigCache
    chat: ChatService
    ingestor: Ingestor
    _stack: AsyncExitStack

    @classmethod
    async def start(
        cls,
        settings: Settings,
        *,
        models: ModelRegistry | None = None,
        preload_model: bool = False,
    ) -> Services:
        stack = AsyncExitStack()
        try:
            settings.data_dir.mkdir(parents=True, exist_ok=True)
            database = Database.from_settings(settings)
            await database.start(migrate=settings.auto_migrate)
            stack.push_async_callback(database.close)
            store = Store(database)

            vectors = build_vector_store(settings)
            await vectors.start()
            stack.push_async_callback(vectors.close)

            registry = models or ModelRegistry(settings)
            stack.push_async_callback(registry.aclose)
            if preload_model:
                await registry.start()

            configs = ConfigCache(store.get_chatbot, ttl_seconds=settings.config_cache_ttl_seconds)
            chat = ChatService(
                store=store, vectors=vectors, models=registry, configs=configs, settings=settings
            )
            ingestor = Ingestor(store, vectors)
        except BaseException:
            await stack.aclose()
            raise
        return cls(settings, database, store, vectors, registry, configs, chat, ingestor, stack)

    async def aclose(self) -> None:
        await self._stack.aclose()
