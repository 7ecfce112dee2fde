"""Answerability (``chat.answerability``): do the passages answer the question, not merely
share its words? Small fixed corpora; the measured rates over whole knowledge bases are in
``benchmarks/eval.py`` and ``docs/context-quality.md``."""

from __future__ import annotations

import pytest

from sitechat.chat.answerability import (
    bm25_term,
    distinctive_terms,
    expected_answer_found,
    is_greeting,
    judge,
    passage_terms,
    question_words,
    supports,
)
from sitechat.retrieval.base import Chunk, ScoredChunk
from sitechat.text import stem

BAKERY = [
    "Allergens. We do not bake gluten-free bread. Spelt and rye contain gluten too.",
    "Our bread. Country sourdough (800 g): 5.20 euros. All our breads are vegan.",
    "Delivery. We deliver by cargo bike within the Ghent ring road from Tuesday to Saturday. "
    "Delivery costs 4 euros and is free for orders over 30 euros.",
    "Returns from Germany and Austria are free; from other countries the return label costs "
    "6.50 euros.",
]


def passages(*texts: str) -> list[ScoredChunk]:
    return [
        ScoredChunk(
            Chunk(id=str(i), chatbot_id="b", document_id="d", position=i, text=t, title="Doc"),
            1.0 / (i + 1),
        )
        for i, t in enumerate(texts)
    ]


def test_a_question_the_passages_answer_is_answerable() -> None:
    verdict = judge("Do you have gluten-free bread?", passages(*BAKERY))
    assert verdict.answerable
    assert verdict.unsupported == ()


def test_a_near_miss_in_the_sites_own_words_is_not() -> None:
    """Every word but the one asked about is in the documents."""
    verdict = judge("Do you sell gluten-free pizza?", passages(*BAKERY))
    assert not verdict.answerable
    assert verdict.verdict == "unanswerable"
    assert "pizza" in verdict.unsupported


def test_world_knowledge_is_not_answerable_even_when_a_word_matches() -> None:
    """'France' may well be in a shipping page; 'capital' is not."""
    texts = [*BAKERY, "Delivery to France takes 2 to 4 working days."]
    verdict = judge("What is the capital of France?", passages(*texts))
    assert not verdict.answerable
    assert verdict.unsupported == ("capital",)


@pytest.mark.parametrize("message", ["How are you today?", "Can you do it?", "ok thanks"])
def test_small_talk_asks_about_nothing_in_the_documents(message: str) -> None:
    verdict = judge(message, passages(*BAKERY))
    assert verdict.verdict == "small_talk"
    assert not verdict.answerable


@pytest.mark.parametrize(
    "message", ["hi", "Hello!", "hey there", "Good morning", "good  evening :)", "HELLO all"]
)
def test_greetings_are_recognised(message: str) -> None:
    assert is_greeting(message)
    assert judge(message, passages(*BAKERY)).verdict == "greeting"


@pytest.mark.parametrize(
    "message", ["Hi, how much is the sourdough?", "hello world program", "Good bread?", "hire"]
)
def test_a_question_that_starts_with_a_greeting_is_a_question(message: str) -> None:
    assert not is_greeting(message)


def test_generic_words_do_not_make_a_question_unanswerable() -> None:
    """'much' and 'different' say how it is asked, not what about."""
    assert distinctive_terms("How much does the sourdough cost?") == ["sourdough"]
    assert judge("How much does the sourdough cost?", passages(*BAKERY)).answerable


def test_spelling_variants_of_a_term_still_support_it() -> None:
    texts = ["Connect the thermostat to Wi-Fi.", "Use two-factor authentication."]
    assert judge("Why won't it connect to my wifi?", passages(*texts)).answerable
    assert judge("How do I authenticate?", passages(*texts)).answerable


def test_the_search_indexs_stems_support_forms_the_light_stemmer_misses() -> None:
    """Regression (make eval): "save" against "savings"/"saved", "fries" against "fried".
    The light stemmer and the five-letter prefix miss both; BM25's Snowball stems agree."""
    savings = "Energy report. Estimated savings: the money you saved by lowering it at night."
    fried = "Warranty. Damage from lightning is covered: a unit fried by a surge is replaced."
    assert not supports(stem("save"), passage_terms(savings))
    assert not supports(stem("fries"), passage_terms(fried))

    assert judge("Do I save energy at night?", passages(savings)).answerable
    assert judge("What if lightning fries my unit?", passages(fried)).answerable


def test_the_search_indexs_stems_do_not_support_another_word() -> None:
    """Snowball merges forms of one word, not neighbours in meaning: pizza stays unsupported."""
    verdict = judge("Do you bake sourdough pizza?", passages(*BAKERY))
    assert not verdict.answerable
    assert verdict.unsupported == ("pizza",)


def test_each_distinctive_term_keeps_the_word_it_came_from() -> None:
    """The term is matched against the passages' terms, the word against their BM25 terms."""
    assert question_words("Are you hiring bakers? Hiring now?") == {
        "hir": "hiring",
        "baker": "bakers",
    }
    assert bm25_term("hiring") == bm25_term("hire") is not None
    assert bm25_term("the") is None  # a stopword: BM25 keeps no term for it


def test_a_typed_answer_in_the_passages_outweighs_an_unknown_place() -> None:
    """'Italy' is in no passage, but the price the question asks for is."""
    verdict = judge("What does the return label cost from Italy?", passages(*BAKERY))
    assert verdict.answerable
    assert verdict.unsupported == ("italy",)


def test_a_typed_question_without_a_value_of_its_type_stays_unanswerable() -> None:
    assert not expected_answer_found("How long does the pizza take?", ["We bake bread."])
    assert not judge("How long does the pizza oven take?", passages(*BAKERY)).answerable


def test_answer_types() -> None:
    assert expected_answer_found("How much is delivery?", ["It costs 4 euros."])
    assert expected_answer_found("How long does it take?", ["2 to 4 working days"])
    assert expected_answer_found("When are you open?", ["Tuesday to Saturday, 7 am"])
    assert expected_answer_found("How many sensors can I pair?", ["Pair up to six sensors."])
    assert not expected_answer_found("Do you sell pizza?", ["It costs 4 euros."])


def test_nothing_retrieved_is_unanswerable() -> None:
    assert not judge("Do you sell bread?", []).answerable


def test_a_follow_up_without_a_subject_of_its_own_is_not_small_talk() -> None:
    """'and what about it then?' takes its subject from the conversation."""
    results = passages(*BAKERY)
    assert judge("and what about it then? cost", results).verdict == "small_talk"
    assert judge("and what about it then? cost", results, follow_up=True).answerable
    assert not judge("and the pizza?", results, follow_up=True).answerable
