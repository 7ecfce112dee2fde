"""``VectorStore`` on a Qdrant server through ``AsyncQdrantClient``.

One collection holds every chatbot's chunks (Qdrant's recommended multitenancy): a sparse
vector ``bm25`` with the IDF modifier, and a keyword index on ``chatbot_id`` marked
``is_tenant`` so the server co-locates each tenant's points. Queries use the Query API with
the tenant filter and IDF computed over the tenant's own points
(``SearchParams(idf=IdfCorpusParams(...))``, Qdrant 1.20 and later).

``AsyncQdrantClient(":memory:")`` runs the same code in-process for tests.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import anyio
from qdrant_client import AsyncQdrantClient, models

from sitechat.errors import VectorStoreError
from sitechat.retrieval.base import Chunk, ScoredChunk
from sitechat.retrieval.filters import (
    CHATBOT_KEY,
    DOCUMENT_KEY,
    chunk_from_payload,
    chunk_payload,
    point_id,
    require_id,
    server_document_filter,
    server_filter,
)
from sitechat.retrieval.sparse import VECTOR_NAME, bm25_text, embed_document, embed_query

logger = logging.getLogger(__name__)

UPSERT_BATCH = 256
# IDF over a corpus filter (``SearchParams.idf``) arrived with Qdrant 1.20, together with
# the qdrant-client 1.20 models this adapter is written against.
MIN_SERVER_VERSION = (1, 20)

_INDEXES: dict[str, models.PayloadSchemaType | models.KeywordIndexParams] = {
    CHATBOT_KEY: models.KeywordIndexParams(type=models.KeywordIndexType.KEYWORD, is_tenant=True),
    DOCUMENT_KEY: models.PayloadSchemaType.KEYWORD,
}


class QdrantServerStore:
    """The store owns ``client``: ``close()`` closes it."""

    def __init__(self, client: AsyncQdrantClient, collection: str) -> None:
        self._client = client
        self._collection = require_id(collection, "collection")

    @classmethod
    def from_url(
        cls, url: str, api_key: str | None, collection: str, *, timeout: float = 10.0
    ) -> QdrantServerStore:
        """A store on the server at ``url``. Does not connect: ``start()`` does."""
        # No compatibility probe: the client would make it with a blocking request from a
        # thread at construction. ``start()`` checks the server version instead.
        client = AsyncQdrantClient(
            url=url, api_key=api_key or None, timeout=int(timeout), check_compatibility=False
        )
        return cls(client, collection)

    async def start(self) -> None:
        """Create the collection and its indexes when missing; check them when present."""
        try:
            await self._check_version()
            if not await self._client.collection_exists(self._collection):
                await self._create_collection()
            info = await self._client.get_collection(self._collection)
            sparse = (info.config.params.sparse_vectors or {}).get(VECTOR_NAME)
            if sparse is None or sparse.modifier != models.Modifier.IDF:
                raise RuntimeError(
                    f"collection {self._collection!r} exists without the sparse vector "
                    f"{VECTOR_NAME!r} with the IDF modifier; use another collection name"
                )
            for key, schema in _INDEXES.items():
                if key not in info.payload_schema:
                    await self._client.create_payload_index(
                        self._collection, key, field_schema=schema, wait=True
                    )
        except Exception as exc:
            raise VectorStoreError() from exc

    async def _check_version(self) -> None:
        version = (await self._client.info()).version
        parts = version.split(".")
        try:
            major_minor = (int(parts[0]), int(parts[1]))
        except (IndexError, ValueError):
            major_minor = (0, 0)
        if major_minor < MIN_SERVER_VERSION:
            # Searches would fail on the per-tenant IDF parameter: say why, once, at start.
            raise RuntimeError(
                f"Qdrant server {version} is too old: sitechat needs "
                f"{MIN_SERVER_VERSION[0]}.{MIN_SERVER_VERSION[1]} or later"
            )
        logger.info("Qdrant server %s, collection %s", version, self._collection)

    async def _create_collection(self) -> None:
        try:
            await self._client.create_collection(
                self._collection,
                vectors_config={},
                sparse_vectors_config={
                    VECTOR_NAME: models.SparseVectorParams(modifier=models.Modifier.IDF)
                },
            )
        except Exception:
            # Another process (a second app worker) may have created it first.
            if not await self._client.collection_exists(self._collection):
                raise
            logger.info("collection %s was created concurrently", self._collection)

    async def upsert(self, chunks: Sequence[Chunk]) -> None:
        if not chunks:
            return
        by_chatbot: dict[str, list[tuple[str, Chunk]]] = {}
        for chunk in chunks:
            by_chatbot.setdefault(require_id(chunk.chatbot_id, "Chunk.chatbot_id"), []).append(
                (point_id(chunk), chunk)
            )
            require_id(chunk.document_id, "Chunk.document_id")
        try:
            for chatbot_id, items in by_chatbot.items():
                tenant = server_filter(chatbot_id)
                for start in range(0, len(items), UPSERT_BATCH):
                    batch = items[start : start + UPSERT_BATCH]
                    # Embedding a batch is CPU work: off the event loop.
                    points = await anyio.to_thread.run_sync(_points, batch)
                    # Conditional upsert: an id already held by another chatbot's point is
                    # left alone instead of being taken over.
                    await self._client.upsert(
                        self._collection, points, wait=True, update_filter=tenant
                    )
        except Exception as exc:
            raise VectorStoreError() from exc

    async def delete_document(self, chatbot_id: str, document_id: str) -> None:
        await self._delete(server_document_filter(chatbot_id, document_id))

    async def delete_chatbot(self, chatbot_id: str) -> None:
        await self._delete(server_filter(chatbot_id))

    async def _delete(self, scope: models.Filter) -> None:
        try:
            await self._client.delete(
                self._collection, points_selector=models.FilterSelector(filter=scope), wait=True
            )
        except Exception as exc:
            raise VectorStoreError() from exc

    async def search(self, chatbot_id: str, query: str, limit: int) -> list[ScoredChunk]:
        tenant = server_filter(chatbot_id)
        if limit < 1:
            raise ValueError("limit must be at least 1")
        # Embedding a query takes ~0.1 ms even at the 4000-character message limit: cheaper
        # than the hop to a worker thread, so it stays on the event loop.
        vector = embed_query(query)
        if not vector.indices:
            return []  # only stopwords or symbols: nothing can match
        try:
            response = await self._client.query_points(
                self._collection,
                query=models.SparseVector(indices=vector.indices, values=vector.values),
                using=VECTOR_NAME,
                query_filter=tenant,
                # IDF over this chatbot's chunks only: its scores do not move when another
                # chatbot adds documents, and reveal nothing about them.
                search_params=models.SearchParams(idf=models.IdfCorpusParams(corpus=tenant)),
                limit=limit,
                with_payload=True,
                with_vectors=False,
            )
        except Exception as exc:
            raise VectorStoreError() from exc
        found = [ScoredChunk(chunk_from_payload(p.id, p.payload), p.score) for p in response.points]
        if any(hit.chunk.chatbot_id != chatbot_id for hit in found):
            # The filter failed: fail closed rather than show another chatbot's text.
            raise VectorStoreError() from RuntimeError("tenant filter returned a foreign chunk")
        return found

    async def count(self, chatbot_id: str) -> int:
        tenant = server_filter(chatbot_id)
        try:
            result = await self._client.count(self._collection, count_filter=tenant, exact=True)
        except Exception as exc:
            raise VectorStoreError() from exc
        return result.count

    async def ping(self) -> bool:
        try:
            return await self._client.collection_exists(self._collection)
        except Exception:
            return False

    async def close(self) -> None:
        try:
            await self._client.close()
        except Exception as exc:
            raise VectorStoreError() from exc


def _points(items: Sequence[tuple[str, Chunk]]) -> list[models.PointStruct]:
    points = []
    for pid, chunk in items:
        vector = embed_document(bm25_text(chunk.title, chunk.heading_path, chunk.text))
        points.append(
            models.PointStruct(
                id=pid,
                vector={
                    VECTOR_NAME: models.SparseVector(indices=vector.indices, values=vector.values)
                },
                payload=chunk_payload(chunk),
            )
        )
    return points
