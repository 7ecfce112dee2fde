"""Migration 0002 on a database that already holds conversations: answers stored before it
get their token columns and quality level, and the monthly usage counters start from them."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import Connection, text

from sitechat.storage import Database
from sitechat.storage import migrate as migrate_module
from tests.storage.conftest import backend_url

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]


@pytest.fixture(params=BACKENDS)
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return backend_url(request, tmp_path / "old.db", "fresh_postgres_url")


def upgrade_to(revision: str):  # type: ignore[no-untyped-def]
    def run(connection: Connection) -> None:
        command.upgrade(migrate_module.alembic_config(connection), revision)

    return run


async def test_upgrading_backfills_tokens_quality_and_monthly_usage(empty_url: str) -> None:
    database = Database(empty_url)
    await database.start(migrate=False)
    try:
        async with database.engine.begin() as connection:
            await connection.run_sync(upgrade_to("0001"))
        at = datetime(2026, 10, 5, 12, 0, tzinfo=UTC)
        stamp = at.replace(tzinfo=None) if database.backend == "sqlite" else at
        rows = [
            ("INSERT INTO orgs (id, name, created_at) VALUES ('o1', 'Old', :at)", {}),
            (
                "INSERT INTO chatbots (id, org_id, name, system_prompt, temperature, greeting,"
                " starter_questions, theme, fallback_message, allowed_origins, settings,"
                " created_at, updated_at) VALUES ('bot', 'o1', 'Bot', '', 0.2, 'Hi', '[]', '{}',"
                " 'No', '[]', '{}', :at, :at)",
                {},
            ),
            (
                "INSERT INTO conversations (id, chatbot_id, session_id, created_at, updated_at)"
                " VALUES ('c1', 'bot', 'session-1', :at, :at)",
                {},
            ),
        ]
        messages = [
            ("m1", "user", None, None),
            ("m2", "assistant", {"prompt_tokens": 100, "completion_tokens": 20}, {"level": "high"}),
            ("m3", "assistant", {"prompt_tokens": 50, "completion_tokens": 5}, {"level": "none"}),
            ("m4", "assistant", None, None),
        ]
        async with database.engine.begin() as connection:
            for sql, params in rows:
                await connection.execute(text(sql), {"at": stamp, **params})
            for message_id, role, usage, quality in messages:
                await connection.execute(
                    text(
                        "INSERT INTO messages (id, conversation_id, role, content, status, usage,"
                        " context_quality, created_at) VALUES (:id, 'c1', :role, 'x', 'complete',"
                        " :usage, :quality, :at)"
                    ),
                    {
                        "id": message_id,
                        "role": role,
                        "usage": json.dumps(usage) if usage else None,
                        "quality": json.dumps(quality) if quality else None,
                        "at": stamp,
                    },
                )

        assert await database.migrate() is True
        async with database.engine.connect() as connection:
            backfilled = (
                await connection.execute(
                    text(
                        "SELECT id, prompt_tokens, completion_tokens, quality_level FROM messages"
                        " ORDER BY id"
                    )
                )
            ).all()
            counters = (
                await connection.execute(
                    text(
                        "SELECT scope, scope_id, period, prompt_tokens, completion_tokens"
                        " FROM usage_counters ORDER BY scope"
                    )
                )
            ).all()
            budget = (
                await connection.execute(text("SELECT monthly_token_budget FROM orgs"))
            ).scalar_one()
    finally:
        await database.close()
    assert [tuple(row) for row in backfilled] == [
        ("m1", None, None, None),
        ("m2", 100, 20, "high"),
        ("m3", 50, 5, "none"),
        ("m4", None, None, None),
    ]
    assert [tuple(row) for row in counters] == [
        ("chatbot", "bot", "2026-10", 150, 25),
        ("org", "o1", "2026-10", 150, 25),
    ]
    assert budget is None
