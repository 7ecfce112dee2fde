from __future__ import annotations

import json

from sitechat.api.sse import encode_frame
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
