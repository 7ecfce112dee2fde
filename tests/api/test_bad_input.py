"""Bad input gets a clear 4xx JSON error before any stream starts, and stores nothing."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from sitechat.storage.models import MessageRow
from tests.conftest import AppHarness

ENDPOINTS = ["/api/public/chat/stream", "/api/public/chat"]


async def stored_messages(harness: AppHarness) -> int:
    async with harness.services.database.session() as session:
        return int(
            (await session.execute(select(func.count()).select_from(MessageRow))).scalar_one()
        )


def assert_json_error(response: Any, status: int, code: str, field: str | None = None) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["code"] == code
    assert body["error"] and body["request_id"]
    if field is not None:
        assert any(d["field"] == field for d in body["details"]), body


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"chatbot_id": "shop"}, "message"),
        ({"message": "", "chatbot_id": "shop"}, "message"),
        ({"message": 42, "chatbot_id": "shop"}, "message"),
        ({"message": ["a"], "chatbot_id": "shop"}, "message"),
        ({"message": "hi"}, "chatbot_id"),
        ({"message": "hi", "chatbot_id": "bad id with spaces"}, "chatbot_id"),
        ({"message": "hi", "chatbot_id": "shop", "session_id": "short"}, "session_id"),
        ({"message": "hi", "chatbot_id": "shop", "session_id": "x" * 65}, "session_id"),
        ({"message": "hi", "chatbot_id": "shop", "session_id": "../../etc/pass"}, "session_id"),
        ({"message": "hi", "chatbot_id": "shop", "session_id": 12345678}, "session_id"),
    ],
)
async def test_invalid_fields_are_422_naming_the_field(
    harness: AppHarness, endpoint: str, body: dict[str, Any], field: str
) -> None:
    before = await stored_messages(harness)
    response = await harness.client.post(endpoint, json=body)
    assert_json_error(response, 422, "invalid_input", field)
    assert await stored_messages(harness) == before


@pytest.mark.parametrize("endpoint", ENDPOINTS)
async def test_whitespace_only_message_is_422(harness: AppHarness, endpoint: str) -> None:
    response = await harness.client.post(endpoint, json={"message": "   \n", "chatbot_id": "shop"})
    assert_json_error(response, 422, "invalid_input")
    assert "empty" in response.json()["error"]
    assert await stored_messages(harness) == 0


@pytest.mark.parametrize("endpoint", ENDPOINTS)
async def test_message_over_the_limit_is_422(harness: AppHarness, endpoint: str) -> None:
    limit = harness.services.settings.max_message_chars
    response = await harness.client.post(
        endpoint, json={"message": "a" * (limit + 1), "chatbot_id": "shop"}
    )
    assert_json_error(response, 422, "invalid_input")
    assert str(limit) in response.json()["error"]
    assert await stored_messages(harness) == 0


@pytest.mark.parametrize("endpoint", ENDPOINTS)
async def test_message_at_the_limit_is_accepted(harness: AppHarness, endpoint: str) -> None:
    limit = harness.services.settings.max_message_chars
    response = await harness.client.post(
        endpoint, json={"message": "shipping " * (limit // 9), "chatbot_id": "shop"}
    )
    assert response.status_code == 200


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("raw", [b"{not json", b"", b"message=hi"])
async def test_non_json_body_is_400(harness: AppHarness, endpoint: str, raw: bytes) -> None:
    response = await harness.client.post(
        endpoint, content=raw, headers={"content-type": "application/json"}
    )
    assert response.status_code in (400, 422)
    assert response.json()["code"] in {"invalid_json", "invalid_input"}
    assert await stored_messages(harness) == 0


@pytest.mark.parametrize("endpoint", ENDPOINTS)
async def test_json_array_body_is_400(harness: AppHarness, endpoint: str) -> None:
    response = await harness.client.post(endpoint, json=["message", "hi"])
    assert_json_error(response, 400, "invalid_json")


@pytest.mark.parametrize("endpoint", ENDPOINTS)
async def test_unknown_chatbot_is_404_before_any_stream(harness: AppHarness, endpoint: str) -> None:
    response = await harness.client.post(
        endpoint, json={"message": "hello there", "chatbot_id": "nobody"}
    )
    assert_json_error(response, 404, "chatbot_not_found")
    assert await stored_messages(harness) == 0


async def test_unknown_extra_fields_are_ignored(harness: AppHarness) -> None:
    response = await harness.client.post(
        "/api/public/chat",
        json={"message": "Is shipping free?", "chatbot_id": "shop", "page_url": "https://x"},
    )
    assert response.status_code == 200


async def test_unexpected_crash_gives_500_without_internal_text(harness: AppHarness) -> None:
    async def explode(chatbot_id: str) -> None:
        raise RuntimeError("secret internal detail: password=hunter2")

    harness.services.configs._loader = explode  # type: ignore[assignment]
    harness.services.configs.clear()
    response = await harness.client.post(
        "/api/public/chat/stream", json={"message": "hello there", "chatbot_id": "shop"}
    )
    assert response.status_code == 500
    body = response.json()
    assert body == {
        "error": "Something went wrong.",
        "code": "internal_error",
        "request_id": response.headers["x-request-id"],
    }
    assert "hunter2" not in response.text


async def test_unknown_route_is_a_json_404(harness: AppHarness) -> None:
    response = await harness.client.get("/api/public/nothing-here")
    assert_json_error(response, 404, "not_found")
