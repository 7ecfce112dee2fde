"""The ``VectorStore`` contract, run against both adapters (see ``conftest.store``)."""

from __future__ import annotations

import pytest

from sitechat.retrieval.base import VectorStore
from sitechat.retrieval.edge_store import EdgeVectorStore
from sitechat.retrieval.server_store import QdrantServerStore

from .conftest import corpus, doc_chunks, make_chunk


def test_both_adapters_satisfy_the_protocol() -> None:
    assert issubclass(EdgeVectorStore, VectorStore)
    assert issubclass(QdrantServerStore, VectorStore)


async def test_start_twice_is_harmless(store: VectorStore) -> None:
    await store.upsert(doc_chunks("bot", "pricing.md"))
    await store.start()
    assert await store.count("bot") == len(doc_chunks("bot", "pricing.md"))


async def test_empty_store_finds_nothing_and_counts_zero(store: VectorStore) -> None:
    assert await store.search("bot", "widget", 5) == []
    assert await store.count("bot") == 0


@pytest.mark.parametrize(
    ("question", "document_id", "heading"),
    [
        ("Where do I paste the widget snippet?", "getting-started", "Embedding the widget"),
        ("Do you refund if I cancel?", "pricing", "Refunds"),
        ("The chat bubble does not appear", "troubleshooting", "The chat bubble does not appear"),
        ("Which domains may use the widget? allowed origins", "getting-started", "Allowed origins"),
        ("how much does the business plan cost per month", "pricing", None),
    ],
)
async def test_the_passage_that_answers_ranks_first(
    store: VectorStore, question: str, document_id: str, heading: str | None
) -> None:
    await store.upsert(corpus("bot"))
    hits = await store.search("bot", question, 5)
    assert hits, question
    best = hits[0].chunk
    assert best.document_id == document_id
    if heading is not None:
        assert best.heading_path[-1] == heading


async def test_scores_are_positive_and_best_first(store: VectorStore) -> None:
    await store.upsert(corpus("bot"))
    hits = await store.search("bot", "widget snippet page allowed origins", 10)
    scores = [hit.score for hit in hits]
    assert len(scores) >= 3
    assert all(score > 0 for score in scores)
    assert scores == sorted(scores, reverse=True)


async def test_limit_is_respected(store: VectorStore) -> None:
    chunks = [make_chunk("bot", "doc", i, f"widget fact number {i}") for i in range(12)]
    await store.upsert(chunks)
    assert len(await store.search("bot", "widget", 5)) == 5
    assert len(await store.search("bot", "widget", 1)) == 1
    assert len(await store.search("bot", "widget", 50)) == 12


async def test_a_query_without_searchable_terms_finds_nothing(store: VectorStore) -> None:
    await store.upsert(corpus("bot"))
    for query in ("", "   ", "the of and is", "?!...", "<>{}[]"):
        assert await store.search("bot", query, 5) == [], query


async def test_count_follows_upserts_and_deletes(store: VectorStore) -> None:
    pricing = doc_chunks("bot", "pricing.md")
    trouble = doc_chunks("bot", "troubleshooting.md")
    await store.upsert(pricing)
    assert await store.count("bot") == len(pricing)
    await store.upsert(trouble)
    assert await store.count("bot") == len(pricing) + len(trouble)
    await store.delete_document("bot", "pricing")
    assert await store.count("bot") == len(trouble)


async def test_delete_document_removes_only_that_document_of_that_chatbot(
    store: VectorStore,
) -> None:
    # Two chatbots use the same document id: deleting it for one must not touch the other.
    await store.upsert(corpus("bot-a") + corpus("bot-b"))
    before_b = await store.count("bot-b")
    await store.delete_document("bot-a", "pricing")
    hits = await store.search("bot-a", "refund billing plan widget", 20)
    assert all(hit.chunk.document_id != "pricing" for hit in hits)
    assert hits, "the other documents of bot-a are still there"
    assert await store.count("bot-b") == before_b
    hits_b = await store.search("bot-b", "refund billing plan widget", 20)
    assert any(hit.chunk.document_id == "pricing" for hit in hits_b)


