"""Rate limits through the public API, on the memory storage and on the real Redis: 429
with ``Retry-After`` and ``X-RateLimit-*`` before any stream starts, per IP, per session and
per chatbot, configurable per chatbot, with client IPs taken from trusted proxies only."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from sitechat.config import Settings
from tests.support.admin import Admin, admin_app, with_settings

STREAM = "/api/public/chat/stream"
CHAT = "/api/public/chat"


def question(session_id: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"message": "How much is shipping?", "chatbot_id": "shop"}
    if session_id:
        body["session_id"] = session_id
    return body


def from_ip(ip: str) -> dict[str, str]:
    # The test client's peer is 127.0.0.1, a trusted proxy by default.
    return {"X-Forwarded-For": ip}


@pytest.fixture(params=["memory", "redis"])
def storage(request: pytest.FixtureRequest) -> str | None:
    """None for memory; the test's Redis key prefix for Redis."""
    if request.param == "memory":
        return None
    prefix: str = request.getfixturevalue("redis_prefix")
    return prefix


@asynccontextmanager
async def limited(
    settings: Settings,
    storage: str | None,
    *,
    policy: dict[str, Any] | None = None,
    **overrides: Any,
) -> AsyncIterator[Admin]:
    if storage is not None:
        overrides.update(redis_url="redis://127.0.0.1:6379/0", redis_key_prefix=storage)
    async with admin_app(with_settings(settings, **overrides), policy=policy) as admin:
        yield admin


async def test_over_the_ip_limit_a_stream_is_refused_with_429_before_it_starts(
    settings: Settings, storage: str | None
) -> None:
    async with limited(settings, storage, rate_limit_per_ip="3/minute") as admin:
        for _ in range(3):
            ok = await admin.client.post(STREAM, json=question(), headers=from_ip("203.0.113.7"))
            assert ok.status_code == 200
        before = time.time()
        refused = await admin.client.post(STREAM, json=question(), headers=from_ip("203.0.113.7"))
        assert refused.status_code == 429
        assert refused.headers["content-type"].startswith("application/json")
        assert refused.json()["code"] == "rate_limited"
        headers = refused.headers
        assert 1 <= int(headers["retry-after"]) <= 60
        assert headers["x-ratelimit-limit"] == "3"
        assert headers["x-ratelimit-remaining"] == "0"
        assert before < int(headers["x-ratelimit-reset"]) <= before + 61
        # Only the three admitted questions were stored.
        page = (await admin.get("/api/admin/chatbots/shop/conversations")).json()
        assert page["total"] == 3
        other = await admin.client.post(STREAM, json=question(), headers=from_ip("203.0.113.8"))
        assert other.status_code == 200
        if storage is not None:
            assert admin.harness.services.redis is not None
            assert admin.harness.services.redis.failures == 0


async def test_the_session_limit_holds_one_conversation_back(
    settings: Settings, storage: str | None
) -> None:
    async with limited(settings, storage, rate_limit_per_session="2/minute") as admin:
        for _ in range(2):
            assert (await admin.client.post(CHAT, json=question("session-aaaa"))).status_code == 200
        assert (await admin.client.post(CHAT, json=question("session-aaaa"))).status_code == 429
        assert (await admin.client.post(CHAT, json=question("session-bbbb"))).status_code == 200


async def test_the_chatbot_limit_is_shared_by_every_ip_but_not_spent_by_refused_ones(
    settings: Settings, storage: str | None
) -> None:
    async with limited(
        settings, storage, rate_limit_per_ip="2/minute", rate_limit_per_chatbot="5/minute"
    ) as admin:
        noisy = from_ip("198.51.100.1")
        statuses = [
            (await admin.client.post(CHAT, json=question(), headers=noisy)).status_code
            for _ in range(6)
        ]
        assert statuses == [200, 200, 429, 429, 429, 429]
        # The noisy IP's refused requests did not use up the chatbot's allowance: 3 left.
        others = [
            (
                await admin.client.post(CHAT, json=question(), headers=from_ip(f"198.51.100.{i}"))
            ).status_code
            for i in range(10, 14)
        ]
        assert others == [200, 200, 200, 429]


async def test_a_request_over_the_chatbot_limit_gives_back_the_stream_slot_it_took(
    settings: Settings, storage: str | None
) -> None:
    # The chatbot-wide limit and the stream slot are asked at the same time: a refused
    # request must not keep the slot, or the chatbot's one stream would stay taken.
    async with limited(
        settings, storage, rate_limit_per_chatbot="1/minute", max_streams_per_chatbot=1
    ) as admin:
        assert (await admin.client.post(CHAT, json=question())).status_code == 200
        for _ in range(3):
            refused = await admin.client.post(CHAT, json=question())
            assert refused.status_code == 429 and refused.json()["code"] == "rate_limited"
        await admin.patch(
            "/api/admin/chatbots/shop", json={"rate_limits": {"per_chatbot": "10/minute"}}
        )
        assert (await admin.client.post(CHAT, json=question())).status_code == 200


async def test_a_chatbot_sets_its_own_limits(settings: Settings, storage: str | None) -> None:
    policy = {"rate_limits": {"per_ip": "1/minute"}}
    async with limited(settings, storage, policy=policy) as admin:
        assert (await admin.client.post(CHAT, json=question())).status_code == 200
        refused = await admin.client.post(CHAT, json=question())
        assert refused.status_code == 429 and refused.headers["x-ratelimit-limit"] == "1"
        # Changing it through the admin API applies to the next request.
        await admin.patch("/api/admin/chatbots/shop", json={"rate_limits": {"per_ip": "3/minute"}})
        assert (await admin.client.post(CHAT, json=question())).status_code == 200


async def test_forwarded_for_is_ignored_from_untrusted_peers(settings: Settings) -> None:
    async with limited(settings, None, rate_limit_per_ip="2/minute", trusted_proxies=[]) as admin:
        statuses = [
            (
                await admin.client.post(CHAT, json=question(), headers=from_ip(f"192.0.2.{i}"))
            ).status_code
            for i in range(3)
        ]
    # Every request counts against the peer (127.0.0.1), whatever it claims to forward.
    assert statuses == [200, 200, 429]


async def test_the_default_limit_suits_a_public_widget(settings: Settings) -> None:
    assert settings.rate_limit_per_ip == "20/minute"
    async with limited(settings, None) as admin:
        statuses = [
            (await admin.client.get("/api/public/chatbots/shop/config")).status_code
            for _ in range(3)
        ]
    assert statuses == [200, 200, 200]
