"""Found by the OpenAPI fuzzer's kind of input on PostgreSQL (issue 9): text holding a NUL
character (``\\u0000``, valid in JSON) reached PostgreSQL, which cannot store it, and the
driver's error was answered as an outage: ``503 storage_error`` with a logged traceback, for
a visitor's message, a document title or a chatbot's prompt. It is the request's fault:
PostgreSQL now answers 422 ``invalid_input`` saying why; SQLite stores such text as it is."""

from __future__ import annotations

from typing import Any

import pytest

from sitechat.config import Settings
from tests.support.admin import Admin, admin_app

NUL = "before\x00after"


async def send(admin: Admin, kind: str) -> Any:
    if kind == "chat":
        return await admin.client.post(
            "/api/public/chat", json={"message": NUL, "chatbot_id": "shop"}
        )
    if kind == "chatbot":
        return await admin.patch("/api/admin/chatbots/shop", json={"system_prompt": NUL})
    if kind == "org":
        return await admin.patch("/api/admin/org", json={"name": NUL})
    return await admin.post(
        "/api/admin/chatbots/shop/documents", json={"text": "Some text", "title": NUL}
    )


@pytest.mark.parametrize("kind", ["chat", "chatbot", "org", "document"])
async def test_text_with_a_nul_character_is_never_a_503(any_database: Settings, kind: str) -> None:
    async with admin_app(any_database) as admin:
        response = await send(admin, kind)
        backend = admin.harness.services.database.backend
    if backend == "postgresql":
        assert response.status_code == 422, response.text
        assert response.json()["code"] == "invalid_input"
        assert "NUL" in response.json()["error"]
    else:
        assert response.status_code in (200, 202), response.text
