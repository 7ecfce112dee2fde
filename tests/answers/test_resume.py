"""Resume on the embedded defaults (no Redis): an answer goes on when its connection drops,
and ``GET .../messages/{id}/stream`` continues it from any frame, exactly once.

Real uvicorn on loopback, the real ``openai`` SDK against the scripted upstream; the only
clock bound asserted is the product's promise that stop closes the upstream within 1 s.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from sitechat.api.app import create_app
from sitechat.services import Services
from tests.conftest import seed_chatbot
from tests.support.answers import (
    answer_path,
    assert_contiguous,
    joined_tokens,
    read_stream,
    read_then_hang_up,
    wait_stored,
)
from tests.support.app_server import serve_app
from tests.support.scripted_openai import Script

BODY = {"message": "When do orders ship?", "chatbot_id": "shop"}
TOKENS = [f"t{i} " for i in range(12)]


@pytest.mark.parametrize("cut_after", [1, 4, 11])
@pytest.mark.parametrize("cursor", ["header", "query"])
async def test_cut_after_k_tokens_then_resume_gives_every_token_exactly_once(
    openai_settings: Any, scripted_openai: Any, cut_after: int, cursor: str
) -> None:
    scripted_openai.script(Script(tokens=TOKENS, token_gap=0.03))
    app = create_app(openai_settings())
    async with serve_app(app) as server:
        services: Services = app.state.services
        await seed_chatbot(services)
        first = await read_then_hang_up(server.base_url, BODY, tokens=cut_after)
        start = first[0].data
        assert start is not None and start["type"] == "start"
        last_id = first[-1].event_id
        assert last_id is not None
        path = answer_path("shop", start["session_id"], start["message_id"], "stream")
        if cursor == "header":
            rest = await read_stream(server.base_url, path, headers={"Last-Event-ID": str(last_id)})
        else:
            rest = await read_stream(server.base_url, path, params={"after": last_id})

    frames = first + rest
    assert_contiguous(frames)
    assert frames[-1].type == "complete"
    complete = frames[-1].data
    assert complete is not None
    assert joined_tokens(frames) == complete["content"] == "".join(TOKENS)
    assert "stopped" not in complete  # an ordinary ending, as before


async def test_resume_from_zero_replays_the_whole_answer_and_a_finished_one_too(
    openai_settings: Any, scripted_openai: Any
) -> None:
    scripted_openai.script(Script(tokens=["Orders ", "ship ", "fast."]))
    app = create_app(openai_settings())
    async with serve_app(app) as server:
        await seed_chatbot(app.state.services)
        first = await read_then_hang_up(server.base_url, BODY, tokens=100)
        start = first[0].data
        assert start is not None
        path = answer_path("shop", start["session_id"], start["message_id"], "stream")
        again = await read_stream(server.base_url, path, params={"after": 0})
    assert [f.data for f in again] == [f.data for f in first]
    assert [f.event_id for f in again] == [f.event_id for f in first]


async def test_a_finished_answer_whose_frames_expired_comes_back_as_one_complete_event(
    openai_settings: Any, scripted_openai: Any
) -> None:
    scripted_openai.script(Script(tokens=["Orders ", "ship ", "fast."]))
    app = create_app(openai_settings(answer_frames_ttl_seconds=0.2))
    async with serve_app(app) as server:
        services: Services = app.state.services
        await seed_chatbot(services)
        first = await read_then_hang_up(server.base_url, BODY, tokens=100)
        start = first[0].data
        assert start is not None
        await asyncio.sleep(0.4)
        path = answer_path("shop", start["session_id"], start["message_id"], "stream")
        frames = await read_stream(server.base_url, path, params={"after": 2})
    assert len(frames) == 1
    complete = frames[0].data
    assert complete is not None and complete["type"] == "complete"
    assert complete["content"] == "Orders ship fast."
    assert complete["message_id"] == start["message_id"]
    assert complete["session_id"] == start["session_id"]
    assert complete["sources"] == first[1].data["sources"]  # type: ignore[index]
    assert frames[0].event_id == 3


async def test_a_dropped_connection_is_not_a_stop(
    openai_settings: Any, scripted_openai: Any
) -> None:
    """Nobody reads for a while (within the grace period): the answer is finished and
    stored complete, and the upstream was never cut."""
    scripted_openai.script(Script(tokens=TOKENS, token_gap=0.02))
    app = create_app(openai_settings(answer_grace_seconds=30))
    async with serve_app(app) as server:
        services: Services = app.state.services
        await seed_chatbot(services)
        first = await read_then_hang_up(server.base_url, BODY, tokens=2)
        start = first[0].data
        assert start is not None
        stored = await wait_stored(services, "shop", start["session_id"], start["message_id"])
    assert stored.status == "complete"
    assert stored.content == "".join(TOKENS)
    assert scripted_openai.last_stream.closed_by == "complete"


async def test_when_the_grace_period_ends_with_no_reader_the_upstream_is_cancelled(
    openai_settings: Any, scripted_openai: Any
) -> None:
    scripted_openai.script(Script(tokens=TOKENS, stall_after=3))
    app = create_app(openai_settings(answer_grace_seconds=0.5))
    async with serve_app(app) as server:
        services: Services = app.state.services
        await seed_chatbot(services)
        first = await read_then_hang_up(server.base_url, BODY, tokens=3)
        left_at = asyncio.get_running_loop().time()
        record = await scripted_openai.wait_closed(timeout=10)
        start = first[0].data
        assert start is not None
        stored = await wait_stored(services, "shop", start["session_id"], start["message_id"])
    assert record.closed_by == "client"
    assert record.closed_at is not None and record.closed_at - left_at >= 0.4  # not before
    assert stored.status == "interrupted"
    assert stored.error_code == "client_disconnected"
    assert stored.content == "".join(TOKENS[:3])
    assert stored.usage is not None and stored.usage["prompt_tokens"] > 0  # it was paid for


async def test_a_reader_coming_back_within_the_grace_period_keeps_the_answer_going(
    openai_settings: Any, scripted_openai: Any
) -> None:
    scripted_openai.script(Script(tokens=TOKENS, token_gap=0.05))
    app = create_app(openai_settings(answer_grace_seconds=0.6))
    async with serve_app(app) as server:
        services: Services = app.state.services
        await seed_chatbot(services)
        first = await read_then_hang_up(server.base_url, BODY, tokens=2)
        start = first[0].data
        assert start is not None
        path = answer_path("shop", start["session_id"], start["message_id"], "stream")
        await asyncio.sleep(0.3)
        rest = await read_stream(server.base_url, path, params={"after": first[-1].event_id})
    assert rest[-1].type == "complete"
    assert joined_tokens(first + rest) == "".join(TOKENS)


async def test_stop_closes_the_upstream_within_a_second_and_ends_as_a_stopped_complete(
    openai_settings: Any, scripted_openai: Any
) -> None:
    scripted_openai.script(Script(tokens=TOKENS, stall_after=4))
    app = create_app(openai_settings())
    async with serve_app(app) as server:
        services: Services = app.state.services
        await seed_chatbot(services)
        frames = []
        async with (
            httpx.AsyncClient(base_url=server.base_url, timeout=30) as client,
            client.stream("POST", "/api/public/chat/stream", json=BODY) as response,
        ):
            from tests.support.sse_client import iter_frames

            stop_sent_at = None
            async for frame in iter_frames(response):
                if frame.data is None:
                    continue
                frames.append(frame)
                if sum(f.type == "token" for f in frames) == 4 and stop_sent_at is None:
                    start = frames[0].data
                    assert start is not None
                    path = answer_path("shop", start["session_id"], start["message_id"], "stop")
                    stop_sent_at = asyncio.get_running_loop().time()
                    stopped = await client.post(path)
                    assert stopped.status_code == 200
                    assert stopped.json() == {
                        "message_id": start["message_id"],
                        "status": "stopping",
                    }
        record = await scripted_openai.wait_closed(timeout=5)
        start = frames[0].data
        assert start is not None
        stored = await wait_stored(services, "shop", start["session_id"], start["message_id"])
        # Idempotent: stopping again (or a finished answer) changes nothing.
        async with httpx.AsyncClient(base_url=server.base_url) as client:
            again = await client.post(
                answer_path("shop", start["session_id"], start["message_id"], "stop")
            )
    assert record.closed_by == "client"
    assert stop_sent_at is not None and record.closed_at is not None
    assert record.closed_at - stop_sent_at < 1.0
    complete = frames[-1].data
    assert complete is not None and complete["type"] == "complete"
    assert complete["stopped"] is True and complete["done"] is True
    assert complete["content"] == "".join(TOKENS[:4]) == joined_tokens(frames)
    assert stored.status == "stopped"
    assert stored.content == complete["content"]
    assert stored.usage is not None and stored.usage["prompt_tokens"] > 0
    assert stored.usage["completion_tokens"] > 0
    assert again.status_code == 200
    assert again.json() == {"message_id": start["message_id"], "status": "stopped"}


async def test_resume_and_stop_answer_404_outside_the_session(
    openai_settings: Any, scripted_openai: Any
) -> None:
    scripted_openai.script(Script(tokens=["Orders ", "ship."]))
    app = create_app(openai_settings())
    async with serve_app(app) as server:
        await seed_chatbot(app.state.services)
        first = await read_then_hang_up(server.base_url, BODY, tokens=100)
        start = first[0].data
        assert start is not None
        other = await read_then_hang_up(
            server.base_url, {**BODY, "session_id": "another-session-1"}, tokens=100
        )
        other_start = other[0].data
        assert other_start is not None
        async with httpx.AsyncClient(base_url=server.base_url) as client:
            # Another session's answer, an unknown id, the user's own message, another bot.
            wrong = [
                answer_path("shop", start["session_id"], other_start["message_id"], "stream"),
                answer_path("shop", start["session_id"], "no-such-message", "stream"),
                answer_path("shop", "unknown-session-1", start["message_id"], "stream"),
                answer_path("other-bot", start["session_id"], start["message_id"], "stream"),
                answer_path("shop", start["session_id"], other_start["message_id"], "stop"),
            ]
            responses = [
                await (client.post(p) if p.endswith("/stop") else client.get(p)) for p in wrong
            ]
            bad_cursor = await client.get(
                answer_path("shop", start["session_id"], start["message_id"], "stream"),
                headers={"Last-Event-ID": "abc"},
            )
            negative = await client.get(
                answer_path("shop", start["session_id"], start["message_id"], "stream"),
                params={"after": -1},
            )
    assert [r.status_code for r in responses] == [404] * 5
    for r in responses:
        assert r.headers["content-type"] == "application/json"
        assert r.json()["code"] in ("not_found", "chatbot_not_found")
    assert bad_cursor.status_code == 422 and bad_cursor.json()["code"] == "invalid_input"
    assert negative.status_code == 422


async def test_resume_passes_the_same_gate_as_chat(
    openai_settings: Any, scripted_openai: Any
) -> None:
    scripted_openai.script(Script(tokens=["Orders ", "ship."]))
    app = create_app(openai_settings())
    async with serve_app(app) as server:
        services: Services = app.state.services
        await seed_chatbot(
            services,
            allowed_origins=["https://shop.example"],
            settings={"require_visitor_token": True},
        )
        origin = {"Origin": "https://shop.example"}
        async with httpx.AsyncClient(base_url=server.base_url) as client:
            config = await client.get("/api/public/chatbots/shop/config", headers=origin)
            token = config.json()["visitor_token"]
        visitor = {**origin, "X-Sitechat-Visitor-Token": token}
        first = await read_then_hang_up(server.base_url, BODY, tokens=100, headers=visitor)
        start = first[0].data
        assert start is not None
        path = answer_path("shop", start["session_id"], start["message_id"], "stream")
        async with httpx.AsyncClient(base_url=server.base_url) as client:
            no_token = await client.get(path, headers=origin)
            wrong_origin = await client.get(
                path, headers={**visitor, "Origin": "https://evil.example"}
            )
            stop_no_token = await client.post(path.replace("/stream", "/stop"), headers=origin)
        ok = await read_stream(server.base_url, path, headers=visitor)
    assert no_token.status_code == 401
    assert wrong_origin.status_code == 403
    assert stop_no_token.status_code == 401
    assert ok[-1].type == "complete"
