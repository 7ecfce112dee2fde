"""ModelRegistry: provider names to model instances, built lazily from settings."""

from __future__ import annotations

import json
import logging
import re
from typing import Any

import pytest
from pydantic import ValidationError

from sitechat.config import Settings
from sitechat.errors import InvalidInput, ModelUnavailable
from sitechat.llm.base import ChatMessage, ChatModel, GenerationRequest, TextDelta
from sitechat.llm.extractive import ExtractiveModel
from sitechat.llm.local_model import LocalLlamaModel
from sitechat.llm.openai_model import OpenAIChatModel
from sitechat.llm.registry import ModelRegistry
from tests.support.scripted_openai import Script, ScriptedOpenAI

REQUEST = GenerationRequest(messages=[ChatMessage("user", "hi")], question="hi")


def make_settings(**values: Any) -> Settings:
    values.setdefault("openai_api_key", None)
    values.setdefault("default_provider", None)
    return Settings(_env_file=None, **values)


async def answer_text(model: ChatModel) -> str:
    return "".join([i.text async for i in model.stream(REQUEST) if isinstance(i, TextDelta)])


def test_default_is_local_without_an_openai_key() -> None:
    registry = ModelRegistry(make_settings())

    model = registry.get(None)

    assert isinstance(model, LocalLlamaModel)
    assert model.context_window == 2048
    assert model.active_generations == 0  # built, not loaded: nothing runs yet


def test_default_is_openai_with_a_key() -> None:
    registry = ModelRegistry(make_settings(openai_api_key="sk-test", openai_model="gpt-x"))

    model = registry.get(None)

    assert isinstance(model, OpenAIChatModel)
    assert model.default_model == "gpt-x"


def test_configured_default_wins() -> None:
    registry = ModelRegistry(make_settings(default_provider="extractive"))

    assert isinstance(registry.get(None), ExtractiveModel)


def test_one_instance_per_provider() -> None:
    registry = ModelRegistry(make_settings())

    assert registry.get("extractive") is registry.get("extractive")
    assert registry.get("local") is registry.get(None)


def test_openai_without_a_key_is_unavailable_with_a_clear_message() -> None:
    registry = ModelRegistry(make_settings())

    with pytest.raises(ModelUnavailable) as caught:
        registry.get("openai")

    assert "SITECHAT_OPENAI_API_KEY" in caught.value.message


def test_unknown_provider_is_invalid_input() -> None:
    with pytest.raises(InvalidInput):
        ModelRegistry(make_settings()).get("gpt-5-turbo-max")


async def test_an_injected_model_is_used_and_left_open(scripted_openai: ScriptedOpenAI) -> None:
    scripted_openai.script(Script(tokens=["in", "jected"]))
    injected = scripted_openai.chat_model()
    registry = ModelRegistry(make_settings(), overrides={"openai": injected})

    assert registry.get("openai") is injected
    assert await answer_text(registry.get("openai")) == "injected"
    await registry.aclose()
    # Whoever injected a model owns it: the registry did not close it.
    assert await answer_text(injected) == "injected"
    await injected.aclose()


async def test_aclose_closes_the_models_it_built(scripted_openai: ScriptedOpenAI) -> None:
    settings = make_settings(openai_api_key="sk-test", openai_base_url=scripted_openai.base_url)
    registry = ModelRegistry(settings)
    model = registry.get("openai")
    assert await answer_text(model) != ""

    await registry.aclose()

    with pytest.raises(ModelUnavailable):
        await answer_text(model)
    assert len(scripted_openai.requests) == 1


async def test_start_does_not_fail_the_app_when_the_local_model_cannot_load(
    tmp_path: Any,
) -> None:
    missing = str(tmp_path / "missing.gguf")
    registry = ModelRegistry(make_settings(local_model_path=missing))

    await registry.start()  # logged, not raised

    with pytest.raises(ModelUnavailable) as caught:
        await answer_text(registry.get("local"))
    assert missing not in caught.value.message  # no internal paths for public clients
    await registry.aclose()


async def test_start_leaves_remote_defaults_alone(scripted_openai: ScriptedOpenAI) -> None:
    settings = make_settings(openai_api_key="sk-test", openai_base_url=scripted_openai.base_url)
    registry = ModelRegistry(settings)

    await registry.start()

    assert scripted_openai.requests == []
    await registry.aclose()


# --- named OpenAI-compatible endpoints and fallback chains ------------------------------------

VLLM = {"base_url": "http://127.0.0.1:9/v1", "model": "qwen-7b", "context_window": 8192}


