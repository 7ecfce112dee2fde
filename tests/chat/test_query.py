from __future__ import annotations

from sitechat.chat.query import enhance_query, is_follow_up
from tests.support.records import message as msg

HISTORY = [
    msg("user", "What does the premium plan include?"),
    msg("assistant", "The premium plan includes priority support [1]."),
]


def test_follow_up_carries_the_previous_subject_into_the_search_query() -> None:
    enhanced = enhance_query("and how much does it cost?", HISTORY)
    assert enhanced.rewritten and enhanced.strategy == "follow-up-heuristic"
    assert enhanced.text.startswith("and how much does it cost?")
    assert "premium" in enhanced.text and "plan" in enhanced.text


def test_standalone_question_is_left_alone() -> None:
    question = "Which payment methods does the shop accept for international orders?"
    enhanced = enhance_query(question, HISTORY)
    assert not enhanced.rewritten and enhanced.text == question


def test_no_history_means_no_rewrite() -> None:
    assert not enhance_query("and what about it?", []).rewritten


def test_follow_up_detection() -> None:
    assert is_follow_up("What about returns?")
    assert is_follow_up("Does it ship to Norway?")
    assert not is_follow_up("Do you ship to Norway?")
    assert not is_follow_up(
        "Can you explain how returns, refunds, exchanges, vouchers and warranty claims work?"
    )


def test_assistant_turns_are_not_used_as_the_subject() -> None:
    history = [msg("assistant", "Welcome! Ask me about shipping.")]
    assert not enhance_query("and how long does it take?", history).rewritten