async def test_delete_chatbot_removes_only_that_chatbot(store: VectorStore) -> None:
    await store.upsert(corpus("bot-a") + corpus("bot-b"))
    before_b = await store.count("bot-b")
    await store.delete_chatbot("bot-a")
    assert await store.count("bot-a") == 0
    assert await store.search("bot-a", "widget", 5) == []
    assert await store.count("bot-b") == before_b


async def test_deleting_what_does_not_exist_is_a_no_op(store: VectorStore) -> None:
    await store.delete_document("nobody", "nothing")
    await store.delete_chatbot("nobody")
    assert await store.count("nobody") == 0


async def test_upserting_the_same_id_replaces_the_chunk(store: VectorStore) -> None:
    first = make_chunk("bot", "doc", 0, "The office opens at nine in the morning.")
    await store.upsert([first, make_chunk("bot", "doc", 1, "Parking is free.")])
    second = make_chunk("bot", "doc", 0, "The office opens at ten since the renovation.")
    await store.upsert([second])
    assert await store.count("bot") == 2
    hits = await store.search("bot", "when does the office open", 5)
    assert [hit.chunk.text for hit in hits] == [second.text]
    assert await store.search("bot", "nine morning", 5) == []


async def test_payload_round_trips(store: VectorStore) -> None:
    chunk = make_chunk(
        "bot",
        "doc-7",
        3,
        "Paste the snippet before the closing body tag.",
        title="Getting started",
        url="https://docs.acme.example/start#embed",
        heading_path=("Install", "Embedding the widget"),
        token_count=11,
        metadata={"lang": "en", "page": 2, "tags": ["setup", "widget"]},
    )
    await store.upsert([chunk])
    hits = await store.search("bot", "snippet", 1)
    assert len(hits) == 1
    assert hits[0].chunk == chunk
    assert hits[0].chunk.heading == "Install > Embedding the widget"


async def test_url_may_be_absent(store: VectorStore) -> None:
    chunk = make_chunk("bot", "doc", 0, "Plain text without a page.")
    await store.upsert([chunk])
    [hit] = await store.search("bot", "page", 3)
    assert hit.chunk.url is None
    assert hit.chunk.heading_path == ()


async def test_words_in_title_and_headings_are_searchable(store: VectorStore) -> None:
    # The passage itself never says "widget": its heading does.
    chunk = make_chunk(
        "bot",
        "doc",
        0,
        "Paste the snippet before the closing body tag.",
        title="Install guide",
        heading_path=("Embedding the widget",),
    )
    other = make_chunk("bot", "doc", 1, "Our office is in Lisbon.", title="About us")
    await store.upsert([chunk, other])
    hits = await store.search("bot", "widget", 5)
    assert [hit.chunk.id for hit in hits] == [chunk.id]
    assert hits[0].chunk.text == chunk.text  # the heading is not baked into the text


async def test_large_upserts_are_batched_and_all_stored(store: VectorStore) -> None:
    chunks = [make_chunk("bot", f"doc-{i % 7}", i, f"fact {i} about widgets") for i in range(700)]
    await store.upsert(chunks)
    assert await store.count("bot") == 700


async def test_ping_is_true_when_started(store: VectorStore) -> None:
    assert await store.ping() is True


@pytest.mark.parametrize("bad", ["", "   ", None])
async def test_a_missing_chatbot_id_is_refused_everywhere(store: VectorStore, bad: object) -> None:
    await store.upsert(corpus("bot"))
    with pytest.raises(ValueError):
        await store.search(bad, "widget", 5)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        await store.count(bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        await store.delete_chatbot(bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        await store.delete_document(bad, "pricing")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        await store.delete_document("bot", bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        await store.upsert([make_chunk(bad, "doc", 0, "text")])  # type: ignore[arg-type]
    assert await store.count("bot") == len(corpus("bot")), "nothing was deleted"


async def test_chunk_ids_must_be_canonical_uuids(store: VectorStore) -> None:
    for bad_id in ("chunk-1", "5F0C1D9E-8C2A-4D7E-9A51-3B1F2E4C6A70", "42"):
        with pytest.raises(ValueError):
            await store.upsert([make_chunk("bot", "doc", 0, "text", id=bad_id)])
    assert await store.count("bot") == 0


async def test_a_limit_below_one_is_refused(store: VectorStore) -> None:
    with pytest.raises(ValueError):
        await store.search("bot", "widget", 0)
