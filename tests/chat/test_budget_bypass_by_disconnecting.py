"""Regression: disconnecting early made answers (nearly) free.

An interrupted answer was charged only its completion text, never its prompt: a whole answer
cost 214 tokens, disconnecting after the first token cost 1 and at ``start`` cost 0. With a
paid provider a client that always disconnects early spent the owner's money while the
monthly budget barely moved.

Now, once the model has been called, however the answer ends (complete, model failure,
client disconnect) its prompt is charged plus the answer so far, and the stored message's
``usage`` records that cost with its source and provider. Decided for failures before the
first token: charged only if the provider took the request (an answer stream opened, or the
request went unanswered past the timeout); a request it refused with an error status, or
that never reached it, is not billed by providers and is not charged. The fallback answer
(no model call) stays free, even when the visitor leaves in the middle of it.

Driven through the real app over a socket, against the scripted OpenAI-compatible server.
A dropped connection is not a stop (issue 11): the answer is stopped, and charged, when the
grace period after its last reader left ends; these tests keep it short (``GRACE``).
"""

from __future__ import annotations

import asyncio
import socket
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from sitechat.api.app import create_app
from sitechat.chat.events import CompleteEvent, TokenEvent
from sitechat.chat.turn import ChatRequest
from sitechat.domain import Message, TokenUsage
from sitechat.services import Services
from sitechat.storage.usage import month_of
from sitechat.tokens import count_tokens
from tests.conftest import running_app, seed_chatbot
from tests.support.app_server import serve_app
from tests.support.scripted_openai import Script, ScriptedOpenAI
from tests.support.sse_client import Frame, iter_frames

BODY = {"message": "When do orders ship?", "chatbot_id": "shop"}
TOKENS = ["Orders ", "ship ", "within ", "two ", "days."]

GRACE = 0.3  # seconds an answer goes on after its reader left


async def month_usage(services: Services) -> TokenUsage:
    return await services.usage.month_usage("chatbot", "shop", month_of(datetime.now(UTC)))


async def last_answer(services: Services, session_id: str) -> Message:
    conversation = await services.store.get_conversation("shop", session_id)
    assert conversation is not None
    for _ in range(250):
        messages = await services.store.list_messages(conversation.id)
        if messages[-1].role == "assistant" and messages[-1].status != "streaming":
            return messages[-1]
        await asyncio.sleep(0.02)
    raise AssertionError("the answer was never saved")


def prompt_sent(server: ScriptedOpenAI) -> int:
    """Tokens of the prompt's text as the provider received it (framing not counted)."""
    messages = server.streams[-1].request.body["messages"]
    return sum(count_tokens(m["content"]) for m in messages)


async def wait_for_upstream(server: ScriptedOpenAI) -> None:
    for _ in range(500):
        if server.streams:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the model was never called")


async def disconnect_after(base_url: str, leave: Any, server: ScriptedOpenAI) -> list[Frame]:
    """Stream an answer and close the connection once ``leave(frames)`` says so."""
    received: list[Frame] = []
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        async with client.stream("POST", "/api/public/chat/stream", json=BODY) as response:
            assert response.status_code == 200
            async for frame in iter_frames(response):
                received.append(frame)
                if await leave(received):
                    break
    await server.wait_closed(timeout=5.0)
    return received


def assert_charged(used: TokenUsage, answer: Message, *, prompt: int, completion: int) -> None:
    assert answer.usage is not None
    assert answer.usage["source"] == "estimated" and answer.usage["provider"] == "openai"
    assert answer.usage["prompt_tokens"] == used.prompt_tokens
    assert answer.usage["completion_tokens"] == used.completion_tokens == completion
    assert answer.usage["total_tokens"] == used.total_tokens
    # The pipeline's own count of the prompt: the text the provider got, plus framing.
    assert prompt <= used.prompt_tokens <= prompt * 1.1 + 30


async def test_disconnecting_right_after_start_still_charges_the_prompt(
    openai_settings: Any, scripted_openai: ScriptedOpenAI
) -> None:
    scripted_openai.script(Script(tokens=TOKENS, stall_after=0))
    app = create_app(openai_settings(answer_grace_seconds=GRACE))
    async with serve_app(app) as server:
        services: Services = app.state.services
        await seed_chatbot(services)

        async def at_start(frames: list[Frame]) -> bool:
            if frames[-1].type != "start":
                return False
            await wait_for_upstream(scripted_openai)  # the request reached the model
            return True

        frames = await disconnect_after(server.base_url, at_start, scripted_openai)
        answer = await last_answer(services, frames[0].data["session_id"])
        used = await month_usage(services)
    assert answer.status == "interrupted" and answer.error_code == "client_disconnected"
    assert answer.content == ""
    assert used.prompt_tokens > 100
    assert_charged(used, answer, prompt=prompt_sent(scripted_openai), completion=0)


async def test_disconnecting_after_the_first_token_charges_prompt_and_partial_answer(
    openai_settings: Any, scripted_openai: ScriptedOpenAI
) -> None:
    scripted_openai.script(Script(tokens=TOKENS, stall_after=1))
    app = create_app(openai_settings(answer_grace_seconds=GRACE))
    async with serve_app(app) as server:
        services: Services = app.state.services
        await seed_chatbot(services)

        async def at_first_token(frames: list[Frame]) -> bool:
            return frames[-1].type == "token"

        frames = await disconnect_after(server.base_url, at_first_token, scripted_openai)
        answer = await last_answer(services, frames[0].data["session_id"])
        used = await month_usage(services)
    assert answer.status == "interrupted" and answer.content == "Orders "
    assert_charged(
        used, answer, prompt=prompt_sent(scripted_openai), completion=count_tokens("Orders ")
    )


