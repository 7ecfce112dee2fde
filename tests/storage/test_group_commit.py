"""Group commit (``Database.group``): chat turns opened and answers ended at the same time
share transactions, and one turn's failure stays its own. On SQLite, PostgreSQL and
PostgreSQL in pooler mode, on the real databases."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from sqlalchemy import make_url, text

from sitechat.domain import TokenUsage
from sitechat.errors import ChatbotNotFound, ConversationNotFound, StorageError
from sitechat.storage import Database, Store
from sitechat.storage.usage import UsageLedger, month_of


@pytest.fixture
async def bot(store: Store) -> tuple[str, str]:
    org = await store.create_org("Acme")
    await store.create_chatbot(org.id, name="Shop", chatbot_id="shop")
    return org.id, "shop"


def count_batches(database: Database, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The transactions the group commit runs, as their number of calls (an op, or many
    items of one kind written together); it still runs them."""
    sizes: list[int] = []
    run_batch = database.run_batch

    async def counted(ops: list[Any]) -> list[Any]:
        sizes.append(len(ops))
        return await run_batch(ops)

    monkeypatch.setattr(database.group, "_run_batch", counted)
    return sizes


async def test_turns_opened_at_once_share_transactions_and_each_is_stored(
    store: Store, database: Database, bot: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, chatbot = bot
    sizes = count_batches(database, monkeypatch)
    opened = await asyncio.gather(
        *(store.begin_turn(chatbot, f"session-{i:02d}", f"Question {i}?") for i in range(20)),
        # Two questions racing in one new session: one conversation, both stored.
        store.begin_turn(chatbot, "shared-session", "First?"),
        store.begin_turn(chatbot, "shared-session", "Second?"),
    )

    assert len(sizes) < 22  # shared transactions
    for i, turn in enumerate(opened[:20]):
        assert turn.created
        stored = await store.list_messages(turn.conversation.id)
        assert [(m.id, m.role, m.content, m.status) for m in stored] == [
            (turn.question.id, "user", f"Question {i}?", "complete"),
            (turn.answer.id, "assistant", "", "streaming"),
        ]
    first, second = opened[20:]
    assert first.conversation.id == second.conversation.id
    assert [first.created, second.created].count(True) == 1
    stored = await store.list_messages(first.conversation.id)
    assert {m.content for m in stored if m.role == "user"} == {"First?", "Second?"}


async def test_a_failing_turn_fails_alone_and_stores_nothing(
    store: Store, database: Database, bot: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, chatbot = bot
    await store.begin_turn(chatbot, "alices-session", "Hi?", visitor_id="alice")
    sizes = count_batches(database, monkeypatch)

    outcomes = await asyncio.gather(
        *(store.begin_turn(chatbot, f"session-{i}", "Question?") for i in range(5)),
        # Another visitor's session: as if it did not exist.
        store.begin_turn(chatbot, "alices-session", "Let me in?", visitor_id="mallory"),
        return_exceptions=True,
    )

    assert isinstance(outcomes[5], ConversationNotFound)
    for turn in outcomes[:5]:
        assert not isinstance(turn, BaseException)
        assert len(await store.list_messages(turn.conversation.id)) == 2
    conversation = await store.get_conversation(chatbot, "alices-session")
    assert conversation is not None
    assert [m.content for m in await store.list_messages(conversation.id)] == ["Hi?", ""]
    assert len(sizes) < 6  # they shared a transaction, which the refusal did not spoil


async def test_a_turn_for_a_deleted_chatbot_is_chatbot_not_found(
    store: Store, bot: tuple[str, str]
) -> None:
    _, chatbot = bot
    await store.delete_chatbot(chatbot)
    with pytest.raises(ChatbotNotFound):
        await store.begin_turn(chatbot, "session-1", "Anyone there?")


async def test_answers_ended_at_once_add_up_their_usage_once_per_month(
    store: Store, database: Database, bot: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    org_id, chatbot = bot
    turns = [await store.begin_turn(chatbot, f"session-{i}", "Question?") for i in range(10)]
    sizes = count_batches(database, monkeypatch)
    usage = {"prompt_tokens": 100, "completion_tokens": 7, "source": "provider"}

    ended = await asyncio.gather(
        *(
            store.finish_message(
                turn.answer.id,
                content="An answer.",
                status="complete",
                usage=usage,
                # Half know their owner (the pipeline does), half have it looked up.
                owner=(chatbot, org_id) if i % 2 else None,
            )
            for i, turn in enumerate(turns)
        )
    )

    assert ended == [True] * 10 and len(sizes) < 10
    ledger = UsageLedger(database)
    period = month_of(datetime.now(UTC))
    assert await ledger.month_usage("org", org_id, period) == TokenUsage(1000, 70)
    assert await ledger.month_usage("chatbot", chatbot, period) == TokenUsage(1000, 70)
    for turn in turns:
        [_, answer] = await store.list_messages(turn.conversation.id)
        assert (answer.status, answer.content) == ("complete", "An answer.")


async def test_on_sqlite_a_held_write_lock_is_waited_for_off_the_event_loop(
    tmp_path: Path,
) -> None:
    """The batch runs in the event loop only while SQLite's write lock is free; while another
    connection holds it, the batch waits for it in a worker thread and the loop goes on."""
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'sitechat.db'}")
    await database.start(migrate=True)
    try:
        store = Store(database)
        org = await store.create_org("Acme")
        await store.create_chatbot(org.id, name="Shop", chatbot_id="shop")
        holder = sqlite3.connect(tmp_path / "sitechat.db", isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")  # another writer, mid-transaction
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.01)

        ticker = asyncio.create_task(tick())
        opening = asyncio.create_task(store.begin_turn("shop", "session-1", "Still there?"))
        await asyncio.sleep(0.3)
        assert not opening.done() and ticks >= 10  # waiting, and the loop is not blocked
        holder.execute("COMMIT")
        holder.close()
        turn = await asyncio.wait_for(opening, 10)
        ticker.cancel()
        assert [m.content for m in await store.list_messages(turn.conversation.id)] == [
            "Still there?",
            "",
        ]
    finally:
        await database.close()


async def test_a_session_made_for_its_turn_is_written_without_a_lookup(
    store: Store, database: Database, bot: tuple[str, str]
) -> None:
    _, chatbot = bot
    opened = await asyncio.gather(
        *(store.begin_turn(chatbot, f"fresh-{i}", "Question?", new_session=True) for i in range(5))
    )
    assert all(turn.created for turn in opened)
    assert len({turn.conversation.id for turn in opened}) == 5
    # Told wrongly that a session is new, the turn still joins its conversation: the
    # conversation's insert fails on the session's unique key and the turn looks it up.
    again = await store.begin_turn(chatbot, "fresh-0", "And then?", new_session=True)
    assert again.conversation.id == opened[0].conversation.id
    assert not again.created
    stored = await store.list_messages(again.conversation.id)
    assert [m.content for m in stored if m.role == "user"] == ["Question?", "And then?"]


async def test_a_lone_new_session_on_postgres_is_opened_in_one_statement(
    store: Store, database: Database, bot: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # With nothing else waiting to be written, a new session's turn on Postgres (not behind
    # a transaction pooler) skips the group commit: one statement, its own transaction.
    _, chatbot = bot
    sizes = count_batches(database, monkeypatch)
    turn = await store.begin_turn(chatbot, "lone-session", "Alone?", new_session=True)
    direct = database.backend == "postgresql" and not database.target.transaction_pooler
    assert sizes == ([] if direct else [1])
    assert turn.created and turn.conversation.session_id == "lone-session"
    assert turn.answer.worker_id is None and turn.question.status == "complete"
    conversation = await store.get_conversation(chatbot, "lone-session")
    assert conversation is not None and conversation.id == turn.conversation.id
    stored = await store.list_messages(turn.conversation.id)
    assert [(m.id, m.role, m.content, m.status) for m in stored] == [
        (turn.question.id, "user", "Alone?", "complete"),
        (turn.answer.id, "assistant", "", "streaming"),
    ]
    # A follow-up in that session finds it, through the shared transactions.
    follow_up = await store.begin_turn(chatbot, "lone-session", "Still there?")
    assert follow_up.conversation.id == turn.conversation.id and not follow_up.created


async def test_new_sessions_opened_at_once_share_transactions_on_every_backend(
    store: Store, database: Database, bot: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The one-statement turn is for a quiet moment only: under load, turns join the group
    # commit rather than each taking a pooled connection of its own.
    _, chatbot = bot
    sizes = count_batches(database, monkeypatch)
    singles: list[str] = []
    execute_single = database.execute_single

    async def counted(sql: str, *args: Any) -> None:
        singles.append(sql)
        await execute_single(sql, *args)

    monkeypatch.setattr(database, "execute_single", counted)
    opened = await asyncio.gather(
        *(store.begin_turn(chatbot, f"busy-{i:02d}", "Q?", new_session=True) for i in range(20))
    )
    assert len(singles) <= 1 and 1 <= len(sizes) < 20
    assert len({turn.conversation.id for turn in opened}) == 20
    for turn in opened:
        assert [m.role for m in await store.list_messages(turn.conversation.id)] == [
            "user",
            "assistant",
        ]


async def test_a_new_session_for_a_deleted_chatbot_is_chatbot_not_found_and_stores_nothing(
    store: Store, bot: tuple[str, str]
) -> None:
    org, chatbot = bot
    await store.create_chatbot(org, name="Other", chatbot_id="other")
    await store.delete_chatbot(chatbot)
    with pytest.raises(ChatbotNotFound):
        await store.begin_turn(chatbot, "session-gone", "Anyone there?", new_session=True)
    assert await store.get_conversation(chatbot, "session-gone") is None
    # The failed statement left the pool usable.
    turn = await store.begin_turn("other", "session-here", "Hello?", new_session=True)
    assert [m.content for m in await store.list_messages(turn.conversation.id)] == ["Hello?", ""]


@pytest.mark.postgres
async def test_a_connection_the_server_dropped_fails_one_turn_and_is_not_reused(
    postgres_url: str,
) -> None:
    database = Database(postgres_url)
    await database.start(migrate=False)
    store = Store(database)
    try:
        org = await store.create_org("Acme")
        await store.create_chatbot(org.id, name="Shop", chatbot_id="dropped")
        await store.begin_turn("dropped", "session-one", "First?", new_session=True)
        # The server ends every pooled connection of this database, idle in the pool.
        admin = await asyncpg.connect(
            make_url(postgres_url)
            .set(drivername="postgresql")
            .render_as_string(hide_password=False)
        )
        try:
            ended = await admin.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        finally:
            await admin.close()
        assert ended >= 1
        outcomes = []
        for i in range(ended + 2):
            try:
                await store.begin_turn("dropped", f"session-{i}", "Again?", new_session=True)
                outcomes.append("stored")
            except StorageError:
                outcomes.append("storage_error")
        # At most one turn per dead connection fails, as StorageError; the pool then
        # connects anew.
        assert outcomes[-1] == "stored" and outcomes.count("storage_error") <= ended
        conversation = await store.get_conversation("dropped", f"session-{ended + 1}")
        assert conversation is not None
    finally:
        async with database.engine.begin() as connection:
            await connection.execute(text("DELETE FROM orgs WHERE name = 'Acme'"))
        await database.close()
