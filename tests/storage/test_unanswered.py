"""The unanswered-questions log on SQLite, PostgreSQL and PostgreSQL pooler mode: each
answer without enough context is paired with its own question (the last visitor message
before it), only in its chatbot and range; resolution marks are upserted and removed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from sitechat.errors import ChatbotNotFound
from sitechat.storage import Database, Store
from sitechat.storage.unanswered import UnansweredLog, asks_statement


async def turn(store: Store, conversation_id: str, question: str, level: str | None) -> None:
    await store.add_message(conversation_id, "user", question)
    answer = await store.add_message(conversation_id, "assistant", "", status="streaming")
    await store.finish_message(
        answer.id,
        content="An answer.",
        status="complete",
        context_quality={"level": level} if level else None,
    )


@pytest.fixture
async def bots(store: Store) -> tuple[str, str]:
    org = await store.create_org("Acme")
    await store.create_chatbot(org.id, name="One", chatbot_id="one")
    await store.create_chatbot(org.id, name="Two", chatbot_id="two")
    return "one", "two"


async def test_each_unanswered_answer_is_paired_with_its_own_question(
    store: Store, database: Database, bots: tuple[str, str]
) -> None:
    one, two = bots
    first = await store.get_or_create_conversation(one, "session-a")
    await turn(store, first.id, "Shipping?", "high")
    await turn(store, first.id, "Gift cards?", "none")
    await turn(store, first.id, "Invoices?", "low")
    await turn(store, first.id, "Returns?", "medium")
    await turn(store, first.id, "Stopped early?", None)
    other = await store.get_or_create_conversation(two, "session-b")
    await turn(store, other.id, "Elsewhere?", "none")

    log = UnansweredLog(database)
    now = datetime.now(UTC)
    asks = await log.asks(one, now - timedelta(hours=1), now + timedelta(hours=1))
    assert sorted((a.question, a.quality_level) for a in asks) == [
        ("Gift cards?", "none"),
        ("Invoices?", "low"),
    ]
    assert {(a.session_id, a.conversation_id) for a in asks} == {("session-a", first.id)}
    assert all(now - timedelta(minutes=1) < a.asked_at <= datetime.now(UTC) for a in asks)
    assert await log.asks(one, now + timedelta(hours=1), now + timedelta(hours=2)) == []
    elsewhere = await log.asks(two, now - timedelta(hours=1), now + timedelta(hours=1))
    assert [a.question for a in elsewhere] == ["Elsewhere?"]


async def test_resolutions_are_upserted_removed_and_per_chatbot(
    store: Store, database: Database, bots: tuple[str, str]
) -> None:
    one, two = bots
    log = UnansweredLog(database)
    key = "0" * 32
    first = await log.resolve(one, key)
    again = await log.resolve(one, key)
    assert again >= first
    assert await log.resolutions(one) == {key: again}
    assert await log.resolutions(two) == {}
    assert await log.unresolve(one, key) is True
    assert await log.unresolve(one, key) is False
    assert await log.resolutions(one) == {}
    with pytest.raises(ChatbotNotFound):
        await log.resolve("nobody", key)


async def test_the_sqlite_query_reads_the_partial_index(
    store: Store, database: Database, bots: tuple[str, str]
) -> None:
    if database.backend != "sqlite":
        pytest.skip("SQLite's plan; PostgreSQL chooses by statistics")
    now = datetime.now(UTC)
    async with database.engine.connect() as connection:
        compiled = asks_statement("one", now, now).compile(dialect=connection.dialect)
        # The plan does not depend on the values: any will do.
        values = tuple("x" for _ in compiled.positiontup or ())
        plan = await connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}", values)
        details = [str(row[-1]) for row in plan]
    assert any("ix_messages_unanswered" in step for step in details), details
    # Each answer's question is found through the (conversation_id, seq) index.
    assert not any(step.startswith("SCAN messages") for step in details), details
