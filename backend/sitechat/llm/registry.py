"""Which ``ChatModel`` answers for a provider name; built lazily from ``Settings``.

One instance per provider lives for the life of the app (built in the lifespan, closed by
``aclose()``), so HTTP connection pools and loaded weights are shared by every chatbot.
Tests inject their own models by construction: ``ModelRegistry(settings, overrides={...})``.

Provider names are the built-in ``openai``, ``local`` and ``extractive``, and the names of
``Settings.openai_compatible_endpoints`` (each another ``OpenAIChatModel`` under its own
name). ``chain`` makes a turn's ``FallbackChain`` from a provider and its fallbacks.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from sitechat.config import Settings
from sitechat.errors import InvalidInput, ModelUnavailable
from sitechat.llm.base import ChatModel
from sitechat.llm.extractive import ExtractiveModel
from sitechat.llm.fallback import FallbackChain
from sitechat.llm.local_model import LocalLlamaModel
from sitechat.llm.openai_model import OpenAIChatModel

logger = logging.getLogger(__name__)

OPENAI_NOT_CONFIGURED = (
    "The OpenAI provider is not configured: set SITECHAT_OPENAI_API_KEY, or choose another "
    "provider."
)


class ModelRegistry:
    def __init__(
        self, settings: Settings, *, overrides: Mapping[str, ChatModel] | None = None
    ) -> None:
        self._settings = settings
        self._overrides = dict(overrides or {})
        # Only models built here are closed here; injected ones belong to whoever made them.
        self._built: dict[str, ChatModel] = {}

    @property
    def default_provider(self) -> str:
        return self._settings.resolved_default_provider

    def get(self, provider: str | None = None) -> ChatModel:
        """The model for ``provider`` (``None``: the deployment's default).

        Raises ``InvalidInput`` for an unknown name and ``ModelUnavailable`` for a provider
        this deployment cannot run (OpenAI without a key).
        """
        name = provider or self.default_provider
        if name in self._overrides:
            return self._overrides[name]
        if name not in self._settings.provider_names:
            known = ", ".join(self._settings.provider_names)
            raise InvalidInput(f"Unknown model provider {name!r}; choose one of: {known}.")
        model = self._built.get(name)
        if model is None:
            model = self._build(name)
            self._built[name] = model
        return model

    def chain(
        self, provider: str | None, fallbacks: Sequence[str], *, first_token_timeout: float
    ) -> FallbackChain:
        """A turn's chain: ``provider``'s model, then each of ``fallbacks`` (empty: the
        deployment's ``fallback_providers``) that is not already in it.

        The primary raises as ``get`` does. A fallback this deployment cannot run (unknown,
        or OpenAI without a key) is left out with a warning: a fallback is a spare, and a
        missing spare must not fail the answer the primary can give.
        """
        primary_name = provider or self.default_provider
        members = [self.get(primary_name)]
        seen = {primary_name}
        for name in fallbacks or self._settings.fallback_providers:
            if name in seen:
                continue
            seen.add(name)
            try:
                model = self.get(name)
            except (InvalidInput, ModelUnavailable) as exc:
                logger.warning("fallback provider %s left out: %s", name, exc.message)
                continue
            if all(model is not member for member in members):
                members.append(model)
        return FallbackChain(members, first_token_timeout=first_token_timeout)

    async def start(self) -> None:
        """Preload the default provider's weights if it runs locally.

        A failure is logged, not raised: the app still serves the providers that work, and
        requests for this one report ``ModelUnavailable``.
        """
        name = self.default_provider
        if name in self._overrides or name != "local":
            return
        model = self.get(name)
        if isinstance(model, LocalLlamaModel):
            await model.preload()

    async def aclose(self) -> None:
        built, self._built = self._built, {}
        for name, model in built.items():
            try:
                await model.aclose()
            except Exception:
                logger.exception("closing model provider %s failed", name)

    def _build(self, name: str) -> ChatModel:
        s = self._settings
        if name == "openai":
            if s.openai_api_key is None or not s.openai_api_key.get_secret_value():
                raise ModelUnavailable(OPENAI_NOT_CONFIGURED)
            return OpenAIChatModel(
                api_key=s.openai_api_key.get_secret_value(),
                base_url=s.openai_base_url or None,
                model=s.openai_model,
                timeout=s.openai_timeout_seconds,
                context_window=s.openai_context_window,
                max_connections=s.openai_max_connections,
            )
        endpoint = s.openai_compatible_endpoints.get(name)
        if endpoint is not None:
            return OpenAIChatModel(
                # Servers without keys (vLLM, Ollama) accept any; the SDK insists on one.
                api_key=endpoint.api_key.get_secret_value() or "none",
                base_url=endpoint.base_url,
                model=endpoint.model,
                timeout=endpoint.timeout_seconds or s.openai_timeout_seconds,
                context_window=endpoint.context_window,
                name=name,
                max_connections=s.openai_max_connections,
            )
        if name == "local":
            return LocalLlamaModel(
                model_path=s.local_model_path or None,
                context_window=s.local_context_window,
                max_concurrency=s.local_max_concurrency,
                threads=s.local_threads,
                max_passages=s.local_prompt_passages,
                max_answer_tokens=s.local_max_tokens,
                keep_facts=True,
            )
        return ExtractiveModel()
