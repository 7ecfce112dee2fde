"""``VectorStore`` on Qdrant Edge: an in-process shard persisted under a directory.

The embedded default: no server to run. One process owns the shard (its write-ahead log
is locked), so run a single app worker with it, or use ``QdrantServerStore``.

Every shard call is synchronous Rust, so each runs in a worker thread. Reads run
concurrently; writes are serialised by one lock and each write call ends with ``flush()``,
which persists segments and costs a few milliseconds: writes arrive one document at a time
from ingestion, never from the chat path, so durability per call is cheap enough.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

import anyio
from qdrant_edge import (
    CountRequest,
    EdgeConfig,
    EdgeShard,
    EdgeSparseVectorParams,
    IdfParams,
    KeywordIndexParams,
    Modifier,
    PayloadSchemaType,
    Point,
    Query,
    QueryRequest,
    SearchParams,
    SparseVector,
    UpdateOperation,
)

from sitechat.errors import VectorStoreError
from sitechat.retrieval.base import Chunk, ScoredChunk
from sitechat.retrieval.filters import (
    CHATBOT_KEY,
    DOCUMENT_KEY,
    chunk_from_payload,
    chunk_payload,
    edge_document_filter,
    edge_filter,
    point_id,
    require_id,
)
from sitechat.retrieval.sparse import VECTOR_NAME, bm25_text, embed_document, embed_query

T = TypeVar("T")

UPSERT_BATCH = 256


def _config() -> EdgeConfig:
    return EdgeConfig(sparse_vectors={VECTOR_NAME: EdgeSparseVectorParams(modifier=Modifier.Idf)})


class EdgeVectorStore:
    def __init__(self, path: Path) -> None:
        self._path = path
        self._shard: EdgeShard | None = None
        self._write_lock = anyio.Lock()

    async def start(self) -> None:
        async with self._write_lock:
            if self._shard is not None:
                return
            try:
                self._shard = await anyio.to_thread.run_sync(self._open)
            except Exception as exc:
                raise VectorStoreError() from exc

    def _open(self) -> EdgeShard:
        self._path.mkdir(parents=True, exist_ok=True)
        if any(self._path.iterdir()):
            # Passing the config makes a shard with another vector layout fail to load.
            shard = EdgeShard.load(str(self._path), _config())
        else:
            shard = EdgeShard.create(str(self._path), _config())
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
        if not chunks:
            return
        # Validate before any write: a bad chunk is the caller's bug, reported as ValueError.
        by_chatbot: dict[str, list[tuple[str, Chunk]]] = {}
        for chunk in chunks:
            by_chatbot.setdefault(require_id(chunk.chatbot_id, "Chunk.chatbot_id"), []).append(
                (point_id(chunk), chunk)
            )
            require_id(chunk.document_id, "Chunk.document_id")

        def write(shard: EdgeShard) -> None:
            for chatbot_id, items in by_chatbot.items():
                tenant = edge_filter(chatbot_id)
                for start in range(0, len(items), UPSERT_BATCH):
                    points = [
                        _point(pid, chunk) for pid, chunk in items[start : start + UPSERT_BATCH]
                    ]
                    # Conditional upsert: an id already held by another chatbot's point is
                    # left alone instead of being taken over.
                    shard.update(UpdateOperation.upsert_points(points, condition=tenant))

        await self._write(write)

    async def delete_document(self, chatbot_id: str, document_id: str) -> None:
        scope = edge_document_filter(chatbot_id, document_id)
        await self._write(
            lambda shard: shard.update(UpdateOperation.delete_points_by_filter(scope))
        )

    async def delete_chatbot(self, chatbot_id: str) -> None:
        scope = edge_filter(chatbot_id)
        await self._write(
            lambda shard: shard.update(UpdateOperation.delete_points_by_filter(scope))
        )

    async def search(self, chatbot_id: str, query: str, limit: int) -> list[ScoredChunk]:
        tenant = edge_filter(chatbot_id)
        if limit < 1:
            raise ValueError("limit must be at least 1")

        def run(shard: EdgeShard) -> list[ScoredChunk]:
            vector = embed_query(query)
            if not vector.indices:
                return []  # only stopwords or symbols: nothing can match
            request = QueryRequest(
                limit=limit,
                query=Query.Nearest(SparseVector(vector.indices, vector.values), using=VECTOR_NAME),
                filter=tenant,
                with_payload=True,
                with_vector=False,
                # IDF over this chatbot's chunks only: its scores do not move when another
                # chatbot adds documents, and reveal nothing about them.
                params=SearchParams(idf=IdfParams(corpus=tenant)),
            )
            return [
                ScoredChunk(chunk_from_payload(p.id, p.payload), p.score)
                for p in shard.query(request)
            ]

        found = await self._read(run)
        if any(hit.chunk.chatbot_id != chatbot_id for hit in found):
            # The filter failed: fail closed rather than show another chatbot's text.
            raise VectorStoreError() from RuntimeError("tenant filter returned a foreign chunk")
        return found

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
            try:
                await anyio.to_thread.run_sync(_flush_and_close, shard)
            except Exception as exc:
                raise VectorStoreError() from exc

    # --- plumbing --------------------------------------------------------------------------

    def _require(self) -> EdgeShard:
        if self._shard is None:
            raise VectorStoreError() from RuntimeError("EdgeVectorStore is not started")
        return self._shard

    async def _read(self, call: Callable[[EdgeShard], T]) -> T:
        shard = self._require()
        try:
            return await anyio.to_thread.run_sync(call, shard)
        except Exception as exc:
            raise VectorStoreError() from exc

    async def _write(self, call: Callable[[EdgeShard], object]) -> None:
        async with self._write_lock:
            shard = self._require()

            def run() -> None:
                call(shard)
                shard.flush()

            try:
                # Not abandoned on cancellation: the lock is held until the write finished.
                await anyio.to_thread.run_sync(run)
            except Exception as exc:
                raise VectorStoreError() from exc


def _point(pid: str, chunk: Chunk) -> Point:
    vector = embed_document(bm25_text(chunk.title, chunk.heading_path, chunk.text))
    return Point(
        pid, {VECTOR_NAME: SparseVector(vector.indices, vector.values)}, chunk_payload(chunk)
    )


def _flush_and_close(shard: EdgeShard) -> None:
    try:
        shard.flush()
    finally:
        shard.close()
