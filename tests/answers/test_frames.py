"""Frames as a run keeps them: one line of JSON each, in as much memory as it takes."""

from __future__ import annotations

import tracemalloc

import orjson

from sitechat.answers.frames import is_final, payload_of, replay


def test_a_payload_is_its_event_as_one_line_of_utf8_json() -> None:
    event = {"type": "token", "content": "Öffnungszeiten — 9 bis 17 Uhr\n"}

    payload = payload_of(event)

    assert isinstance(payload, bytes) and b"\n" not in payload
    assert orjson.loads(payload) == event
    assert "—".encode() in payload  # UTF-8 as it goes out, not \\u escapes


def test_payloads_take_their_own_size_in_memory() -> None:
    # orjson's result is its write buffer, 4 KiB at least; a run keeps every frame of its
    # answer (and of ended answers, for resumes), so each must be its own size.
    events = [{"type": "token", "content": f"word {i} "} for i in range(200)]
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        payloads = [payload_of(event) for event in events]
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()

    assert held / len(payloads) < 256, f"{held / len(payloads):.0f} bytes per payload"


def test_final_frames_and_replay() -> None:
    frames = [
        (1, payload_of({"type": "start", "message_id": "m1"})),
        (2, payload_of({"type": "sources", "sources": [{"number": 1}]})),
        (3, payload_of({"type": "token", "content": "Hello "})),
        (4, payload_of({"type": "token", "content": "world"})),
        (5, payload_of({"type": "complete", "content": "Hello world"})),
    ]

    assert [is_final(p) for _, p in frames] == [False, False, False, False, True]
    assert is_final(payload_of({"type": "error", "code": "model_unavailable"}))
    text, sources = replay(frames)
    assert text == "Hello world"
    assert sources == {"type": "sources", "sources": [{"number": 1}]}
