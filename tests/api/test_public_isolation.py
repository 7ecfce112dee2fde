"""Tenant isolation on the public path: a chatbot's answers cite only its own documents,
whatever is asked, and a session id never reaches another chatbot's conversation."""

from __future__ import annotations

import random
from typing import Any

from sitechat.config import Settings
from tests.support.admin import admin_app, with_settings

RIVAL_DOCS = {
    "vault.md": "# Vault\n\nThe zephyrine formula is kept in vault seven, behind the blue door.",
    "returns.md": "# Returns policy\n\nRival Ltd takes returns within 90 days, shipping included.",
    "hours.md": "# Hours\n\nRival's store opens at 6 am and closes at midnight, every day.",
}
VOCABULARY = [
    "zephyrine",
    "formula",
    "vault",
    "seven",
    "blue",
    "door",
    "returns",
    "policy",
    "90",
    "days",
    "shipping",
    "included",
    "store",
    "opens",
    "6",
    "am",
    "midnight",
    "every",
    "day",
    "rival",
]


async def test_answers_only_ever_cite_the_chatbots_own_documents(settings: Settings) -> None:
    async with admin_app(with_settings(settings, rate_limit_per_ip="1000/minute")) as admin:
        services = admin.harness.services
        other = await services.store.create_org("Rival Ltd")
        await services.store.create_chatbot(other.id, name="Rival", chatbot_id="rival")
        for name, text in RIVAL_DOCS.items():
            await services.ingestor.ingest_bytes("rival", text.encode(), filename=name)
        own = {d.id for d in await services.store.list_documents("shop")}
        theirs = {d.id for d in await services.store.list_documents("rival")}
        assert own and theirs and not own & theirs

        rng = random.Random(424242)
        questions = [" ".join(rng.sample(VOCABULARY, rng.randint(2, 6))) + "?" for _ in range(40)]
        questions += [text for text in RIVAL_DOCS.values()]  # their documents, verbatim
        cited_own = 0
        for question in questions:
            response = await admin.client.post(
                "/api/public/chat", json={"message": question[:4000], "chatbot_id": "shop"}
            )
            assert response.status_code == 200, response.text
            body: dict[str, Any] = response.json()
            cited = {source["document_id"] for source in body["sources"]}
            assert cited <= own, question
            assert "zephyrine" not in body["content"] and "vault seven" not in body["content"]
            cited_own += bool(cited)
        assert cited_own > 0  # shipping and returns questions find the shop's own documents
        # The same questions to the rival find its documents: the searches were real.
        found = await admin.client.post(
            "/api/public/chat",
            json={"message": "Where is the zephyrine formula?", "chatbot_id": "rival"},
        )
        assert {s["document_id"] for s in found.json()["sources"]} <= theirs
        assert found.json()["sources"]


async def test_a_session_id_stays_with_its_chatbot(settings: Settings) -> None:
    async with admin_app(settings) as admin:
        services = admin.harness.services
        other = await services.store.create_org("Rival Ltd")
        await services.store.create_chatbot(other.id, name="Rival", chatbot_id="rival")
        ask = admin.client.post
        secret = {
            "message": "My order number is 55-SECRET-77",
            "chatbot_id": "rival",
            "session_id": "shared-session",
        }
        assert (await ask("/api/public/chat", json=secret)).status_code == 200

        # The same session id on another chatbot is another conversation.
        mine = await ask(
            "/api/public/chat",
            json={
                "message": "What was my order number?",
                "chatbot_id": "shop",
                "session_id": "shared-session",
            },
        )
        assert "55-SECRET-77" not in mine.text
        history = await admin.client.get(
            "/api/public/chatbots/shop/sessions/shared-session/messages"
        )
        assert history.status_code == 200 and "55-SECRET-77" not in history.text
        assert [m["role"] for m in history.json()["messages"]] == ["user", "assistant"]
        theirs = await services.store.get_conversation("rival", "shared-session")
        ours = await services.store.get_conversation("shop", "shared-session")
        assert theirs is not None and ours is not None and theirs.id != ours.id
