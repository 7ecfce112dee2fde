"""Answers that outlive their connection: what recording, resuming and stopping cost.

All against the scripted OpenAI-compatible server over real loopback HTTP, with Redis
(``SITECHAT_TEST_REDIS_URL``, default the local one) under a key prefix of its own:

- first-token time with frame recording on vs off (``record_answers``), interleaved in the
  same run so the machine's noise hits both alike; the ratio is the cost of recording;
- time from a reconnect (the resume request) to its first token frame, for an answer whose
  next frames are already recorded, in the generating process and through a second app
  sharing Redis (the cross-process path reads the Redis Stream);
- the stop delay: from the stop request to the upstream stream's close, at the upstream;
- Redis memory per recorded answer (``MEMORY USAGE`` of its stream), for a 40-token answer.
"""

from __future__ import annotations

import asyncio
import secrets
import tempfile
import time
from pathlib import Path
from statistics import median
from typing import Any

import httpx
from redis.asyncio import Redis

from benchmarks.stats import summary
from benchmarks.ttft import QUESTIONS, UNLIMITED
from sitechat.api.app import create_app
from sitechat.config import Settings
from tests.conftest import seed_chatbot
from tests.support.answers import answer_path
from tests.support.app_server import serve_app
from tests.support.redis import REDIS_URL, delete_prefix
from tests.support.scripted_openai import Script, ScriptedOpenAI
from tests.support.sse_client import iter_frames

ROUNDS = 20
TOKENS = [f"word{i} " for i in range(40)]


def _settings(tmp: Path, name: str, server: ScriptedOpenAI, **extra: Any) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        data_dir=tmp / name,
        default_provider="openai",
        openai_api_key="k",
        openai_base_url=server.base_url,
        query_rewrite_providers=[],
        **UNLIMITED,
        **extra,
    )


async def _first_token(client: httpx.AsyncClient, question: str) -> tuple[float, dict[str, Any]]:
    started = time.perf_counter()
    first = None
    start: dict[str, Any] = {}
    async with client.stream(
        "POST", "/api/public/chat/stream", json={"message": question, "chatbot_id": "shop"}
    ) as r:
        async for frame in iter_frames(r):
            if frame.type == "start" and frame.data:
                start = frame.data
            if frame.type == "token" and first is None:
                first = (time.perf_counter() - started) * 1000
    assert first is not None
    return first, start


async def recording_on_vs_off(tmp: Path, server: ScriptedOpenAI, prefix: str) -> None:
    server.script(Script(tokens=["Returns ", "take ", "30 ", "days."]))
    on_app = create_app(
        _settings(tmp, "on", server, redis_url=REDIS_URL, redis_key_prefix=prefix + "on:")
    )
    off_app = create_app(
        _settings(
            tmp,
            "off",
            server,
            redis_url=REDIS_URL,
            redis_key_prefix=prefix + "off:",
            record_answers=False,
        )
    )
    on_times: list[float] = []
    off_times: list[float] = []
    async with serve_app(on_app) as on, serve_app(off_app) as off:
        await seed_chatbot(on_app.state.services)
        await seed_chatbot(off_app.state.services)
        async with (
            httpx.AsyncClient(base_url=on.base_url, timeout=60) as on_client,
            httpx.AsyncClient(base_url=off.base_url, timeout=60) as off_client,
        ):
            for i in range(ROUNDS + 3):
                question = QUESTIONS[i % len(QUESTIONS)]
                pair = [(on_client, on_times), (off_client, off_times)]
                if i % 2:
                    pair.reverse()
                for client, times in pair:
                    took, _ = await _first_token(client, question)
                    if i >= 3:  # the first three were warm-up
                        times.append(took)
    print(summary("first token, recording off (baseline)", off_times))
    print(summary("first token, recording on (Redis Stream)", on_times))
    print(f"{'ratio of medians (on / off)':<44} {median(on_times) / median(off_times):.2f}x")


async def reconnect_and_stop(tmp: Path, server: ScriptedOpenAI, prefix: str) -> None:
    # Two apps sharing Redis and one database (a SQLite file both open), each with its own
    # index: B only resumes, and resuming never searches.
    shared = {
        "redis_url": REDIS_URL,
        "redis_key_prefix": prefix + "shared:",
        "database_url": f"sqlite+aiosqlite:///{tmp / 'shared.db'}",
    }
    app_a = create_app(_settings(tmp, "a", server, **shared))
    app_b = create_app(_settings(tmp, "b", server, **shared))
    same: list[float] = []
    other: list[float] = []
    stop_delays: list[float] = []
    memory: list[int] = []
    redis = Redis.from_url(REDIS_URL)
    async with serve_app(app_a) as a, serve_app(app_b) as b:
        await seed_chatbot(app_a.state.services)
        async with httpx.AsyncClient(base_url=a.base_url, timeout=60) as client:
            for i in range(ROUNDS):
                # A slow answer: after 3 tokens the visitor's network drops; the answer goes
                # on, and the visitor comes back 10 frames behind.
                server.script(Script(tokens=TOKENS, token_gap=0.002))
                _, start = await _first_token(client, QUESTIONS[i % len(QUESTIONS)])
                path = answer_path("shop", start["session_id"], start["message_id"], "stream")
                for base, times in ((a.base_url, same), (b.base_url, other)):
                    started = time.perf_counter()
                    async with (
                        httpx.AsyncClient(base_url=base, timeout=60) as resume,
                        resume.stream("GET", path, params={"after": 5}) as r,
                    ):
                        async for frame in iter_frames(r):
                            if frame.type == "token":
                                times.append((time.perf_counter() - started) * 1000)
                                break
                key = f"{prefix}shared:answer:{start['message_id']}"
                await app_a.state.services.answers.runs.wait_idle()
                usage = await redis.memory_usage(key)
                if usage:
                    memory.append(int(usage))
            for i in range(ROUNDS):
                server.script(Script(tokens=TOKENS, stall_after=3))
                async with client.stream(
                    "POST",
                    "/api/public/chat/stream",
                    json={"message": QUESTIONS[i % len(QUESTIONS)], "chatbot_id": "shop"},
                ) as r:
                    seen = 0
                    async for frame in iter_frames(r):
                        if frame.type == "start" and frame.data:
                            start = frame.data
                        if frame.type == "token":
                            seen += 1
                            if seen == 3:
                                stop_path = answer_path(
                                    "shop", start["session_id"], start["message_id"], "stop"
                                )
                                sent = time.monotonic()
                                await client.post(stop_path)
                record = await server.wait_closed(timeout=5)
                assert record.closed_at is not None
                stop_delays.append((record.closed_at - sent) * 1000)
    await redis.aclose()
    print(summary("reconnect -> next token, same process", same))
    print(summary("reconnect -> next token, other process", other))
    print(summary("stop request -> upstream closed", stop_delays))
    if memory:
        print(
            f"{'Redis memory per recorded answer':<44} median {median(memory) / 1024:.1f} KiB "
            f"({len(TOKENS)} tokens, {len(TOKENS) + 3} frames)"
        )


async def main() -> None:
    prefix = f"sitechat-bench:{secrets.token_hex(4)}:"
    try:
        with tempfile.TemporaryDirectory() as tmp, ScriptedOpenAI() as server:
            await recording_on_vs_off(Path(tmp), server, prefix)
            await reconnect_and_stop(Path(tmp), server, prefix)
    finally:
        await delete_prefix(prefix)


if __name__ == "__main__":
    asyncio.run(main())
