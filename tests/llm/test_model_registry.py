"""ModelRegistry: provider names to model instances, built lazily from settings."""

from __future__ import annotations

from typing import Any

import pytest

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
