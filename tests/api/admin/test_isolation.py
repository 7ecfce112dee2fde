"""Tenant isolation in the admin API: every admin route, tried with one org's key on another
org's ids, answers 404 (never 401, 403 or the data) and changes nothing; property-style runs
over many random ids find nothing that is not the caller's own."""

from __future__ import annotations

import random
import re
import string
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from sitechat.config import Settings
from tests.support.admin import Admin, admin_app

SECRET_WORD = "zephyrine"  # only in the other org's documents and conversations

# A valid body for each write, so that only ownership can refuse the request.
BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("post", "/api/admin/chatbots/{chatbot_id}/documents"): {"text": "Hi there.", "title": "Hi"},
    ("patch", "/api/admin/chatbots/{chatbot_id}"): {"greeting": "Taken over"},
    ("post", "/api/admin/chatbots/{chatbot_id}/unanswered/resolve"): {"question": "Hours?"},
}


@dataclass
class Tenants:
    mine: Admin
    theirs: dict[str, str]  # ids of the other org's resources
    their_key: str


@pytest.fixture
async def tenants(settings: Settings) -> AsyncIterator[Tenants]:
    async with admin_app(settings) as mine:
        services = mine.harness.services
        other = await services.store.create_org("Rival Ltd")
        _record, their_key = await services.store.create_api_key(other.id, "theirs")
        await services.store.create_chatbot(other.id, name="Rival", chatbot_id="rival")
        result = await services.ingestor.ingest_bytes(
            "rival",
            f"# Secret\n\nThe {SECRET_WORD} formula is kept in vault seven.".encode(),
            filename="secret.md",
        )
        asked = await mine.client.post(
            "/api/public/chat",
            json={
                "message": f"What is the {SECRET_WORD} formula?",
                "chatbot_id": "rival",
                "session_id": "rival-session",
            },
        )
        assert asked.status_code == 200
        conversation = await services.store.get_conversation("rival", "rival-session")
        assert conversation is not None
        keys = await services.store.list_api_keys(other.id)
        theirs = {
            "chatbot_id": "rival",
            "document_id": result.document.id,
            "conversation_id": conversation.id,
            "key_id": keys[0].id,
        }
        yield Tenants(mine, theirs, their_key)


def admin_operations(admin: Admin) -> list[tuple[str, str]]:
    spec = admin.harness.app.openapi()
    return [
        (method, path)
        for path, item in spec["paths"].items()
        if path.startswith("/api/admin/")
        for method in item
        if method in ("get", "post", "patch", "put", "delete")
    ]


async def call(admin: Admin, method: str, path: str, ids: dict[str, str]) -> Any:
    url = re.sub(r"\{(\w+)\}", lambda m: ids[m.group(1)], path)
    body = BODIES.get((method, path))
    return await admin.client.request(method.upper(), url, headers=admin.headers, json=body)


async def test_every_admin_route_hides_the_other_orgs_resources(tenants: Tenants) -> None:
    mine = tenants.mine
    operations = admin_operations(mine)
    with_ids = [(m, p) for m, p in operations if "{" in p]
    assert len(with_ids) >= 12
    # Own chatbot, other ids: the conversation, document and key ids are the other org's.
    own_parent = {**tenants.theirs, "chatbot_id": "shop"}
    for method, path in with_ids:
        for ids in (tenants.theirs, own_parent):
            if ids is own_parent and not re.search(r"\{(document|conversation)_id\}", path):
                continue
            response = await call(mine, method, path, ids)
            assert response.status_code == 404, (method, path, ids, response.text)
            assert (
                SECRET_WORD not in response.text
                and "rival" not in response.text.lower().replace("rival-session", "")
            )

    # Routes without ids show only the caller's own things.
    for method, path in operations:
        if "{" in path or method != "get":
            continue
        response = await mine.client.get(path, headers=mine.headers)
        assert response.status_code == 200, path
        assert SECRET_WORD not in response.text and '"rival"' not in response.text

    # Nothing of theirs changed: their key, chatbot, conversation and document are intact.
    their_headers = {"Authorization": f"Bearer {tenants.their_key}"}
    bot = await mine.client.get("/api/admin/chatbots/rival", headers=their_headers)
    assert bot.status_code == 200 and bot.json()["greeting"] != "Taken over"
    convo = await mine.client.get(
        f"/api/admin/chatbots/rival/conversations/{tenants.theirs['conversation_id']}",
        headers=their_headers,
    )
    assert convo.status_code == 200 and SECRET_WORD in convo.text
    doc = await mine.client.get(
        f"/api/admin/chatbots/rival/documents/{tenants.theirs['document_id']}",
        headers=their_headers,
    )
    assert doc.status_code == 200


def random_ids(rng: random.Random, real: list[str], count: int) -> list[str]:
    alphabet = string.ascii_letters + string.digits + "-_"
    ids = list(real)
    ids += [r.upper() for r in real] + [r + " " for r in real if r] + [r[:-1] for r in real if r]
    while len(ids) < count:
        kind = rng.randrange(3)
        if kind == 0:
            ids.append(str(uuid.UUID(int=rng.getrandbits(128), version=4)))
        elif kind == 1:
            ids.append("".join(rng.choice(alphabet) for _ in range(rng.randint(1, 64))))
        else:
            ids.append(rng.choice(["shop", "rival"]) + rng.choice(["", "-", "_x", "%20", ".."]))
    return ids


async def test_random_ids_find_nothing_but_the_callers_own(tenants: Tenants) -> None:
    mine = tenants.mine
    rng = random.Random(20261124)
    for chatbot_id in random_ids(rng, list(tenants.theirs.values()), 150):
        response = await mine.client.get(f"/api/admin/chatbots/{chatbot_id}", headers=mine.headers)
        if chatbot_id == "shop":
            assert response.status_code == 200
        else:
            assert response.status_code == 404, chatbot_id
            assert SECRET_WORD not in response.text
    for item_id in random_ids(rng, list(tenants.theirs.values()), 150):
        for kind in ("conversations", "documents"):
            response = await mine.client.get(
                f"/api/admin/chatbots/shop/{kind}/{item_id}", headers=mine.headers
            )
            assert response.status_code in (404, 422), (kind, item_id)
            assert SECRET_WORD not in response.text
        revoke = await mine.client.delete(f"/api/admin/keys/{item_id}", headers=mine.headers)
        assert revoke.status_code in (404, 422)
    their_headers = {"Authorization": f"Bearer {tenants.their_key}"}
    assert (await mine.client.get("/api/admin/org", headers=their_headers)).status_code == 200
