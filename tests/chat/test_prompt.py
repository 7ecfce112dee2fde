from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

from sitechat.chat.prompt import build_prompt
from sitechat.domain import ChatbotConfig, Message
from sitechat.llm.base import ContextPassage
from sitechat.tokens import count_tokens

CONFIG = ChatbotConfig(id="b", org_id="o", name="Helper", system_prompt="Be kind.")


def passage(n: int, words: int) -> ContextPassage:
    return ContextPassage(number=n, title=f"Doc {n}", text=" ".join(["lorem"] * words))


def history(turns: int) -> list[Message]:
    return [
        Message(
            id=str(i),
            conversation_id="c",
            role="user" if i % 2 == 0 else "assistant",
            content=f"turn {i} " + "text " * 50,
            status="complete",
            created_at=datetime.now(UTC),
        )
        for i in range(turns)
    ]


def total_tokens(messages: list) -> int:
    return sum(count_tokens(m.content) for m in messages)


def test_prompt_has_system_history_and_fenced_sources_then_question() -> None:
    built = build_prompt(
        CONFIG,
        "Where?",
        [passage(1, 10), passage(2, 10)],
        history(2),
        context_window=4000,
        max_tokens=400,
    )
    roles = [m.role for m in built.messages]
    assert roles == ["system", "user", "assistant", "user"]
    assert built.messages[0].content.startswith("Be kind.")
    assert "untrusted" in built.messages[0].content
    last = built.messages[-1].content
    assert last.index("<sources>") < last.index("[1] Doc 1") < last.index("[2] Doc 2")
    assert last.endswith("Question: Where?")
    assert [p.number for p in built.passages] == [1, 2]


def test_prompt_stays_within_the_budget_dropping_history_first() -> None:
    passages = [passage(i, 150) for i in range(1, 6)]
    built = build_prompt(
        CONFIG, "Where?", passages, history(20), context_window=1200, max_tokens=300
    )
    assert total_tokens(built.messages) <= 1200 - 300
    assert built.passages and built.passages[0].number == 1
    assert built.history_turns < 20


def test_history_never_starts_with_an_assistant_turn() -> None:
    built = build_prompt(CONFIG, "q", [], history(5), context_window=4000, max_tokens=100)
    assert built.messages[1].role == "user"


def test_huge_question_is_truncated_to_fit() -> None:
    built = build_prompt(
        CONFIG, "word " * 5000, [passage(1, 10)], [], context_window=1024, max_tokens=200
    )
    assert total_tokens(built.messages) <= 1024 - 200


def test_documents_only_confines_answers_to_the_sources() -> None:
    system = build_prompt(CONFIG, "q", [], [], context_window=4000, max_tokens=100).messages[0]
    assert CONFIG.answer_scope == "documents_only"
    assert "Answer only from the numbered sources" in system.content
    assert "don't know" in system.content
    assert "Never invent facts, links or code" in system.content
    assert "general knowledge" not in system.content


def test_documents_and_general_allows_general_knowledge_marked_as_such() -> None:
    config = dataclasses.replace(CONFIG, answer_scope="documents_and_general")
    system = build_prompt(config, "q", [], [], context_window=4000, max_tokens=100).messages[0]
    assert "general knowledge" in system.content
    assert "does not come from this site's documents" in system.content
    assert "use only links in the sources" in system.content


def test_a_source_shows_its_url_so_the_model_can_link_it() -> None:
    source = ContextPassage(number=1, title="Shipping", text="Two days.", url="https://s.example/x")
    built = build_prompt(CONFIG, "q", [source], [], context_window=4000, max_tokens=100)
    assert "[1] Shipping (https://s.example/x)\nTwo days." in built.messages[-1].content
