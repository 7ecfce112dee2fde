"""Admin authentication: bearer keys of an org, the bootstrap key, 401 versus 404."""

from __future__ import annotations

import hashlib
import math

from sqlalchemy import text

from sitechat.config import Settings
from tests.support.admin import admin_app, with_settings

BOOTSTRAP = "bootstrap-" + "k" * 40


async def test_missing_malformed_wrong_and_revoked_keys_get_401(settings: Settings) -> None:
    async with admin_app(settings) as admin:
        client = admin.client
        cases = {
            "missing": {},
            "not bearer": {"Authorization": f"Basic {admin.key}"},
            "empty bearer": {"Authorization": "Bearer "},
            "wrong key": {"Authorization": "Bearer sck_" + "x" * 43},
            "no prefix": {"Authorization": "Bearer " + "y" * 50},
        }
        for name, headers in cases.items():
            response = await client.get("/api/admin/chatbots", headers=headers)
            assert response.status_code == 401, name
            body = response.json()
            assert body["code"] == "unauthorized" and body["request_id"], name
            assert response.headers["www-authenticate"].startswith("Bearer"), name

        keys = (await admin.get("/api/admin/keys")).json()["keys"]
        assert (await admin.delete(f"/api/admin/keys/{keys[0]['id']}")).status_code == 204
        revoked = await admin.get("/api/admin/chatbots")
        assert revoked.status_code == 401


async def test_a_key_is_random_shown_once_stored_as_a_hash_and_records_its_last_use(
    settings: Settings,
) -> None:
    async with admin_app(settings) as admin:
        created = await admin.post("/api/admin/keys", json={"name": "deploy"})
        assert created.status_code == 201
        new = created.json()
        plaintext = new["key"]
        # sck_ + 43 url-safe base64 characters: 32 random bytes, 256 bits (>= 128).
        assert plaintext.startswith("sck_") and len(plaintext) - 4 >= math.ceil(128 / 6)
        assert new["prefix"] == plaintext[:12] and new["last_used_at"] is None

        listed = (await admin.get("/api/admin/keys")).json()["keys"]
        assert all("key" not in k and "key_hash" not in k for k in listed)
        assert plaintext not in str(listed)
        async with admin.harness.services.database.engine.connect() as connection:
            stored = (
                await connection.execute(
                    text("SELECT key_hash FROM api_keys WHERE id = :id"), {"id": new["id"]}
                )
            ).scalar_one()
        assert stored == hashlib.sha256(plaintext.encode()).hexdigest()

        used = await admin.client.get(
            "/api/admin/org", headers={"Authorization": f"Bearer {plaintext}"}
        )
        assert used.status_code == 200
        after = {k["id"]: k for k in (await admin.get("/api/admin/keys")).json()["keys"]}
        assert after[new["id"]]["last_used_at"] is not None


async def test_revoking_another_orgs_key_is_404_and_leaves_it_working(
    settings: Settings,
) -> None:
    async with admin_app(settings) as admin:
        store = admin.harness.services.store
        other = await store.create_org("Other")
        other_record, other_key = await store.create_api_key(other.id, "theirs")
        response = await admin.delete(f"/api/admin/keys/{other_record.id}")
        assert response.status_code == 404
        still = await admin.client.get(
            "/api/admin/org", headers={"Authorization": f"Bearer {other_key}"}
        )
        assert still.status_code == 200 and still.json()["id"] == other.id


async def test_the_bootstrap_key_creates_orgs_and_nothing_else(settings: Settings) -> None:
    async with admin_app(with_settings(settings, bootstrap_admin_key=BOOTSTRAP)) as admin:
        boot = {"Authorization": f"Bearer {BOOTSTRAP}"}
        created = await admin.client.post(
            "/api/admin/orgs",
            headers=boot,
            json={"name": "New Co", "monthly_token_budget": 1000},
        )
        assert created.status_code == 201, created.text
        body = created.json()
        assert body["org"]["name"] == "New Co"
        assert body["org"]["budget"]["monthly_token_budget"] == 1000
        new_key = body["api_key"]["key"]
        mine = await admin.client.get(
            "/api/admin/org", headers={"Authorization": f"Bearer {new_key}"}
        )
        assert mine.json()["id"] == body["org"]["id"]

        # The bootstrap key is not an org key; an org key cannot create orgs.
        assert (await admin.client.get("/api/admin/chatbots", headers=boot)).status_code == 403
        refused = await admin.post("/api/admin/orgs", json={"name": "Sneaky"})
        assert refused.status_code == 401


async def test_without_a_configured_bootstrap_key_no_one_can_create_orgs(
    settings: Settings,
) -> None:
    async with admin_app(settings) as admin:
        response = await admin.client.post(
            "/api/admin/orgs", headers={"Authorization": "Bearer "}, json={"name": "X"}
        )
        assert response.status_code == 401
