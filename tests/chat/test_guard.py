from __future__ import annotations

from sitechat.chat.guard import RepetitionGuard


def feed_words(guard: RepetitionGuard, text: str) -> int | None:
    """Feed ``text`` word by word; the index of the word at which the guard fired."""
    for i, word in enumerate(text.split(" ")):
        if guard.feed(word + " "):
            return i
    return None


def test_a_repeated_sentence_stops_the_answer_at_its_second_occurrence() -> None:
    loop = "The function is called with the script tag. "
    text = "You embed it with one tag. " + loop * 5
    fired = feed_words(RepetitionGuard(), text)
    assert fired is not None
    words_before_second_loop = len(("You embed it with one tag. " + loop * 2).split(" ")) - 1
    assert fired <= words_before_second_loop


def test_short_sentences_may_repeat() -> None:
    assert feed_words(RepetitionGuard(), "Yes. Yes. Yes. See [1]. See [1].") is None


def test_distinct_sentences_pass() -> None:
    text = (
        "Orders ship within two days. Delivery takes three to five days. "
        "Shipping is free over 50 euros.\nReturns are accepted within 30 days."
    )
    assert feed_words(RepetitionGuard(), text) is None


def test_repeated_lines_without_punctuation_count() -> None:
    guard = RepetitionGuard()
    assert not guard.feed("a line that keeps coming back\n")
    assert guard.feed("A line that keeps  coming back\n")
