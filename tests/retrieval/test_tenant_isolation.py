"""Tenant isolation, attacked: a search, count or delete never reaches another chatbot.

Many chatbots share vocabulary, document ids and even whole passages; their ids are chosen
to be confusable (prefixes, case, whitespace, filter-like syntax). Random queries include
other chatbots' ids and exact passages. Every answer must come from the asking chatbot, on
both adapters, with BM25 alone and with hybrid search (whose dense prefetch is filtered too).
"""

from __future__ import annotations

import random
import string

from sitechat.retrieval.base import Chunk, VectorStore

from .conftest import make_chunk

CHATBOT_IDS = [
    "bot-1",
    "bot-10",  # "bot-1" is a prefix of it
    "Bot-1",  # differs only in case
    "bot-1 ",  # differs only by a trailing space
    "*",
    "' OR '1'='1",
    '{"$ne": null}',
    "chatbot_id",
    "ünïcødé-bøt",
    "3f2b8c1e-0d4a-4b6e-9c7f-1a2b3c4d5e6f",
    "a",
    "bot-2",
]
_SAMPLE = (
    "widget install pricing refund billing invoice snippet origin domain browser console "
    "message limit greeting document upload chatbot answer question plan team business "
    "free monthly email support password login account settings theme colour bubble"
)
VOCABULARY = _SAMPLE.split()
SHARED_PASSAGE = "Shared passage: the widget install snippet goes before the body tag."


def build_chunks(rng: random.Random) -> dict[str, list[Chunk]]:
    chunks: dict[str, list[Chunk]] = {}
    for n, chatbot_id in enumerate(CHATBOT_IDS):
        own: list[Chunk] = []
        for position in range(rng.randint(6, 14)):
            words = rng.sample(VOCABULARY, rng.randint(5, 12))
            if rng.random() < 0.3:
                # Mention another chatbot by id, as a query might.
                words.append(rng.choice(CHATBOT_IDS))
            own.append(
                make_chunk(
                    chatbot_id,
                    f"doc-{position % 3}",  # the same document ids in every chatbot
                    position,
                    f"{' '.join(words)} marker{n}x{position}.",
                )
            )
        own.append(make_chunk(chatbot_id, "shared", 100, SHARED_PASSAGE))
        chunks[chatbot_id] = own
    return chunks


def random_queries(rng: random.Random, chunks: dict[str, list[Chunk]], n: int) -> list[str]:
    every_text = [chunk.text for own in chunks.values() for chunk in own]
    specials = string.punctuation + " \t\n"
    makers = [
        lambda: " ".join(rng.sample(VOCABULARY, rng.randint(1, 6))),
        lambda: rng.choice(every_text),  # an exact passage, likely another chatbot's
        lambda: rng.choice(CHATBOT_IDS),
        lambda: f"chatbot_id {rng.choice(CHATBOT_IDS)} {rng.choice(VOCABULARY)}",
        lambda: f"marker{rng.randrange(len(CHATBOT_IDS))}x{rng.randrange(14)}",
        lambda: "".join(rng.choice(specials) for _ in range(rng.randint(0, 12))),
        lambda: "the and of " + rng.choice(["", "a", "is"]),
        lambda: SHARED_PASSAGE,
    ]
    return [rng.choice(makers)() for _ in range(n)]


def assert_own(hits: list[Chunk], chatbot_id: str, own_ids: set[str]) -> None:
    for chunk in hits:
        assert chunk.chatbot_id == chatbot_id
        assert chunk.id in own_ids, f"{chunk.id} is not a chunk of {chatbot_id!r}"


