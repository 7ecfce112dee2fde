"""The local model's dependencies are optional: without them it fails at stream time, clearly."""

from __future__ import annotations

import sys

import pytest

from sitechat.errors import ModelUnavailable
from sitechat.llm.base import ChatMessage, GenerationRequest
from sitechat.llm.local_model import LocalLlamaModel


async def test_without_llama_cpp_streaming_says_to_install_the_local_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # None in sys.modules makes ``import llama_cpp`` fail as if it were not installed.
    monkeypatch.setitem(sys.modules, "llama_cpp", None)
    model = LocalLlamaModel(model_path=None, context_window=2048, max_concurrency=1, threads=None)
    request = GenerationRequest(messages=[ChatMessage("user", "hi")], question="hi")

    with pytest.raises(ModelUnavailable) as caught:
        async for _item in model.stream(request):
            pass

    assert "'local' extra" in caught.value.message
    await model.aclose()
