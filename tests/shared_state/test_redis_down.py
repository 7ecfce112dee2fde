"""Redis becoming unreachable (a proxy in front of the real Redis is cut): the public chat
keeps answering on per-process limits with a logged, counted warning; admin writes answer
503 and reads still work; when Redis is back, everything is shared again."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from sitechat.config import Settings
from tests.support.admin import admin_app, with_settings
from tests.support.tcp_proxy import TcpProxy

CHAT = "/api/public/chat"
QUESTION = {"message": "How much is shipping?", "chatbot_id": "shop"}


@pytest.fixture
async def proxy(redis_prefix: str) -> Any:
    running = TcpProxy()
    await running.start()
    try:
        yield running
    finally:
        await running.stop()


async def test_public_chat_survives_and_admin_writes_refuse_while_redis_is_away(
    settings: Settings, proxy: TcpProxy, redis_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    settings = with_settings(
        settings, redis_url=proxy.url, redis_key_prefix=redis_prefix, rate_limit_per_ip="4/minute"
    )
    async with admin_app(settings) as admin:
        redis = admin.harness.services.redis
        assert redis is not None
        assert (await admin.client.post(CHAT, json=QUESTION)).status_code == 200
        assert (
            await admin.patch("/api/admin/chatbots/shop", json={"greeting": "A"})
        ).status_code == 200
        assert redis.failures == 0

        await proxy.stop()
        caplog.set_level(logging.WARNING, logger="sitechat.shared_state.redis_link")
        # Per-process limits now: the window starts afresh in memory, and still holds.
        statuses = [(await admin.client.post(CHAT, json=QUESTION)).status_code for _ in range(5)]
        assert statuses == [200, 200, 200, 200, 429]
        assert redis.failures >= 1
        warnings = [r for r in caplog.records if "redis unreachable" in r.getMessage()]
        assert warnings and all(r.levelno == logging.WARNING for r in warnings)
        assert len(warnings) < redis.failures + 1  # logged at most once per cooldown

        write = await admin.patch("/api/admin/chatbots/shop", json={"greeting": "B"})
        assert write.status_code == 503 and write.json()["code"] == "unavailable"
        created = await admin.post("/api/admin/chatbots", json={"name": "New"})
        assert created.status_code == 503
        read = await admin.get("/api/admin/chatbots/shop")
        assert read.status_code == 200 and read.json()["greeting"] == "A"
        config = await admin.client.get("/api/public/chatbots/shop/config")
        assert config.status_code == 200

        await proxy.start()  # Redis is back on the same address
        for _ in range(50):
            write = await admin.patch("/api/admin/chatbots/shop", json={"greeting": "C"})
            if write.status_code == 200:
                break
            await asyncio.sleep(0.1)
        assert write.status_code == 200
        await asyncio.sleep(redis.cooldown_seconds)
        failures = redis.failures
        assert (
            await admin.client.post(CHAT, json={**QUESTION, "session_id": "after-outage"})
        ).status_code in (200, 429)
        assert redis.failures == failures  # the limiter uses Redis again
        assert (await admin.client.get("/api/public/chatbots/shop/config")).json()[
            "greeting"
        ] == "C"


async def test_redis_unreachable_from_the_start_is_not_fatal(settings: Settings) -> None:
    # Port 9 on loopback: nothing listens there.
    settings = with_settings(settings, redis_url="redis://127.0.0.1:9/0", redis_key_prefix="none:")
    async with admin_app(settings) as admin:
        assert (await admin.client.post(CHAT, json=QUESTION)).status_code == 200
        assert (await admin.patch("/api/admin/org", json={"name": "X"})).status_code == 503
        assert admin.harness.services.redis is not None
        assert admin.harness.services.redis.failures >= 1
