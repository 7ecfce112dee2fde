"""The unanswered-questions report: questions whose answer was the fallback (asked through
the public chat API, extractive model) or had little context (written through the store),
grouped by normalised text, counted, resolved and open again when asked after that; only
the caller's own chatbot; paged; summed up in analytics."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text

from sitechat.config import Settings
from sitechat.reports.unanswered import normalise_question, question_id
from tests.support.admin import Admin, admin_app

BASE = "/api/admin/chatbots/shop/unanswered"
RESOLVE = BASE + "/resolve"
GIFT_CARDS = "do you sell gift cards"
INVOICE = "can i pay by invoice"


async def ask(admin: Admin, message: str, session_id: str, chatbot_id: str = "shop") -> str:
    """Ask through the public API; the answer's context quality level."""
    response = await admin.client.post(
        "/api/public/chat",
        json={"message": message, "chatbot_id": chatbot_id, "session_id": session_id},
    )
    assert response.status_code == 200, response.text
    level: str = response.json()["context_quality"]["level"]
    return level


async def low_answer(admin: Admin, message: str, session_id: str) -> None:
    """A question answered with little context, as the pipeline stores one."""
    store = admin.harness.services.store
    conversation = await store.get_or_create_conversation("shop", session_id)
    await store.add_message(conversation.id, "user", message)
    answer = await store.add_message(conversation.id, "assistant", "", status="streaming")
    await store.finish_message(
        answer.id, content="Maybe.", status="complete", context_quality={"level": "low"}
    )


async def backdate(admin: Admin, content: str, days: int) -> None:
    """Move a question and its answer ``days`` into the past."""
    moment = datetime.now(UTC) - timedelta(days=days)
    database = admin.harness.services.database
    stored = moment.replace(tzinfo=None) if database.backend == "sqlite" else moment
    async with database.engine.begin() as connection:
        seqs = (
            await connection.execute(
                text("SELECT seq, conversation_id FROM messages WHERE content = :c"),
                {"c": content},
            )
        ).all()
        for seq, conversation_id in seqs:
            await connection.execute(
                text(
                    "UPDATE messages SET created_at = :at WHERE conversation_id = :cid "
                    "AND seq IN (:seq, (SELECT MIN(seq) FROM messages WHERE "
                    "conversation_id = :cid AND seq > :seq))"
                ),
                {"at": stored, "cid": conversation_id, "seq": seq},
            )


@pytest.fixture
async def admin(settings: Settings) -> AsyncIterator[Admin]:
    async with admin_app(settings) as running:
        # In scope: never listed.
        assert await ask(running, "How much does shipping cost?", "sess-shipping") != "none"
        # Out of scope, three times in three spellings, then once more in another words.
        assert await ask(running, "Do you sell gift cards?", "sess-gift-1") == "none"
        assert await ask(running, "  do you sell GIFT   cards ", "sess-gift-2") == "none"
        assert await ask(running, "Do you sell gift cards!!", "sess-gift-3") == "none"
        assert await ask(running, "Quantum chromodynamics lattice?", "sess-physics") == "none"
        # Little context, twice, the second in a conversation that went on before.
        await low_answer(running, "Can I pay by invoice?", "sess-invoice-1")
        await ask(running, "When does the store open?", "sess-invoice-2")
        await low_answer(running, "can I pay by invoice", "sess-invoice-2")
        yield running


