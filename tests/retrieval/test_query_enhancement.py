"""Query enhancement by the chatbot's model: rewrites follow-ups, caches them, falls back to
the heuristic, and never delays the first token by more than its timeout.

The model is the real ``OpenAIChatModel`` (the official SDK) talking to the scripted
OpenAI-compatible server on loopback.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from sitechat.chat.events import CompleteEvent, TokenEvent
from sitechat.chat.query import QueryEnhancer, may_depend_on_history
from sitechat.chat.turn import ChatRequest
from sitechat.config import Settings
from sitechat.domain import ChatbotConfig
from sitechat.llm.openai_model import OpenAIChatModel
from tests.conftest import running_app
from tests.support.records import message as msg
from tests.support.scripted_openai import Script, ScriptedOpenAI

CONFIG = ChatbotConfig(id="shop", org_id="org", name="Shop helper")
ANSWER = Script(tokens=["Here", " is", " the", " answer", "."])


HISTORY = [
    msg("user", "How long does delivery take?"),
    msg("assistant", "Orders ship within two business days [1]."),
]


@pytest.fixture
async def model(scripted_openai: ScriptedOpenAI) -> AsyncIterator[OpenAIChatModel]:
    chat_model = scripted_openai.chat_model(timeout=10.0)
    yield chat_model
    await chat_model.aclose()


def test_only_messages_that_may_lean_on_the_conversation_are_rewritten() -> None:
    assert may_depend_on_history("and how much does it cost?", HISTORY)
    assert may_depend_on_history("prices?", HISTORY)
    assert not may_depend_on_history("and how much does it cost?", [])
    assert not may_depend_on_history(
        "Which payment methods does the shop accept for international orders?", HISTORY
    )


async def test_the_model_rewrites_a_follow_up_with_variants_and_caches_it(
    scripted_openai: ScriptedOpenAI, model: OpenAIChatModel
) -> None:
    scripted_openai.script(
        Script(
            tokens=["Query: How much ", "does shipping cost?\n", "- shipping fee\n", "2. postage"]
        )
    )
    enhancer = QueryEnhancer(variants=2)
    enhanced = await enhancer.enhance(CONFIG, "and how much does it cost?", HISTORY, model)
    assert enhanced.text == "How much does shipping cost?"
    assert enhanced.variants == ("shipping fee", "postage")
    assert enhanced.strategy == "model" and enhanced.rewritten

    [request] = scripted_openai.requests
    assert request.body["temperature"] == 0.0
    prompt = "\n".join(m["content"] for m in request.body["messages"])
    assert "How long does delivery take?" in prompt and "and how much does it cost?" in prompt

    again = await enhancer.enhance(CONFIG, "and how much does it cost?", HISTORY, model)
    assert again.strategy == "model-cached" and again.text == enhanced.text
    assert len(scripted_openai.requests) == 1, "served from the cache"


async def test_a_failing_model_falls_back_to_the_heuristic(
    scripted_openai: ScriptedOpenAI, model: OpenAIChatModel
) -> None:
    scripted_openai.script(Script(status_error=500))
    enhanced = await QueryEnhancer().enhance(CONFIG, "and how much does it cost?", HISTORY, model)
    assert enhanced.strategy == "follow-up-heuristic"
    assert "delivery" in enhanced.text


async def test_a_slow_rewrite_is_abandoned_at_the_timeout(
    scripted_openai: ScriptedOpenAI, model: OpenAIChatModel
) -> None:
    scripted_openai.script(Script(tokens=["too late"], first_token_delay=10.0))
    started = time.monotonic()
    enhanced = await QueryEnhancer(timeout_seconds=0.3).enhance(
        CONFIG, "and how much does it cost?", HISTORY, model
    )
    elapsed = time.monotonic() - started
    assert enhanced.strategy == "follow-up-heuristic"
    assert elapsed < 2.0  # 0.3 s bound, generous margin for a loaded machine
    record = await scripted_openai.wait_closed(timeout=2.0)
    assert record.closed_by == "client", "the abandoned request's stream is closed"


async def test_models_that_do_not_rewrite_use_the_heuristic(model: OpenAIChatModel) -> None:
    enhancer = QueryEnhancer(rewrite_providers=())
    enhanced = await enhancer.enhance(CONFIG, "and how much does it cost?", HISTORY, model)
    assert enhanced.strategy == "follow-up-heuristic"


# --- through the pipeline ----------------------------------------------------------------


async def _ask(services: Any, message: str, session_id: str | None) -> tuple[float, CompleteEvent]:
    """Time to the first token (seconds from the request) and the final event."""
    started = time.monotonic()
    turn = await services.chat.open_turn(
        ChatRequest(message=message, chatbot_id="shop", session_id=session_id)
    )
    first: float | None = None
    complete: CompleteEvent | None = None
    async for event in services.chat.stream(turn):
        if isinstance(event, TokenEvent) and first is None:
            first = time.monotonic() - started
        if isinstance(event, CompleteEvent):
            complete = event
    assert first is not None and complete is not None, "the answer streamed"
    return first, complete


async def test_the_pipeline_searches_with_the_models_rewrite(
    openai_settings: Callable[..., Settings], scripted_openai: ScriptedOpenAI
) -> None:
    scripted_openai.script(ANSWER)
    async with running_app(openai_settings()) as h:
        h.services.chat.enhancer = QueryEnhancer(timeout_seconds=5.0)
        _, first = await _ask(h.services, "What are the shipping costs?", None)
        # The heuristic would carry "shipping costs" along; the model knows better.
        scripted_openai.enqueue(Script(tokens=["How do I return an item for a refund?"]))
        _, complete = await _ask(h.services, "and the other thing?", first.session_id)
    assert complete.sources[0].title == "Returns"


async def test_a_stalled_rewrite_costs_the_first_token_at_most_its_timeout(
    openai_settings: Callable[..., Settings], scripted_openai: ScriptedOpenAI
) -> None:
    timeout = 0.5
    scripted_openai.script(ANSWER)
    async with running_app(openai_settings()) as h:
        services = h.services
        _, first = await _ask(services, "How long does delivery take?", None)
        session = first.session_id

        services.chat.enhancer = QueryEnhancer(rewrite_providers=())
        skipped, _ = await _ask(services, "and how much does it cost?", session)

        services.chat.enhancer = QueryEnhancer(timeout_seconds=timeout)
        scripted_openai.enqueue(Script(tokens=["never"], first_token_delay=30.0))
        bounded, complete = await _ask(services, "and what about it then?", session)

    assert complete.content == "Here is the answer."
    # The bound the issue sets, with a generous margin for a loaded machine.
    assert bounded - skipped < timeout + 1.0, (bounded, skipped)
