"""Clients for answers that outlive their connection: read part of an answer and hang up,
resume it from a frame, stop it, and wait for its stored outcome."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

from sitechat.domain import Message
from sitechat.services import Services
from tests.support.sse_client import Frame, iter_frames

STREAM = "/api/public/chat/stream"


def answer_path(chatbot_id: str, session_id: str, message_id: str, action: str) -> str:
    return f"/api/public/chatbots/{chatbot_id}/sessions/{session_id}/messages/{message_id}/{action}"


async def read_then_hang_up(
    base_url: str, body: dict[str, Any], *, tokens: int, headers: dict[str, str] | None = None
) -> list[Frame]:
    """POST a question, read frames until ``tokens`` token frames arrived, then close the
    connection (the visitor's network drops)."""
    frames: list[Frame] = []
    async with (
        httpx.AsyncClient(base_url=base_url, timeout=30) as client,
        client.stream("POST", STREAM, json=body, headers=headers) as response,
    ):
        assert response.status_code == 200, await response.aread()
        async for frame in iter_frames(response):
            if frame.data is None:
                continue
            frames.append(frame)
            if sum(f.type == "token" for f in frames) >= tokens or frame.type in (
                "complete",
                "error",
            ):
                break
    return frames


async def read_stream(
    base_url: str,
    path: str,
    *,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    params: dict[str, Any] | None = None,
    json: Any = None,
    until_tokens: int | None = None,
) -> list[Frame]:
    """Every data frame of a stream to its end (or until ``until_tokens`` tokens)."""
    frames: list[Frame] = []
    async with (
        httpx.AsyncClient(base_url=base_url, timeout=30) as client,
        client.stream(method, path, headers=headers, params=params, json=json) as response,
    ):
        assert response.status_code == 200, await response.aread()
        assert response.headers["content-type"].startswith("text/event-stream")
        async for frame in iter_frames(response):
            if frame.data is not None:
                frames.append(frame)
                if until_tokens is not None and sum(f.type == "token" for f in frames) >= (
                    until_tokens
                ):
                    break
    return frames


def joined_tokens(frames: list[Frame]) -> str:
    return "".join(f.data["content"] for f in frames if f.type == "token" and f.data)


def assert_contiguous(frames: list[Frame]) -> None:
    """Frame ids 1, 2, 3... with none missing and none repeated."""
    ids = [f.event_id for f in frames]
    assert ids == list(range(1, len(frames) + 1)), ids


async def wait_stored(
    services: Services, chatbot_id: str, session_id: str, message_id: str, *, seconds: float = 10
) -> Message:
    """The stored answer once it is no longer ``streaming``."""
    deadline = time.monotonic() + seconds
    while True:
        conversation = await services.store.get_conversation(chatbot_id, session_id)
        assert conversation is not None
        message = await services.store.get_answer(conversation.id, message_id)
        assert message is not None
        if message.status != "streaming" or time.monotonic() > deadline:
            return message
        await asyncio.sleep(0.02)
