"""The storage contract for tenancy: usage counters written with each finished answer,
org budgets, the gate's rejection counts, feedback, and the conversation archive (filters,
paging, export in batches, deletion) on SQLite, PostgreSQL and PostgreSQL pooler mode."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text

from sitechat.domain import TokenUsage
from sitechat.errors import InvalidInput, NotFound
from sitechat.storage import Database, Store
from sitechat.storage.conversations import ConversationArchive
from sitechat.storage.usage import UsageLedger, day_of, month_of
from sitechat.tokens import count_tokens

USAGE = {"prompt_tokens": 120, "completion_tokens": 30, "total_tokens": 150, "source": "provider"}


async def answered(
    store: Store,
    chatbot_id: str,
    session_id: str,
    *,
    usage: dict[str, Any] | None = USAGE,
    **end: Any,
) -> str:
    conversation = await store.get_or_create_conversation(chatbot_id, session_id)
    await store.add_message(conversation.id, "user", "Question?")
    answer = await store.add_message(conversation.id, "assistant", "", status="streaming")
    await store.finish_message(
        answer.id,
        content=end.pop("content", "An answer."),
        status=end.pop("status", "complete"),
        usage=usage,
        context_quality=end.pop("context_quality", {"level": "high"}),
        ttft_ms=end.pop("ttft_ms", 120.0),
        **end,
    )
    return answer.id


@pytest.fixture
async def two_bots(store: Store) -> tuple[str, str, str]:
    org = await store.create_org("Acme")
    await store.create_chatbot(org.id, name="One", chatbot_id="one")
    await store.create_chatbot(org.id, name="Two", chatbot_id="two")
    return org.id, "one", "two"


async def test_finishing_an_answer_adds_its_tokens_to_the_org_and_chatbot_month(
    store: Store, database: Database, two_bots: tuple[str, str, str]
) -> None:
    org_id, one, two = two_bots
    ledger = UsageLedger(database)
    period = month_of(datetime.now(UTC))
    await answered(store, one, "session-1")
    await answered(store, one, "session-1")
    await answered(store, two, "session-2")
    assert await ledger.month_usage("chatbot", one, period) == TokenUsage(240, 60)
    assert await ledger.month_usage("chatbot", two, period) == TokenUsage(120, 30)
    assert await ledger.month_usage("org", org_id, period) == TokenUsage(360, 90)
    assert await ledger.month_usage("org", org_id, "1999-01") == TokenUsage()
    with pytest.raises(InvalidInput):
        await ledger.month_usage("planet", org_id, period)

    # Deleting a chatbot does not give its tokens back to the org, and a new chatbot with
    # the same id starts from zero.
    await store.delete_chatbot(one)
    assert (await ledger.month_usage("org", org_id, period)).total_tokens == 450
    await store.create_chatbot(org_id, name="One again", chatbot_id=one)
    assert await ledger.month_usage("chatbot", one, period) == TokenUsage()


async def test_an_answer_cut_short_without_usage_still_counts_its_text(
    store: Store, database: Database, two_bots: tuple[str, str, str]
) -> None:
    org_id, one, _ = two_bots
    text_so_far = "Orders ship within two business days, and"
    await answered(
        store, one, "session-1", usage=None, content=text_so_far, status="interrupted",
        error_code="client_disconnected",
    )  # fmt: skip
    used = await UsageLedger(database).month_usage("org", org_id, month_of(datetime.now(UTC)))
    assert used == TokenUsage(0, count_tokens(text_so_far))


async def test_concurrent_answers_lose_no_increment(
    store: Store, database: Database, two_bots: tuple[str, str, str]
) -> None:
    org_id, one, _ = two_bots
    await asyncio.gather(*(answered(store, one, f"session-{i:03d}") for i in range(12)))
    used = await UsageLedger(database).month_usage("org", org_id, month_of(datetime.now(UTC)))
    assert used == TokenUsage(12 * 120, 12 * 30)


async def test_org_budgets_are_set_read_and_cleared(store: Store, database: Database) -> None:
    org = await store.create_org("Acme")
    ledger = UsageLedger(database)
    assert await ledger.get_org_budget(org.id) is None
    await ledger.set_org_budget(org.id, 5000)
    assert await ledger.get_org_budget(org.id) == 5000
    await ledger.set_org_budget(org.id, None)
    assert await ledger.get_org_budget(org.id) is None
    with pytest.raises(NotFound):
        await ledger.set_org_budget("no-such-org", 1)
    with pytest.raises(InvalidInput):
        await ledger.set_org_budget(org.id, -1)


async def test_an_org_budget_past_bigint_is_invalid_input_not_an_overflow(
    store: Store, database: Database
) -> None:
    """Issue 9, finding 4: a budget of 1e30 overflowed PostgreSQL's BIGINT (a 500)."""
    org = await store.create_org("Acme")
    ledger = UsageLedger(database)
    with pytest.raises(InvalidInput):
        await ledger.set_org_budget(org.id, 2**63)
    await ledger.set_org_budget(org.id, 2**63 - 1)
    assert await ledger.get_org_budget(org.id) == 2**63 - 1


