"""The vector store interface. Two adapters implement it: Qdrant Edge in-process (the
embedded default) and a Qdrant server through ``AsyncQdrantClient``. One contract suite
(``tests/retrieval/test_vector_store_contract.py``) runs against both.

Tenant safety lives here: every read and delete is scoped by ``chatbot_id`` through the
filter builders of ``retrieval/filters.py`` (one per backend); nothing can search without a
chatbot. ``Chunk.id`` must be a canonical lowercase UUID string.

Search is BM25 alone, or hybrid when the store was given a dense encoder
(``retrieval/dense.py``): BM25 and dense candidates fused with reciprocal rank fusion by Qdrant
in one query (``retrieval/hybrid.py``). Query variants (rewordings of the question) are
searched in the same query and fused the same way.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from sitechat.errors import VectorStoreError

ScoreKind = Literal["bm25", "rrf"]


@dataclass(frozen=True, slots=True)
class Chunk:
    """One indexed passage of a document."""

    id: str  # UUID string, stable for (document_id, position, content)
    chatbot_id: str
    document_id: str
    position: int  # order within its document
    text: str
    title: str
    url: str | None = None
    heading_path: tuple[str, ...] = ()
    token_count: int = 0
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def heading(self) -> str | None:
        return " > ".join(self.heading_path) if self.heading_path else None


@dataclass(frozen=True, slots=True)
class ScoredChunk:
    chunk: Chunk
    # "bm25": the chunk's BM25 score (unbounded, corpus-dependent). "rrf": its reciprocal
    # rank fusion score, which depends only on its ranks in the fused candidate lists.
    score: float
    score_kind: ScoreKind = "bm25"
    # Cosine similarity between the question's and the chunk's dense vectors (-1 to 1),
    # when the store has a dense encoder: unlike either score, it has a fixed scale.
    similarity: float | None = None


@runtime_checkable
class VectorStore(Protocol):
    async def start(self) -> None:
        """Open or create the collection/shard and its indexes. Idempotent."""

    async def upsert(self, chunks: Sequence[Chunk]) -> None: ...

    async def delete_document(self, chatbot_id: str, document_id: str) -> None: ...

    async def delete_chatbot(self, chatbot_id: str) -> None: ...

    async def search(
        self, chatbot_id: str, query: str, limit: int, *, variants: Sequence[str] = ()
    ) -> list[ScoredChunk]:
        """Best chunks of this chatbot for ``query``, best first. Never another chatbot's.

        ``variants`` are other phrasings of the same question, searched in the same round
        trip and fused with ``query`` by reciprocal rank. A query without searchable terms
        (only stopwords or symbols) finds nothing, in every mode.
        """

    async def count(self, chatbot_id: str) -> int: ...

    async def ping(self) -> bool:
        """True when the store can serve queries (readiness)."""

    async def close(self) -> None: ...


@contextmanager
def translated() -> Iterator[None]:
    """Any failure of a store's backend as ``VectorStoreError``, where it enters the adapter;
    a ``VectorStoreError`` raised inside (a refused layout, an encoder) passes unchanged."""
    try:
        yield
    except VectorStoreError:
        raise
    except Exception as exc:
        raise VectorStoreError() from exc
