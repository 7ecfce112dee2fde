"""The scripted server's non-streaming side, seen through the real SDK (the streaming side
is exercised by test_openai_model.py)."""

from __future__ import annotations

import httpx
from openai import AsyncOpenAI

from tests.support.scripted_openai import Script, ScriptedOpenAI


async def test_answers_a_non_streaming_completion_as_one_json_object(
    scripted_openai: ScriptedOpenAI,
) -> None:
    scripted_openai.script(Script(tokens=["Nine", " am", "."]))
    async with AsyncOpenAI(api_key="sk-test", base_url=scripted_openai.base_url) as client:
        completion = await client.chat.completions.create(
            model="gpt-test", messages=[{"role": "user", "content": "When?"}]
        )

    assert completion.object == "chat.completion"
    assert completion.choices[0].message.content == "Nine am."
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    assert completion.usage.completion_tokens == 3
    assert scripted_openai.streams == []


async def test_lists_its_model(scripted_openai: ScriptedOpenAI) -> None:
    async with AsyncOpenAI(api_key="sk-test", base_url=scripted_openai.base_url) as client:
        page = await client.models.list()

    assert [m.id for m in page.data] == [scripted_openai.model]


async def test_queued_scripts_answer_one_request_each_then_the_default(
    scripted_openai: ScriptedOpenAI,
) -> None:
    scripted_openai.script(Script(tokens=["default"]))
    scripted_openai.enqueue(Script(status_error=503), Script(tokens=["second"]))
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}

    async with httpx.AsyncClient(base_url=scripted_openai.base_url) as client:
        responses = [await client.post("/chat/completions", json=body) for _ in range(3)]

    assert [r.status_code for r in responses] == [503, 200, 200]
    assert responses[0].json()["error"]["type"] == "server_error"
    contents = [r.json()["choices"][0]["message"]["content"] for r in responses[1:]]
    assert contents == ["second", "default"]
    assert [r.body["messages"][0]["content"] for r in scripted_openai.requests] == ["hi"] * 3


def test_serves_sync_callers_too() -> None:
    # The server runs on its own thread and loop, so a sync test (TestClient-style) can use it.
    with ScriptedOpenAI() as server, httpx.Client(base_url=server.base_url) as client:
        response = client.get("/models")
    assert response.status_code == 200
