"""The answer check end to end (``chat/answer_check.py``): with
``SITECHAT_ANSWER_CHECK_PROVIDERS`` naming the chatbot's provider, a question whose key word
is in no document is put to the model, and its "yes" gets the question answered; without
the setting the same question gets the fallback and the model is never called. A judge (a
model of its own, ``SITECHAT_ANSWER_JUDGE_MODEL_PATH``) is asked for the providers not
listed; the real one reads a paraphrase and a near miss in ``test_answer_judge.py``."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import REGISTRY

from sitechat.chat.answer_check import Judge
from sitechat.config import Settings
from tests.conftest import running_app
from tests.support.scripted_openai import Script, ScriptedOpenAI
from tests.support.sse_client import parse_body

STREAM = "/api/public/chat/stream"
# "money" is in no document; the returns page answers it ("a full refund")
QUESTION = {"message": "Is my money refunded?", "chatbot_id": "shop"}
# the same, found in the returns and the shipping pages
TWO_PAGES = {"message": "Is my money refunded, with the shipping?", "chatbot_id": "shop"}


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


def checked(model: str, verdict: str) -> float:
    labels = {"model": model, "verdict": verdict}
    return REGISTRY.get_sample_value("sitechat_answer_check_seconds_count", labels) or 0.0


def scripted_judge(server: ScriptedOpenAI, passages: int = 2) -> Judge:
    return Judge(server.chat_model(model="judge-model"), timeout_seconds=10, passages=passages)


async def test_a_judge_answers_for_every_provider_not_listed(
    openai_settings: Callable[..., Settings], scripted_openai: ScriptedOpenAI
) -> None:
    """``SITECHAT_ANSWER_JUDGE_MODEL_PATH`` builds a local judge; here the judge is another
    model on the scripted server, so its request can be read."""
    scripted_openai.enqueue(Script(tokens=["Yes"]), Script(tokens=["Yes, ", "in 30 days."]))
    checks = checked("openai", "yes")
    async with running_app(openai_settings(wordnet_dir=None)) as harness:
        judge = scripted_judge(scripted_openai, passages=1)
        harness.services.chat.answer_check.judge = judge
        try:
            response = await harness.client.post(STREAM, json=TWO_PAGES)
            again = await harness.client.post(STREAM, json=TWO_PAGES)
        finally:
            await judge.model.aclose()

    complete = parse_body(response.text)[-1].data
    assert complete is not None and complete["fallback"] is False
    assert complete["usage"]["answer_check"]["completion_tokens"] >= 1
    check, answer = (r.body for r in scripted_openai.requests[:2])
    assert check["model"] == "judge-model" and answer["model"] == "scripted-model"
    asked = check["messages"][-1]["content"]
    assert "Question: Is my money refunded, with the shipping?" in asked
    assert "[1]" in asked and "[2]" not in asked  # the judge's own number of passages
    # the verdict is cached: the same question over the same passages asks nobody again
    repeated = parse_body(again.text)[-1].data
    assert repeated is not None and repeated["fallback"] is False
    assert "answer_check" not in repeated["usage"]
    assert [r.body["model"] for r in scripted_openai.requests] == [
        "judge-model",
        *["scripted-model"] * 2,
    ]
    assert checked("openai", "yes") == checks + 1  # once: the second came from the cache


async def test_a_listed_provider_is_asked_itself_and_a_no_keeps_the_fallback(
    openai_settings: Callable[..., Settings], scripted_openai: ScriptedOpenAI
) -> None:
    scripted_openai.enqueue(Script(tokens=["No."]))
    checks = checked("openai", "no")
    async with running_app(
        openai_settings(answer_check_providers="openai", wordnet_dir=None)
    ) as harness:
        judge = scripted_judge(scripted_openai)
        harness.services.chat.answer_check.judge = judge
        try:
            response = await harness.client.post(STREAM, json=QUESTION)
        finally:
            await judge.model.aclose()

    complete = parse_body(response.text)[-1].data
    assert complete is not None and complete["fallback"] is True
    assert complete["context_quality"]["answerability"] == "unanswerable"
    assert [r.body["model"] for r in scripted_openai.requests] == ["scripted-model"]
    assert checked("openai", "no") == checks + 1
