"""Chunks into points, found points back into chunks: what both vector stores do around
their client's upsert and query, so that each adapter holds only the calls to its client.

- ``upsert_batches``: the chunks grouped by chatbot (each upsert is conditioned on its
  chatbot's filter) and cut into batches; every chunk is validated before the first write.
- ``built_points``: a batch's vectors, dense from the encoder and BM25 in a worker thread
  (both are CPU work), each point made in the adapter's own type by its ``point`` function.
- ``ranked``: the points a search found as ``ScoredChunk``s, best first, never another
  chatbot's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import anyio

from sitechat.errors import VectorStoreError
from sitechat.retrieval.base import Chunk, ScoredChunk, ScoreKind, translated
from sitechat.retrieval.dense import DenseEncoder
from sitechat.retrieval.filters import chunk_from_payload, chunk_payload, group_by_chatbot
from sitechat.retrieval.hybrid import QueryPlan, cosine, dense_text, in_rank_order
from sitechat.retrieval.sparse import SparseEmbedding, bm25_text, embed_document

P = TypeVar("P")

UPSERT_BATCH = 256


def upsert_batches(chunks: Sequence[Chunk]) -> list[tuple[str, list[tuple[str, Chunk]]]]:
    """(chatbot id, batch of (point id, chunk)) pairs; ``ValueError`` for a bad chunk."""
    return [
        (chatbot_id, items[start : start + UPSERT_BATCH])
        for chatbot_id, items in group_by_chatbot(chunks).items()
        for start in range(0, len(items), UPSERT_BATCH)
    ]


@dataclass(frozen=True, slots=True)
class PointData:
    """What a chunk's point holds, before it becomes the client's own point type."""

    id: str
    sparse: SparseEmbedding
    dense: list[float] | None  # None when the store has no dense encoder
    payload: dict[str, Any]


async def built_points(
    batch: Sequence[tuple[str, Chunk]],
    dense: DenseEncoder | None,
    point: Callable[[PointData], P],
) -> list[P]:
    with translated():
        dense_vectors = (
            await dense.embed_documents([dense_text(chunk) for _, chunk in batch])
            if dense is not None
            else None
        )

    def build() -> list[P]:
        return [
            point(
                PointData(
                    pid,
                    embed_document(bm25_text(chunk.title, chunk.heading_path, chunk.text)),
                    dense_vectors[i] if dense_vectors is not None else None,
                    chunk_payload(chunk),
                )
            )
            for i, (pid, chunk) in enumerate(batch)
        ]

    with translated():
        return await anyio.to_thread.run_sync(build)


class FoundPoint(Protocol):
    """A point a search returned, as both clients describe it."""

    @property
    def id(self) -> object: ...

    @property
    def payload(self) -> Mapping[str, Any] | None: ...

    @property
    def score(self) -> float: ...

    @property
    def vector(self) -> object: ...


def ranked(
    chatbot_id: str, plan: QueryPlan, dense_name: str | None, points: Iterable[FoundPoint]
) -> list[ScoredChunk]:
    kind: ScoreKind = "rrf" if plan.fused else "bm25"
    found = [
        ScoredChunk(
            chunk_from_payload(p.id, p.payload),
            p.score,
            score_kind=kind,
            similarity=_similarity(plan, dense_name, p.vector),
        )
        for p in points
    ]
    if any(hit.chunk.chatbot_id != chatbot_id for hit in found):
        # The filter failed: fail closed rather than show another chatbot's text.
        raise VectorStoreError() from RuntimeError("tenant filter returned a foreign chunk")
    return in_rank_order(found)


def _similarity(plan: QueryPlan, dense_name: str | None, vectors: object) -> float | None:
    """Cosine of the question and a found chunk, from the dense vector the search returned."""
    if plan.main_dense is None or dense_name is None or not isinstance(vectors, dict):
        return None
    stored = vectors.get(dense_name)
    if not isinstance(stored, list) or not all(isinstance(x, float) for x in stored):
        return None
    return cosine(plan.main_dense, stored)
