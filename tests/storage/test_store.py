"""The Store contract: every behaviour, on SQLite, PostgreSQL and PostgreSQL pooler mode."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text

from sitechat.domain import ChatbotConfig, Message
from sitechat.errors import Conflict, InvalidInput, NotFound
from sitechat.storage import Database, Store
from sitechat.storage import messages as messages_module


async def count(database: Database, sql: str, **params: Any) -> int:
    async with database.engine.connect() as connection:
        return int((await connection.execute(text(sql), params)).scalar_one())


async def make_chatbot(store: Store, chatbot_id: str = "demo", **fields: Any) -> ChatbotConfig:
    org = await store.create_org("Acme")
    return await store.create_chatbot(org.id, name="Demo bot", chatbot_id=chatbot_id, **fields)


def assert_utc(value: datetime | None) -> None:
    assert value is not None
    assert value.tzinfo is not None
    assert value.utcoffset() == timedelta(0)


# --- orgs ---------------------------------------------------------------------------------


async def test_org_is_created_and_read_back(store: Store) -> None:
    org = await store.create_org("Acme")
    assert uuid.UUID(org.id).version == 4
    assert_utc(org.created_at)
    assert await store.get_org(org.id) == org
    assert await store.get_org(str(uuid.uuid4())) is None


# --- api keys -----------------------------------------------------------------------------


async def test_api_key_is_shown_once_and_only_its_sha256_is_stored(
    store: Store, database: Database
) -> None:
    org = await store.create_org("Acme")
    record, plaintext = await store.create_api_key(org.id, "deploy")
    assert plaintext.startswith("sck_") and len(plaintext) > 40
    assert record.prefix == plaintext[:12]
    assert (record.org_id, record.name) == (org.id, "deploy")
    assert record.last_used_at is None and record.revoked_at is None
    assert_utc(record.created_at)

    async with database.engine.connect() as connection:
        row = (await connection.execute(text("SELECT * FROM api_keys"))).mappings().one()
    assert row["key_hash"] == hashlib.sha256(plaintext.encode()).hexdigest()
    assert plaintext not in [str(value) for value in row.values()]


async def test_authenticating_a_key_returns_it_and_records_last_use(store: Store) -> None:
    org = await store.create_org("Acme")
    record, plaintext = await store.create_api_key(org.id)
    found = await store.authenticate_api_key(plaintext)
    assert found is not None
    assert found.id == record.id and found.org_id == org.id
    assert_utc(found.last_used_at)
    [listed] = await store.list_api_keys(org.id)
    assert listed.last_used_at == found.last_used_at


async def test_unknown_or_malformed_keys_do_not_authenticate(store: Store) -> None:
    org = await store.create_org("Acme")
    _record, plaintext = await store.create_api_key(org.id)
    same_prefix_wrong_secret = plaintext[:12] + "x" * (len(plaintext) - 12)
    for guess in (
        same_prefix_wrong_secret,
        "sck_",
        "",
        "nope",
        plaintext + "x",
        "sck_" + "a" * 500,
    ):
        assert await store.authenticate_api_key(guess) is None


async def test_a_revoked_key_stops_authenticating(store: Store) -> None:
    org = await store.create_org("Acme")
    record, plaintext = await store.create_api_key(org.id)
    other_org = await store.create_org("Other")
    assert await store.revoke_api_key(other_org.id, record.id) is False
    assert await store.revoke_api_key(org.id, str(uuid.uuid4())) is False
    assert await store.revoke_api_key(org.id, record.id) is True
    assert await store.revoke_api_key(org.id, record.id) is True  # idempotent
    assert await store.authenticate_api_key(plaintext) is None
    [listed] = await store.list_api_keys(org.id)
    assert_utc(listed.revoked_at)


async def test_api_keys_are_listed_per_org_oldest_first(store: Store) -> None:
    org = await store.create_org("Acme")
    other = await store.create_org("Other")
    first, _ = await store.create_api_key(org.id, "first")
    second, _ = await store.create_api_key(org.id, "second")
    await store.create_api_key(other.id, "theirs")
    assert [k.id for k in await store.list_api_keys(org.id)] == [first.id, second.id]


async def test_a_key_for_a_missing_org_is_a_conflict(store: Store) -> None:
    with pytest.raises(Conflict):
        await store.create_api_key(str(uuid.uuid4()))


# --- chatbots -----------------------------------------------------------------------------


async def test_chatbot_is_created_with_defaults_and_read_back(store: Store) -> None:
    org = await store.create_org("Acme")
    created = await store.create_chatbot(org.id, name="Helper", chatbot_id="demo")
    assert created.id == "demo" and created.org_id == org.id and created.name == "Helper"
    defaults = ChatbotConfig(id="x", org_id="y", name="z")
    assert created.greeting == defaults.greeting
    assert created.fallback_message == defaults.fallback_message
    assert created.temperature == defaults.temperature
    assert created.starter_questions == () and created.theme == {}
    assert created.answer_scope == "documents_only"
    assert_utc(created.created_at)
    assert created.updated_at == created.created_at
    assert await store.get_chatbot("demo") == created
    assert await store.get_chatbot("missing") is None


async def test_chatbot_fields_round_trip_including_json(store: Store) -> None:
    org = await store.create_org("Acme")
    fields: dict[str, Any] = {
        "system_prompt": "Be brief.",
        "provider": "openai",
        "model": "gpt-4o-mini",
        "temperature": 0.7,
        "max_tokens": 300,
        "greeting": "Hello!",
        "starter_questions": ["Where is my order?", "Do you ship to Norway?"],
        "theme": {"color": "#112233", "position": {"side": "right", "offset": 16}},
        "fallback_message": "Ask a human.",
        "allowed_origins": ["https://shop.example"],
        "answer_scope": "documents_and_general",
        "settings": {"rate_limit": {"per_minute": 20}, "flags": ["beta"], "ratio": 0.5},
    }
    created = await store.create_chatbot(org.id, name="Helper", chatbot_id="shop", **fields)
    loaded = await store.get_chatbot("shop")
    assert loaded == created
    assert loaded.starter_questions == ("Where is my order?", "Do you ship to Norway?")
    assert loaded.allowed_origins == ("https://shop.example",)
    assert loaded.theme == fields["theme"] and loaded.settings == fields["settings"]
    assert (loaded.provider, loaded.model, loaded.max_tokens) == ("openai", "gpt-4o-mini", 300)
    assert loaded.answer_scope == "documents_and_general"


async def test_chatbot_without_an_id_gets_a_uuid(store: Store) -> None:
    org = await store.create_org("Acme")
    created = await store.create_chatbot(org.id, name="Helper")
    assert uuid.UUID(created.id).version == 4


async def test_a_taken_chatbot_id_is_a_conflict(store: Store) -> None:
    await make_chatbot(store, "demo")
    org = await store.create_org("Someone else")
    with pytest.raises(Conflict, match="already exists"):
        await store.create_chatbot(org.id, name="Mine", chatbot_id="demo")
    assert (await store.get_chatbot("demo")).name == "Demo bot"  # type: ignore[union-attr]


async def test_a_chatbot_for_a_missing_org_is_a_conflict(store: Store) -> None:
    with pytest.raises(Conflict, match="does not exist"):
        await store.create_chatbot(str(uuid.uuid4()), name="Orphan", chatbot_id="orphan")


@pytest.mark.parametrize("bad_id", ["", "has space", "-leading", "x" * 65, "slash/y", "é"])
async def test_chatbot_ids_that_do_not_fit_in_a_url_are_refused(bad_id: str) -> None:
    # Checked before any database work: an unstarted database is enough.
    store = Store(Database("sqlite+aiosqlite:///:memory:"))
    with pytest.raises(InvalidInput):
        await store.create_chatbot("org", name="x", chatbot_id=bad_id)


async def test_unknown_chatbot_fields_are_refused(store: Store) -> None:
    org = await store.create_org("Acme")
    with pytest.raises(InvalidInput, match="colour"):
        await store.create_chatbot(org.id, name="x", chatbot_id="x", colour="red")
    await store.create_chatbot(org.id, name="x", chatbot_id="x")
    with pytest.raises(InvalidInput, match="org_id"):
        await store.update_chatbot("x", org_id="someone-else")
    with pytest.raises(InvalidInput, match="answer_scope"):
        await store.update_chatbot("x", answer_scope="everything")


async def test_chatbots_are_listed_per_org(store: Store) -> None:
    org = await store.create_org("Acme")
    other = await store.create_org("Other")
    await store.create_chatbot(org.id, name="One", chatbot_id="one")
    await store.create_chatbot(other.id, name="Theirs", chatbot_id="theirs")
    await store.create_chatbot(org.id, name="Two", chatbot_id="two")
    assert [c.id for c in await store.list_chatbots(org.id)] == ["one", "two"]
    assert await store.list_chatbots(str(uuid.uuid4())) == []


async def test_updating_a_chatbot_changes_only_the_given_fields(store: Store) -> None:
    created = await make_chatbot(store, "demo", greeting="Hi", theme={"color": "red"})
    updated = await store.update_chatbot(
        "demo", name="Renamed", starter_questions=["Q1"], theme={"color": "blue"}
    )
    assert updated is not None
    assert (updated.name, updated.starter_questions, updated.theme) == (
        "Renamed",
        ("Q1",),
        {"color": "blue"},
    )
    assert updated.greeting == "Hi" and updated.org_id == created.org_id
    assert updated.created_at == created.created_at
    assert updated.updated_at is not None and created.updated_at is not None
    assert updated.updated_at >= created.updated_at
    assert await store.get_chatbot("demo") == updated
    assert await store.update_chatbot("missing", name="x") is None


async def test_deleting_a_chatbot(store: Store) -> None:
    await make_chatbot(store, "demo")
    assert await store.delete_chatbot("demo") is True
    assert await store.get_chatbot("demo") is None
    assert await store.delete_chatbot("demo") is False


async def test_deleting_a_chatbot_deletes_its_conversations_messages_and_documents(
    store: Store, database: Database
) -> None:
    await make_chatbot(store, "doomed")
    await make_chatbot(store, "kept")
    for chatbot_id in ("doomed", "kept"):
        conversation = await store.get_or_create_conversation(chatbot_id, "s1")
        await store.add_message(conversation.id, "user", "hello")
        await store.add_message(conversation.id, "assistant", "hi")
        await store.create_document(
            chatbot_id, title="FAQ", url=None, source_type="text", content_hash="h"
        )
    doomed = await store.get_conversation("doomed", "s1")
    assert doomed is not None

    assert await store.delete_chatbot("doomed") is True

    assert await store.get_conversation("doomed", "s1") is None
    assert await store.list_messages(doomed.id) == []
    assert await store.list_documents("doomed") == []
    assert await count(database, "SELECT count(*) FROM conversations") == 1
    assert await count(database, "SELECT count(*) FROM messages") == 2
    assert await count(database, "SELECT count(*) FROM documents") == 1
    assert len(await store.list_documents("kept")) == 1


# --- conversations ------------------------------------------------------------------------


async def test_a_session_has_one_conversation_per_chatbot(store: Store) -> None:
    await make_chatbot(store, "a")
    await make_chatbot(store, "b")
    assert await store.get_conversation("a", "s1") is None
    first = await store.get_or_create_conversation("a", "s1")
    assert (first.chatbot_id, first.session_id) == ("a", "s1")
    assert_utc(first.created_at)
    assert await store.get_or_create_conversation("a", "s1") == first
    assert await store.get_conversation("a", "s1") == first
    other_session = await store.get_or_create_conversation("a", "s2")
    other_bot = await store.get_or_create_conversation("b", "s1")
    assert len({first.id, other_session.id, other_bot.id}) == 3


async def test_concurrent_first_requests_of_a_session_share_one_conversation(
    store: Store, database: Database
) -> None:
    await make_chatbot(store, "demo")
    results = await asyncio.gather(
        *(store.get_or_create_conversation("demo", "racing") for _ in range(10))
    )
    assert len({c.id for c in results}) == 1
    assert await count(database, "SELECT count(*) FROM conversations") == 1


async def test_a_conversation_for_a_missing_chatbot_is_a_conflict(store: Store) -> None:
    with pytest.raises(Conflict):
        await store.get_or_create_conversation("missing", "s1")


# --- messages -----------------------------------------------------------------------------


async def test_adding_a_message_returns_it_and_bumps_the_conversation(store: Store) -> None:
    await make_chatbot(store)
    conversation = await store.get_or_create_conversation("demo", "s1")
    message = await store.add_message(conversation.id, "user", "Where is my order?")
    assert (message.role, message.content, message.status) == (
        "user",
        "Where is my order?",
        "complete",
    )
    assert message.sources == [] and message.usage is None and message.ttft_ms is None
    assert_utc(message.created_at)
    bumped = await store.get_conversation("demo", "s1")
    assert bumped is not None
    assert bumped.updated_at >= message.created_at > conversation.created_at - timedelta(seconds=1)
    assert bumped.created_at == conversation.created_at


async def test_a_message_for_a_missing_conversation_is_not_found(store: Store) -> None:
    with pytest.raises(NotFound):
        await store.add_message(str(uuid.uuid4()), "user", "hello")


async def test_bad_roles_and_statuses_are_refused(store: Store) -> None:
    await make_chatbot(store)
    conversation = await store.get_or_create_conversation("demo", "s1")
    with pytest.raises(InvalidInput):
        await store.add_message(conversation.id, "system", "x")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        await store.add_message(conversation.id, "user", "x", status="done")  # type: ignore[arg-type]


async def test_messages_keep_their_order_even_with_identical_timestamps(
    store: Store, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    await make_chatbot(store)
    conversation = await store.get_or_create_conversation("demo", "s1")
    frozen = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
    monkeypatch.setattr(messages_module, "utcnow", lambda: frozen)
    added = [
        await store.add_message(conversation.id, "user" if i % 2 == 0 else "assistant", f"m{i}")
        for i in range(12)
    ]
    assert await count(database, "SELECT count(DISTINCT created_at) FROM messages") == 1
    assert [m.id for m in await store.list_messages(conversation.id)] == [m.id for m in added]
    window = await store.recent_messages(conversation.id, 5)
    assert [m.content for m in window] == ["m7", "m8", "m9", "m10", "m11"]


async def test_finishing_a_message_stores_its_final_state(store: Store) -> None:
    await make_chatbot(store)
    conversation = await store.get_or_create_conversation("demo", "s1")
    streaming = await store.add_message(conversation.id, "assistant", "", status="streaming")
    sources = [{"number": 1, "title": "FAQ", "url": "https://x.example/faq", "score": 0.8}]
    quality = {"level": "good", "top_score": 0.8, "reasons": []}
    usage = {"prompt_tokens": 120, "completion_tokens": 30, "source": "provider"}
    await store.finish_message(
        streaming.id,
        content="Orders ship in two days [1].",
        status="complete",
        sources=sources,
        context_quality=quality,
        usage=usage,
        ttft_ms=412.5,
    )
    [finished] = await store.list_messages(conversation.id)
    assert finished == Message(
        id=streaming.id,
        conversation_id=conversation.id,
        role="assistant",
        content="Orders ship in two days [1].",
        status="complete",
        created_at=streaming.created_at,
        sources=sources,
        context_quality=quality,
        usage=usage,
        ttft_ms=412.5,
        error_code=None,
    )


async def test_a_failed_message_keeps_its_error_code(store: Store) -> None:
    await make_chatbot(store)
    conversation = await store.get_or_create_conversation("demo", "s1")
    streaming = await store.add_message(conversation.id, "assistant", "", status="streaming")
    await store.finish_message(
        streaming.id, content="Partial", status="interrupted", error_code="model_interrupted"
    )
    [message] = await store.list_messages(conversation.id)
    assert (message.status, message.error_code, message.content) == (
        "interrupted",
        "model_interrupted",
        "Partial",
    )
    assert message.sources == [] and message.usage is None


async def test_finishing_a_missing_message_is_not_found(store: Store) -> None:
    with pytest.raises(NotFound):
        await store.finish_message(str(uuid.uuid4()), content="x", status="complete")


async def test_recent_messages_is_the_last_window_of_history_oldest_first(store: Store) -> None:
    await make_chatbot(store)
    conversation = await store.get_or_create_conversation("demo", "s1")
    plan = [
        ("user", "u1", "complete"),
        ("assistant", "a1", "complete"),
        ("user", "u2", "complete"),
        ("assistant", "a2", "interrupted"),
        ("user", "u3", "complete"),
        ("assistant", "a3", "failed"),
        ("user", "u4", "complete"),
        ("assistant", "a4", "streaming"),
    ]
    ids = {}
    for role, content, status in plan:
        message = await store.add_message(conversation.id, role, content, status=status)  # type: ignore[arg-type]
        ids[content] = message.id

    async def window(limit: int, before: str | None = None) -> list[str]:
        before_id = ids.get(before, before) if before else None
        messages = await store.recent_messages(conversation.id, limit, before_message_id=before_id)
        return [m.content for m in messages]

    # failed and streaming messages are not history
    assert await window(10) == ["u1", "a1", "u2", "a2", "u3", "u4"]
    assert await window(3) == ["a2", "u3", "u4"]
    # the boundary message and everything after it are left out
    assert await window(10, before="u4") == ["u1", "a1", "u2", "a2", "u3"]
    assert await window(2, before="u3") == ["u2", "a2"]
    assert await window(10, before="u1") == []
    assert await window(0) == []
    assert await window(10, before=str(uuid.uuid4())) == []


async def test_recent_messages_ignores_other_conversations(store: Store) -> None:
    await make_chatbot(store)
    mine = await store.get_or_create_conversation("demo", "mine")
    theirs = await store.get_or_create_conversation("demo", "theirs")
    await store.add_message(theirs.id, "user", "not mine")
    boundary = await store.add_message(mine.id, "user", "mine")
    await store.add_message(theirs.id, "user", "also not mine")
    assert [m.content for m in await store.recent_messages(mine.id, 10)] == ["mine"]
    assert await store.recent_messages(theirs.id, 10, before_message_id=boundary.id) == []


# --- documents ----------------------------------------------------------------------------


async def test_document_is_created_and_read_back(store: Store) -> None:
    await make_chatbot(store)
    document = await store.create_document(
        "demo",
        title="Shipping",
        url="https://shop.example/shipping",
        source_type="url",
        content_hash="abc",
        metadata={"lang": "en", "etag": "W/1"},
    )
    assert (document.status, document.chunk_count, document.error) == ("queued", 0, None)
    assert document.metadata == {"lang": "en", "etag": "W/1"}
    assert_utc(document.created_at)
    assert await store.get_document("demo", document.id) == document
    await make_chatbot(store, "other")
    assert await store.get_document("other", document.id) is None


async def test_find_document_matches_by_url_else_by_title(store: Store) -> None:
    await make_chatbot(store)
    by_url = await store.create_document(
        "demo", title="Page", url="https://x.example/a", source_type="url", content_hash="1"
    )
    by_title = await store.create_document(
        "demo", title="notes.md", url=None, source_type="markdown", content_hash="2"
    )
    assert await store.find_document("demo", url="https://x.example/a") == by_url
    assert await store.find_document("demo", url="https://x.example/a", title="notes.md") == by_url
    assert await store.find_document("demo", title="notes.md") == by_title
    assert await store.find_document("demo", url="https://x.example/b", title="notes.md") is None
    assert await store.find_document("demo") is None
    await make_chatbot(store, "other")
    assert await store.find_document("other", title="notes.md") is None


async def test_updating_a_document(store: Store) -> None:
    await make_chatbot(store)
    document = await store.create_document(
        "demo", title="FAQ", url=None, source_type="text", content_hash="old"
    )
    running = await store.update_document(document.id, status="running", content_hash="new")
    assert running is not None and (running.status, running.content_hash) == ("running", "new")
    failed = await store.update_document(document.id, status="failed", error="Not readable.")
    assert failed is not None and failed.error == "Not readable."
    done = await store.update_document(
        document.id, status="done", error=None, chunk_count=7, title="FAQ v2", metadata={"n": 1}
    )
    assert done is not None
    assert (done.status, done.error, done.chunk_count, done.title, done.metadata) == (
        "done",
        None,
        7,
        "FAQ v2",
        {"n": 1},
    )
    assert done.created_at == document.created_at and done.updated_at >= document.updated_at
    assert await store.get_document("demo", document.id) == done
    assert await store.update_document(str(uuid.uuid4()), status="done") is None
    with pytest.raises(InvalidInput):
        await store.update_document(document.id, chatbot_id="other")
    with pytest.raises(InvalidInput):
        await store.update_document(document.id, status="finished")


async def test_documents_are_listed_per_chatbot_and_deleted(store: Store) -> None:
    await make_chatbot(store)
    await make_chatbot(store, "other")
    first = await store.create_document(
        "demo", title="1", url=None, source_type="text", content_hash="1"
    )
    second = await store.create_document(
        "demo", title="2", url=None, source_type="text", content_hash="2"
    )
    await store.create_document("other", title="3", url=None, source_type="text", content_hash="3")
    assert [d.id for d in await store.list_documents("demo")] == [first.id, second.id]
    assert await store.delete_document("other", first.id) is False
    assert await store.delete_document("demo", first.id) is True
    assert await store.delete_document("demo", first.id) is False
    assert [d.id for d in await store.list_documents("demo")] == [second.id]


async def test_a_document_for_a_missing_chatbot_is_a_conflict(store: Store) -> None:
    with pytest.raises(Conflict):
        await store.create_document(
            "missing", title="x", url=None, source_type="text", content_hash="h"
        )


async def test_ping_answers_true_for_a_live_database(store: Store) -> None:
    assert await store.ping() is True
