"""Provider fallback end to end: ``POST /api/public/chat/stream`` with two real upstreams.

The chatbot's ``openai`` provider talks to one scripted OpenAI-compatible server (or to a
closed port); a named endpoint, ``backup``, to another. The primary fails before its first
token in each way that hands the answer over (refused connection, 5xx, 429, silence past the
first-token deadline) and the visitor gets the backup's answer, with the usage of the
``complete`` event, the stored message and the metrics naming the backup. A failure after
the first token is not handed over: the answer ends with an ``error`` event and the partial
answer is stored.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from sitechat.config import Settings
from sitechat.domain import Message
from tests.conftest import AppHarness, running_app
from tests.support.admin import admin_app
from tests.support.processes import free_port
from tests.support.scripted_openai import Script, ScriptedOpenAI
from tests.support.sse_client import Frame, parse_body

STREAM = "/api/public/chat/stream"
QUESTION = {"message": "How long does delivery take?", "chatbot_id": "shop"}
PRIMARY_TOKENS = ["Delivery ", "takes ", "three ", "to ", "five ", "days."]
BACKUP_TOKENS = ["The backup says: ", "three to five days."]
MakeSettings = Callable[..., Settings]


@pytest.fixture
async def backup_server() -> AsyncIterator[ScriptedOpenAI]:
    async with ScriptedOpenAI(model="backup-default") as server:
        server.script(Script(tokens=BACKUP_TOKENS))
        yield server


@pytest.fixture
def chain_settings(
    openai_settings: MakeSettings, backup_server: ScriptedOpenAI
) -> Callable[..., Settings]:
    """The primary is ``openai`` (the scripted server unless overridden); the deployment's
    fallback chain is the ``backup`` endpoint."""

    def make(**overrides: Any) -> Settings:
        endpoint = {
            "base_url": backup_server.base_url,
            "api_key": "sk-backup",
            "model": "backup-default",
            "timeout_seconds": 5.0,
        }
        values: dict[str, Any] = {
            "openai_compatible_endpoints": {"backup": endpoint},
            "fallback_providers": ["backup"],
            "openai_timeout_seconds": 5.0,
            **overrides,
        }
        return openai_settings(**values)

    return make


async def ask(harness: AppHarness) -> list[Frame]:
    response = await harness.client.post(STREAM, json=QUESTION)
    assert response.status_code == 200, response.text
    return parse_body(response.text)


def tokens_of(frames: list[Frame]) -> str:
    return "".join(f.data["content"] for f in frames if f.type == "token" and f.data)


async def stored_answer(harness: AppHarness, frames: list[Frame]) -> Message:
    assert frames[0].data is not None
    conversation = await harness.services.store.get_conversation(
        "shop", frames[0].data["session_id"]
    )
    assert conversation is not None
    return (await harness.services.store.list_messages(conversation.id))[-1]


async def metric(harness: AppHarness, name: str, **labels: str) -> float:
    text = (await harness.client.get("/metrics")).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return 0.0


async def assert_the_backup_answered(harness: AppHarness, reason: str) -> None:
    handovers = {"from_provider": "openai", "to_provider": "backup", "reason": reason}
    fallbacks_before = await metric(harness, "sitechat_model_fallbacks_total", **handovers)
    ttft = "sitechat_time_to_first_token_seconds_count"
    ttft_before = await metric(harness, ttft, provider="backup")

    frames = await ask(harness)

    assert [f.type for f in frames][:2] == ["start", "sources"]
    complete = frames[-1].data
    assert complete is not None and complete["type"] == "complete", complete
    assert tokens_of(frames) == complete["content"] == "".join(BACKUP_TOKENS)
    usage = complete["usage"]
    assert usage["provider"] == "backup" and usage["model"] == "backup-default"
    assert usage["fallback_from"] == [{"provider": "openai", "reason": reason}]
    assert usage["completion_tokens"] == len(BACKUP_TOKENS)  # the backup's own count

    answer = await stored_answer(harness, frames)
    assert answer.status == "complete" and answer.content == complete["content"]
    assert answer.usage == usage

    assert await metric(harness, "sitechat_model_fallbacks_total", **handovers) == (
        fallbacks_before + 1
    )
    assert await metric(harness, ttft, provider="backup") == ttft_before + 1


async def test_a_refused_connection_hands_the_answer_to_the_backup(
    chain_settings: MakeSettings, backup_server: ScriptedOpenAI
) -> None:
    closed = f"http://127.0.0.1:{free_port()}/v1"
    async with running_app(chain_settings(openai_base_url=closed)) as harness:
        await assert_the_backup_answered(harness, "connect_error")
    assert len(backup_server.requests) == 1


@pytest.mark.parametrize(
    ("status", "reason"), [(500, "server_error"), (503, "server_error"), (429, "rate_limited")]
)
async def test_an_error_status_hands_the_answer_to_the_backup(
    chain_settings: MakeSettings,
    scripted_openai: ScriptedOpenAI,
    backup_server: ScriptedOpenAI,
    status: int,
    reason: str,
) -> None:
    scripted_openai.script(Script(status_error=status))
    async with running_app(chain_settings()) as harness:
        await assert_the_backup_answered(harness, reason)
    assert len(scripted_openai.requests) == 1 and len(backup_server.requests) == 1


async def test_a_primary_silent_past_the_first_token_deadline_hands_the_answer_over(
    chain_settings: MakeSettings, scripted_openai: ScriptedOpenAI
) -> None:
    scripted_openai.script(Script(tokens=PRIMARY_TOKENS, first_token_delay=5.0))
    settings = chain_settings(model_first_token_timeout_seconds=0.5)
    async with running_app(settings) as harness:
        await assert_the_backup_answered(harness, "first_token_timeout")
    # The silent primary's upstream was closed, not left generating.
    record = await scripted_openai.wait_closed(timeout=1.0)
    assert record.closed_by == "client" and record.tokens_sent == 0


async def test_a_failure_after_the_first_token_ends_with_an_error_and_keeps_the_partial_answer(
    chain_settings: MakeSettings, scripted_openai: ScriptedOpenAI, backup_server: ScriptedOpenAI
) -> None:
    scripted_openai.script(Script(tokens=PRIMARY_TOKENS, fail_after=2))
    async with running_app(chain_settings()) as harness:
        frames = await ask(harness)
        answer = await stored_answer(harness, frames)

    assert [f.type for f in frames] == ["start", "sources", "token", "token", "error"]
    error = frames[-1].data
    assert error is not None
    assert error["code"] == "model_interrupted" and error["partial"] is True
    assert answer.status == "interrupted" and answer.content == "Delivery takes "
    assert answer.usage is not None and answer.usage["provider"] == "openai"
    assert "fallback_from" not in answer.usage
    assert backup_server.requests == []  # no silent switch


async def test_when_the_backup_fails_too_the_answer_ends_with_an_error_and_costs_nothing(
    chain_settings: MakeSettings, scripted_openai: ScriptedOpenAI, backup_server: ScriptedOpenAI
) -> None:
    scripted_openai.script(Script(status_error=503))
    backup_server.script(Script(status_error=503))
    async with running_app(chain_settings()) as harness:
        frames = await ask(harness)
        answer = await stored_answer(harness, frames)

    error = frames[-1].data
    assert error is not None and error["code"] == "model_unavailable"
    assert "partial" not in error  # nothing was shown
    assert answer.status == "failed" and answer.content == ""
    assert answer.usage is not None
    assert answer.usage["provider"] == "backup"  # the last one tried
    assert answer.usage["fallback_from"] == [{"provider": "openai", "reason": "server_error"}]
    assert answer.usage["total_tokens"] == 0  # neither server took the request


async def test_a_chatbot_names_its_own_chain_through_the_admin_api(
    chain_settings: MakeSettings, scripted_openai: ScriptedOpenAI, backup_server: ScriptedOpenAI
) -> None:
    """Without a deployment chain, the chatbot's own ``fallback_providers`` are used; an
    unknown provider is 422; null goes back to the deployment's (here: none)."""
    scripted_openai.script(Script(status_error=500))
    async with admin_app(chain_settings(fallback_providers=[]), provider="openai") as admin:
        path = "/api/admin/chatbots/shop"
        unknown = await admin.patch(path, json={"fallback_providers": ["backup", "gemini"]})
        assert unknown.status_code == 422, unknown.text
        assert "gemini" in unknown.json()["error"]
        too_long = await admin.patch(path, json={"fallback_providers": ["x" * 33]})
        assert too_long.status_code == 422

        set_chain = await admin.patch(path, json={"fallback_providers": ["backup"]})
        assert set_chain.status_code == 200, set_chain.text
        assert set_chain.json()["fallback_providers"] == ["backup"]
        frames = await ask(admin.harness)
        assert frames[-1].data is not None
        assert frames[-1].data["usage"]["provider"] == "backup"

        reset = await admin.patch(path, json={"fallback_providers": None})
        assert reset.json()["fallback_providers"] == []
        frames = await ask(admin.harness)
        assert frames[-1].data is not None and frames[-1].data["type"] == "error"

    assert len(backup_server.requests) == 1
