"""Visitor tokens: issued by the config endpoint when the chatbot requires them, bound to
chatbot, origin and visitor, short-lived, required by the chat endpoints, and the key of
the per-visitor limit."""

from __future__ import annotations

import os
import stat
import time
from typing import Any

import pytest

from sitechat.config import Settings
from sitechat.gate.visitor_tokens import (
    HEADER,
    VisitorTokenExpired,
    VisitorTokenInvalid,
    VisitorTokenRequired,
    VisitorTokens,
    load_or_create_secret,
)
from tests.support.admin import Admin, admin_app, with_settings

SHOP = "https://shop.example"
CHAT = "/api/public/chat"
CONFIG = "/api/public/chatbots/shop/config"
QUESTION = {"message": "How much is shipping?", "chatbot_id": "shop"}
GUARDED = {"require_visitor_token": True}


@pytest.fixture
async def admin(settings: Settings) -> Any:
    settings = with_settings(settings, rate_limit_per_visitor="2/minute")
    async with admin_app(
        settings, allowed_origins=(SHOP, "https://other.example"), policy=GUARDED
    ) as running:
        yield running


async def token_for(admin: Admin, origin: str = SHOP, previous: str | None = None) -> str:
    headers = {"Origin": origin}
    if previous:
        headers[HEADER] = previous
    response = await admin.client.get(CONFIG, headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["visitor_token_expires_at"] > time.time() + 60
    token: str = body["visitor_token"]
    return token


async def test_chat_needs_the_token_the_config_endpoint_issued(admin: Admin) -> None:
    missing = await admin.client.post(CHAT, json=QUESTION, headers={"Origin": SHOP})
    assert missing.status_code == 401
    assert missing.json()["code"] == "visitor_token_required"

    token = await token_for(admin)
    ok = await admin.client.post(CHAT, json=QUESTION, headers={"Origin": SHOP, HEADER: token})
    assert ok.status_code == 200, ok.text


async def test_a_token_only_works_for_its_chatbot_and_origin(admin: Admin) -> None:
    token = await token_for(admin)
    elsewhere = await admin.client.post(
        CHAT, json=QUESTION, headers={"Origin": "https://other.example", HEADER: token}
    )
    assert elsewhere.status_code == 401 and elsewhere.json()["code"] == "visitor_token_invalid"
    # Forged outside a browser without Origin: still bound to the origin it was issued for.
    bare = await admin.client.post(CHAT, json=QUESTION, headers={HEADER: token})
    assert bare.status_code == 401

    services = admin.harness.services
    await services.store.create_chatbot(
        admin.harness.org_id,
        name="Twin",
        chatbot_id="twin",
        allowed_origins=(SHOP,),
        settings=GUARDED,
    )
    twin = await admin.client.post(
        CHAT, json={**QUESTION, "chatbot_id": "twin"}, headers={"Origin": SHOP, HEADER: token}
    )
    assert twin.status_code == 401

    tampered = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    forged = await admin.client.post(
        CHAT, json=QUESTION, headers={"Origin": SHOP, HEADER: tampered}
    )
    assert forged.status_code == 401


async def test_an_expired_token_is_refused_and_a_fresh_one_keeps_the_visitor(admin: Admin) -> None:
    tokens = admin.harness.services.tokens
    old, claims = tokens.issue("shop", SHOP, now=time.time() - 2 * tokens.ttl_seconds)
    expired = await admin.client.post(CHAT, json=QUESTION, headers={"Origin": SHOP, HEADER: old})
    assert expired.status_code == 401 and expired.json()["code"] == "visitor_token_expired"

    fresh = await token_for(admin, previous=old)
    assert tokens.read(fresh).visitor_id == claims.visitor_id
    stranger = await token_for(admin)
    assert tokens.read(stranger).visitor_id != claims.visitor_id


async def test_limits_apply_per_visitor(admin: Admin) -> None:
    first, second = await token_for(admin), await token_for(admin)
    for _ in range(2):
        ok = await admin.client.post(CHAT, json=QUESTION, headers={"Origin": SHOP, HEADER: first})
        assert ok.status_code == 200
    over = await admin.client.post(CHAT, json=QUESTION, headers={"Origin": SHOP, HEADER: first})
    assert over.status_code == 429 and over.headers["x-ratelimit-limit"] == "2"
    other = await admin.client.post(CHAT, json=QUESTION, headers={"Origin": SHOP, HEADER: second})
    assert other.status_code == 200


async def test_chatbots_that_do_not_ask_for_a_token_get_none(settings: Settings) -> None:
    async with admin_app(settings, allowed_origins=(SHOP,)) as admin:
        body = (await admin.client.get(CONFIG, headers={"Origin": SHOP})).json()
    assert "visitor_token" not in body


def test_tokens_verify_signature_binding_and_expiry() -> None:
    tokens = VisitorTokens(b"s" * 32, ttl_seconds=600)
    token, claims = tokens.issue("bot", SHOP, now=1000)
    assert tokens.verify(token, "bot", SHOP, now=1599) == claims
    with pytest.raises(VisitorTokenExpired):
        tokens.verify(token, "bot", SHOP, now=1600)
    with pytest.raises(VisitorTokenInvalid):
        tokens.verify(token, "bot", "https://x.example", now=1000)
    with pytest.raises(VisitorTokenInvalid):
        VisitorTokens(b"t" * 32, ttl_seconds=600).verify(token, "bot", SHOP, now=1000)
    with pytest.raises(VisitorTokenRequired):
        tokens.verify(None, "bot", SHOP)
    for garbage in ("", "a.b.c", "x" * 2000, "!!!.???", "e30.AAAA"):
        with pytest.raises((VisitorTokenInvalid, VisitorTokenRequired)):
            tokens.verify(garbage, "bot", SHOP)
    with pytest.raises(ValueError):
        VisitorTokens(b"short", ttl_seconds=600)


def test_the_development_secret_is_made_once_private_and_reused(tmp_path: Any) -> None:
    first = load_or_create_secret(tmp_path / "data")
    assert len(first) >= 32
    assert load_or_create_secret(tmp_path / "data") == first
    mode = os.stat(tmp_path / "data" / "visitor_token.secret").st_mode
    assert stat.S_IMODE(mode) == 0o600
    assert list((tmp_path / "data").iterdir()) == [tmp_path / "data" / "visitor_token.secret"]


def test_production_refuses_a_missing_or_short_secret(tmp_path: Any) -> None:
    base = {"_env_file": None, "environment": "production", "data_dir": tmp_path}
    with pytest.raises(ValueError, match="VISITOR_TOKEN_SECRET"):
        Settings(**base)
    with pytest.raises(ValueError, match="VISITOR_TOKEN_SECRET"):
        Settings(**base, visitor_token_secret="too-short")
    assert Settings(**base, visitor_token_secret="x" * 40).environment == "production"
