from __future__ import annotations

from sitechat.chat.quality import assess
from sitechat.retrieval.base import Chunk, ScoredChunk


def scored(text: str, score: float, title: str = "Doc") -> ScoredChunk:
    chunk = Chunk(id="c", chatbot_id="b", document_id="d", position=0, text=text, title=title)
    return ScoredChunk(chunk, score)


def test_no_results_is_level_none() -> None:
    quality = assess("how much is shipping?", [])
    assert quality.level == "none"
    assert quality.to_dict() == {
        "level": "none",
        "top_score": 0.0,
        "mean_score": 0.0,
        "chunks_used": 0,
        "coverage": 0.0,
        "top_coverage": 0.0,
    }


def test_passage_covering_every_question_term_is_high() -> None:
    quality = assess(
        "What are the shipping costs?",
        [scored("Shipping costs 4.90 euros.", 7.5), scored("Returns.", 1.0)],
    )
    assert quality.level == "high"
    assert quality.coverage == 1.0 and quality.top_coverage == 1.0
    assert quality.top_score == 7.5 and quality.mean_score == 4.25
    assert quality.chunks_used == 2


def test_half_covered_question_is_medium_and_less_is_low() -> None:
    assert assess("shipping costs to mars", [scored("shipping costs", 3.0)]).level == "medium"
    assert assess("shipping mars moon jupiter", [scored("shipping", 1.0)]).level == "low"


def test_results_sharing_no_content_word_are_none() -> None:
    assert assess("quantum chromodynamics", [scored("the store opens at 9", 0.3)]).level == "none"


def test_stemming_matches_plural_and_ing_forms() -> None:
    quality = assess("embedding widgets", [scored("How to embed the widget", 2.0)])
    assert quality.coverage == 1.0


def test_question_without_content_words_is_low_not_none() -> None:
    assert assess("hi", [scored("Welcome to the shop", 0.5)]).level == "low"
