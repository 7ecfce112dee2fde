"""Retrieval quality on a fixed set (``quality_set.py``): 60 questions over 12 documents in
Markdown, plain text, HTML and PDF. The floors are the levels measured when the set was
written; a change that lowers recall@3 or MRR below them fails here.

Measured (both adapters): BM25 recall@3 0.900, MRR 0.830; hybrid with all-MiniLM-L6-v2
recall@3 0.933, MRR 0.870 (deterministic since fused ties are broken by dense similarity,
``retrieval/hybrid.in_rank_order``). The paraphrased questions
at the end of the set ("How do I get my cash back?") are where hybrid earns its keep.
"""

from __future__ import annotations

import pytest

from sitechat.retrieval.base import VectorStore

from .quality_set import Scores, corpus_chunks, evaluate, questions, source_files

BM25_RECALL_AT_3 = 0.900
BM25_MRR = 0.830
HYBRID_RECALL_AT_3 = 0.933
HYBRID_MRR = 0.870
TOLERANCE = 1e-3


def test_the_set_is_large_and_varied() -> None:
    files = source_files()
    assert len(files) >= 10
    formats = {name.rsplit(".", 1)[-1] for name, _ in files.values()}
    assert formats == {"md", "txt", "html", "pdf"}
    asked = questions()
    assert len(asked) >= 30
    assert {q.document for q in asked} == set(files), "every document answers something"


async def scores_at_level(store: VectorStore, mode: str, recall_at_3: float, mrr: float) -> Scores:
    """The store's scores over the quality set, asserted at least at the recorded level."""
    await store.upsert(corpus_chunks("bot"))
    scores = await evaluate(store, "bot")
    print(f"{mode}: recall@3 {scores.recall_at_3:.3f}, MRR {scores.mrr:.3f}")
    assert scores.recall_at_3 >= recall_at_3 - TOLERANCE, scores.misses(questions())
    assert scores.mrr >= mrr - TOLERANCE
    return scores


async def test_bm25_recall_and_mrr_stay_at_their_level(store: VectorStore) -> None:
    await scores_at_level(store, "BM25", BM25_RECALL_AT_3, BM25_MRR)


@pytest.mark.dense_model
async def test_hybrid_recall_and_mrr_stay_at_their_level(hybrid_store: VectorStore) -> None:
    scores = await scores_at_level(hybrid_store, "hybrid", HYBRID_RECALL_AT_3, HYBRID_MRR)
    assert scores.recall_at_3 > BM25_RECALL_AT_3, "hybrid must find more than BM25 alone"
