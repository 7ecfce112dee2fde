"""Issue 9, finding 4: extreme but well-formed admin input answered 500.

``analytics?to=9999-12-31`` (and ``0001-01-01``) overflowed Python's date arithmetic,
``conversations?to=9999-12-31`` and its export likewise, an ``offset`` past 2**63 - 1
overflowed PostgreSQL's BIGINT, and so did an org budget of ``1e30``. Every query parameter
and body number is now bounded in the schema (dates 2000-01-01 to 2100-12-31, offsets and
budgets 0 to 2**53 - 1), and what is out of bounds is a 422 naming the field, on SQLite and
PostgreSQL alike."""

from __future__ import annotations

from typing import Any

import pytest

from sitechat.config import Settings
from tests.support.admin import admin_app

BOT = "/api/admin/chatbots/shop"
LARGEST = 2**53 - 1  # exact in every JSON reader, and inside a BIGINT

OUT_OF_RANGE_QUERIES = [
    pytest.param(f"{BOT}/analytics", {"to": "9999-12-31"}, "to", id="analytics-to-9999"),
    pytest.param(f"{BOT}/analytics", {"to": "0001-01-01"}, "to", id="analytics-to-0001"),
    pytest.param(f"{BOT}/analytics", {"from": "0001-01-01"}, "from", id="analytics-from-0001"),
    pytest.param(f"{BOT}/conversations", {"to": "9999-12-31"}, "to", id="conversations-to"),
    pytest.param(f"{BOT}/conversations", {"from": "0001-01-01"}, "from", id="conversations-from"),
    pytest.param(f"{BOT}/conversations/export", {"to": "9999-12-31"}, "to", id="export-to-9999"),
    pytest.param(
        f"{BOT}/conversations/export",
        {"format": "csv", "from": "0001-01-01"},
        "from",
        id="export-csv-from-0001",
    ),
    pytest.param(f"{BOT}/conversations", {"offset": str(2**63)}, "offset", id="offset-past-bigint"),
    pytest.param(f"{BOT}/conversations", {"offset": str(2**53)}, "offset", id="offset-2**53"),
    pytest.param(f"{BOT}/conversations", {"offset": "1" + "0" * 40}, "offset", id="offset-huge"),
]


@pytest.mark.parametrize(("path", "params", "field"), OUT_OF_RANGE_QUERIES)
async def test_extreme_query_values_are_422_not_500(
    any_database: Settings, path: str, params: dict[str, str], field: str
) -> None:
    async with admin_app(any_database) as admin:
        response = await admin.get(path, params=params)
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["code"] == "invalid_input"
    assert body["details"][0]["field"] == f"query.{field}"
    assert field in body["error"]


async def test_the_edges_of_the_ranges_are_accepted(any_database: Settings) -> None:
    async with admin_app(any_database) as admin:
        analytics = await admin.get(
            f"{BOT}/analytics", params={"from": "2100-12-01", "to": "2100-12-31"}
        )
        assert analytics.status_code == 200, analytics.text
        early = await admin.get(
            f"{BOT}/analytics", params={"from": "2000-01-01", "to": "2000-01-31"}
        )
        assert early.status_code == 200, early.text
        listing = await admin.get(
            f"{BOT}/conversations",
            params={"from": "2000-01-01", "to": "2100-12-31", "offset": str(LARGEST)},
        )
        assert listing.status_code == 200, listing.text
        assert listing.json()["conversations"] == []
        export = await admin.get(
            f"{BOT}/conversations/export", params={"from": "2000-01-01", "to": "2100-12-31"}
        )
        assert export.status_code == 200, export.text


@pytest.mark.parametrize(
    "budget",
    [1e30, 2**63, 2**53, 10**40, -1, 1.5, True, "1000"],
    ids=["1e30", "2**63", "2**53", "10**40", "negative", "fraction", "true", "text"],
)
async def test_an_org_budget_past_bigint_is_422_not_500(
    any_database: Settings, budget: Any
) -> None:
    async with admin_app(any_database) as admin:
        response = await admin.patch("/api/admin/org", json={"monthly_token_budget": budget})
        assert response.status_code == 422, response.text
        assert response.json()["details"][0]["field"] == "monthly_token_budget"
        chatbot = await admin.patch(BOT, json={"monthly_token_budget": budget})
        assert chatbot.status_code == 422, chatbot.text
        largest = await admin.patch("/api/admin/org", json={"monthly_token_budget": LARGEST})
        assert largest.status_code == 200, largest.text
        assert largest.json()["budget"]["monthly_token_budget"] == LARGEST
        whole = await admin.patch("/api/admin/org", json={"monthly_token_budget": 1000.0})
        assert whole.status_code == 200, whole.text  # JSON Schema's integer: no fraction
        assert whole.json()["budget"]["monthly_token_budget"] == 1000
