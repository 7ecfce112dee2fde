"""``llm.fact_check.keep_facts``: a small model's answer keeps the passages' facts."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

from sitechat.llm.base import ContextPassage, GenerationRequest, StreamItem, TextDelta, Usage
from sitechat.llm.fact_check import has_facts, holds, keep_facts

PASSAGES = [
    ContextPassage(
        number=1,
        title="Returns",
        text="We refund the purchase price within 14 days after the parcel arrives. "
        "From other countries the return label costs 6.50 euros.",
    )
]
QUESTION = "When do I get a refund?"


async def model(tokens: Sequence[str]) -> AsyncIterator[StreamItem]:
    for token in tokens:
        yield TextDelta(token)
    yield Usage(prompt_tokens=10, completion_tokens=len(tokens))


async def answer(tokens: Sequence[str]) -> tuple[list[str], list[StreamItem]]:
    request = GenerationRequest(messages=[], question=QUESTION, passages=PASSAGES)
    items = [item async for item in keep_facts(model(tokens), request)]
    return [i.text for i in items if isinstance(i, TextDelta)], items


async def test_an_answer_that_keeps_the_facts_streams_sentence_by_sentence() -> None:
    texts, items = await answer(["You get it ", "within 14 ", "days. ", "The label ", "is free."])
    assert texts == ["You get it within 14 days. ", "The label is free."]
    assert isinstance(items[-1], Usage) and items[-1].completion_tokens == 5


async def test_a_sentence_with_an_invented_number_ends_the_generated_part() -> None:
    texts, _ = await answer(["Refunds take ", "14 days. ", "Labels cost 9 euros. ", "Bye."])
    assert texts[0] == "Refunds take 14 days. "
    assert "9 euros" not in "".join(texts) and "Bye" not in "".join(texts)


async def test_an_answer_without_the_fact_gets_the_extractive_quote() -> None:
    texts, _ = await answer(["We refund ", "you quickly."])
    joined = "".join(texts)
    assert joined.startswith("We refund you quickly.")
    assert "within 14 days" in joined and "[1]" in joined


async def test_nothing_that_holds_is_replaced_by_the_quote() -> None:
    texts, _ = await answer(["It takes 30 days."])
    assert "30 days" not in "".join(texts)
    assert "within 14 days" in "".join(texts)


def test_numbers_and_links_must_be_in_the_source() -> None:
    source = "Costs 6.50 euros. See https://shop.example/returns for details."
    assert holds("It costs 6,50 euros [1].", source)
    assert not holds("It costs 7 euros.", source)
    assert holds("See https://shop.example/returns.", source)
    assert not holds("See https://invented.example/faq.", source)


async def test_an_invented_code_block_ends_the_generated_part() -> None:
    texts, _ = await answer(["We refund you.\n```", "py\nrefund(order, days=14)\n```\nDone."])
    joined = "".join(texts)
    assert joined.startswith("We refund you.\n")
    assert "refund(order" not in joined and "Done" not in joined
    assert "within 14 days" in joined  # the quote stands in for what was cut


async def test_a_looping_answer_is_stopped_and_completed_with_the_quote() -> None:
    loop = "Refunds are handled by our friendly team. "
    taken: list[str] = []

    async def looping() -> AsyncIterator[StreamItem]:
        for token in ["You get a refund. ", *[loop] * 50]:
            taken.append(token)
            yield TextDelta(token)
        yield Usage(prompt_tokens=10, completion_tokens=51)

    request = GenerationRequest(messages=[], question=QUESTION, passages=PASSAGES)
    items = [item async for item in keep_facts(looping(), request)]
    joined = "".join(i.text for i in items if isinstance(i, TextDelta))
    assert joined.count("friendly team") == 1
    assert "within 14 days" in joined  # the quote, which a stopped stream used to lose
    assert len(taken) < 5  # the model was not read to its end
    assert not any(isinstance(i, Usage) for i in items)  # unknown: the caller estimates it


def test_code_spans_must_be_in_the_source() -> None:
    source = "Call `SitechatWidget.send(text)` to ask. Install with pip install  sitechat."
    assert holds("Use `SitechatWidget.send(text)`.", source)
    assert holds("Run `pip install sitechat` first.", source)  # spaces aside
    assert not holds("Use the `send_to` method of `SitechatWidget`.", source)
    assert not holds("Run ``pip install sitechat-pro``.", source)


def test_facts_are_the_extractive_answers_numbers_and_terms() -> None:
    quote = "We refund the purchase price within 14 days after the parcel arrives. [1]"
    assert has_facts("You are refunded within 14 days of the parcel's arrival.", quote, QUESTION)
    assert not has_facts("You are refunded soon.", quote, QUESTION)
    wordy = "Parcels must arrive before the purchase price is refunded. [1]"
    assert has_facts("The purchase price is refunded once parcels arrive.", wordy, QUESTION)
    assert not has_facts("It is refunded.", wordy, QUESTION)


def test_list_numbers_are_no_figures_and_a_negation_is_no_term() -> None:
    late = "If a booster is more than 3 months late, the course restarts. [1]"
    listed = "No problem.\n\n1. Call us.\n2. Check the date.\n3. Come in soon."
    assert not has_facts(listed, late, "My dog's booster is late, is that a problem?")
    assert holds("2. Check the date.", "Check the date.")
    adapter = "Without a C-wire, install the Lumen Power Adapter. [2]"
    cwire = "Do I need a C-wire to install it?"
    assert not has_facts("You cannot install the Lumen without a C-wire: power.", adapter, cwire)
    assert has_facts("Without a C-wire, fit the Lumen Power Adapter.", adapter, cwire)


def test_every_figure_must_be_there_and_names_with_digits_are_not_figures() -> None:
    """The local model answered "a colour print is 10 cents" from a sentence giving 10 cents
    for black and white and 50 for colour; and "the T3 display unit" kept no fact, though it
    shares "3" with a passage about the T3."""
    prices = "Black-and-white pages cost 10 cents and colour pages cost 50 cents. [1]"
    question = "How much does a colour print cost?"
    assert not has_facts("A colour print is 10 cents.", prices, question)
    assert has_facts("Colour is 50 cents, black and white 10 cents.", prices, question)
    wiring = "Push the W wire into the terminal marked W on the T3. [1]"
    assert not has_facts("The T3 display unit.", wiring, "Which terminal does the W wire go into?")


def test_an_answer_that_says_yes_where_the_passage_says_no_lacks_the_fact() -> None:
    quote = "We do not charge late fees for children's items. [1]"
    question = "Are there late fees for children's books?"
    assert not has_facts("Yes, late fees for children's items are charged daily.", quote, question)
    assert has_facts("No, children's items are never charged late fees.", quote, question)


async def test_a_wrong_figure_that_holds_is_followed_by_the_quote() -> None:
    """Every number the model writes is in the passages, but not the one that answers."""
    texts, _ = await answer(["The label costs 6.50 euros."])
    joined = "".join(texts)
    assert joined.startswith("The label costs 6.50 euros.")
    assert "within 14 days" in joined
