"""Hybrid search (BM25 + MiniLM dense vectors, fused with RRF in one query) on both adapters,
query variants, and the index layout checks that keep a store from mixing embeddings."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
from qdrant_client import AsyncQdrantClient

from sitechat.errors import VectorStoreError
from sitechat.retrieval.base import VectorStore
from sitechat.retrieval.edge_store import EdgeVectorStore
from sitechat.retrieval.hybrid import LAYOUT_MISMATCH, RRF_K, dense_vector_name
from sitechat.retrieval.server_store import QdrantServerStore

from .conftest import MemoEncoder, corpus, make_chunk

pytestmark = pytest.mark.dense_model

REFUNDS = make_chunk(
    "bot", "billing", 0, "Refunds are paid to the original card within fourteen days."
)
OFFICE = make_chunk("bot", "about", 0, "Our office in Lisbon is closed on public holidays.")
WIDGET = make_chunk("bot", "install", 0, "Paste the snippet before the closing body tag.")


async def test_a_passage_in_other_words_is_found_by_meaning(
    hybrid_store: VectorStore, store: VectorStore
) -> None:
    # No word of the question (after stemming and stopwords) is in the refunds passage.
    question = "How do I get my money back?"
    for target in (hybrid_store, store):
        await target.upsert([REFUNDS, OFFICE, WIDGET])
    assert await store.search("bot", question, 3) == [], "BM25 alone cannot see it"
    hits = await hybrid_store.search("bot", question, 3)
    assert hits[0].chunk.id == REFUNDS.id


async def test_hybrid_scores_are_rank_fusion_and_carry_a_similarity(
    hybrid_store: VectorStore,
) -> None:
    await hybrid_store.upsert([REFUNDS, OFFICE, WIDGET])
    hits = await hybrid_store.search("bot", "refund to my card", 3)
    assert [h.score_kind for h in hits] == ["rrf"] * len(hits)
    # First in both lists (rank 0): 2 / k, the highest score fusion can give.
    assert hits[0].chunk.id == REFUNDS.id
    assert hits[0].score == pytest.approx(2 / RRF_K, rel=1e-3)
    similarities = [h.similarity for h in hits]
    assert all(s is not None and -1.0 <= s <= 1.0 for s in similarities)
    assert similarities[0] == max(s for s in similarities if s is not None)
    assert similarities[0] is not None and similarities[0] > 0.4


async def test_bm25_alone_reports_bm25_scores_without_similarity(store: VectorStore) -> None:
    await store.upsert([REFUNDS, OFFICE])
    [hit] = await store.search("bot", "refunds", 3)
    assert hit.score_kind == "bm25" and hit.similarity is None


async def test_a_question_without_searchable_terms_finds_nothing_even_by_meaning(
    hybrid_store: VectorStore,
) -> None:
    await hybrid_store.upsert([REFUNDS, OFFICE, WIDGET])
    for query in ("", "   ", "the of and is", "?!..."):
        assert await hybrid_store.search("bot", query, 3) == [], query


async def test_variants_are_searched_together_with_the_query(store: VectorStore) -> None:
    await store.upsert([REFUNDS, OFFICE, WIDGET])
    assert await store.search("bot", "money back", 3) == []
    hits = await store.search("bot", "money back", 3, variants=["refunds paid"])
    assert [h.chunk.id for h in hits] == [REFUNDS.id]
    assert hits[0].score_kind == "rrf"


async def test_both_adapters_rank_the_corpus_alike(minilm: MemoEncoder, tmp_path: Path) -> None:
    edge = EdgeVectorStore(tmp_path / "edge", dense=minilm)
    server = QdrantServerStore(AsyncQdrantClient(":memory:"), "test", dense=minilm)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Payload indexes have no effect")
        for target in (edge, server):
            await target.start()
            await target.upsert(corpus("bot"))
    try:
        for question in (
            "Where do I paste the widget snippet?",
            "Do you refund if I cancel?",
            "my chat bubble is invisible",
        ):
            top_edge = [h.chunk.id for h in await edge.search("bot", question, 3)]
            top_server = [h.chunk.id for h in await server.search("bot", question, 3)]
            assert top_edge[0] == top_server[0], question
    finally:
        await edge.close()
        await server.close()


async def test_a_sparse_shard_is_refused_when_a_dense_model_is_configured(
    tmp_path: Path, minilm: MemoEncoder
) -> None:
    path = tmp_path / "qdrant"
    sparse_only = EdgeVectorStore(path)
    await sparse_only.start()
    await sparse_only.upsert([WIDGET])
    await sparse_only.close()
    with pytest.raises(VectorStoreError) as caught:
        await EdgeVectorStore(path, dense=minilm).start()
    assert caught.value.message == LAYOUT_MISMATCH
    assert "BM25 vectors only" in str(caught.value.__cause__)
    # The configuration it was built with still opens it, data intact.
    again = EdgeVectorStore(path)
    await again.start()
    assert await again.count("bot") == 1
    await again.close()


async def test_a_dense_shard_is_refused_without_its_model(
    tmp_path: Path, minilm: MemoEncoder
) -> None:
    path = tmp_path / "qdrant"
    dense = EdgeVectorStore(path, dense=minilm)
    await dense.start()
    await dense.close()
    with pytest.raises(VectorStoreError) as caught:
        await EdgeVectorStore(path).start()
    assert dense_vector_name(minilm.model_id) in str(caught.value.__cause__)


async def test_a_collection_built_for_another_layout_is_refused(minilm: MemoEncoder) -> None:
    client = AsyncQdrantClient(":memory:")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Payload indexes have no effect")
        await QdrantServerStore(client, "shared").start()  # BM25 only
        hybrid = QdrantServerStore(client, "shared", dense=minilm)
        with pytest.raises(VectorStoreError) as caught:
            await hybrid.start()
        assert caught.value.message == LAYOUT_MISMATCH
        # A new collection name is the documented way to a hybrid index.
        fresh = QdrantServerStore(client, "shared_hybrid", dense=minilm)
        await fresh.start()
    await client.close()


async def test_a_hybrid_search_with_variants_is_one_request(minilm: MemoEncoder) -> None:
    client = AsyncQdrantClient(":memory:")
    store = QdrantServerStore(client, "test", dense=minilm)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Payload indexes have no effect")
        await store.start()
    await store.upsert([REFUNDS, OFFICE, WIDGET])
    sent: list[dict[str, object]] = []
    real_query = client.query_points

    async def recording(*args: object, **kwargs: object) -> object:
        sent.append(kwargs)
        return await real_query(*args, **kwargs)  # type: ignore[arg-type]

    client.query_points = recording  # type: ignore[method-assign]
    hits = await store.search("bot", "money back", 3, variants=["refunds paid", "card"])
    assert hits[0].chunk.id == REFUNDS.id
    [request] = sent
    prefetch = request["prefetch"]
    assert isinstance(prefetch, list) and len(prefetch) == 6  # BM25 and dense, per phrasing
    assert all(p.filter == request["query_filter"] for p in prefetch), "every list is scoped"
    await store.close()
