"""Time from request to first token, through the whole stack (uvicorn, pipeline, storage,
retrieval, SSE) over real loopback HTTP, against the same model called directly.

- scripted: the scripted OpenAI-compatible server answering at once, so the number is
  sitechat's own overhead; baseline: the same server through the SDK directly.
- local: the SmolLM2 model in-process; baseline: ``LocalLlamaModel.stream`` directly with the
  same prompt size.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from statistics import median

import httpx
from openai import AsyncOpenAI

from benchmarks.stats import summary
from sitechat.api.app import create_app
from sitechat.chat.prompt import build_prompt
from sitechat.chat.turn import to_passages
from sitechat.config import Settings
from sitechat.llm.base import GenerationRequest, TextDelta
from sitechat.llm.local_model import LocalLlamaModel
from tests.conftest import seed_chatbot
from tests.support.app_server import serve_app
from tests.support.scripted_openai import Script, ScriptedOpenAI
from tests.support.sse_client import iter_frames

REQUESTS = 20
# The benchmark measures answers, not the limiter: every request comes from 127.0.0.1.
UNLIMITED = {
    "rate_limit_per_ip": "100000/minute",
    "rate_limit_per_session": "100000/minute",
    "rate_limit_per_visitor": "100000/minute",
    "rate_limit_per_chatbot": "100000/minute",
}
QUESTION = "How long do I have to return an item?"
# Distinct questions, so llama.cpp's prompt-prefix cache cannot make repeats look free.
QUESTIONS = [
    "How long do I have to return an item?",
    "Is shipping free?",
    "When does the store open?",
    "How long does delivery take inside the EU?",
    "Where do I drop a return parcel?",
    "Is the Berlin store open on Sundays?",
    "How much is shipping for small orders?",
    "When do orders ship?",
    "Do I get a full refund for returns?",
    "What time does the store close on Saturday?",
]


async def first_token_through_api(base_url: str, n: int) -> list[float]:
    times = []
    async with httpx.AsyncClient(base_url=base_url, timeout=120) as client:
        for i in range(n):
            question = QUESTIONS[i % len(QUESTIONS)]
            started = time.perf_counter()
            async with client.stream(
                "POST", "/api/public/chat/stream", json={"message": question, "chatbot_id": "shop"}
            ) as r:
                first = None
                async for frame in iter_frames(r):
                    if frame.type == "token" and first is None:
                        first = (time.perf_counter() - started) * 1000
                assert first is not None, "no token arrived"
                times.append(first)
    return times


async def scripted(tmp: Path) -> None:
    with ScriptedOpenAI() as server:
        server.script(Script(tokens=["Returns ", "take ", "30 ", "days ", "[1]."]))
        client = AsyncOpenAI(base_url=server.base_url, api_key="k", max_retries=0)
        direct = []
        for i in range(REQUESTS + 3):
            if i == 3:
                direct.clear()  # the first three were warm-up
            started = time.perf_counter()
            stream = await client.chat.completions.create(
                model="m", messages=[{"role": "user", "content": QUESTION}], stream=True
            )
            async for chunk in stream:
                if chunk.choices and chunk.choices[0].delta.content:
                    direct.append((time.perf_counter() - started) * 1000)
                    break
            await stream.close()
        await client.close()

        settings = Settings(
            _env_file=None,
            data_dir=tmp / "scripted",  # type: ignore[call-arg]
            default_provider="openai",
            openai_api_key="k",
            openai_base_url=server.base_url,
            **UNLIMITED,
        )
        app = create_app(settings)
        async with serve_app(app) as running:
            await seed_chatbot(app.state.services)
            await first_token_through_api(running.base_url, 3)  # warm-up
            through = await first_token_through_api(running.base_url, REQUESTS)
    print(summary("scripted model, SDK directly (baseline)", direct))
    print(summary("scripted model, through sitechat", through))
    print(
        f"{'ratio of medians (sitechat / direct)':<44} {median(through) / median(direct):.2f}x"
        f"   sitechat overhead ≈ {median(through) - median(direct):.1f} ms"
    )


async def local(tmp: Path) -> None:
    settings = Settings(
        _env_file=None,
        data_dir=tmp / "local",  # type: ignore[call-arg]
        default_provider="local",
        **UNLIMITED,
    )
    app = create_app(settings, preload_model=True)
    async with serve_app(app) as running:
        services = app.state.services
        await seed_chatbot(services)
        await first_token_through_api(running.base_url, 2)  # warm-up
        through = await first_token_through_api(running.base_url, REQUESTS)
        model = services.models.get("local")
        assert isinstance(model, LocalLlamaModel)
        # Baseline: the model alone, on exactly the prompt the pipeline builds.
        config = await services.store.get_chatbot("shop")
        direct = []
        for i in range(REQUESTS):
            question = QUESTIONS[i % len(QUESTIONS)]
            results = await services.vectors.search("shop", question, 5)
            built = build_prompt(
                config,
                question,
                to_passages(results),
                [],
                context_window=model.context_window,
                max_tokens=400,
            )
            request = GenerationRequest(
                messages=built.messages, question=question, passages=built.passages, max_tokens=8
            )
            started = time.perf_counter()
            stream = model.stream(request)
            async for item in stream:
                if isinstance(item, TextDelta) and item.text:
                    direct.append((time.perf_counter() - started) * 1000)
                    break
            await stream.aclose()
    print(summary("local model, called directly (baseline)", direct))
    print(summary("local model, through sitechat", through))
    print(f"{'ratio of medians (sitechat / direct)':<44} {median(through) / median(direct):.2f}x")


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        await scripted(Path(tmp))
        await local(Path(tmp))
