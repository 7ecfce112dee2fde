"""``VectorStore`` on Qdrant Edge: an in-process shard persisted under a directory.

The embedded default: no server to run. One process owns the shard (its write-ahead log
is locked), so run a single app worker with it, or use ``QdrantServerStore``.

Every shard call is synchronous Rust. Searches run in the event loop itself while they are
fast (a recent average under ``INLINE_SEARCH_SECONDS``: a small knowledge base, the usual
case), since handing a quarter-millisecond call to a worker thread costs more than the call,
and under load those threads contend with the event loop for the GIL; a slower shard's
searches run in worker threads. Counts run in worker threads. Writes are serialised by one
lock, run in a worker thread, and each write call ends with ``flush()``,
which persists segments and costs a few milliseconds: writes arrive one document at a time
from ingestion, never from the chat path, so durability per call is cheap enough.

With a dense encoder the shard also holds a dense vector named after the model
(``hybrid.dense_vector_name``) and searches are hybrid (``retrieval/hybrid.py``). The layout is
read back from the shard's ``edge_config.json`` at start: a shard built for another layout
is refused with a clear reason instead of being opened.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar, cast

import anyio
from qdrant_edge import (
    CountRequest,
    Distance,
    EdgeConfig,
    EdgeShard,
    EdgeSparseVectorParams,
    EdgeVectorParams,
    Filter,
    Fusion,
    IdfParams,
    KeywordIndexParams,
    Modifier,
    PayloadSchemaType,
    Point,
    Prefetch,
    Query,
    QueryRequest,
    SearchParams,
    SparseVector,
    UpdateOperation,
)

from sitechat.errors import VectorStoreError
from sitechat.retrieval.base import Chunk, ScoredChunk, translated
from sitechat.retrieval.dense import DenseEncoder
from sitechat.retrieval.filters import (
    CHATBOT_KEY,
    DOCUMENT_KEY,
    edge_document_filter,
    edge_filter,
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

T = TypeVar("T")

# Searches whose recent average is under this run in the event loop (see the docstring).
INLINE_SEARCH_SECONDS = 0.001
_SEARCH_AVERAGE_WEIGHT = 0.2  # of the newest search in the moving average

CONFIG_FILE = "edge_config.json"  # written by qdrant_edge itself when a shard is created


class EdgeVectorStore:
    def __init__(self, path: Path, *, dense: DenseEncoder | None = None) -> None:
        self._path = path
        self._dense = dense
        self._dense_name = dense_vector_name(dense.model_id) if dense is not None else None
        self._shard: EdgeShard | None = None
        self._write_lock = anyio.Lock()
        self._search_seconds = 0.0  # moving average of a search's own duration

    @property
    def dense(self) -> DenseEncoder | None:
        return self._dense

    def _config(self) -> EdgeConfig:
        vectors: dict[str, EdgeVectorParams] = {}
        if self._dense is not None and self._dense_name is not None:
            vectors[self._dense_name] = EdgeVectorParams(
                size=self._dense.dimensions, distance=Distance.Cosine
            )
        return EdgeConfig(
            vectors=vectors,
            sparse_vectors={VECTOR_NAME: EdgeSparseVectorParams(modifier=Modifier.Idf)},
        )

    def _check_layout(self) -> None:
        """Refuse a shard whose vectors differ from what this store would create."""
        config_file = self._path / CONFIG_FILE
        if not config_file.is_file():
            return
        stored: dict[str, Any] = json.loads(config_file.read_text(encoding="utf-8"))
        vectors: dict[str, Any] = stored.get("vectors") or {}
        sparse: dict[str, Any] = stored.get("sparse_vectors") or {}
        require_layout(
            f"at {self._path}",
            {name: params.get("size") for name, params in vectors.items()},
            self._dense,
            bm25=VECTOR_NAME in sparse,
        )

    async def start(self) -> None:
        async with self._write_lock:
            if self._shard is not None:
                return
            with translated():
                self._shard = await anyio.to_thread.run_sync(self._open)

    def _open(self) -> EdgeShard:
        self._path.mkdir(parents=True, exist_ok=True)
        if any(self._path.iterdir()):
            # ``load`` accepts a config that differs from the shard's: check it ourselves.
            self._check_layout()
            shard = EdgeShard.load(str(self._path), self._config())
        else:
            shard = EdgeShard.create(str(self._path), self._config())
        try:
            indexed = shard.info().payload_schema
            if CHATBOT_KEY not in indexed:
                # is_tenant: the shard co-locates each chatbot's points, so filtered queries
                # read one tenant's data instead of skipping through everyone's.
                shard.update(
                    UpdateOperation.create_field_index(
                        CHATBOT_KEY, KeywordIndexParams(is_tenant=True)
                    )
                )
            if DOCUMENT_KEY not in indexed:
                shard.update(
                    UpdateOperation.create_field_index(DOCUMENT_KEY, PayloadSchemaType.Keyword)
                )
            shard.flush()
        except Exception:
            shard.close()
            raise
        return shard

    async def upsert(self, chunks: Sequence[Chunk]) -> None:
        for chatbot_id, batch in upsert_batches(chunks):
            # Vectors first, outside the write lock: the models are the slow part.
            points = await built_points(batch, self._dense, self._point)
            # Conditional upsert: an id already held by another chatbot's point is left
            # alone instead of being taken over.
            await self._update(
                UpdateOperation.upsert_points(points, condition=edge_filter(chatbot_id))
            )

    def _point(self, data: PointData) -> Point:
        vectors: dict[str, Any] = {
            VECTOR_NAME: SparseVector(data.sparse.indices, data.sparse.values)
        }
        if data.dense is not None and self._dense_name is not None:
            vectors[self._dense_name] = data.dense
        return Point(data.id, vectors, data.payload)

    async def delete_document(self, chatbot_id: str, document_id: str) -> None:
        scope = edge_document_filter(chatbot_id, document_id)
        await self._update(UpdateOperation.delete_points_by_filter(scope))

    async def delete_chatbot(self, chatbot_id: str) -> None:
        await self._update(UpdateOperation.delete_points_by_filter(edge_filter(chatbot_id)))

    async def search(
        self, chatbot_id: str, query: str, limit: int, *, variants: Sequence[str] = ()
    ) -> list[ScoredChunk]:
        tenant = edge_filter(chatbot_id)
        plan = await plan_query(query, variants, limit, self._dense)
        if plan is None:
            return []  # only stopwords or symbols: nothing can match
        request = self._request(plan, tenant)
        points = await self._query(request)
        return ranked(chatbot_id, plan, self._dense_name, points)

    def _request(self, plan: QueryPlan, tenant: Filter) -> QueryRequest:
        # IDF over this chatbot's chunks only: its scores do not move when another chatbot
        # adds documents, and reveal nothing about them.
        idf = SearchParams(idf=IdfParams(corpus=tenant))
        with_vector: list[str] | bool = (
            [self._dense_name] if plan.dense and self._dense_name else False
        )
        if not plan.fused:
            [sparse] = plan.sparse
            return QueryRequest(
                limit=plan.limit,
                query=Query.Nearest(SparseVector(sparse.indices, sparse.values), using=VECTOR_NAME),
                filter=tenant,
                with_payload=True,
                with_vector=with_vector,
                params=idf,
            )
        prefetches = [
            Prefetch(
                limit=plan.candidates,
                query=Query.Nearest(SparseVector(v.indices, v.values), using=VECTOR_NAME),
                filter=tenant,
                params=idf,
            )
            for v in plan.sparse
        ]
        prefetches += [
            Prefetch(
                limit=plan.candidates,
                query=Query.Nearest(v, using=self._dense_name),
                filter=tenant,
            )
            for v in plan.dense
        ]
        return QueryRequest(
            limit=plan.limit,
            prefetches=prefetches,
            # The stub types ``Fusion.Rrf`` apart from ``Fusion``; the engine accepts it.
            query=cast(Any, Fusion.Rrf(k=RRF_K)),
            filter=tenant,
            with_payload=True,
            with_vector=with_vector,
        )

    async def count(self, chatbot_id: str) -> int:
        request = CountRequest(exact=True, filter=edge_filter(chatbot_id))
        return await self._read(lambda shard: shard.count(request))

    async def ping(self) -> bool:
        shard = self._shard
        if shard is None:
            return False
        try:
            await anyio.to_thread.run_sync(shard.info)
        except Exception:
            return False
        return True

    async def close(self) -> None:
        async with self._write_lock:
            shard, self._shard = self._shard, None
            if shard is None:
                return
            with translated():
                await anyio.to_thread.run_sync(_flush_and_close, shard)

    # --- plumbing --------------------------------------------------------------------------

    def _require(self) -> EdgeShard:
        if self._shard is None:
            raise VectorStoreError() from RuntimeError("EdgeVectorStore is not started")
        return self._shard

    async def _query(self, request: QueryRequest) -> list[Any]:
        shard = self._require()

        def timed() -> list[Any]:
            started = time.perf_counter()
            try:
                return list(shard.query(request))
            finally:
                took = time.perf_counter() - started
                self._search_seconds += _SEARCH_AVERAGE_WEIGHT * (took - self._search_seconds)

        with translated():
            if self._search_seconds < INLINE_SEARCH_SECONDS:
                return timed()
            return await anyio.to_thread.run_sync(timed)

    async def _read(self, call: Callable[[EdgeShard], T]) -> T:
        shard = self._require()
        with translated():
            return await anyio.to_thread.run_sync(call, shard)

    async def _update(self, operation: UpdateOperation) -> None:
        async with self._write_lock:
            shard = self._require()

            def run() -> None:
                shard.update(operation)
                shard.flush()

            # Not abandoned on cancellation: the lock is held until the write finished.
            with translated():
                await anyio.to_thread.run_sync(run)


def _flush_and_close(shard: EdgeShard) -> None:
    try:
        shard.flush()
    finally:
        shard.close()