def by_question(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {q["question"]: q for q in body["questions"]}


async def test_fallbacks_and_low_answers_are_grouped_by_normalised_text(admin: Admin) -> None:
    response = await admin.get(BASE)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["total"] == 3 and body["limit"] == 50 and body["offset"] == 0
    assert body["to"] == datetime.now(UTC).date().isoformat()
    # Most asked first, then the most recently asked.
    assert [q["question"] for q in body["questions"]] == [
        GIFT_CARDS,
        INVOICE,
        "quantum chromodynamics lattice",
    ]
    gift, invoice = by_question(body)[GIFT_CARDS], by_question(body)[INVOICE]
    assert gift["id"] == question_id(GIFT_CARDS)
    assert (gift["count"], gift["fallbacks"], gift["quality"]) == (3, 3, "none")
    assert gift["example"] == "Do you sell gift cards!!"  # the latest, as typed
    assert gift["example_session_id"] == "sess-gift-3"
    conversation = await admin.harness.services.store.get_conversation("shop", "sess-gift-3")
    assert conversation is not None and gift["example_conversation_id"] == conversation.id
    assert gift["first_seen"] < gift["last_seen"]
    assert (invoice["count"], invoice["fallbacks"], invoice["quality"]) == (2, 0, "low")
    # Paired with its own question, not the conversation's earlier one.
    assert invoice["example"] == "can I pay by invoice"
    assert invoice["example_session_id"] == "sess-invoice-2"
    assert not any(q["resolved"] or q["resolved_at"] for q in body["questions"])


async def test_a_resolved_question_is_hidden_until_it_is_asked_again(admin: Admin) -> None:
    marked = await admin.post(RESOLVE, json={"question": "DO YOU SELL GIFT CARDS?"})
    assert marked.status_code == 200, marked.text
    assert marked.json()["id"] == question_id(GIFT_CARDS) and marked.json()["resolved"]
    by_id = await admin.post(RESOLVE, json={"id": question_id(INVOICE)})
    assert by_id.status_code == 200 and by_id.json()["resolved_at"] is not None

    listed = (await admin.get(BASE)).json()
    assert [q["question"] for q in listed["questions"]] == ["quantum chromodynamics lattice"]
    assert listed["total"] == 1
    everything = by_question((await admin.get(BASE, params={"include_resolved": "true"})).json())
    assert everything[GIFT_CARDS]["resolved"] is True
    assert everything[GIFT_CARDS]["resolved_at"] == marked.json()["resolved_at"]

    # Undo one; the other comes back when a visitor asks it again.
    undone = await admin.post(RESOLVE, json={"id": question_id(INVOICE), "resolved": False})
    assert undone.json() == {"id": question_id(INVOICE), "resolved": False, "resolved_at": None}
    assert await ask(admin, "do you sell gift cards", "sess-gift-4") == "none"
    again = by_question((await admin.get(BASE)).json())
    assert set(again) == {GIFT_CARDS, INVOICE, "quantum chromodynamics lattice"}
    gift = again[GIFT_CARDS]
    assert gift["resolved"] is False and gift["resolved_at"] == marked.json()["resolved_at"]
    assert (gift["count"], gift["asked_since_resolved"]) == (4, 1)
    assert gift["example_session_id"] == "sess-gift-4"


async def test_the_list_pages_and_takes_a_range(admin: Admin) -> None:
    first = (await admin.get(BASE, params={"limit": 2})).json()
    second = (await admin.get(BASE, params={"limit": 2, "offset": 2})).json()
    assert first["total"] == second["total"] == 3
    assert [q["question"] for q in first["questions"] + second["questions"]] == [
        GIFT_CARDS,
        INVOICE,
        "quantum chromodynamics lattice",
    ]
    assert (await admin.get(BASE, params={"offset": 10})).json()["questions"] == []

    await backdate(admin, "Quantum chromodynamics lattice?", days=40)
    today = datetime.now(UTC).date()
    recent = by_question((await admin.get(BASE)).json())
    assert "quantum chromodynamics lattice" not in recent  # the default: the last 30 days
    old = (
        await admin.get(
            BASE,
            params={
                "from": str(today - timedelta(days=45)),
                "to": str(today - timedelta(days=35)),
            },
        )
    ).json()
    assert [q["question"] for q in old["questions"]] == ["quantum chromodynamics lattice"]

    for bad in (
        {"from": str(today), "to": str(today - timedelta(days=1))},
        {"from": "2020-01-01", "to": "2024-01-01"},
        {"limit": 0},
        {"from": "yesterday"},
    ):
        response = await admin.get(BASE, params=bad)
        assert response.status_code == 422, bad
        assert response.json()["code"]


async def test_resolve_takes_one_id_or_one_question(admin: Admin) -> None:
    for body in (
        {},
        {"id": "not-a-hash"},
        {"id": question_id(GIFT_CARDS), "question": GIFT_CARDS},
        {"question": ""},
        {"question": GIFT_CARDS, "extra": 1},
    ):
        response = await admin.post(RESOLVE, json=body)
        assert response.status_code == 422, body
        assert response.json()["code"]
    not_json = await admin.client.post(
        RESOLVE, content=b"{", headers={**admin.headers, "content-type": "application/json"}
    )
    assert not_json.status_code == 400


async def test_another_orgs_chatbot_is_404_and_its_questions_stay_there(admin: Admin) -> None:
    services = admin.harness.services
    other = await services.store.create_org("Rival Ltd")
    _record, their_key = await services.store.create_api_key(other.id, "theirs")
    await services.store.create_chatbot(other.id, name="Rival", chatbot_id="rival")
    level = await ask(admin, "Do you sell zephyrine?", "rival-session-1", chatbot_id="rival")
    assert level == "none"

    for response in (
        await admin.get("/api/admin/chatbots/rival/unanswered"),
        await admin.post(
            "/api/admin/chatbots/rival/unanswered/resolve", json={"question": "Zephyrine?"}
        ),
        await admin.get("/api/admin/chatbots/nobody/unanswered"),
    ):
        assert response.status_code == 404 and response.json()["code"]
    assert "zephyrine" not in (await admin.get(BASE)).text

    theirs = await admin.client.get(
        "/api/admin/chatbots/rival/unanswered",
        headers={"Authorization": f"Bearer {their_key}"},
    )
    assert [q["question"] for q in theirs.json()["questions"]] == ["do you sell zephyrine"]
    # Their resolving does not touch ours: a mark is per chatbot.
    await admin.client.post(
        "/api/admin/chatbots/rival/unanswered/resolve",
        json={"question": GIFT_CARDS},
        headers={"Authorization": f"Bearer {their_key}"},
    )
    assert GIFT_CARDS in by_question((await admin.get(BASE)).json())
    assert (await admin.client.get(BASE)).status_code == 401


async def test_analytics_sums_up_the_open_questions(admin: Admin) -> None:
    await admin.post(RESOLVE, json={"question": "quantum chromodynamics lattice"})
    response = await admin.get("/api/admin/chatbots/shop/analytics")
    assert response.status_code == 200, response.text
    unanswered = response.json()["unanswered"]
    assert (unanswered["questions"], unanswered["asked"], unanswered["resolved"]) == (2, 5, 1)
    assert [q["question"] for q in unanswered["top"]] == [GIFT_CARDS, INVOICE]
    assert unanswered["top"][0]["count"] == 3
    # The days count only the fallbacks as answers without context.
    assert response.json()["days"][-1]["no_context_answers"] == 4


def test_normalising_folds_case_spaces_and_end_punctuation() -> None:
    assert normalise_question("  Do you ship\tto   MARS?! ") == "do you ship to mars"
    assert normalise_question("¿Dónde está la tienda?") == "dónde está la tienda"
    assert normalise_question("STRASSE") == normalise_question("Straße")
    assert normalise_question("What's e-mail's max size?") == "what's e-mail's max size"
    assert normalise_question("(hours)") == "hours"
    assert normalise_question("?!") == ""
    assert len(question_id("")) == 32 and question_id("a") != question_id("b")