async def test_rejections_add_up_per_day_and_reason(
    database: Database, two_bots: tuple[str, str, str]
) -> None:
    _, one, two = two_bots
    ledger = UsageLedger(database)
    today = day_of(datetime.now(UTC))
    await ledger.add_rejections({(one, today, "rate_limited"): 3, (two, today, "origin"): 1})
    await asyncio.gather(
        ledger.add_rejections({(one, today, "rate_limited"): 2}),
        ledger.add_rejections({(one, today, "rate_limited"): 5, ("ghost", today, "origin"): 9}),
    )
    counts = await ledger.rejections(one, today, today)
    assert [(c.reason, c.count) for c in counts] == [("rate_limited", 10)]
    assert await ledger.rejections("ghost", today, today) == []


async def test_the_archive_filters_pages_and_counts(
    store: Store, database: Database, two_bots: tuple[str, str, str]
) -> None:
    _, one, two = two_bots
    archive = ConversationArchive(database)
    rated = await answered(store, one, "session-new")
    await answered(store, one, "session-old")
    await answered(store, two, "session-elsewhere")
    old = datetime.now(UTC) - timedelta(days=10)
    async with database.engine.begin() as connection:
        value = old.replace(tzinfo=None) if database.backend == "sqlite" else old
        await connection.execute(
            text("UPDATE conversations SET created_at = :at WHERE session_id = 'session-old'"),
            {"at": value},
        )
    new = await store.get_conversation(one, "session-new")
    assert new is not None
    await archive.set_feedback(new.id, rated, rating=1, comment="Great")
    await archive.set_feedback(new.id, rated, rating=-1, comment=None)  # replaces the first

    page, total = await archive.page(one)
    assert total == 2 and [s.conversation.session_id for s in page] == [
        "session-new",
        "session-old",
    ]
    assert [s.message_count for s in page] == [2, 2]
    assert [s.has_feedback for s in page] == [True, False]
    recent, _ = await archive.page(one, created_from=datetime.now(UTC) - timedelta(days=1))
    assert [s.conversation.session_id for s in recent] == ["session-new"]
    older, _ = await archive.page(one, created_to=datetime.now(UTC) - timedelta(days=1))
    assert [s.conversation.session_id for s in older] == ["session-old"]
    with_feedback, n = await archive.page(one, has_feedback=True)
    assert n == 1 and with_feedback[0].conversation.id == new.id
    second, n = await archive.page(one, limit=1, offset=1)
    assert n == 2 and [s.conversation.session_id for s in second] == ["session-old"]
    with pytest.raises(InvalidInput):
        await archive.page(one, limit=0)

    feedback = await archive.feedback(new.id)
    assert feedback[rated].rating == -1 and feedback[rated].comment is None

    # Only an assistant message of that very conversation can be rated.
    messages = await archive.messages(new.id)
    with pytest.raises(NotFound):
        await archive.set_feedback(new.id, messages[0].id, rating=1, comment=None)
    elsewhere = await store.get_conversation(two, "session-elsewhere")
    assert elsewhere is not None
    with pytest.raises(NotFound):
        await archive.set_feedback(elsewhere.id, rated, rating=1, comment=None)
    with pytest.raises(InvalidInput):
        await archive.set_feedback(new.id, rated, rating=5, comment=None)

    # Another chatbot's conversation is not found through this one.
    assert await archive.get(one, elsewhere.id) is None
    assert await archive.delete(one, elsewhere.id) is False
    assert await archive.delete(one, new.id) is True
    assert await archive.feedback(new.id) == {}
    assert await archive.messages(new.id) == []


async def test_export_reads_every_conversation_in_batches_oldest_first(
    store: Store, database: Database, two_bots: tuple[str, str, str]
) -> None:
    _, one, _ = two_bots
    for i in range(7):
        await answered(store, one, f"session-{i:03d}")
    archive = ConversationArchive(database)
    exported = [item async for item in archive.export(one, batch=3)]
    assert [c.session_id for c, _, _ in exported] == [f"session-{i:03d}" for i in range(7)]
    assert all([m.role for m in messages] == ["user", "assistant"] for _, messages, _ in exported)


async def test_message_facts_carry_tokens_quality_and_errors(
    store: Store, database: Database, two_bots: tuple[str, str, str]
) -> None:
    _, one, _ = two_bots
    await answered(store, one, "session-1")
    await answered(
        store, one, "session-1", usage=None, content="", status="failed",
        context_quality={"level": "none"}, error_code="model_unavailable", ttft_ms=None,
    )  # fmt: skip
    start = datetime.now(UTC) - timedelta(hours=1)
    facts = await ConversationArchive(database).message_facts(
        one, start, start + timedelta(hours=2)
    )
    answers = [f for f in facts if f.role == "assistant"]
    assert len(facts) == 4 and len(answers) == 2
    assert {(f.prompt_tokens, f.completion_tokens) for f in answers} == {(120, 30), (0, 0)}
    assert {f.quality_level for f in answers} == {"high", "none"}
    assert {f.error_code for f in answers} == {None, "model_unavailable"}
