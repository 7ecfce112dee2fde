"""Found by the OpenAPI fuzzer (issue 9): an upload with more multipart fields than the
form parser allows answered ``400 http_error`` ("The request failed.", Starlette's error in
no shape of ours), though the document allowed any extra field. The document now lists
exactly ``file`` and ``title`` (at most 200 characters) and the server refuses anything
else with a 422 that says what to send."""

from __future__ import annotations

from typing import Any

import pytest

from sitechat.config import Settings
from tests.support.admin import Admin, admin_app

URL = "/api/admin/chatbots/shop/documents"
FILE = ("faq.md", b"# FAQ\n\nWe ship in two days.\n", "text/markdown")


@pytest.fixture
async def admin(settings: Settings) -> Any:
    async with admin_app(settings) as running:
        yield running


@pytest.mark.parametrize(
    "data",
    [
        {"a": "1", "b": "2", "c": "3", "d": "4"},  # past the parser's field limit
        {"colour": "blue"},  # one unknown field
        {"title": "x" * 201},
    ],
    ids=["many-fields", "unknown-field", "long-title"],
)
async def test_an_upload_with_fields_beyond_file_and_title_is_422_not_http_error(
    admin: Admin, data: dict[str, str]
) -> None:
    response = await admin.post(URL, files={"file": FILE}, data=data)
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["code"] == "invalid_input"
    assert "title" in body["error"]


async def test_an_upload_with_file_and_title_is_accepted(admin: Admin) -> None:
    response = await admin.post(URL, files={"file": FILE}, data={"title": "x" * 200})
    assert response.status_code == 202, response.text
    assert response.json()["title"] == "x" * 200


async def test_the_upload_schema_lists_exactly_file_and_title(admin: Admin) -> None:
    spec = (await admin.client.get("/openapi.json")).json()
    content = spec["paths"][URL.replace("shop", "{chatbot_id}")]["post"]["requestBody"]
    schema = content["content"]["multipart/form-data"]["schema"]
    assert schema["additionalProperties"] is False
    assert set(schema["properties"]) == {"file", "title"}
    assert schema["properties"]["title"]["maxLength"] == 200
