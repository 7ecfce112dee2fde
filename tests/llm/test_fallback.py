"""FallbackChain against two real OpenAI-compatible upstreams (scripted servers on loopback).

The primary fails in each way that hands an answer over (refused connection, 5xx, 429,
silence past the first-token deadline) and the backup answers; a failure after the first
token is the caller's, with no switch. What the pipeline makes of it (usage, stored
message, SSE) is in ``tests/api/test_provider_fallback.py``.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import AsyncIterator

import anyio
import pytest
from prometheus_client import REGISTRY

from sitechat.errors import ModelInterrupted, ModelUnavailable
from sitechat.llm.base import (
    ChatMessage,
    ContextPassage,
    GenerationRequest,
    StreamItem,
    TextDelta,
    Usage,
)
from sitechat.llm.extractive import ExtractiveModel
from sitechat.llm.fallback import FallbackChain
from sitechat.llm.local_model import LocalLlamaModel
from sitechat.llm.openai_model import OpenAIChatModel
from tests.support.processes import free_port
from tests.support.scripted_openai import Script, ScriptedOpenAI

REQUEST = GenerationRequest(
    messages=[
        ChatMessage("system", "Answer from the context.\n[1] The office opens at 9 am."),
        ChatMessage("user", "When does the office open?"),
    ],
    question="When does the office open?",
    model="primary-special",  # the chatbot's own model: never sent to a fallback
    max_tokens=50,
)
PRIMARY_TOKENS = ["It ", "opens ", "at ", "9 am."]
BACKUP_TOKENS = ["Backup: ", "9 am."]
DEADLINE = 10.0


@pytest.fixture
async def backup_server() -> AsyncIterator[ScriptedOpenAI]:
    async with ScriptedOpenAI(model="backup-default") as server:
        server.script(Script(tokens=BACKUP_TOKENS))
        yield server


@pytest.fixture
async def primary(scripted_openai: ScriptedOpenAI) -> AsyncIterator[OpenAIChatModel]:
    model = scripted_openai.chat_model()
    yield model
    await model.aclose()


@pytest.fixture
async def backup(backup_server: ScriptedOpenAI) -> AsyncIterator[OpenAIChatModel]:
    model = OpenAIChatModel(
        api_key="sk-backup",
        base_url=backup_server.base_url,
        model="backup-default",
        timeout=5.0,
        context_window=8_000,
        name="backup",
    )
    yield model
    await model.aclose()


async def collect(chain: FallbackChain) -> tuple[str, list[Usage]]:
    texts: list[str] = []
    usages: list[Usage] = []
    with anyio.fail_after(DEADLINE):
        async for item in chain.stream(REQUEST):
            if isinstance(item, TextDelta):
                texts.append(item.text)
            else:
                usages.append(item)
    return "".join(texts), usages


def fallbacks_counted(from_provider: str, to_provider: str, reason: str) -> float:
    labels = {"from_provider": from_provider, "to_provider": to_provider, "reason": reason}
    return REGISTRY.get_sample_value("sitechat_model_fallbacks_total", labels) or 0.0


def assert_backup_answered(
    chain: FallbackChain, backup: OpenAIChatModel, backup_server: ScriptedOpenAI
) -> None:
    assert chain.answered is backup and chain.name == "backup"
    # The backup is asked with its own default model, not the chatbot's primary model.
    assert [r.body["model"] for r in backup_server.requests] == ["backup-default"]


async def test_the_primary_answers_when_it_can_and_the_backup_is_never_called(
    primary: OpenAIChatModel,
    backup: OpenAIChatModel,
    scripted_openai: ScriptedOpenAI,
    backup_server: ScriptedOpenAI,
) -> None:
    scripted_openai.script(Script(tokens=PRIMARY_TOKENS))
    chain = FallbackChain([primary, backup], first_token_timeout=5.0)

    text, usages = await collect(chain)

    assert text == "".join(PRIMARY_TOKENS) and len(usages) == 1
    assert chain.answered is primary and chain.name == "openai" and chain.attempts == []
    assert scripted_openai.requests[-1].body["model"] == "primary-special"
    assert backup_server.requests == []


async def test_a_refused_connection_hands_the_answer_to_the_next_model(
    backup: OpenAIChatModel, backup_server: ScriptedOpenAI
) -> None:
    closed = OpenAIChatModel(
        api_key="sk-test",
        base_url=f"http://127.0.0.1:{free_port()}/v1",
        model="gpt-test",
        timeout=5.0,
        context_window=16_000,
    )
    before = fallbacks_counted("openai", "backup", "connect_error")
    chain = FallbackChain([closed, backup], first_token_timeout=5.0)
    try:
        text, usages = await collect(chain)
    finally:
        await closed.aclose()

    assert text == "".join(BACKUP_TOKENS)
    assert usages[0].model == "backup-default"
    assert_backup_answered(chain, backup, backup_server)
    assert chain.attempts == [("openai", "connect_error")]
    assert fallbacks_counted("openai", "backup", "connect_error") == before + 1


@pytest.mark.parametrize(
    ("status", "reason"), [(500, "server_error"), (503, "server_error"), (429, "rate_limited")]
)
async def test_an_error_status_before_the_first_token_hands_the_answer_over(
    primary: OpenAIChatModel,
    backup: OpenAIChatModel,
    scripted_openai: ScriptedOpenAI,
    backup_server: ScriptedOpenAI,
    status: int,
    reason: str,
) -> None:
    scripted_openai.script(Script(status_error=status))
    before = fallbacks_counted("openai", "backup", reason)
    chain = FallbackChain([primary, backup], first_token_timeout=5.0)

    text, _usages = await collect(chain)

    assert text == "".join(BACKUP_TOKENS)
    assert_backup_answered(chain, backup, backup_server)
    assert chain.attempts == [("openai", reason)]
    assert len(scripted_openai.requests) == 1  # asked once, not retried
    assert fallbacks_counted("openai", "backup", reason) == before + 1


async def test_a_primary_silent_past_the_first_token_deadline_is_closed_and_handed_over(
    primary: OpenAIChatModel,
    backup: OpenAIChatModel,
    scripted_openai: ScriptedOpenAI,
    backup_server: ScriptedOpenAI,
) -> None:
    # The stream opens (HTTP 200 and a role chunk with empty content), then nothing: only
    # non-empty text counts as the first token.
    scripted_openai.script(Script(tokens=PRIMARY_TOKENS, first_token_delay=5.0))
    chain = FallbackChain([primary, backup], first_token_timeout=0.3)
    started = time.monotonic()

    text, _usages = await collect(chain)

    assert text == "".join(BACKUP_TOKENS)
    assert time.monotonic() - started < 2.0
    assert_backup_answered(chain, backup, backup_server)
    assert chain.attempts == [("openai", "first_token_timeout")]
    # The silent upstream was let go, not left generating.
    record = await scripted_openai.wait_closed(timeout=1.0)
    assert record.closed_by == "client" and record.tokens_sent == 0


async def test_a_failure_after_the_first_token_is_not_handed_over(
    primary: OpenAIChatModel,
    backup: OpenAIChatModel,
    scripted_openai: ScriptedOpenAI,
    backup_server: ScriptedOpenAI,
) -> None:
    scripted_openai.script(Script(tokens=PRIMARY_TOKENS, fail_after=2))
    chain = FallbackChain([primary, backup], first_token_timeout=5.0)
    texts: list[str] = []

    with pytest.raises(ModelInterrupted), anyio.fail_after(DEADLINE):
        async for item in chain.stream(REQUEST):
            assert isinstance(item, TextDelta)
            texts.append(item.text)

    assert texts == PRIMARY_TOKENS[:2]  # what was shown stays the primary's alone
    assert chain.answered is primary and chain.name == "openai" and chain.attempts == []
    assert backup_server.requests == []


async def test_a_stall_after_the_first_token_is_not_cut_by_the_first_token_deadline(
    primary: OpenAIChatModel,
    backup: OpenAIChatModel,
    scripted_openai: ScriptedOpenAI,
    backup_server: ScriptedOpenAI,
) -> None:
    scripted_openai.script(Script(tokens=PRIMARY_TOKENS[:2], token_gap=1.5))
    chain = FallbackChain([primary, backup], first_token_timeout=1.0)

    text, _usages = await collect(chain)

    assert text == "".join(PRIMARY_TOKENS[:2])
    assert backup_server.requests == []


async def test_when_every_model_fails_the_last_error_is_raised(
    primary: OpenAIChatModel,
    backup: OpenAIChatModel,
    scripted_openai: ScriptedOpenAI,
    backup_server: ScriptedOpenAI,
) -> None:
    scripted_openai.script(Script(status_error=503))
    backup_server.script(Script(status_error=429))
    chain = FallbackChain([primary, backup], first_token_timeout=5.0)

    with pytest.raises(ModelUnavailable) as caught:
        await collect(chain)

    assert caught.value.reason == "rate_limited"
    assert "busy" in caught.value.message  # the last model's own (safe) message
    # Neither server took the request: nothing to charge.
    assert caught.value.request_accepted is False
    assert chain.answered is None and chain.name == "backup"
    assert chain.attempts == [("openai", "server_error")]


async def test_a_failed_model_that_may_have_read_the_prompt_makes_a_total_failure_chargeable(
    primary: OpenAIChatModel,
    backup: OpenAIChatModel,
    scripted_openai: ScriptedOpenAI,
    backup_server: ScriptedOpenAI,
) -> None:
    """The primary took the request and stayed silent (it may bill for the prompt); the
    backup refused it. One prompt is charged, as for a single model that timed out."""
    scripted_openai.script(Script(tokens=PRIMARY_TOKENS, first_token_delay=5.0))
    backup_server.script(Script(status_error=500))
    chain = FallbackChain([primary, backup], first_token_timeout=0.3)

    with pytest.raises(ModelUnavailable) as caught:
        await collect(chain)

    assert caught.value.request_accepted is True
    assert chain.attempts == [("openai", "first_token_timeout")]


async def test_three_members_hand_over_twice_and_the_last_answers(
    primary: OpenAIChatModel,
    backup: OpenAIChatModel,
    scripted_openai: ScriptedOpenAI,
    backup_server: ScriptedOpenAI,
) -> None:
    scripted_openai.script(Script(status_error=429))
    backup_server.script(Script(status_error=502))
    last = ExtractiveModel()
    chain = FallbackChain([primary, backup, last], first_token_timeout=5.0)

    request = dataclasses.replace(
        REQUEST, passages=[ContextPassage(1, "Office", "The office opens at 9 am.")]
    )

    with anyio.fail_after(DEADLINE):
        items: list[StreamItem] = [item async for item in chain.stream(request)]

    assert chain.answered is last and chain.name == "extractive"
    assert chain.attempts == [("openai", "rate_limited"), ("backup", "server_error")]
    text = "".join(i.text for i in items if isinstance(i, TextDelta))
    assert text == "The office opens at 9 am. [1]"
    assert isinstance(items[-1], Usage)


async def test_closing_the_chain_mid_answer_closes_the_answering_upstream(
    primary: OpenAIChatModel,
    backup: OpenAIChatModel,
    scripted_openai: ScriptedOpenAI,
    backup_server: ScriptedOpenAI,
) -> None:
    scripted_openai.script(Script(status_error=500))
    many = [f" t{i}" for i in range(200)]
    backup_server.script(Script(tokens=many, token_gap=0.02))
    chain = FallbackChain([primary, backup], first_token_timeout=5.0)

    stream = chain.stream(REQUEST)
    try:
        with anyio.fail_after(5):
            first = await anext(stream)
    finally:
        await stream.aclose()

    assert first == TextDelta(" t0")
    record = await backup_server.wait_closed(timeout=1.0)
    assert record.closed_by == "client" and record.tokens_sent < len(many)


async def test_each_stream_starts_afresh(
    primary: OpenAIChatModel,
    backup: OpenAIChatModel,
    scripted_openai: ScriptedOpenAI,
) -> None:
    scripted_openai.enqueue(Script(status_error=500), Script(tokens=PRIMARY_TOKENS))
    chain = FallbackChain([primary, backup], first_token_timeout=5.0)

    await collect(chain)
    assert chain.answered is backup
    text, _usages = await collect(chain)

    assert text == "".join(PRIMARY_TOKENS)
    assert chain.answered is primary and chain.name == "openai" and chain.attempts == []


def test_the_prompt_is_sized_for_the_smallest_window_and_the_strictest_caps() -> None:
    big = OpenAIChatModel(
        api_key="sk", base_url="http://127.0.0.1:9/v1", model="m", timeout=1, context_window=128_000
    )
    small = LocalLlamaModel(  # built, not loaded: only its sizes are read
        model_path=None, context_window=2048, max_concurrency=1, threads=None
    )
    chain = FallbackChain([big, ExtractiveModel(context_window=8192), small], first_token_timeout=1)

    assert chain.primary is big and chain.name == "openai"
    assert chain.context_window == 2048
    assert (chain.max_passages, chain.max_answer_tokens) == (3, 256)
    assert FallbackChain([big], first_token_timeout=1).max_passages is None


def test_a_chain_needs_a_model() -> None:
    with pytest.raises(ValueError, match="at least one"):
        FallbackChain([], first_token_timeout=1)