async def test_random_queries_only_ever_return_the_asking_chatbots_chunks(
    any_store: VectorStore,
) -> None:
    rng = random.Random(20240611)
    chunks = build_chunks(rng)
    await any_store.upsert([chunk for own in chunks.values() for chunk in own])
    own_ids = {bot: {chunk.id for chunk in own} for bot, own in chunks.items()}

    for query in random_queries(rng, chunks, 240):
        chatbot_id = rng.choice(CHATBOT_IDS)
        hits = await any_store.search(chatbot_id, query, rng.randint(1, 25))
        assert_own([hit.chunk for hit in hits], chatbot_id, own_ids[chatbot_id])

    for chatbot_id, own in chunks.items():
        assert await any_store.count(chatbot_id) == len(own)
        hits = await any_store.search(chatbot_id, SHARED_PASSAGE, 50)
        assert hits, "the shared passage exists in every chatbot"
        assert_own([hit.chunk for hit in hits], chatbot_id, own_ids[chatbot_id])


async def test_deletes_never_reach_another_chatbot(any_store: VectorStore) -> None:
    rng = random.Random(7)
    chunks = build_chunks(rng)
    await any_store.upsert([chunk for own in chunks.values() for chunk in own])
    expected = {bot: len(own) for bot, own in chunks.items()}

    for _ in range(10):
        victim = rng.choice(CHATBOT_IDS)
        document_id = rng.choice(["doc-0", "doc-1", "doc-2", "shared"])
        await any_store.delete_document(victim, document_id)
        expected[victim] -= sum(1 for chunk in chunks[victim] if chunk.document_id == document_id)
        chunks[victim] = [c for c in chunks[victim] if c.document_id != document_id]
        for chatbot_id in CHATBOT_IDS:
            assert await any_store.count(chatbot_id) == expected[chatbot_id]

    await any_store.delete_chatbot("bot-1")
    expected["bot-1"] = 0
    for chatbot_id in CHATBOT_IDS:
        assert await any_store.count(chatbot_id) == expected[chatbot_id]


async def test_a_chatbot_unknown_to_the_store_sees_nothing(any_store: VectorStore) -> None:
    chunks = build_chunks(random.Random(3))
    await any_store.upsert([chunk for own in chunks.values() for chunk in own])
    for stranger in ("bot", "bot-", "BOT-1", "bot-1  ", " bot-1", "bot-100"):
        assert await any_store.count(stranger) == 0
        assert await any_store.search(stranger, SHARED_PASSAGE, 10) == []
        assert await any_store.search(stranger, "bot-1 widget install", 10) == []


async def test_an_upsert_cannot_take_over_another_chatbots_chunk(any_store: VectorStore) -> None:
    original = make_chunk("bot-a", "doc", 0, "bot-a keeps this passage about invoices.")
    await any_store.upsert([original])
    hijack = make_chunk("bot-b", "doc", 0, "bot-b wrote this about invoices.", id=original.id)
    await any_store.upsert([hijack])
    [hit] = await any_store.search("bot-a", "invoices", 5)
    assert hit.chunk == original
    assert await any_store.search("bot-b", "invoices", 5) == []


async def test_scores_do_not_depend_on_other_chatbots_documents(any_store: VectorStore) -> None:
    # IDF is computed per chatbot: another tenant's corpus can neither move this chatbot's
    # ranking nor be probed through its scores.
    own = [
        make_chunk("bot-a", "doc", 0, "Refunds are paid within 14 days of cancelling."),
        make_chunk("bot-a", "doc", 1, "Invoices are sent by email every month."),
        make_chunk("bot-a", "doc", 2, "The widget supports a dark theme."),
    ]
    await any_store.upsert(own)

    async def ranking() -> list[tuple[str, float]]:
        hits = await any_store.search("bot-a", "refund invoice", 5)
        # Equal fused (RRF) scores may come back in either order: compare ties by id.
        return sorted(((h.chunk.id, h.score) for h in hits), key=lambda p: (-round(p[1], 6), p[0]))

    before = await ranking()
    noise = [make_chunk("bot-b", "doc", i, f"refund refund invoice {i}") for i in range(40)]
    await any_store.upsert(noise)
    after = await ranking()
    assert [cid for cid, _ in after] == [cid for cid, _ in before]
    for (_, score_before), (_, score_after) in zip(before, after, strict=True):
        assert abs(score_before - score_after) < 1e-4
