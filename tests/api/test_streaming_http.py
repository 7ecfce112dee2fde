"""Streaming over a real socket: uvicorn on loopback, a raw streaming client, and the scripted
OpenAI-compatible server behind the real SDK. Times are compared between events (which came
first), never against wall-clock thresholds, except the one bound the product promises: the
upstream stream is closed within a second of the visitor going away."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from sitechat.api.app import create_app
from sitechat.services import Services
from tests.conftest import seed_chatbot
from tests.support.app_server import serve_app
from tests.support.scripted_openai import Script
from tests.support.sse_client import Frame, iter_frames

BODY = {"message": "When do orders ship?", "chatbot_id": "shop"}


async def read_all(base_url: str, body: dict[str, Any]) -> list[Frame]:
    frames: list[Frame] = []
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        async with client.stream("POST", "/api/public/chat/stream", json=body) as response:
            assert response.status_code == 200
            async for frame in iter_frames(response):
                frames.append(frame)
    return frames


async def test_first_token_reaches_the_client_while_the_model_is_still_generating(
    openai_settings: Any, scripted_openai: Any
) -> None:
    tokens = [f"word{i} " for i in range(8)]
    scripted_openai.script(Script(tokens=tokens, token_gap=0.15))
    app = create_app(openai_settings())
    async with serve_app(app) as server:
        await seed_chatbot(app.state.services)
        frames = await read_all(server.base_url, BODY)

    token_frames = [f for f in frames if f.type == "token"]
    assert [f.data["content"] for f in token_frames] == tokens
    sent = scripted_openai.last_stream.token_sent_at
    # The first token arrived before the model had produced its last one...
    assert token_frames[0].arrived < sent[-1]
    # ...and tokens were not batched: they arrive spread out like the model produced them.
    arrival_spread = token_frames[-1].arrived - token_frames[0].arrived
    assert arrival_spread >= 0.5 * (sent[-1] - sent[0])
    assert frames[-1].type == "complete"


async def test_client_disconnect_closes_the_upstream_stream_and_keeps_the_partial_answer(
    openai_settings: Any, scripted_openai: Any
) -> None:
    scripted_openai.script(
        Script(tokens=["Orders ", "ship ", "within ", "two ", "days."], stall_after=2)
    )
    # No grace period: the answer stops the moment its only reader leaves (with one, it
    # would go on for the visitor to resume: tests/answers).
    app = create_app(openai_settings(answer_grace_seconds=0))
    async with serve_app(app) as server:
        services: Services = app.state.services
        await seed_chatbot(services)
        received: list[Frame] = []
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as client:
            async with client.stream("POST", "/api/public/chat/stream", json=BODY) as response:
                async for frame in iter_frames(response):
                    received.append(frame)
                    if sum(f.type == "token" for f in received) == 2:
                        break  # the visitor closes the tab while the model stalls
        gone_at = asyncio.get_running_loop().time()
        record = await scripted_openai.wait_closed(timeout=5.0)
        assert record.closed_by == "client"
        # The promise: the upstream model stream is closed within a second.
        assert record.closed_at is not None and record.closed_at - gone_at < 1.0

        session_id = received[0].data["session_id"]
        conversation = await services.store.get_conversation("shop", session_id)
        assert conversation is not None
        for _ in range(100):
            messages = await services.store.list_messages(conversation.id)
            if messages[-1].status != "streaming":
                break
            await asyncio.sleep(0.02)
    assert messages[-1].role == "assistant"
    assert messages[-1].status == "interrupted"
    assert messages[-1].content == "Orders ship "
    assert messages[-1].error_code == "client_disconnected"


async def test_ping_comments_keep_a_silent_stream_alive(
    openai_settings: Any, scripted_openai: Any
) -> None:
    scripted_openai.script(Script(tokens=["Late ", "answer."], first_token_delay=1.0))
    app = create_app(openai_settings(sse_ping_interval_seconds=0.2))
    async with serve_app(app) as server:
        await seed_chatbot(app.state.services)
        frames = await read_all(server.base_url, BODY)

    first_token = next(i for i, f in enumerate(frames) if f.type == "token")
    pings = [f for f in frames[:first_token] if f.comment == "ping"]
    assert len(pings) >= 2
    assert all(f.data is None and f.event_id is None for f in pings)
    assert frames[-1].type == "complete"
