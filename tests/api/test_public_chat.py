"""The public chat endpoints through real HTTP semantics (ASGI client; lifespan running)."""

from __future__ import annotations

from typing import Any

from sitechat.config import Settings
from tests.conftest import AppHarness, running_app
from tests.support.scripted_openai import Script
from tests.support.sse_client import parse_body

STREAM = "/api/public/chat/stream"


async def stream_frames(harness: AppHarness, body: dict[str, Any]) -> tuple[Any, list[Any]]:
    response = await harness.client.post(STREAM, json=body)
    return response, parse_body(response.text)


async def test_stream_sends_start_tokens_and_complete_with_real_sources(
    harness: AppHarness,
) -> None:
    response, frames = await stream_frames(
        harness, {"message": "How long do I have to return an item?", "chatbot_id": "shop"}
    )

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["x-accel-buffering"] == "no"
    types = [f.type for f in frames]
    assert types[0] == "start"
    assert types[-1] == "complete"
    assert types.count("token") >= 2
    ids = [f.event_id for f in frames]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)

    start, complete = frames[0].data, frames[-1].data
    assert start["session_id"] and start["message_id"] == complete["message_id"]
    tokens = "".join(f.data["content"] for f in frames if f.type == "token")
    assert complete["content"] == tokens
    assert "30 days" in complete["content"]
    assert complete["done"] is True
    top = complete["sources"][0]
    assert top["title"] == "Returns"
    assert top["number"] == 1 and top["snippet"] and top["score"] > 0
    assert complete["context_quality"]["level"] in {"high", "medium"}
    assert complete["context_quality"]["chunks_used"] >= 1
    assert complete["usage"]["completion_tokens"] > 0


async def test_token_frames_keep_the_original_shape(harness: AppHarness) -> None:
    _, frames = await stream_frames(
        harness, {"message": "When does the store open?", "chatbot_id": "shop"}
    )
    token = next(f.data for f in frames if f.type == "token")
    assert set(token) == {"type", "content", "done"} and token["done"] is False


async def test_user_message_and_answer_are_stored_in_the_session(harness: AppHarness) -> None:
    _, frames = await stream_frames(harness, {"message": "Is shipping free?", "chatbot_id": "shop"})
    session_id = frames[0].data["session_id"]
    _, second = await stream_frames(
        harness,
        {
            "message": "And how long does delivery take?",
            "chatbot_id": "shop",
            "session_id": session_id,
        },
    )
    assert second[0].data["session_id"] == session_id

    store = harness.services.store
    conversation = await store.get_conversation("shop", session_id)
    assert conversation is not None
    messages = await store.list_messages(conversation.id)
    assert [m.role for m in messages] == ["user", "assistant", "user", "assistant"]
    assert messages[0].content == "Is shipping free?"
    assert all(m.status == "complete" for m in messages)
    answer = messages[3]
    assert answer.sources and answer.context_quality and answer.usage
    assert answer.ttft_ms is not None and answer.ttft_ms >= 0

    restored = await harness.client.get(f"/api/public/chatbots/shop/sessions/{session_id}/messages")
    assert restored.status_code == 200
    assert [m["content"] for m in restored.json()["messages"]] == [m.content for m in messages]


async def test_non_streaming_endpoint_returns_the_complete_outcome(harness: AppHarness) -> None:
    response = await harness.client.post(
        "/api/public/chat", json={"message": "Is shipping free?", "chatbot_id": "shop"}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["type"] == "complete" and body["done"] is True
    assert "50 euros" in body["content"]
    assert body["sources"][0]["title"] == "Shipping"
    assert body["context_quality"]["level"] in {"high", "medium"}


async def test_public_config_exposes_only_public_fields(settings: Settings) -> None:
    async with running_app(
        settings, system_prompt="secret instructions", allowed_origins=("https://a.example",)
    ) as h:
        response = await h.client.get("/api/public/chatbots/shop/config")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"id", "name", "greeting", "starter_questions", "theme", "limits"}
    assert "secret" not in response.text


async def test_public_config_gives_the_widget_the_servers_limits(settings: Settings) -> None:
    limited = settings.model_copy(
        update={"max_message_chars": 1234, "sse_ping_interval_seconds": 10.0}
    )
    async with running_app(limited) as h:
        response = await h.client.get("/api/public/chatbots/shop/config")
    assert response.json()["limits"] == {"max_message_chars": 1234, "idle_timeout_seconds": 30.0}


async def test_unknown_chatbot_config_is_404(harness: AppHarness) -> None:
    response = await harness.client.get("/api/public/chatbots/nope/config")
    assert response.status_code == 404
    assert response.json()["code"] == "chatbot_not_found"


