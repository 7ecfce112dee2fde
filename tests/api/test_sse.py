from __future__ import annotations

import asyncio
import json
from typing import Any

import anyio
import pytest

from sitechat.api.middleware import DetachedBodies
from sitechat.api.sse import PING_FRAME, EventStreamResponse, encode_frame
from sitechat.chat.events import CompleteEvent, ErrorEvent, TokenEvent


def test_frame_is_an_id_line_and_one_data_line() -> None:
    frame = encode_frame(3, TokenEvent("line one\nline two — ü").to_dict()).decode()
    lines = frame.split("\n")
    assert lines[0] == "id: 3"
    assert lines[1].startswith("data: ")
    assert lines[2:] == ["", ""]
    assert json.loads(lines[1][6:]) == {
        "type": "token",
        "content": "line one\nline two — ü",
        "done": False,
    }


def test_error_event_carries_no_status_and_a_safe_shape() -> None:
    body = ErrorEvent(
        error="The answer was interrupted.", code="model_interrupted", request_id="r1", status=502
    ).to_dict()
    assert body == {
        "type": "error",
        "error": "The answer was interrupted.",
        "code": "model_interrupted",
        "done": True,
        "request_id": "r1",
    }


def test_complete_event_shape() -> None:
    body = CompleteEvent(
        content="x",
        message_id="m",
        session_id="s",
        sources=(),
        context_quality={"level": "none"},
        usage={},
    ).to_dict()
    assert body["type"] == "complete" and body["done"] is True
    assert {"content", "sources", "context_quality", "usage", "message_id"} <= set(body)


class _Frames:
    """An answer's frames as ``EventStreamResponse`` reads them: ``batches`` then silence
    (``hold``) until closed; records whether it was closed."""

    def __init__(self, batches: list[list[tuple[int, bytes]]], *, hold: bool) -> None:
        self.batches = list(batches)
        self.hold = hold
        self.closed = False
        self.closing = anyio.Event()

    def __aiter__(self) -> _Frames:
        return self

    async def __anext__(self) -> list[tuple[int, bytes]]:
        if self.batches:
            return self.batches.pop(0)
        if self.hold:
            await anyio.sleep_forever()
        raise StopAsyncIteration

    async def aclose(self) -> None:
        self.closed = True
        self.closing.set()


async def _never_disconnects() -> dict[str, Any]:
    await anyio.sleep_forever()
    raise AssertionError


async def test_a_client_that_stops_reading_is_let_go_after_the_send_timeout() -> None:
    frames = _Frames([[(1, b'{"type":"start"}')], [(2, b'{"type":"token"}')]], hold=False)
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)
        if message.get("body", b"").startswith(b"id: 2"):
            await anyio.sleep_forever()  # the socket's buffer is full: the write never ends

    response = EventStreamResponse(frames, ping_interval=10.0, send_timeout=0.3)
    with anyio.fail_after(5):
        await response(_scope(), _never_disconnects, send)

    assert response.disconnected and frames.closed
    assert [m["body"][:5] for m in sent[1:]] == [b"id: 1", b"id: 2"]  # no final empty body


async def test_pings_and_frames_are_sent_one_at_a_time() -> None:
    """A ping due while a frame's write waits on the client goes out after it, never beside
    it; a silent answer gets pings, and frames still reach the client between them."""
    frames = _Frames([[(1, b'{"type":"start"}')]], hold=True)
    in_send = 0
    overlaps = 0
    bodies: list[bytes] = []

    async def send(message: dict[str, Any]) -> None:
        nonlocal in_send, overlaps
        in_send += 1
        overlaps += in_send > 1
        try:
            if message["type"] == "http.response.body":
                bodies.append(message["body"])
                await anyio.sleep(0.15)  # a slow client: each write takes a while
        finally:
            in_send -= 1

    response = EventStreamResponse(frames, ping_interval=0.05, send_timeout=5.0)
    with anyio.move_on_after(0.8):
        await response(_scope(), _never_disconnects, send)

    assert overlaps == 0
    assert bodies[0].startswith(b"id: 1") and bodies.count(PING_FRAME) >= 2
    assert frames.closed


async def test_a_disconnect_ends_the_response_and_closes_the_frames_at_once() -> None:
    frames = _Frames([[(1, b'{"type":"start"}')]], hold=True)
    bodies: list[bytes] = []
    gone = anyio.Event()

    async def receive() -> dict[str, Any]:
        await gone.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body":
            bodies.append(message["body"])

    response = EventStreamResponse(frames, ping_interval=10.0, send_timeout=10.0)
    async with anyio.create_task_group() as tg:
        tg.start_soon(response, _scope(), receive, send)
        await anyio.sleep(0.05)
        gone.set()
        with anyio.fail_after(2):
            await frames.closing.wait()

    assert response.disconnected and bodies == [bodies[0]]
    assert bodies[0].startswith(b"id: 1")


async def test_a_cancellation_from_outside_goes_on_up_and_still_closes_the_frames() -> None:
    """The watcher's own cancellation (a disconnect) ends the body quietly; any other (the
    server shutting down, a caller's timeout) is not swallowed with it."""
    frames = _Frames([[(1, b'{"type":"start"}')]], hold=True)

    async def send(message: dict[str, Any]) -> None:
        pass

    response = EventStreamResponse(frames, ping_interval=10.0, send_timeout=10.0)
    task = asyncio.ensure_future(response(_scope(), _never_disconnects, send))
    await anyio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert frames.closed and not response.disconnected


def _scope() -> dict[str, Any]:
    return {"type": "http", "method": "POST", "path": "/api/public/chat/stream", "headers": []}


async def test_a_detached_body_streams_after_the_inner_layers_return_with_their_headers() -> None:
    """Behind ``DetachedBodies`` the app and the middleware inside it have returned (their
    frames, the request, its parsed body released) before the first frame is read, what
    they put in the scope is not in the server's, and the headers they added to
    ``http.response.start`` are on the response."""
    events: list[str] = []

    class Recording(_Frames):
        async def __anext__(self) -> list[tuple[int, bytes]]:
            events.append("frame read")
            return await super().__anext__()

    frames = Recording([[(1, b'{"type":"start"}')], [(2, b'{"type":"complete"}')]], hold=False)

    async def endpoint(scope: Any, receive: Any, send: Any) -> None:
        await EventStreamResponse(frames)(scope, receive, send)
        events.append("endpoint returned")

    async def inner_middleware(scope: Any, receive: Any, send: Any) -> None:
        async def add_header(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message["headers"], (b"x-inner", b"yes")]
            await send(message)

        scope["fastapi_astack"] = object()  # held by the scope: gone with the app's copy
        scope["state"]["request_id"] = "r-1"  # the state is shared: a 500 out there reads it
        await endpoint(scope, receive, add_header)
        events.append("middleware returned")

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    server_scope: dict[str, Any] = {"type": "http"}
    await DetachedBodies(inner_middleware)(server_scope, _never_disconnects, send)

    assert events[:2] == ["endpoint returned", "middleware returned"]
    assert "frame read" in events
    assert "fastapi_astack" not in server_scope
    assert server_scope["state"] == {"request_id": "r-1"}
    assert (b"x-inner", b"yes") in sent[0]["headers"]
    bodies = b"".join(m.get("body", b"") for m in sent[1:])
    assert bodies == b'id: 1\ndata: {"type":"start"}\n\nid: 2\ndata: {"type":"complete"}\n\n'
    assert sent[-1] == {"type": "http.response.body", "body": b"", "more_body": False}
    assert frames.closed
