"""ExtractiveModel: deterministic answers quoted from the passages, with citations."""

from __future__ import annotations

import re

from sitechat.llm.base import ChatMessage, ContextPassage, GenerationRequest, TextDelta, Usage
from sitechat.llm.extractive import NOT_COVERED, ExtractiveModel, compose_answer
from sitechat.text import stem, terms
from sitechat.tokens import count_tokens

PASSAGES = (
    ContextPassage(
        number=1,
        title="Shipping",
        text="Orders ship within two business days. Shipping is free for orders over 50 euros.",
    ),
    ContextPassage(
        number=2,
        title="Opening hours",
        text=(
            "The Berlin store opens at 9 a.m. and closes at 7 p.m. from Monday to Saturday. "
            "It is closed on Sundays and public holidays."
        ),
    ),
    ContextPassage(
        number=3,
        title="Returns",
        text="You can return any item within 30 days of delivery for a full refund.",
    ),
)


def request(
    question: str, passages: tuple[ContextPassage, ...] = PASSAGES, max_tokens: int = 400
) -> GenerationRequest:
    return GenerationRequest(
        messages=[ChatMessage("user", question)],
        question=question,
        passages=passages,
        max_tokens=max_tokens,
    )


async def answer(
    question: str, passages: tuple[ContextPassage, ...] = PASSAGES, max_tokens: int = 400
) -> tuple[list[str], Usage]:
    model = ExtractiveModel()
    items = [item async for item in model.stream(request(question, passages, max_tokens))]
    assert isinstance(items[-1], Usage)
    deltas = items[:-1]
    assert all(isinstance(d, TextDelta) for d in deltas)
    return [d.text for d in deltas if isinstance(d, TextDelta)], items[-1]


async def test_answers_with_the_relevant_sentence_and_its_citation() -> None:
    words, _ = await answer("When does the Berlin store open?")
    text = "".join(words)

    assert text.startswith("The Berlin store opens at 9 a.m. and closes at 7 p.m.")
    assert "[2]" in text
    assert "[1]" not in text and "[3]" not in text
    assert "refund" not in text


async def test_each_sentence_is_followed_by_its_passage_marker() -> None:
    words, _ = await answer("Is shipping free, and can I return an item for a refund?")
    text = "".join(words)

    assert text == (
        "Shipping is free for orders over 50 euros. [1] "
        "You can return any item within 30 days of delivery for a full refund. [3]"
    )


async def test_streams_word_by_word_with_following_whitespace() -> None:
    words, _ = await answer("When does the Berlin store open?")

    assert len(words) > 5
    assert all(re.fullmatch(r"\S+\s*", w) for w in words)
    assert all(w.endswith(" ") for w in words[:-1])


async def test_is_deterministic() -> None:
    first = await answer("Are you open on Sundays?")
    second = await answer("Are you open on Sundays?")

    assert first == second
    assert "".join(first[0]) == compose_answer("Are you open on Sundays?", PASSAGES, 400)


async def test_says_so_when_there_are_no_passages() -> None:
    words, usage = await answer("When does the store open?", passages=())

    assert "".join(words) == NOT_COVERED
    assert usage.completion_tokens == count_tokens(NOT_COVERED)


async def test_says_so_when_no_passage_is_relevant() -> None:
    words, _ = await answer("Do you sell bicycles?")

    assert "".join(words) == NOT_COVERED


async def test_token_budget_limits_the_answer() -> None:
    long_answer, _ = await answer("Is shipping free, and can I return an item for a refund?")
    short_answer, _ = await answer(
        "Is shipping free, and can I return an item for a refund?", max_tokens=5
    )

    assert "".join(long_answer).count("[") == 2
    assert "".join(short_answer).count("[") == 1


async def test_ties_go_to_the_earlier_passage() -> None:
    twins = (
        ContextPassage(number=4, title="a", text="Parking is available behind the store."),
        ContextPassage(number=5, title="b", text="Parking is available next to the station."),
    )
    words, _ = await answer("parking", passages=twins, max_tokens=5)

    assert "".join(words) == "Parking is available behind the store. [4]"


async def test_ends_with_estimated_usage() -> None:
    words, usage = await answer("When does the Berlin store open?")

    assert usage.source == "estimated"
    assert usage.completion_tokens == count_tokens("".join(words))
    assert usage.prompt_tokens > 0


def test_question_terms_are_normalised() -> None:
    assert terms("What are your OPENING hours?") == {"open", "hour"}
    assert stem("closes") == stem("closed") == stem("closing") == stem("close")


GUIDE = ContextPassage(
    number=1,
    title="Embedding",
    text=(
        "To embed the widget on a website, paste one script tag into your page, just before\n"
        "the closing `</body>` tag:\n\n"
        "```html\n"
        '<script src="https://host.example/widget.js" data-id="shop" async></script>\n'
        "```\n\n"
        "Replace `shop` with\n"
        "the id of your chatbot.\n"
        "- It loads without blocking.\n"
        "Nothing else is needed."
    ),
)


def test_prose_wrapped_at_a_fixed_width_is_one_sentence() -> None:
    answer = compose_answer("Which id replaces shop?", (GUIDE,), 400)
    assert "Replace `shop` with the id of your chatbot. [1]" in answer
    # A line break before a list item or a capital still ends a sentence.
    assert "- It loads" not in compose_answer("What is the id of my chatbot?", (GUIDE,), 400)


def test_a_sentence_introducing_a_code_block_brings_it_whole() -> None:
    answer = compose_answer("How do I embed the widget?", (GUIDE,), 400)
    assert answer.startswith(
        "To embed the widget on a website, paste one script tag into your page, just before "
        "the closing `</body>` tag: [1]\n```html\n"
        '<script src="https://host.example/widget.js" data-id="shop" async></script>\n```'
    )
    # Not when the block would not fit the answer's budget.
    assert "```" not in compose_answer("How do I embed the widget?", (GUIDE,), 45)


async def test_a_quoted_code_block_streams_with_its_lines() -> None:
    words, _ = await answer("How do I embed the widget?", (GUIDE,))
    assert "\n```html\n<script " in "".join(words)
