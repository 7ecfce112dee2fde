"""``VectorStore`` on a Qdrant server through ``AsyncQdrantClient``.

One collection holds every chatbot's chunks (Qdrant's recommended multitenancy): a sparse
vector ``bm25`` with the IDF modifier, and a keyword index on ``chatbot_id`` marked
``is_tenant`` so the server co-locates each tenant's points. Queries use the Query API with
the tenant filter and IDF computed over the tenant's own points
(``SearchParams(idf=IdfCorpusParams(...))``, Qdrant 1.20 and later).

With a dense encoder the collection also holds a dense vector named after the model and
searches are hybrid: prefetches fused with RRF in one ``query_points`` call
(``retrieval/hybrid.py``). The collection's layout is checked at start; one built for
another layout is refused with a clear reason.

``AsyncQdrantClient(":memory:")`` runs the same code in-process for tests.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from qdrant_client import AsyncQdrantClient, models

from sitechat.retrieval.base import Chunk, ScoredChunk, translated
from sitechat.retrieval.dense import DenseEncoder
from sitechat.retrieval.filters import (
    CHATBOT_KEY,
    DOCUMENT_KEY,
    require_id,
    server_document_filter,
    server_filter,
)
from sitechat.retrieval.hybrid import (
    RRF_K,
    QueryPlan,
    dense_vector_name,
    plan_query,
    require_layout,
)
from sitechat.retrieval.points import PointData, built_points, ranked, upsert_batches
from sitechat.retrieval.sparse import VECTOR_NAME

logger = logging.getLogger(__name__)

# IDF over a corpus filter (``SearchParams.idf``) arrived with Qdrant 1.20, together with
# the qdrant-client 1.20 models this adapter is written against.
MIN_SERVER_VERSION = (1, 20)

_INDEXES: dict[str, models.PayloadSchemaType | models.KeywordIndexParams] = {
    CHATBOT_KEY: models.KeywordIndexParams(type=models.KeywordIndexType.KEYWORD, is_tenant=True),
    DOCUMENT_KEY: models.PayloadSchemaType.KEYWORD,
}


class QdrantServerStore:
    """The store owns ``client``: ``close()`` closes it."""

    def __init__(
        self, client: AsyncQdrantClient, collection: str, *, dense: DenseEncoder | None = None
    ) -> None:
        self._client = client
        self._collection = require_id(collection, "collection")
        self._dense = dense
        self._dense_name = dense_vector_name(dense.model_id) if dense is not None else None

    @property
    def dense(self) -> DenseEncoder | None:
        return self._dense

    @classmethod
    def from_url(
        cls,
        url: str,
        api_key: str | None,
        collection: str,
        *,
        timeout: float = 10.0,
        dense: DenseEncoder | None = None,
    ) -> QdrantServerStore:
        """A store on the server at ``url``. Does not connect: ``start()`` does."""
        # No compatibility probe: the client would make it with a blocking request from a
        # thread at construction. ``start()`` checks the server version instead.
        client = AsyncQdrantClient(
            url=url, api_key=api_key or None, timeout=int(timeout), check_compatibility=False
        )
        return cls(client, collection, dense=dense)

    async def start(self) -> None:
        """Create the collection and its indexes when missing; check them when present."""
        with translated():
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
            self._check_dense_layout(info.config.params.vectors)
            for key, schema in _INDEXES.items():
                if key not in info.payload_schema:
                    await self._client.create_payload_index(
                        self._collection, key, field_schema=schema, wait=True
                    )

    def _check_dense_layout(self, vectors: Any) -> None:
        found: dict[str, Any] = vectors if isinstance(vectors, dict) else {}
        if vectors is not None and not isinstance(vectors, dict):
            found = {"": vectors}  # a single unnamed vector: never one sitechat made
        require_layout(
            f"in collection {self._collection!r}",
            {name: params.size for name, params in found.items()},
            self._dense,
        )

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
            vectors: dict[str, models.VectorParams] = {}
            if self._dense is not None and self._dense_name is not None:
                vectors[self._dense_name] = models.VectorParams(
                    size=self._dense.dimensions, distance=models.Distance.COSINE
                )
            await self._client.create_collection(
                self._collection,
                vectors_config=vectors,
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
        for chatbot_id, batch in upsert_batches(chunks):
            points = await built_points(batch, self._dense, self._point)
            tenant = server_filter(chatbot_id)
            # Conditional upsert: an id already held by another chatbot's point is left
            # alone instead of being taken over.
            with translated():
                await self._client.upsert(self._collection, points, wait=True, update_filter=tenant)

    def _point(self, data: PointData) -> models.PointStruct:
        vectors: dict[str, Any] = {
            VECTOR_NAME: models.SparseVector(indices=data.sparse.indices, values=data.sparse.values)
        }
        if data.dense is not None and self._dense_name is not None:
            vectors[self._dense_name] = data.dense
        return models.PointStruct(id=data.id, vector=vectors, payload=data.payload)

    async def delete_document(self, chatbot_id: str, document_id: str) -> None:
        await self._delete(server_document_filter(chatbot_id, document_id))

    async def delete_chatbot(self, chatbot_id: str) -> None:
        await self._delete(server_filter(chatbot_id))

    async def _delete(self, scope: models.Filter) -> None:
        with translated():
            await self._client.delete(
                self._collection, points_selector=models.FilterSelector(filter=scope), wait=True
            )

    async def search(
        self, chatbot_id: str, query: str, limit: int, *, variants: Sequence[str] = ()
    ) -> list[ScoredChunk]:
        tenant = server_filter(chatbot_id)
        # Embedding a query for BM25 takes ~0.1 ms even at the 4000-character message limit:
        # cheaper than the hop to a worker thread, so it stays on the event loop.
        plan = await plan_query(query, variants, limit, self._dense)
        if plan is None:
            return []  # only stopwords or symbols: nothing can match
        with translated():
            response = await self._query(plan, tenant)
        return ranked(chatbot_id, plan, self._dense_name, response.points)

    async def _query(self, plan: QueryPlan, tenant: models.Filter) -> models.QueryResponse:
        # IDF over this chatbot's chunks only: its scores do not move when another chatbot
        # adds documents, and reveal nothing about them.
        idf = models.SearchParams(idf=models.IdfCorpusParams(corpus=tenant))
        with_vectors: list[str] | bool = (
            [self._dense_name] if plan.dense and self._dense_name else False
        )
        if not plan.fused:
            [sparse] = plan.sparse
            return await self._client.query_points(
                self._collection,
                query=models.SparseVector(indices=sparse.indices, values=sparse.values),
                using=VECTOR_NAME,
                query_filter=tenant,
                search_params=idf,
                limit=plan.limit,
                with_payload=True,
                with_vectors=with_vectors,
            )
        prefetch = [
            models.Prefetch(
                query=models.SparseVector(indices=v.indices, values=v.values),
                using=VECTOR_NAME,
                filter=tenant,
                params=idf,
                limit=plan.candidates,
            )
            for v in plan.sparse
        ]
        prefetch += [
            models.Prefetch(query=v, using=self._dense_name, filter=tenant, limit=plan.candidates)
            for v in plan.dense
        ]
        return await self._client.query_points(
            self._collection,
            prefetch=prefetch,
            query=models.RrfQuery(rrf=models.Rrf(k=RRF_K)),
            query_filter=tenant,
            limit=plan.limit,
            with_payload=True,
            with_vectors=with_vectors,
        )

    async def count(self, chatbot_id: str) -> int:
        tenant = server_filter(chatbot_id)
        with translated():
            result = await self._client.count(self._collection, count_filter=tenant, exact=True)
        return result.count

    async def ping(self) -> bool:
        try:
            return await self._client.collection_exists(self._collection)
        except Exception:
            return False

    async def close(self) -> None:
        with translated():
            await self._client.close()
