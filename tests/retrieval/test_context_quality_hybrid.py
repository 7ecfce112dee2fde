"""``context_quality`` with hybrid search: rank-fusion scores decide nothing, the dense
similarity can raise the level that term coverage gives, never lower it."""

from __future__ import annotations

import pytest

from sitechat.chat.quality import SimilarityLevels, assess
from sitechat.retrieval.base import Chunk, ScoredChunk, VectorStore

from .quality_set import corpus_chunks


def hit(text: str, *, score: float = 0.0328, similarity: float | None = None) -> ScoredChunk:
    chunk = Chunk(id="c", chatbot_id="b", document_id="d", position=0, text=text, title="Doc")
    return ScoredChunk(chunk, score, score_kind="rrf", similarity=similarity)


def test_similarity_raises_a_level_that_coverage_alone_would_give() -> None:
    passage = "Refunds are paid to the original card within fourteen days."
    quality = assess("How do I get my money back?", [hit(passage, similarity=0.62)])
    assert quality.coverage == 0.0, "no content word in common"
    assert quality.level == "high"
    data = quality.to_dict()
    assert data["score_kind"] == "rrf" and data["top_similarity"] == 0.62


@pytest.mark.parametrize(
    ("similarity", "level"), [(0.1, "none"), (0.31, "low"), (0.45, "medium"), (0.7, "high")]
)
def test_similarity_levels(similarity: float, level: str) -> None:
    assert assess("quantum chromodynamics", [hit("bread", similarity=similarity)]).level == level


def test_similarity_never_lowers_the_coverage_level() -> None:
    quality = assess("shipping costs", [hit("Shipping costs 4.90 euros.", similarity=0.05)])
    assert quality.level == "high"


def test_the_same_fusion_score_means_nothing_on_its_own() -> None:
    # Both are "first in both lists": only coverage and similarity tell them apart.
    good = assess("shipping costs", [hit("Shipping costs 4.90.", similarity=0.7)])
    bad = assess("capital of peru", [hit("Shipping costs 4.90.", similarity=0.05)])
    assert good.top_score == bad.top_score
    assert (good.level, bad.level) == ("high", "none")


def test_thresholds_are_configurable() -> None:
    strict = SimilarityLevels(high=0.9, medium=0.8, low=0.7)
    assert assess("x y z", [hit("bread", similarity=0.75)], similarity_levels=strict).level == "low"


OFF_TOPIC = [
    "What is the capital of Peru?",
    "How do I bake sourdough bread?",
    "Who won the football world cup in 2014?",
    "Translate hello into Spanish",
    "Can you recommend a good movie?",
]


@pytest.mark.dense_model
async def test_on_a_real_index_off_topic_questions_stay_none_and_paraphrases_do_not(
    hybrid_store: VectorStore,
) -> None:
    await hybrid_store.upsert(corpus_chunks("bot"))
    for question in OFF_TOPIC:
        quality = assess(question, await hybrid_store.search("bot", question, 5))
        assert quality.level == "none", (question, quality)
    paraphrase = "How do I get my cash back?"
    hits = await hybrid_store.search("bot", paraphrase, 5)
    assert hits[0].chunk.document_id == "returns"
    assert assess(paraphrase, hits).level != "none"
