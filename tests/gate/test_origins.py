"""The gate's origin check and CORS: 403 for an origin the chatbot does not allow, CORS
headers only for allowed origins (echoed, never ``*``), preflights answered likewise."""

from __future__ import annotations

from typing import Any

import pytest

from sitechat.config import Settings
from tests.support.admin import Admin, admin_app

SHOP = "https://shop.example"
CHAT = "/api/public/chat"
STREAM = "/api/public/chat/stream"
QUESTION = {"message": "How much is shipping?", "chatbot_id": "shop"}


@pytest.fixture
async def admin(settings: Settings) -> Any:
    async with admin_app(settings, allowed_origins=(SHOP,)) as running:
        # A second chatbot of the same org allows another origin.
        await running.harness.services.store.create_chatbot(
            running.harness.org_id,
            name="Blog",
            chatbot_id="blog",
            allowed_origins=("https://blog.example",),
        )
        yield running


async def test_a_disallowed_origin_gets_403_before_anything_is_stored(admin: Admin) -> None:
    for origin in (
        "https://evil.example",
        "http://shop.example",
        "null",
        "https://shop.example.evil.com",
    ):
        response = await admin.client.post(STREAM, json=QUESTION, headers={"Origin": origin})
        assert response.status_code == 403, origin
        assert response.headers["content-type"].startswith("application/json")
        assert response.json()["code"] == "origin_not_allowed"
    assert (await admin.get("/api/admin/chatbots/shop/conversations")).json()["total"] == 0


async def test_an_allowed_origin_is_answered_with_its_own_cors_header(admin: Admin) -> None:
    for origin in (SHOP, "https://SHOP.example:443"):
        response = await admin.client.post(CHAT, json=QUESTION, headers={"Origin": origin})
        assert response.status_code == 200, response.text
        assert response.headers["access-control-allow-origin"] == origin
        assert "Origin" in response.headers["vary"]
        assert "Retry-After" in response.headers["access-control-expose-headers"]
        assert "access-control-allow-credentials" not in response.headers


async def test_cors_never_answers_an_origin_no_chatbot_allows(admin: Admin) -> None:
    response = await admin.client.post(
        CHAT, json=QUESTION, headers={"Origin": "https://evil.example"}
    )
    assert "access-control-allow-origin" not in response.headers
    config = await admin.client.get(
        "/api/public/chatbots/shop/config", headers={"Origin": "https://evil.example"}
    )
    assert config.status_code == 403
    assert "access-control-allow-origin" not in config.headers


async def test_another_chatbots_origin_is_refused_by_this_chatbot(admin: Admin) -> None:
    response = await admin.client.post(
        CHAT, json=QUESTION, headers={"Origin": "https://blog.example"}
    )
    assert response.status_code == 403
    blog = await admin.client.post(
        CHAT,
        json={**QUESTION, "chatbot_id": "blog"},
        headers={"Origin": "https://blog.example"},
    )
    assert blog.status_code == 200


async def test_preflights_pass_only_for_allowed_origins(admin: Admin) -> None:
    ask = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type, x-sitechat-visitor-token",
    }
    ok = await admin.client.options(STREAM, headers={"Origin": SHOP, **ask})
    assert ok.status_code == 204
    assert ok.headers["access-control-allow-origin"] == SHOP
    assert "POST" in ok.headers["access-control-allow-methods"]
    allowed_headers = ok.headers["access-control-allow-headers"].lower()
    assert "content-type" in allowed_headers and "x-sitechat-visitor-token" in allowed_headers

    refused = await admin.client.options(STREAM, headers={"Origin": "https://evil.example", **ask})
    assert refused.status_code == 403
    assert "access-control-allow-origin" not in refused.headers


async def test_requests_without_origin_and_same_origin_pages_pass(admin: Admin) -> None:
    # No Origin: not a browser (curl, a server). The visitor token and limits hold those.
    assert (await admin.client.post(CHAT, json=QUESTION)).status_code == 200
    # The deployment's own pages (the demo page) are same-origin.
    same = await admin.client.post(CHAT, json=QUESTION, headers={"Origin": "http://sitechat.test"})
    assert same.status_code == 200


async def test_a_chatbot_without_origins_is_closed_until_the_owner_opens_it(admin: Admin) -> None:
    created = await admin.post("/api/admin/chatbots", json={"id": "quiet", "name": "Quiet"})
    assert created.json()["allowed_origins"] == []
    body = {**QUESTION, "chatbot_id": "quiet"}
    anywhere = {"Origin": "https://anywhere.example"}
    assert (await admin.client.post(CHAT, json=body, headers=anywhere)).status_code == 403

    await admin.patch("/api/admin/chatbots/quiet", json={"allowed_origins": []})
    opened = await admin.client.get("/api/public/chatbots/quiet/config", headers=anywhere)
    assert opened.status_code == 200
    assert opened.headers["access-control-allow-origin"] == "https://anywhere.example"


async def test_admin_routes_carry_no_cors_headers(admin: Admin) -> None:
    response = await admin.client.get(
        "/api/admin/chatbots", headers={**admin.headers, "Origin": SHOP}
    )
    assert response.status_code == 200
    assert "access-control-allow-origin" not in response.headers
