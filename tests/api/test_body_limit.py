"""Request bodies over the size limit get 413 JSON, whether they declare their length or
arrive chunked, before anything is stored; admin uploads have a larger limit."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from sitechat.config import Settings
from tests.support.admin import Admin, admin_app, with_settings

CHAT = "/api/public/chat"
LIMIT = 4096


@pytest.fixture
async def admin(settings: Settings) -> Any:
    async with admin_app(with_settings(settings, max_public_body_bytes=LIMIT)) as running:
        yield running


async def chunks(payload: bytes, size: int = 1000) -> AsyncIterator[bytes]:
    for start in range(0, len(payload), size):
        yield payload[start : start + size]


async def conversations(admin: Admin) -> int:
    total: int = (await admin.get("/api/admin/chatbots/shop/conversations")).json()["total"]
    return total


async def test_a_declared_oversized_body_is_refused_unread(admin: Admin) -> None:
    body = json.dumps({"message": "x" * (LIMIT + 10), "chatbot_id": "shop"})
    response = await admin.client.post(
        CHAT, content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    problem = response.json()
    assert problem["code"] == "payload_too_large" and problem["request_id"]
    assert str(LIMIT) in problem["error"]
    assert await conversations(admin) == 0


async def test_a_chunked_oversized_body_is_refused_when_it_crosses_the_limit(admin: Admin) -> None:
    payload = json.dumps({"message": "y" * (LIMIT * 3), "chatbot_id": "shop"}).encode()
    response = await admin.client.post(
        "/api/public/chat/stream",
        content=chunks(payload),
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"
    assert await conversations(admin) == 0


async def test_bodies_under_the_limit_pass_and_admin_routes_allow_more(admin: Admin) -> None:
    small = json.dumps({"message": "How much is shipping?", "chatbot_id": "shop"}).encode()
    ok = await admin.client.post(
        CHAT, content=chunks(small, 7), headers={"content-type": "application/json"}
    )
    assert ok.status_code == 200
    big_prompt = "Answer briefly. " * 600  # ~9.6 kB: over the public limit, fine for admin
    patched = await admin.patch("/api/admin/chatbots/shop", json={"system_prompt": big_prompt})
    assert patched.status_code == 200 and patched.json()["system_prompt"] == big_prompt
