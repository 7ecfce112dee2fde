"""What the rate limiter adds to each public request, with Redis and in memory.

1. The limiter alone: ``RateLimiter.check`` with the stages a chat request runs (per IP, per
   visitor and per session together, then per chatbot: four moving windows, one Redis
   script call), over fresh identities so no window fills. Median and p99 per request, on the
   real Redis at 127.0.0.1:6379 and on memory.
2. Through the app: ``GET /api/public/chatbots/{id}/config`` over an in-process ASGI client
   (no network), with the limiter switched off (the baseline), on memory and on Redis; the
   ratio of medians to the baseline is the limiter's share of a cheap request.
3. The event loop while the Redis limiter runs: a ticker sleeping 1 ms measures how late it
   wakes. Everything is ``await``ed (one script call on ``redis.asyncio``), so the lag stays
   at scheduling noise; a synchronous Redis call would show up here as its round trip.

Keys live under a random prefix and are deleted at the end; nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import secrets
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from statistics import median

import httpx

from benchmarks.stats import percentile, summary
from sitechat.api.app import create_app
from sitechat.config import Settings
from sitechat.gate.policy import parse_limits
from sitechat.gate.rate_limits import ALLOWED, LimitCheck, LimitVerdict, RateLimiter
from sitechat.services import Services
from sitechat.shared_state.redis_link import RedisLink

REDIS_URL = "redis://127.0.0.1:6379/0"
CALLS = 2000
REQUESTS = 1000
WARMUP = 50
ROOMY = parse_limits("1000000/minute")


class NoLimiter(RateLimiter):
    """The baseline: every check passes without touching any storage."""

    async def check(self, stages: object) -> LimitVerdict:  # type: ignore[override]
        return ALLOWED


def chat_stages(i: int) -> list[list[LimitCheck]]:
    return [
        [
            LimitCheck("per_ip", ("bench", f"203.0.{i % 250}.{i % 199}"), ROOMY),
            LimitCheck("per_visitor", ("bench", f"visitor-{i}"), ROOMY),
            LimitCheck("per_session", ("bench", f"session-{i}"), ROOMY),
        ],
        [LimitCheck("per_chatbot", ("bench",), ROOMY)],
    ]


async def timed(calls: int, one: Callable[[int], Awaitable[object]]) -> list[float]:
    for i in range(WARMUP):
        await one(-1 - i)
    samples = []
    for i in range(calls):
        start = time.perf_counter()
        await one(i)
        samples.append((time.perf_counter() - start) * 1000)
        # Let other tasks run between calls, as other requests would: a check that never
        # suspends (the memory windows) would otherwise leave the lag ticker no turn at all.
        await asyncio.sleep(0)
    return samples


async def loop_lag_while(work: Awaitable[object]) -> list[float]:
    """How late (ms) each 1 ms sleep of a ticker wakes while ``work`` runs."""
    lags: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        while not done.is_set():
            start = time.perf_counter()
            await asyncio.sleep(0.001)
            lags.append(max((time.perf_counter() - start) * 1000 - 1.0, 0.0))

    task = asyncio.create_task(ticker())
    try:
        await work
    finally:
        done.set()
        await task
    return lags


async def limiter_alone(prefix: str) -> None:
    memory = RateLimiter(None)
    link = RedisLink(REDIS_URL, prefix=prefix)
    shared = RateLimiter(link)
    on_memory: list[float] = []
    on_redis: list[float] = []

    async def run(limiter: RateLimiter, into: list[float]) -> None:
        into.extend(await timed(CALLS, lambda i: limiter.check(chat_stages(i))))

    try:
        memory_lag = await loop_lag_while(run(memory, on_memory))
        redis_lag = await loop_lag_while(run(shared, on_redis))
        assert link.failures == 0, "Redis failed during the run"
    finally:
        await link.aclose()
    print(summary("limiter alone, memory (4 windows)", on_memory))
    print(summary("limiter alone, Redis (4 windows)", on_redis))
    for label, lags in (("memory", memory_lag), ("Redis", redis_lag)):
        print(
            f"{'event-loop lag while on ' + label:<44} n={len(lags):<4} "
            f"median={median(lags):8.2f} ms  p99={percentile(lags, 99):8.2f} ms  "
            f"worst={max(lags):8.2f} ms"
        )


async def through_the_app(prefix: str) -> None:
    results: dict[str, list[float]] = {}
    for label, redis_url in (("off", ""), ("memory", ""), ("redis", REDIS_URL)):
        with tempfile.TemporaryDirectory() as data:
            settings = Settings(
                _env_file=None,  # type: ignore[call-arg]
                data_dir=Path(data),
                default_provider="extractive",
                redis_url=redis_url,
                redis_key_prefix=prefix,
                rate_limit_config_per_ip="1000000/minute",
            )
            app = create_app(settings)
            async with app.router.lifespan_context(app):
                services: Services = app.state.services
                org = await services.store.create_org("Bench")
                await services.store.create_chatbot(org.id, name="Bench", chatbot_id="bench")
                if label == "off":
                    services.gate.limiter = NoLimiter(None)
                transport = httpx.ASGITransport(app=app)
                async with httpx.AsyncClient(transport=transport, base_url="http://b") as client:

                    async def one(i: int) -> None:
                        response = await client.get(
                            "/api/public/chatbots/bench/config",
                            headers={"X-Forwarded-For": f"198.51.100.{i % 250}"},
                        )
                        assert response.status_code == 200

                    results[label] = await timed(REQUESTS, one)
    base = median(results["off"])
    for label, title in (
        ("off", "config request, limiter off (baseline)"),
        ("memory", "config request, limiter on memory"),
        ("redis", "config request, limiter on Redis"),
    ):
        values = results[label]
        print(summary(title, values))
        if label != "off":
            added = median(values) - base
            print(
                f"{'  added per request (median, p99 vs baseline)':<44} "
                f"{added:+.2f} ms, "
                f"{percentile(values, 99) - percentile(results['off'], 99):+.2f} ms; "
                f"ratio of medians {median(values) / base:.2f}x"
            )


async def main() -> None:
    prefix = f"sitechat-bench:{secrets.token_hex(6)}:"
    link = RedisLink(REDIS_URL, prefix=prefix)
    try:
        if not await link.ping():
            print(f"Redis at {REDIS_URL} is not reachable: skipping the limiter benchmark")
            return
        await limiter_alone(prefix)
        await through_the_app(prefix)
    finally:
        keys = [key async for key in link.client.scan_iter(match=f"{prefix}*", count=1000)]
        if keys:
            await link.client.delete(*keys)
        await link.aclose()


if __name__ == "__main__":
    asyncio.run(main())
