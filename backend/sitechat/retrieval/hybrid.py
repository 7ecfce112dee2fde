"""What both adapters share for hybrid search: the query plan, the index layout, RRF.

A search turns the question (and its variants) into one ``QueryPlan``: a BM25 sparse vector
per phrasing and, when a dense encoder is configured, a dense vector per phrasing. Each
vector becomes one *prefetch* (its best ``QueryPlan.candidates`` chunks of the chatbot), and
Qdrant fuses the candidate lists with reciprocal rank fusion in the same request::

    score(chunk) = sum over lists of 1 / (RRF_K + rank of the chunk in that list)

(ranks counted from 0, as Qdrant does: first in two lists scores 2/60 = 0.033),

so a chunk found by both BM25 and the dense vector outranks one found by either alone. With
one list only (BM25 alone, no variants) no fusion is needed and the score stays BM25's.

The layout (which vectors an index holds) is fixed when the index is created. Opening an
index with another layout fails with ``VectorStoreError`` and an operator-readable reason
(``require_layout``), never with silently wrong or missing results.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sitechat.errors import VectorStoreError
from sitechat.retrieval.base import Chunk, ScoredChunk
from sitechat.retrieval.dense import DenseEncoder
from sitechat.retrieval.sparse import SparseEmbedding, embed_query

logger = logging.getLogger(__name__)

DENSE_PREFIX = "dense-"
# The usual constant from the RRF paper (Cormack et al., 2009); Qdrant's default is 2. Both
# adapters pass it explicitly so their scores agree.
RRF_K = 60
MIN_CANDIDATES = 20
MAX_CANDIDATES = 100
MAX_VARIANTS = 4


def dense_vector_name(model_id: str) -> str:
    """The named vector a model's embeddings live in: a new model means a new name."""
    slug = re.sub(r"[^a-z0-9]+", "-", model_id.lower()).strip("-")
    return f"{DENSE_PREFIX}{slug}"[:64]


def dense_text(chunk: Chunk) -> str:
    """What the dense model reads of a chunk: where it sits, then what it says."""
    where = " > ".join([chunk.title, *chunk.heading_path])
    return f"{where}\n\n{chunk.text}"


def normalized(vector: Sequence[float]) -> list[float]:
    norm = math.sqrt(sum(x * x for x in vector))
    return [x / norm for x in vector] if norm > 0 else list(vector)


def cosine(unit_query: Sequence[float], vector: Sequence[float] | None) -> float | None:
    """Cosine of a unit query vector and a stored vector (Qdrant stores cosine vectors
    normalised, but the local mode may not: normalise again, it is 384 multiplications)."""
    if not vector:
        return None
    norm = math.sqrt(sum(x * x for x in vector))
    if norm == 0:
        return None
    return sum(a * b for a, b in zip(unit_query, vector, strict=False)) / norm


@dataclass(frozen=True, slots=True)
class QueryPlan:
    sparse: tuple[SparseEmbedding, ...]  # one per phrasing with searchable terms
    dense: tuple[list[float], ...]  # one per phrasing, unit length; empty without a model
    limit: int  # how many chunks the search returns

    @property
    def fused(self) -> bool:
        return len(self.sparse) + len(self.dense) > 1

    @property
    def candidates(self) -> int:
        """How many candidates each prefetch brings to the fusion."""
        return max(MIN_CANDIDATES, min(MAX_CANDIDATES, self.limit * 4))

    @property
    def main_dense(self) -> list[float] | None:
        return self.dense[0] if self.dense else None


async def plan_query(
    query: str, variants: Sequence[str], limit: int, dense: DenseEncoder | None
) -> QueryPlan | None:
    """The vectors to search with; ``None`` when the question has no searchable terms.

    A question made only of stopwords or symbols finds nothing even with a dense model: its
    nearest neighbours would be whatever happens to be closest, not an answer.
    """
    if limit < 1:
        raise ValueError("limit must be at least 1")
    main = embed_query(query)
    if not main.indices:
        return None
    phrasings = [query]
    sparse = [main]
    for variant in list(dict.fromkeys(v for v in variants if v.strip() and v != query))[
        :MAX_VARIANTS
    ]:
        vector = embed_query(variant)
        if vector.indices:
            phrasings.append(variant)
            sparse.append(vector)
    dense_vectors: list[list[float]] = []
    if dense is not None:
        for phrasing in phrasings:
            dense_vectors.append(normalized(await dense.embed_query(phrasing)))
    return QueryPlan(tuple(sparse), tuple(dense_vectors), limit)


LAYOUT_MISMATCH = (
    "The vector index was built with other embedding settings; see 'Changing the embedding "
    "model' in docs/retrieval.md."
)


def layout_mismatch(where: str, found: str, wanted: str) -> VectorStoreError:
    """The error for an index whose vectors do not match the configuration.

    Its message is safe to show anyone; the operator's details (paths, layouts, what to do)
    are its ``__cause__`` and go to the log.
    """
    detail = (
        f"the vector index {where} holds {found}, but the configuration asks for {wanted}. "
        "Keep the embedding settings the index was built with, or build a new index: point "
        "SITECHAT_QDRANT_COLLECTION (server) or SITECHAT_DATA_DIR (embedded) at a new place "
        "and ingest the documents again."
    )
    logger.error("%s", detail)
    error = VectorStoreError(LAYOUT_MISMATCH)
    error.__cause__ = RuntimeError(detail)
    return error


def require_layout(
    where: str, found: Mapping[str, int | None], dense: DenseEncoder | None, *, bm25: bool = True
) -> None:
    """Refuse an index whose vectors differ from what a store with ``dense`` would create.

    ``found`` maps each dense vector the index holds to its size; ``bm25`` says whether it
    holds the BM25 vector.
    """
    found_name = next(iter(found), None)
    found_size = found[found_name] if found_name is not None else None
    wanted_name = dense_vector_name(dense.model_id) if dense is not None else None
    wanted_size = dense.dimensions if dense is not None else None
    if len(found) > 1 or found_name != wanted_name or found_size != wanted_size or not bm25:
        raise layout_mismatch(
            where,
            describe_layout(found_name, found_size),
            describe_layout(wanted_name, wanted_size),
        )


def describe_layout(dense_name: str | None, dimensions: int | None) -> str:
    if dense_name is None:
        return "BM25 vectors only"
    return f"BM25 and dense vectors {dense_name!r} of size {dimensions}"


def in_rank_order(found: list[ScoredChunk]) -> list[ScoredChunk]:
    """Best first, deterministically. Fused (RRF) scores tie whenever two chunks swap ranks
    between the sparse and the dense list; the engine returns ties in no fixed order, so
    they are broken by dense similarity (closer in meaning first), then by chunk id."""
    return sorted(found, key=lambda h: (-h.score, -(h.similarity or 0.0), h.chunk.id))
