"""Answerability (``chat.answerability``): do the passages answer the question, not merely
share its words? Small fixed corpora; the measured rates over whole knowledge bases are in
``benchmarks/eval.py`` and ``docs/context-quality.md``."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from sitechat.chat.answerability import (
    Meanings,
    WordMeaning,
    WordNetMeaning,
    bm25_term,
    distinctive_terms,
    expected_answer_found,
    is_greeting,
    judge,
    judge_with_meaning,
    passage_terms,
    question_words,
    supports,
)
from sitechat.chat.wordnet import WordNet
from sitechat.errors import VectorStoreError
from sitechat.retrieval.base import Chunk, ScoredChunk
from sitechat.text import stem
from tests.support.wordnet import open_wordnet

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


def test_irregular_forms_of_generic_verbs_are_generic() -> None:
    """'bought' says no more about the subject than 'buy' does."""
    assert list(question_words("I bought a cake and brought it back")) == ["cak"]


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


def test_a_figure_of_the_visitors_case_is_no_term_of_the_question() -> None:
    """'45' days, a 'seven'-year-old, '32' kg: the passages answer with figures of their own;
    a name with a figure in it is still a word."""
    assert question_words("Can I return it after 45 days, or 2.5 months?") == {
        "return": "return",
        "day": "days",
        "month": "months",
    }
    assert list(question_words("Bikes for my seven-year-old?")) == ["bik", "year"]
    assert list(question_words("Is the T3 fine with 5G?")) == ["t3", "5g"]
    assert list(question_words("It's 10pm, or 22:30, on the 3rd")) == []
    returns = passages("Returns. You can return an order within 30 days of delivery.")
    assert judge("Can I return it after 45 days?", returns).answerable
    # The figure goes, the question's subject stays: still a near miss.
    assert not judge("Do you bake pizza for 20 people?", passages(*BAKERY)).answerable
    assert not judge("Who won the World Cup in 2014?", passages(*BAKERY)).answerable


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
    assert expected_answer_found("What's your cheapest cake?", ["Cakes from 18 euros."])
    assert not expected_answer_found("Do you sell pizza?", ["It costs 4 euros."])


def test_nothing_retrieved_is_unanswerable() -> None:
    assert not judge("Do you sell bread?", []).answerable


def test_a_follow_up_without_a_subject_of_its_own_is_not_small_talk() -> None:
    """'and what about it then?' takes its subject from the conversation."""
    results = passages(*BAKERY)
    assert judge("and what about it then? cost", results).verdict == "small_talk"
    assert judge("and what about it then? cost", results, follow_up=True).answerable
    assert not judge("and the pizza?", results, follow_up=True).answerable


class FixedVectors:
    """A stand-in model: hand-made word vectors, normalised, and a count of encoded words."""

    def __init__(self, vectors: dict[str, tuple[float, ...]]) -> None:
        self.vectors = vectors
        self.encoded: list[str] = []

    def load_blocking(self) -> FixedVectors:
        return self

    def encode(self, texts: Sequence[str], **_: Any) -> Any:
        import numpy as np

        self.encoded.extend(texts)
        rows = [self.vectors.get(t, (0.0, 0.0, 0.0, 1.0)) for t in texts]
        return np.array([[x / math.hypot(*row) for x in row] for row in rows])


class NoModel:
    """What loading the model gives without the ``dense`` extra."""

    def __init__(self) -> None:
        self.loads = 0

    def load_blocking(self) -> Any:
        self.loads += 1
        raise VectorStoreError("Local embeddings need the 'dense' extra")


class MustNotLoad:
    def load_blocking(self) -> Any:
        raise AssertionError("the model was loaded for a question the words already answer")


ROOMS = "Room sensors. Pair a room sensor to measure the temperature in other rooms."
SHIPPING = "Shipping. We ship to Germany, Austria and France."


async def test_a_passage_word_that_stands_out_in_meaning_supports_a_missing_term() -> None:
    model = FixedVectors({"bedroom": (1.0, 0.1, 0.0, 0.0), "rooms": (1.0, 0.0, 0.0, 0.0)})
    question = "Can I measure the temperature in the bedroom too?"
    assert judge(question, passages(ROOMS)).unsupported == ("bedroom",)
    verdict = await judge_with_meaning(question, passages(ROOMS), meaning=WordMeaning(model))
    assert verdict.answerable
    assert verdict.unsupported == ()


async def test_a_word_with_close_rivals_in_the_passages_is_not_a_synonym() -> None:
    """'Australia' is close to 'Germany', but as close to 'Austria' and 'France': one more
    country of a list, not another word for one of them."""
    model = FixedVectors(
        {
            "australia": (1.0, 0.6, 0.0, 0.0),
            "germany": (1.0, 0.5, 0.0, 0.0),
            "austria": (1.0, 0.45, 0.1, 0.0),
            "france": (1.0, 0.4, 0.2, 0.0),
        }
    )
    verdict = await judge_with_meaning(
        "Do you ship to Australia?", passages(SHIPPING), meaning=WordMeaning(model)
    )
    assert not verdict.answerable
    assert verdict.unsupported == ("australia",)


async def test_a_distant_word_supports_nothing() -> None:
    # cosine 0.45 with "bread", and 0 with every other word
    model = FixedVectors({"pizza": (1.0, 2.0, 0.0, 0.0), "bread": (1.0, 0.0, 0.0, 0.0)})
    verdict = await judge_with_meaning(
        "Do you bake gluten-free pizza?", passages(*BAKERY), meaning=WordMeaning(model)
    )
    assert verdict.unsupported == ("pizza",)
    assert not verdict.answerable


async def test_answerable_questions_never_load_the_model() -> None:
    meaning = WordMeaning(MustNotLoad())
    verdict = await judge_with_meaning(
        "Is the sourdough vegan?", passages(*BAKERY), meaning=meaning
    )
    assert verdict.answerable
    assert (await judge_with_meaning("hello", [], meaning=meaning)).verdict == "greeting"
    assert not (await judge_with_meaning("Do you sell bread?", [], meaning=meaning)).answerable


async def test_without_the_model_the_lexical_verdict_stands_and_loading_is_not_retried() -> None:
    model = NoModel()
    meaning = WordMeaning(model)
    question = "Can I measure the temperature in the bedroom too?"
    for _ in range(2):
        verdict = await judge_with_meaning(question, passages(ROOMS), meaning=meaning)
        assert verdict == judge(question, passages(ROOMS))
    assert model.loads == 1
    assert not meaning.available


async def test_word_vectors_are_cached() -> None:
    model = FixedVectors({"bedroom": (1.0, 0.1, 0.0, 0.0), "rooms": (1.0, 0.0, 0.0, 0.0)})
    meaning = WordMeaning(model)
    for _ in range(2):
        await judge_with_meaning("Is it for the bedroom?", passages(ROOMS), meaning=meaning)
    assert sorted(model.encoded) == sorted(set(model.encoded))


@pytest.fixture(scope="module")
def minilm_meaning() -> WordMeaning:
    """The real all-MiniLM-L6-v2 (about 10 s to load), once for this module."""
    from sitechat.retrieval.dense import MiniLMEmbedder

    embedder = MiniLMEmbedder()
    embedder.load_blocking()
    return WordMeaning(embedder)


@pytest.mark.dense_model
@pytest.mark.parametrize(
    ("question", "passage"),
    [
        ("Can I measure the temperature in the bedroom too?", ROOMS),
        ("Are you hiring bakers?", "Jobs. We are looking for a baker for the night shift."),
    ],
)
async def test_minilm_rescues_a_paraphrase(
    minilm_meaning: WordMeaning, question: str, passage: str
) -> None:
    assert not judge(question, passages(passage)).answerable
    assert (
        await judge_with_meaning(question, passages(passage), meaning=minilm_meaning)
    ).answerable


@pytest.mark.dense_model
@pytest.mark.parametrize(
    ("question", "passage"),
    [
        ("Do you ship to Australia?", SHIPPING + " Returns from Germany and Austria are free."),
        ("Do you sell gluten-free pizza?", BAKERY[0]),
        ("Can I borrow a laptop?", "Borrowing. Borrow books, DVDs and board games with your card."),
    ],
)
async def test_minilm_leaves_a_near_miss_unanswerable(
    minilm_meaning: WordMeaning, question: str, passage: str
) -> None:
    verdict = await judge_with_meaning(question, passages(passage), meaning=minilm_meaning)
    assert not verdict.answerable


@pytest.fixture(scope="module")
def wordnet_meaning() -> Iterator[WordNetMeaning]:
    wordnet = open_wordnet()
    try:
        yield WordNetMeaning(wordnet)
    finally:
        wordnet.close()


async def test_wordnet_supports_a_word_by_what_it_is_a_kind_of(
    wordnet_meaning: WordNetMeaning,
) -> None:
    question = "Can I measure the temperature in the bedroom too?"
    verdict = await judge_with_meaning(question, passages(ROOMS), meaning=wordnet_meaning)
    assert verdict.answerable
    assert verdict.meant == ("bedroom",)
    assert verdict.unsupported == ()


@pytest.mark.parametrize(
    ("question", "texts"),
    [
        # "pizza" is a kind of "dish": no passage says dish
        ("Do you sell gluten-free pizza?", BAKERY),
        # "scooter" is a kind of "motorboat" (its first sense), which shares a prefix with
        # "motor": a related word must be in the passage itself
        (
            "Does your workshop also repair e-scooters?",
            ["Workshop. We repair bikes and e-bikes: motor diagnosis costs 35 euros."],
        ),
        # "set" is a synonym of "join" ("set" two pieces together), but a generic word: it
        # supports nothing
        ("Can I join?", ["Rehearsals. We set the dates each season."]),
    ],
)
async def test_wordnet_leaves_near_misses_and_generic_words_alone(
    wordnet_meaning: WordNetMeaning, question: str, texts: Sequence[str]
) -> None:
    verdict = await judge_with_meaning(question, passages(*texts), meaning=wordnet_meaning)
    if question == "Can I join?":
        assert verdict.unsupported == ("join",)
    assert not verdict.answerable
    assert verdict.meant == ()


class Recording:
    def __init__(self, knows: set[str]) -> None:
        self.knows = knows
        self.asked: list[list[str]] = []

    async def synonyms(self, wanted: Sequence[str], candidates: Sequence[str]) -> set[str]:
        self.asked.append(list(wanted))
        return self.knows & set(wanted)


async def test_meanings_ask_each_part_only_about_the_words_left() -> None:
    first, second = Recording({"bedroom"}), Recording({"hallway"})
    found = await Meanings(first, second).synonyms(["bedroom", "hallway", "attic"], ["room"])
    assert found == {"bedroom", "hallway"}
    assert first.asked == [["bedroom", "hallway", "attic"]]
    assert second.asked == [["hallway", "attic"]]
    done = Recording(set())
    await Meanings(Recording({"bedroom"}), done).synonyms(["bedroom"], ["room"])
    assert done.asked == []  # nothing left to ask


async def test_an_unreadable_wordnet_leaves_the_lexical_verdict(tmp_path: Path) -> None:
    """Files in another format than WordNet 3.0's (or closed under a lookup) turn the rescue
    off, with a warning; the question still gets its verdict."""
    from tests.chat.test_wordnet import write_database

    write_database(tmp_path)
    (tmp_path / "index.noun").write_text("bedroom n 1 not-a-count 1 0 00000000\n")
    wordnet = WordNet.open(tmp_path)
    assert wordnet is not None
    meaning = WordNetMeaning(wordnet)
    question = "Can I measure the temperature in the bedroom too?"
    for _ in range(2):
        verdict = await judge_with_meaning(question, passages(ROOMS), meaning=meaning)
        assert verdict == judge(question, passages(ROOMS))
    assert not meaning.available
    wordnet.close()