async def test_a_model_failing_mid_answer_charges_prompt_and_partial_answer(
    openai_settings: Any, scripted_openai: ScriptedOpenAI
) -> None:
    scripted_openai.script(Script(tokens=TOKENS, fail_after=2))
    async with running_app(openai_settings(answer_grace_seconds=GRACE)) as harness:
        response = await harness.client.post("/api/public/chat/stream", json=BODY)
        assert '"code":"model_interrupted"' in response.text
        services = harness.services
        session_id = response.text.split('"session_id":"', 1)[1].split('"', 1)[0]
        answer = await last_answer(services, session_id)
        used = await month_usage(services)
    assert answer.status == "interrupted" and answer.content == "Orders ship "
    assert_charged(
        used, answer, prompt=prompt_sent(scripted_openai), completion=count_tokens("Orders ship ")
    )


async def test_a_model_failing_before_its_first_token_charges_the_prompt_it_took(
    openai_settings: Any, scripted_openai: ScriptedOpenAI
) -> None:
    # The answer stream opened (HTTP 200), then broke before any text: the provider took
    # the prompt, and bills it.
    scripted_openai.script(Script(tokens=TOKENS, fail_after=0))
    async with running_app(openai_settings(answer_grace_seconds=GRACE)) as harness:
        response = await harness.client.post("/api/public/chat/stream", json=BODY)
        assert '"code":"model_unavailable"' in response.text
        services = harness.services
        session_id = response.text.split('"session_id":"', 1)[1].split('"', 1)[0]
        answer = await last_answer(services, session_id)
        used = await month_usage(services)
    assert answer.status == "failed"
    assert_charged(used, answer, prompt=prompt_sent(scripted_openai), completion=0)


@pytest.mark.parametrize("status", [429, 500])
async def test_a_request_the_provider_refused_is_not_charged(
    openai_settings: Any, scripted_openai: ScriptedOpenAI, status: int
) -> None:
    scripted_openai.script(Script(tokens=TOKENS, status_error=status))
    async with running_app(openai_settings(answer_grace_seconds=GRACE)) as harness:
        response = await harness.client.post("/api/public/chat/stream", json=BODY)
        assert '"code":"model_unavailable"' in response.text
        assert len(scripted_openai.requests) >= 1  # it was asked, and said no
        session_id = response.text.split('"session_id":"', 1)[1].split('"', 1)[0]
        answer = await last_answer(harness.services, session_id)
        used = await month_usage(harness.services)
    assert answer.status == "failed"
    assert used == TokenUsage()
    assert answer.usage is not None and answer.usage["total_tokens"] == 0


async def test_leaving_during_the_fallback_answer_costs_nothing(settings: Any) -> None:
    async with running_app(settings) as harness:
        chat = harness.services.chat
        turn = await chat.open_turn(ChatRequest("Zqxv blorft wibbles?", chatbot_id="shop"))
        events = chat.stream(turn)
        async for event in events:
            if isinstance(event, TokenEvent):
                break  # the visitor leaves while the fallback text is on its way
        await events.aclose()  # type: ignore[attr-defined]
        answer = await last_answer(harness.services, turn.session_id)
        used = await month_usage(harness.services)
    assert answer.status == "interrupted"
    assert answer.usage is not None and answer.usage["source"] == "none"
    assert used == TokenUsage()


async def test_a_provider_that_cannot_be_reached_is_not_charged(openai_settings: Any) -> None:
    with socket.socket() as probe:  # a port nothing listens on: the connection is refused
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = openai_settings(
        openai_base_url=f"http://127.0.0.1:{port}/v1", answer_grace_seconds=GRACE
    )
    async with running_app(settings) as harness:
        response = await harness.client.post("/api/public/chat/stream", json=BODY)
        assert '"code":"model_unavailable"' in response.text
        session_id = response.text.split('"session_id":"', 1)[1].split('"', 1)[0]
        answer = await last_answer(harness.services, session_id)
        used = await month_usage(harness.services)
    assert answer.status == "failed"
    assert used == TokenUsage()


async def test_a_follow_ups_query_rewrite_is_charged_with_its_answer(
    openai_settings: Any, scripted_openai: ScriptedOpenAI
) -> None:
    """The model call that makes a follow-up standalone is a model call too: its tokens are
    in the answer's usage (``query_rewrite``) and in what the budgets are charged."""
    from sitechat.chat.query import QueryEnhancer

    async with running_app(openai_settings(answer_grace_seconds=GRACE)) as h:
        h.services.chat.enhancer = QueryEnhancer(timeout_seconds=5.0)
        scripted_openai.script(Script(tokens=["Orders", " ship", " in", " two", " days", "."]))
        first = await h.services.chat.answer(
            await h.services.chat.open_turn(
                ChatRequest(message="When do orders ship?", chatbot_id="shop")
            )
        )
        scripted_openai.enqueue(
            Script(tokens=["How much does shipping cost?"]),  # the rewrite
            Script(tokens=["Shipping", " is", " free", " over", " 50", " euros", "."]),
        )
        follow_up = await h.services.chat.answer(
            await h.services.chat.open_turn(
                ChatRequest(message="and the cost?", chatbot_id="shop", session_id=first.session_id)
            )
        )
        month = await month_usage(h.services)
    assert isinstance(follow_up, CompleteEvent) and isinstance(first, CompleteEvent)
    rewrite = follow_up.usage["query_rewrite"]
    assert rewrite["prompt_tokens"] > 0 and rewrite["completion_tokens"] > 0
    assert follow_up.usage["prompt_tokens"] > rewrite["prompt_tokens"]
    assert month.total_tokens == first.usage["total_tokens"] + follow_up.usage["total_tokens"]