async def test_question_without_any_matching_document_gets_the_fallback(
    openai_settings: Any, scripted_openai: Any
) -> None:
    async with running_app(openai_settings()) as h:
        response = await h.client.post(
            STREAM, json={"message": "Quantum chromodynamics lattice?", "chatbot_id": "shop"}
        )
    frames = parse_body(response.text)
    complete = frames[-1].data
    assert complete["type"] == "complete"
    assert complete["fallback"] is True
    assert complete["sources"] == []
    assert complete["context_quality"]["level"] == "none"
    assert complete["content"].startswith("I don't know")
    assert scripted_openai.requests == []  # the model was never called


async def test_openai_provider_streams_the_scripted_answer_with_provider_usage(
    openai_settings: Any, scripted_openai: Any
) -> None:
    scripted_openai.script(Script(tokens=["Returns ", "are ", "free ", "[1]."]))
    async with running_app(openai_settings()) as h:
        response = await h.client.post(
            STREAM, json={"message": "How do returns work?", "chatbot_id": "shop"}
        )
    frames = parse_body(response.text)
    assert [f.data["content"] for f in frames if f.type == "token"] == [
        "Returns ",
        "are ",
        "free ",
        "[1].",
    ]
    complete = frames[-1].data
    assert complete["content"] == "Returns are free [1]."
    assert complete["usage"]["source"] == "provider"
    assert complete["usage"]["provider"] == "openai"
    sent = scripted_openai.requests[-1].body
    prompt = sent["messages"][-1]["content"]
    assert "<sources>" in prompt and "[1] Returns" in prompt
    assert "How do returns work?" in prompt
    assert sent["stream"] is True


async def test_model_failing_before_first_token_gives_a_safe_error_event(
    openai_settings: Any, scripted_openai: Any
) -> None:
    scripted_openai.script(Script(status_error=500))
    async with running_app(openai_settings()) as h:
        response = await h.client.post(
            STREAM, json={"message": "Is shipping free?", "chatbot_id": "shop"}
        )
        frames = parse_body(response.text)
        error = frames[-1].data
        assert error["type"] == "error" and error["done"] is True
        assert error["code"] == "model_unavailable"
        assert error["request_id"] == response.headers["x-request-id"]
        assert "Traceback" not in response.text and "scripted" not in response.text.lower()
        assert [f.type for f in frames if f.type == "token"] == []
        stored = await h.services.store.list_messages(
            (await h.services.store.get_conversation("shop", frames[0].data["session_id"])).id
        )
    assert [m.status for m in stored] == ["complete", "failed"]


async def test_model_failing_mid_stream_stores_the_partial_answer_as_interrupted(
    openai_settings: Any, scripted_openai: Any
) -> None:
    scripted_openai.script(Script(tokens=["Orders ", "ship ", "within ", "two"], fail_after=2))
    async with running_app(openai_settings()) as h:
        response = await h.client.post(
            STREAM, json={"message": "When do orders ship?", "chatbot_id": "shop"}
        )
        frames = parse_body(response.text)
        error = frames[-1].data
        assert error["type"] == "error" and error["code"] == "model_interrupted"
        assert error["partial"] is True
        conversation = await h.services.store.get_conversation("shop", frames[0].data["session_id"])
        stored = await h.services.store.list_messages(conversation.id)
    assert stored[-1].status == "interrupted"
    assert stored[-1].content == "Orders ship "


async def test_non_streaming_endpoint_maps_model_failure_to_502(
    openai_settings: Any, scripted_openai: Any
) -> None:
    scripted_openai.script(Script(status_error=503))
    async with running_app(openai_settings()) as h:
        response = await h.client.post(
            "/api/public/chat", json={"message": "Is shipping free?", "chatbot_id": "shop"}
        )
    assert response.status_code == 502
    body = response.json()
    assert body["code"] == "model_unavailable" and body["request_id"]


async def test_health_and_readiness(harness: AppHarness) -> None:
    assert (await harness.client.get("/healthz")).json() == {"status": "ok"}
    ready = await harness.client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": "ok", "vector_store": "ok"}


async def test_a_looping_answer_is_stopped_and_completed(
    openai_settings: Any, scripted_openai: Any
) -> None:
    loop = ["The parcel ", "ships from Berlin ", "every day. "]
    scripted_openai.script(Script(tokens=["Orders ship fast. ", *loop * 30], token_gap=0.001))
    async with running_app(openai_settings()) as h:
        response = await h.client.post(
            STREAM, json={"message": "When do orders ship?", "chatbot_id": "shop"}
        )
    frames = parse_body(response.text)
    complete = frames[-1].data
    assert complete["type"] == "complete"
    assert complete["content"].count("every day.") == 2
    assert complete["usage"]["stopped"] == "repetition"
    record = await scripted_openai.wait_closed(timeout=5.0)
    assert record.closed_by == "client" and record.tokens_sent < 90


async def test_readiness_is_503_naming_the_failing_part(harness: AppHarness) -> None:
    await harness.services.vectors.close()
    ready = await harness.client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json() == {
        "status": "not_ready",
        "checks": {"database": "ok", "vector_store": "failing"},
    }
