"""Regression: one chatbot open to every origin made CORS answer every origin, deployment-wide.

The CORS layer asked only "does *some* chatbot allow this origin?", so once any chatbot
allowed every origin, any page could read any chatbot's public responses (its config, a
session's messages, answers), even though the gate refused the requests it could check.

Now CORS follows the chatbot being asked: the one in the path, or the one the chat route
read from the body. Only preflights of the two chat routes, which carry no body, are still
answered for any origin some chatbot allows: a preflight only permits the POST, and both
the gate's 403 and the missing ``Access-Control-Allow-Origin`` on its response then hold.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from sitechat.config import Settings
from tests.support.admin import Admin, admin_app

SHOP = "https://shop.example"
EVIL = {"Origin": "https://evil.example"}
PREFLIGHT = {
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "content-type",
}
QUESTION = {"message": "How much is shipping?", "chatbot_id": "shop"}


@pytest.fixture
async def admin(settings: Settings) -> AsyncIterator[Admin]:
    async with admin_app(settings, allowed_origins=(SHOP,)) as running:
        harness = running.harness
        await harness.services.store.create_chatbot(
            harness.org_id, name="Open", chatbot_id="open", settings={"any_origin": True}
        )
        yield running


async def test_a_closed_chatbots_responses_are_unreadable_from_other_origins(
    admin: Admin,
) -> None:
    config = await admin.client.get("/api/public/chatbots/shop/config", headers=EVIL)
    assert config.status_code == 403
    assert "access-control-allow-origin" not in config.headers
    session = await admin.client.get(
        "/api/public/chatbots/shop/sessions/abcdefgh12/messages", headers=EVIL
    )
    assert "access-control-allow-origin" not in session.headers
    for path in ("/api/public/chat", "/api/public/chat/stream"):
        answer = await admin.client.post(path, json=QUESTION, headers=EVIL)
        assert answer.status_code == 403
        assert "access-control-allow-origin" not in answer.headers
        assert "Origin" in answer.headers["vary"]


async def test_preflights_on_a_chatbots_own_paths_follow_that_chatbot(admin: Admin) -> None:
    get = {**PREFLIGHT, "Access-Control-Request-Method": "GET"}
    closed = await admin.client.options("/api/public/chatbots/shop/config", headers={**EVIL, **get})
    assert closed.status_code == 403
    assert "access-control-allow-origin" not in closed.headers
    opened = await admin.client.options("/api/public/chatbots/open/config", headers={**EVIL, **get})
    assert opened.status_code == 204
    assert opened.headers["access-control-allow-origin"] == EVIL["Origin"]
    unknown = await admin.client.options(
        "/api/public/chatbots/nobody/config", headers={**EVIL, **get}
    )
    assert unknown.status_code == 403
    malformed = await admin.client.options(
        "/api/public/chatbots/%2e%2e/config", headers={**EVIL, **get}
    )
    assert malformed.status_code == 403


async def test_the_open_chatbot_stays_readable_from_anywhere(admin: Admin) -> None:
    config = await admin.client.get("/api/public/chatbots/open/config", headers=EVIL)
    assert config.status_code == 200
    assert config.headers["access-control-allow-origin"] == EVIL["Origin"]
    answer = await admin.client.post(
        "/api/public/chat", json={**QUESTION, "chatbot_id": "open"}, headers=EVIL
    )
    assert answer.status_code == 200
    assert answer.headers["access-control-allow-origin"] == EVIL["Origin"]


async def test_chat_preflights_pass_for_origins_some_chatbot_allows(admin: Admin) -> None:
    # The body names the chatbot; the preflight has none. The POST it permits is then
    # refused by the gate, unreadable (see above).
    evil = await admin.client.options("/api/public/chat/stream", headers={**EVIL, **PREFLIGHT})
    assert evil.status_code == 204
    shop = await admin.client.options(
        "/api/public/chat/stream", headers={"Origin": SHOP, **PREFLIGHT}
    )
    assert shop.status_code == 204 and shop.headers["access-control-allow-origin"] == SHOP


async def test_the_allowed_origin_still_reads_its_chatbot(admin: Admin) -> None:
    answer = await admin.client.post("/api/public/chat", json=QUESTION, headers={"Origin": SHOP})
    assert answer.status_code == 200
    assert answer.headers["access-control-allow-origin"] == SHOP
    session_id = answer.json()["session_id"]
    session = await admin.client.get(
        f"/api/public/chatbots/shop/sessions/{session_id}/messages", headers={"Origin": SHOP}
    )
    assert session.status_code == 200
    assert session.headers["access-control-allow-origin"] == SHOP
    # A request refused before it names a chatbot is answered like its preflight.
    invalid = await admin.client.post("/api/public/chat", json={"x": 1}, headers={"Origin": SHOP})
    assert invalid.status_code == 422
    assert invalid.headers["access-control-allow-origin"] == SHOP
