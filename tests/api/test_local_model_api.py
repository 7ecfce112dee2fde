"""The whole stack answering through the real local model (SmolLM2-135M via llama.cpp), the
default when no API key is configured."""

from __future__ import annotations

import importlib.util
import os

import pytest

from sitechat.config import Settings
from tests.conftest import running_app
from tests.support.sse_client import parse_body

pytestmark = [
    pytest.mark.local_model,
    pytest.mark.skipif(
        importlib.util.find_spec("llama_cpp") is None and os.environ.get("CI") != "true",
        reason="llama_cpp is not installed (pip install -e '.[local]')",
    ),
]


async def test_default_provider_without_a_key_is_the_local_model_and_it_answers(
    settings: Settings,
) -> None:
    local = settings.model_copy(update={"default_provider": None, "openai_api_key": None})
    assert local.resolved_default_provider == "local"
    async with running_app(local) as h:
        response = await h.client.post(
            "/api/public/chat/stream",
            json={"message": "When does the Berlin store open?", "chatbot_id": "shop"},
        )
    frames = parse_body(response.text)
    assert frames[0].type == "start"
    tokens = [f for f in frames if f.type == "token"]
    complete = frames[-1].data
    assert complete["type"] == "complete", complete
    assert len(tokens) >= 3
    assert complete["usage"]["provider"] == "local"
    assert complete["usage"]["source"] == "provider"
    assert complete["sources"][0]["title"] == "Opening hours"
    assert "9" in complete["content"]
    # The context quality describes the chunks the answer had: the ones in the prompt.
    assert complete["context_quality"]["chunks_used"] == len(complete["sources"])
