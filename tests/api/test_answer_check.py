"""The answer check end to end (``chat/answer_check.py``): with
``SITECHAT_ANSWER_CHECK_PROVIDERS`` naming the chatbot's provider, a question whose key word
is in no document is put to the model, and its "yes" gets the question answered; without
the setting the same question gets the fallback and the model is never called."""

from __future__ import annotations

from collections.abc import Callable

from sitechat.config import Settings
from tests.conftest import running_app
from tests.support.scripted_openai import Script, ScriptedOpenAI
from tests.support.sse_client import parse_body

STREAM = "/api/public/chat/stream"
# "money" is in no document; the returns page answers it ("a full refund")
QUESTION = {"message": "Is my money refunded?", "chatbot_id": "shop"}


async def test_a_configured_provider_is_asked_and_its_yes_answers(
    openai_settings: Callable[..., Settings], scripted_openai: ScriptedOpenAI
) -> None:
    settings = openai_settings(answer_check_providers="openai, backup", wordnet_dir=None)
    assert settings.answer_check_providers == ["openai", "backup"]
    scripted_openai.enqueue(Script(tokens=["yes."]), Script(tokens=["Yes, ", "in 30 days."]))
    async with running_app(settings) as harness:
        response = await harness.client.post(STREAM, json=QUESTION)

    frames = parse_body(response.text)
    complete = frames[-1].data
    assert frames[-1].type == "complete" and complete is not None
    assert complete["fallback"] is False and complete["content"] == "Yes, in 30 days."
    assert complete["usage"]["answer_check"]["completion_tokens"] >= 1
    assert len(scripted_openai.requests) == 2


async def test_without_the_setting_the_model_is_not_asked(
    openai_settings: Callable[..., Settings], scripted_openai: ScriptedOpenAI
) -> None:
    async with running_app(openai_settings(wordnet_dir=None)) as harness:
        response = await harness.client.post(STREAM, json=QUESTION)

    complete = parse_body(response.text)[-1].data
    assert complete is not None and complete["fallback"] is True
    assert "answer_check" not in complete["usage"]
    assert scripted_openai.requests == []
