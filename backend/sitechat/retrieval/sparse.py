"""The BM25 sparse-vector model shared by both vector store adapters.

Documents and queries become sparse vectors with ``qdrant_edge.Bm25`` (tokenise, drop
English stopwords, Snowball-stem, hash each term to an index). Documents carry BM25's
saturated term frequency; queries weigh each distinct term 1.0. The collection's IDF
modifier multiplies in the inverse document frequency at query time, so the score of a
chunk is its BM25 score. Both adapters compute IDF over the chatbot's own chunks only.

The config is explicit and part of the index format: changing any field changes the
vectors, so existing chunks must be re-indexed. Bump ``MODEL_VERSION`` when it changes.

Thread safety: one ``Bm25`` per process. It is a Rust (pyo3) object whose methods take
``&self`` on a ``Sync`` type and run with the GIL held, so calls from several worker threads
are safe without a lock (``test_sparse.py`` checks concurrent calls give the same vectors).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import NamedTuple

from qdrant_edge import (
    Bm25,
    Bm25Config,
    Language,
    SnowballLanguage,
    SnowballParams,
    TokenizerType,
)

VECTOR_NAME = "bm25"
MODEL_VERSION = 1

# Expected length of an indexed text in BM25 terms (after stopwords): the length at which
# BM25's length normalisation is neutral. Measured on ``bm25_text`` of ``chunk_document``
# chunks at the default 300-token budget, over the Node.js API docs (5.6k chunks): mean 63
# terms (many short sections), 110 for chunks of 200+ tokens; prose sites sit in between.
AVERAGE_TERMS = 80.0


class SparseEmbedding(NamedTuple):
    indices: list[int]
    values: list[float]


def bm25_config() -> Bm25Config:
    return Bm25Config(
        k=1.2,
        b=0.75,
        avg_len=AVERAGE_TERMS,
        tokenizer=TokenizerType.Word,
        language="english",
        lowercase=True,
        # "café" and "cafe" are the same word to a visitor typing a question.
        ascii_folding=True,
        stopwords=Language.English,
        stemmer=SnowballParams(SnowballLanguage.English),
    )


@lru_cache(maxsize=1)
def _model() -> Bm25:
    return Bm25(bm25_config())


def embed_document(text: str) -> SparseEmbedding:
    vector = _model().embed_document(text)
    return SparseEmbedding(list(vector.indices), list(vector.values))


def embed_query(text: str) -> SparseEmbedding:
    """Distinct terms of ``text`` at weight 1.0; empty when it holds only stopwords/symbols."""
    vector = _model().embed_query(text)
    return SparseEmbedding(list(vector.indices), list(vector.values))


def bm25_text(title: str, heading_path: Sequence[str], text: str) -> str:
    """What BM25 indexes for a chunk: its document title and headings, then its text.

    A question about "the widget" should find the passage under "## Embedding the widget"
    even when the passage itself only says "paste this snippet".
    """
    return "\n".join([title, *heading_path, text])


def term_coverage(query: str, text: str) -> float:
    """Share of the query's distinct terms that occur in ``text``, from 0.0 to 1.0.

    Unlike a BM25 score it has a fixed scale, which makes it a usable input for judging
    context quality. 0.0 for a query without searchable terms.
    """
    wanted = set(embed_query(query).indices)
    if not wanted:
        return 0.0
    present = wanted.intersection(embed_document(text).indices)
    return len(present) / len(wanted)
