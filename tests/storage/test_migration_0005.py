"""Migration 0005 on a database that already holds chatbots: each gets an empty fallback
chain (the deployment's default), rows inserted without one get it too, and the chatbots'
conversations survive (on SQLite a table rebuild would cascade-delete them)."""

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
INSERT_CHATBOT = (
    "INSERT INTO chatbots (id, org_id, name, system_prompt, temperature, greeting,"
    " starter_questions, theme, fallback_message, allowed_origins, settings,"
    " created_at, updated_at) VALUES (:id, 'o1', 'Bot', '', 0.2, 'Hi', '[]', '{}',"
    " 'No', '[]', '{}', :at, :at)"
)


@pytest.fixture(params=BACKENDS)
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return backend_url(request, tmp_path / "old.db", "fresh_postgres_url")


def upgrade_to(revision: str):  # type: ignore[no-untyped-def]
    def run(connection: Connection) -> None:
        command.upgrade(migrate_module.alembic_config(connection), revision)

    return run


async def test_existing_chatbots_get_an_empty_fallback_chain(empty_url: str) -> None:
    database = Database(empty_url)
    await database.start(migrate=False)
    try:
        async with database.engine.begin() as connection:
            await connection.run_sync(upgrade_to("0004"))
        at = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
        stamp = at.replace(tzinfo=None) if database.backend == "sqlite" else at
        async with database.engine.begin() as connection:
            await connection.execute(
                text("INSERT INTO orgs (id, name, created_at) VALUES ('o1', 'Old', :at)"),
                {"at": stamp},
            )
            await connection.execute(text(INSERT_CHATBOT), {"id": "bot", "at": stamp})
            await connection.execute(
                text(
                    "INSERT INTO conversations (id, chatbot_id, session_id, created_at,"
                    " updated_at) VALUES ('c1', 'bot', 'session-1', :at, :at)"
                ),
                {"at": stamp},
            )

        async with database.engine.begin() as connection:
            await connection.run_sync(upgrade_to("0005"))
        async with database.engine.connect() as connection:
            stored = (
                await connection.execute(text("SELECT fallback_providers FROM chatbots"))
            ).scalar_one()
        async with database.engine.begin() as connection:
            await connection.execute(text(INSERT_CHATBOT), {"id": "new", "at": stamp})
            added = (
                await connection.execute(
                    text("SELECT fallback_providers FROM chatbots WHERE id = 'new'")
                )
            ).scalar_one()
            conversations = (
                (await connection.execute(text("SELECT id FROM conversations"))).scalars().all()
            )
    finally:
        await database.close()
    assert (json.loads(stored) if isinstance(stored, str) else stored) == []
    assert (json.loads(added) if isinstance(added, str) else added) == []
    assert conversations == ["c1"]
