"""Caps on answers streaming at once, per IP and per chatbot, through a real uvicorn server:
past a cap a new chat request gets 429 ``too_many_streams``; a slot comes back when its
answer completes, or when its visitor went away and the grace period for coming back
(issue 11; short here) ended. On memory and on the real Redis."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import httpx
import pytest

from sitechat.api.app import create_app
from sitechat.services import Services
from tests.conftest import seed_chatbot
from tests.support.admin import with_settings
from tests.support.app_server import serve_app
from tests.support.scripted_openai import Script, ScriptedOpenAI
from tests.support.sse_client import Frame, iter_frames

STREAM = "/api/public/chat/stream"
QUESTION = {"message": "How much is shipping?", "chatbot_id": "shop"}


@pytest.fixture(params=["memory", "redis"])
def storage(request: pytest.FixtureRequest) -> dict[str, Any]:
    if request.param == "memory":
        return {}
    prefix = request.getfixturevalue("redis_prefix")
    return {"redis_url": "redis://127.0.0.1:6379/0", "redis_key_prefix": prefix}


@asynccontextmanager
async def server(settings: Any) -> AsyncIterator[tuple[httpx.AsyncClient, Services]]:
    app = create_app(settings)
    async with serve_app(app) as running:
        services: Services = app.state.services
        await seed_chatbot(services)
        async with httpx.AsyncClient(base_url=running.base_url, timeout=10) as client:
            yield client, services


async def open_stream(
    stack: AsyncExitStack, client: httpx.AsyncClient, ip: str
) -> tuple[httpx.Response, AsyncIterator[Frame]]:
    """A stream whose first token has arrived (the model then stalls).

    The frame iterator is kept open with the response: dropping it mid-stream would let
    the garbage collector close the response, and with it the stream.
    """
    response = await stack.enter_async_context(
        client.stream("POST", STREAM, json=QUESTION, headers={"X-Forwarded-For": ip})
    )
    assert response.status_code == 200
    frames = iter_frames(response)
    stack.push_async_callback(frames.aclose)
    async for frame in frames:
        if frame.type == "token":
            break
    return response, frames


async def refused(client: httpx.AsyncClient, ip: str) -> bool:
    response = await client.post(STREAM, json=QUESTION, headers={"X-Forwarded-For": ip})
    if response.status_code == 429:
        assert response.json()["code"] == "too_many_streams"
        assert response.headers["retry-after"]
        return True
    assert response.status_code == 200
    return False


async def admitted_soon(client: httpx.AsyncClient, ip: str) -> None:
    """The slot is given back as the server finishes the response: allow it a moment."""
    for _ in range(100):
        if not await refused(client, ip):
            return
        await asyncio.sleep(0.05)
    raise AssertionError("a stream slot never came back")


async def test_streams_past_the_caps_are_refused_until_a_slot_frees(
    openai_settings: Any, scripted_openai: ScriptedOpenAI, storage: dict[str, Any]
) -> None:
    settings = with_settings(
        openai_settings(),
        max_streams_per_ip=1,
        max_streams_per_chatbot=2,
        answer_grace_seconds=0.2,
        **storage,
    )
    stalled = Script(tokens=["Shipping ", "is ", "free."], stall_after=1)
    scripted_openai.enqueue(stalled, stalled)
    async with server(settings) as (client, services), AsyncExitStack() as stack:
        first, _ = await open_stream(stack, client, "203.0.113.1")
        assert await refused(client, "203.0.113.1")  # that IP's one slot is taken
        _, second = await open_stream(stack, client, "203.0.113.2")
        assert await refused(client, "203.0.113.3")  # the chatbot's two slots are taken

        # The first visitor goes away and does not come back: its slot comes back.
        await first.aclose()
        await admitted_soon(client, "203.0.113.3")

        # The stalled stream completes: its slot comes back too.
        scripted_openai.resume()
        async for frame in second:
            if frame.type == "complete":
                break
        await admitted_soon(client, "203.0.113.2")
        if services.redis is not None:
            assert services.redis.failures == 0  # the slots really were in Redis
        else:
            await admitted_soon(client, "203.0.113.4")
            assert services.slots.local_count("shop") == 0
