"""Regression: a bare session id read and extended anyone's conversation.

Whoever held a session id could read the conversation back, rate its answers and add to it,
even on a chatbot that requires visitor tokens: the token was checked, but not that it was
the session's own visitor's.

Now a conversation begun with a visitor token records its visitor, and on such a chatbot
only that visitor may read, rate or extend it. Another visitor gets 404, the very answer a
session that does not exist gets, so the refusal does not confirm the id. A conversation
bound to no visitor (begun before the chatbot required tokens) becomes the first
token-holding visitor's to use it. Chatbots without visitor tokens have no visitor to bind
to: there, as documented, the session id alone is the key.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from sitechat.config import Settings
from sitechat.errors import ConversationNotFound
from sitechat.gate.visitor_tokens import HEADER
from tests.support.admin import Admin, admin_app

SHOP = "https://shop.example"
QUESTION = {"message": "How much is shipping?", "chatbot_id": "shop"}
GUARDED = {"require_visitor_token": True}


@pytest.fixture
async def admin(settings: Settings) -> AsyncIterator[Admin]:
    async with admin_app(settings, allowed_origins=(SHOP,), policy=GUARDED) as running:
        yield running


async def visitor(admin: Admin, previous: str | None = None) -> dict[str, str]:
    headers = {"Origin": SHOP, **({HEADER: previous} if previous else {})}
    config = await admin.client.get("/api/public/chatbots/shop/config", headers=headers)
    assert config.status_code == 200, config.text
    return {"Origin": SHOP, HEADER: config.json()["visitor_token"]}


def messages_path(session_id: str) -> str:
    return f"/api/public/chatbots/shop/sessions/{session_id}/messages"


async def start_conversation(admin: Admin, headers: dict[str, str]) -> tuple[str, str]:
    answer = await admin.client.post("/api/public/chat", json=QUESTION, headers=headers)
    assert answer.status_code == 200, answer.text
    return answer.json()["session_id"], answer.json()["message_id"]


async def test_another_visitor_cannot_read_rate_or_extend_a_session(admin: Admin) -> None:
    alice, mallory = await visitor(admin), await visitor(admin)
    session_id, message_id = await start_conversation(admin, alice)

    read = await admin.client.get(messages_path(session_id), headers=mallory)
    unknown = await admin.client.get(messages_path("no-such-session"), headers=mallory)
    assert read.status_code == unknown.status_code == 404
    assert read.json()["code"] == unknown.json()["code"] == "conversation_not_found"
    assert read.json()["error"] == unknown.json()["error"]

    rated = await admin.client.post(
        f"{messages_path(session_id)}/{message_id}/feedback", json={"rating": -1}, headers=mallory
    )
    assert rated.status_code == 404

    extended = await admin.client.post(
        "/api/public/chat", json={**QUESTION, "session_id": session_id}, headers=mallory
    )
    assert extended.status_code == 404
    assert extended.json()["code"] == "conversation_not_found"

    own = await admin.client.get(messages_path(session_id), headers=alice)
    assert own.status_code == 200
    assert [m["role"] for m in own.json()["messages"]] == ["user", "assistant"]
    services = admin.harness.services
    conversation = await services.store.get_conversation("shop", session_id)
    assert conversation is not None
    assert await services.archive.feedback(conversation.id) == {}
    assert len(await services.store.list_messages(conversation.id)) == 2


async def test_the_visitor_keeps_their_session_across_token_refreshes(admin: Admin) -> None:
    alice = await visitor(admin)
    session_id, message_id = await start_conversation(admin, alice)
    # After a reload the widget sends its stored (maybe expired) token with the config
    # request, and keeps its visitor id.
    tokens = admin.harness.services.tokens
    claims = tokens.read(alice[HEADER])
    expired, _ = tokens.issue(
        "shop", SHOP, visitor_id=claims.visitor_id, now=time.time() - 2 * tokens.ttl_seconds
    )
    refreshed = await visitor(admin, previous=expired)
    assert tokens.read(refreshed[HEADER]).visitor_id == claims.visitor_id
    read = await admin.client.get(messages_path(session_id), headers=refreshed)
    assert read.status_code == 200
    more = await admin.client.post(
        "/api/public/chat", json={**QUESTION, "session_id": session_id}, headers=refreshed
    )
    assert more.status_code == 200
    rated = await admin.client.post(
        f"{messages_path(session_id)}/{message_id}/feedback", json={"rating": 1}, headers=refreshed
    )
    assert rated.status_code == 204


async def test_a_session_begun_before_tokens_were_required_goes_to_its_first_visitor(
    admin: Admin,
) -> None:
    services = admin.harness.services
    await services.store.update_chatbot("shop", settings={})
    await services.chatbot_changed("shop")
    session_id, _ = await start_conversation(admin, {"Origin": SHOP})  # no token needed
    await services.store.update_chatbot("shop", settings=GUARDED)
    await services.chatbot_changed("shop")

    alice, mallory = await visitor(admin), await visitor(admin)
    assert (await admin.client.get(messages_path(session_id), headers=alice)).status_code == 200
    assert (await admin.client.get(messages_path(session_id), headers=mallory)).status_code == 404


async def test_two_visitors_racing_for_an_unbound_session_cannot_both_have_it(
    admin: Admin,
) -> None:
    store = admin.harness.services.store
    await store.get_or_create_conversation("shop", "unbound-session")
    outcomes = await asyncio.gather(
        *(
            store.get_or_create_conversation("shop", "unbound-session", visitor_id=f"v{i}")
            for i in range(6)
        ),
        return_exceptions=True,
    )
    winners = [o for o in outcomes if not isinstance(o, BaseException)]
    assert len(winners) == 1
    assert all(isinstance(o, ConversationNotFound) for o in outcomes if o not in winners)
    bound = await store.get_conversation("shop", "unbound-session")
    assert bound is not None and bound.visitor_id == winners[0].visitor_id


async def test_without_visitor_tokens_the_session_id_is_the_key(settings: Settings) -> None:
    async with admin_app(settings, allowed_origins=(SHOP,)) as admin:
        session_id, _ = await start_conversation(admin, {"Origin": SHOP})
        read = await admin.client.get(messages_path(session_id), headers={"Origin": SHOP})
        assert read.status_code == 200
        unknown = await admin.client.get(messages_path("no-such-session"))
        assert unknown.status_code == 404
