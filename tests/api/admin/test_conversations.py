"""The conversations admin API: filters, one conversation with sources and feedback,
JSONL and CSV exports, deletion."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text

from sitechat.api.admin.conversations import spreadsheet_safe
from sitechat.config import Settings
from tests.support.admin import Admin, admin_app

BASE = "/api/admin/chatbots/shop/conversations"


async def ask(admin: Admin, message: str, session_id: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"message": message, "chatbot_id": "shop"}
    if session_id:
        body["session_id"] = session_id
    response = await admin.client.post("/api/public/chat", json=body)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def backdate(admin: Admin, session_id: str, days: int) -> None:
    moment = datetime.now(UTC) - timedelta(days=days)
    stored = (
        moment.replace(tzinfo=None)
        if admin.harness.services.database.backend == "sqlite"
        else moment
    )
    async with admin.harness.services.database.engine.begin() as connection:
        await connection.execute(
            text("UPDATE conversations SET created_at = :at WHERE session_id = :s"),
            {"at": stored, "s": session_id},
        )


@pytest.fixture
async def admin(settings: Settings) -> Any:
    async with admin_app(settings) as running:
        first = await ask(running, "How much does shipping cost?", "session-old-1")
        await ask(running, "And returns?", "session-old-1")
        await ask(running, "When does the store open?", "session-new-1")
        await backdate(running, "session-old-1", days=10)
        # The newer conversation's answer gets feedback from the visitor.
        rating = await running.client.post(
            "/api/public/chatbots/shop/sessions/session-new-1/messages/"
            + (await latest_answer_id(running, "session-new-1"))
            + "/feedback",
            json={"rating": -1, "comment": "Too short"},
        )
        assert rating.status_code == 204, rating.text
        assert first["sources"]
        yield running


async def latest_answer_id(admin: Admin, session_id: str) -> str:
    listing = await admin.client.get(f"/api/public/chatbots/shop/sessions/{session_id}/messages")
    return str([m for m in listing.json()["messages"] if m["role"] == "assistant"][-1]["id"])


async def test_listing_filters_by_date_and_feedback(admin: Admin) -> None:
    everything = (await admin.get(BASE)).json()
    assert everything["total"] == 2
    sessions = [c["session_id"] for c in everything["conversations"]]
    assert sessions == ["session-new-1", "session-old-1"]  # newest first
    assert {c["session_id"]: c["message_count"] for c in everything["conversations"]} == {
        "session-new-1": 2,
        "session-old-1": 4,
    }

    today = datetime.now(UTC).date()
    recent = (await admin.get(BASE, params={"from": str(today - timedelta(days=2))})).json()
    assert [c["session_id"] for c in recent["conversations"]] == ["session-new-1"]
    older = (await admin.get(BASE, params={"to": str(today - timedelta(days=5))})).json()
    assert [c["session_id"] for c in older["conversations"]] == ["session-old-1"]

    rated = (await admin.get(BASE, params={"has_feedback": "true"})).json()
    assert [c["session_id"] for c in rated["conversations"]] == ["session-new-1"]
    assert rated["conversations"][0]["has_feedback"] is True
    unrated = (await admin.get(BASE, params={"has_feedback": "false"})).json()
    assert [c["session_id"] for c in unrated["conversations"]] == ["session-old-1"]

    page = (await admin.get(BASE, params={"limit": 1, "offset": 1})).json()
    assert page["total"] == 2 and len(page["conversations"]) == 1

    backwards = await admin.get(
        BASE, params={"from": str(today), "to": str(today - timedelta(days=1))}
    )
    assert backwards.status_code == 422


async def test_one_conversation_has_its_messages_sources_and_feedback(admin: Admin) -> None:
    listing = (await admin.get(BASE, params={"has_feedback": "true"})).json()
    conversation_id = listing["conversations"][0]["id"]
    response = await admin.get(f"{BASE}/{conversation_id}")
    assert response.status_code == 200
    body = response.json()
    roles = [m["role"] for m in body["messages"]]
    assert roles == ["user", "assistant"]
    answer = body["messages"][1]
    assert answer["sources"] and answer["sources"][0]["title"]
    assert answer["usage"]["total_tokens"] >= 0
    assert answer["feedback"]["rating"] == -1 and answer["feedback"]["comment"] == "Too short"

    missing = await admin.get(f"{BASE}/not-a-conversation")
    assert missing.status_code == 404 and missing.json()["code"] == "conversation_not_found"


async def test_jsonl_export_has_one_conversation_per_line(admin: Admin) -> None:
    response = await admin.get(f"{BASE}/export", params={"format": "jsonl"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/x-ndjson")
    assert "attachment" in response.headers["content-disposition"]
    lines = [json.loads(line) for line in response.text.splitlines()]
    assert [line["session_id"] for line in lines] == ["session-old-1", "session-new-1"]
    assert len(lines[0]["messages"]) == 4

    filtered = await admin.get(f"{BASE}/export", params={"has_feedback": "true"})
    assert [json.loads(x)["session_id"] for x in filtered.text.splitlines()] == ["session-new-1"]


async def test_csv_export_has_one_row_per_message(admin: Admin) -> None:
    response = await admin.get(f"{BASE}/export", params={"format": "csv"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert len(rows) == 6
    assert {r["session_id"] for r in rows} == {"session-old-1", "session-new-1"}
    rated = [r for r in rows if r["feedback_rating"]]
    assert len(rated) == 1 and rated[0]["feedback_rating"] == "-1"
    assert rated[0]["feedback_comment"] == "Too short"
    assert all(json.loads(r["sources"]) == [] for r in rows if r["role"] == "user")


HYPERLINK = '=HYPERLINK("http://evil.example","x")'
CALC = "-2+3+cmd|' /C calc'!A0"


async def test_csv_export_formula_injection_is_neutralised(admin: Admin) -> None:
    """Issue 9, finding 3: a visitor message or feedback comment starting with ``=``, ``+``,
    ``-``, ``@``, tab or CR landed unescaped at the start of a CSV cell, where a spreadsheet
    runs it as a formula. Such cells now start with ``'``; the JSONL export stays raw."""
    await ask(admin, HYPERLINK, "session-formula")
    answer_id = await latest_answer_id(admin, "session-formula")
    rating = await admin.client.post(
        f"/api/public/chatbots/shop/sessions/session-formula/messages/{answer_id}/feedback",
        json={"rating": 1, "comment": CALC},
    )
    assert rating.status_code == 204, rating.text

    response = await admin.get(f"{BASE}/export", params={"format": "csv"})
    rows = [r for r in csv.DictReader(io.StringIO(response.text))]
    mine = [r for r in rows if r["session_id"] == "session-formula"]
    question = next(r for r in mine if r["role"] == "user")
    answer = next(r for r in mine if r["role"] == "assistant")
    assert question["content"] == "'" + HYPERLINK
    assert answer["feedback_comment"] == "'" + CALC
    assert answer["feedback_rating"] == "1"
    risky = ("=", "+", "-", "@", "\t", "\r")
    assert not [v for r in rows for v in r.values() if v.startswith(risky) and v != "-1"]

    raw = await admin.get(f"{BASE}/export", params={"format": "jsonl"})
    exported = [json.loads(line) for line in raw.text.splitlines()]
    messages = next(c for c in exported if c["session_id"] == "session-formula")["messages"]
    assert messages[0]["content"] == HYPERLINK
    assert messages[1]["feedback"]["comment"] == CALC


@pytest.mark.parametrize(
    ("cell", "written"),
    [
        ("=1+1", "'=1+1"),
        ("+1", "'+1"),
        ("-1", "'-1"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("plain", "plain"),
        ("", ""),
        (-1, -1),
        (2.5, 2.5),
    ],
)
def test_spreadsheet_safe_prefixes_only_formula_text(cell: object, written: object) -> None:
    assert spreadsheet_safe(cell) == written


async def test_deleting_a_conversation_deletes_its_messages(admin: Admin) -> None:
    listing = (await admin.get(BASE)).json()
    target = listing["conversations"][0]["id"]
    assert (await admin.delete(f"{BASE}/{target}")).status_code == 204
    assert (await admin.get(f"{BASE}/{target}")).status_code == 404
    assert (await admin.delete(f"{BASE}/{target}")).status_code == 404
    async with admin.harness.services.database.engine.connect() as connection:
        left = (
            await connection.execute(
                text("SELECT count(*) FROM messages WHERE conversation_id = :c"), {"c": target}
            )
        ).scalar_one()
    assert left == 0
    assert (await admin.get(BASE)).json()["total"] == 1