async def test_a_named_endpoint_is_an_openai_model_under_its_own_name(
    scripted_openai: ScriptedOpenAI,
) -> None:
    scripted_openai.script(Script(tokens=["from ", "vllm"]))
    endpoint = {"base_url": scripted_openai.base_url, "api_key": "k", "model": "qwen-7b"}
    registry = ModelRegistry(make_settings(openai_compatible_endpoints={"vllm": endpoint}))

    model = registry.get("vllm")

    assert isinstance(model, OpenAIChatModel) and model.name == "vllm"
    assert model.default_model == "qwen-7b" and model.context_window == 16_000
    assert registry.get("vllm") is model
    assert await answer_text(model) == "from vllm"
    request = scripted_openai.requests[-1]
    assert request.body["model"] == "qwen-7b"
    assert request.headers["authorization"] == "Bearer k"
    await registry.aclose()


def test_endpoints_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SITECHAT_OPENAI_COMPATIBLE_ENDPOINTS", json.dumps({"vllm": VLLM}))
    monkeypatch.setenv("SITECHAT_FALLBACK_PROVIDERS", "vllm, extractive")

    settings = Settings(_env_file=None)  # type: ignore[call-arg]

    assert settings.openai_compatible_endpoints["vllm"].context_window == 8192
    assert settings.fallback_providers == ["vllm", "extractive"]
    assert settings.provider_names == ("openai", "local", "extractive", "vllm")
    monkeypatch.setenv("SITECHAT_FALLBACK_PROVIDERS", '["extractive"]')
    assert Settings(_env_file=None).fallback_providers == ["extractive"]  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("endpoints", "fallbacks", "problem"),
    [
        ({"openai": VLLM}, [], "built-in provider"),
        ({"Big Model": VLLM}, [], "lowercase letters"),
        ({"vllm": {**VLLM, "base_url": ""}}, [], "base_url"),
        ({"vllm": {**VLLM, "temperature": 1}}, [], "temperature"),
        ({}, ["vllm"], "unknown providers ['vllm']"),
    ],
)
def test_bad_endpoints_and_fallbacks_are_refused_with_a_clear_error(
    endpoints: dict[str, Any], fallbacks: list[str], problem: str
) -> None:
    with pytest.raises(ValidationError, match=re.escape(problem)):
        make_settings(openai_compatible_endpoints=endpoints, fallback_providers=fallbacks)


def test_an_endpoint_key_is_not_shown() -> None:
    settings = make_settings(openai_compatible_endpoints={"vllm": {**VLLM, "api_key": "s3cr3t"}})

    assert "s3cr3t" not in repr(settings) and "s3cr3t" not in str(settings.model_dump())


def test_a_chain_is_the_provider_then_the_deployment_fallbacks() -> None:
    settings = make_settings(
        openai_compatible_endpoints={"vllm": VLLM}, fallback_providers=["vllm", "extractive"]
    )
    registry = ModelRegistry(settings)

    chain = registry.chain("local", (), first_token_timeout=7.0)

    assert [m.name for m in chain.members] == ["local", "vllm", "extractive"]
    assert chain.first_token_timeout == 7.0
    assert chain.members[1] is registry.get("vllm")


def test_a_chatbots_own_fallbacks_replace_the_deployments_and_repeats_are_dropped() -> None:
    settings = make_settings(
        openai_compatible_endpoints={"vllm": VLLM}, fallback_providers=["vllm"]
    )
    registry = ModelRegistry(settings)

    chain = registry.chain("extractive", ["extractive", "local", "local"], first_token_timeout=1)
    alone = registry.chain("extractive", ["extractive"], first_token_timeout=1)

    assert [m.name for m in chain.members] == ["extractive", "local"]
    assert [m.name for m in alone.members] == ["extractive"]  # its own provider: no fallback


def test_a_fallback_the_deployment_cannot_run_is_left_out_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    registry = ModelRegistry(make_settings(default_provider="extractive"))

    with caplog.at_level(logging.WARNING, logger="sitechat.llm.registry"):
        chain = registry.chain(None, ["openai", "gone", "local"], first_token_timeout=1)

    assert [m.name for m in chain.members] == ["extractive", "local"]
    assert "fallback provider openai left out" in caplog.text
    assert "fallback provider gone left out" in caplog.text


def test_a_primary_the_deployment_cannot_run_still_fails_the_answer() -> None:
    registry = ModelRegistry(make_settings())

    with pytest.raises(ModelUnavailable):
        registry.chain("openai", ["extractive"], first_token_timeout=1)
