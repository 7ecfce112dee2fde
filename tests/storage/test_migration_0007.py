"""Migration 0007 on a database that already holds chatbots: each gets the
``documents_only`` answer scope, rows inserted without one get it too, the chatbots'
conversations survive (on SQLite a table rebuild would cascade-delete them), and the
downgrade drops the column in place as well."""

from __future__ import annotations

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


def migrate_to(revision: str, *, down: bool = False):  # type: ignore[no-untyped-def]
    def run(connection: Connection) -> None:
        config = migrate_module.alembic_config(connection)
        (command.downgrade if down else command.upgrade)(config, revision)

    return run


async def test_existing_chatbots_answer_from_their_documents_only(empty_url: str) -> None:
    database = Database(empty_url)
    await database.start(migrate=False)
    try:
        async with database.engine.begin() as connection:
            await connection.run_sync(migrate_to("0006"))
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
            await connection.run_sync(migrate_to("0007"))
        async with database.engine.begin() as connection:
            await connection.execute(text(INSERT_CHATBOT), {"id": "new", "at": stamp})
            scopes = (
                await connection.execute(text("SELECT id, answer_scope FROM chatbots ORDER BY id"))
            ).all()
        async with database.engine.begin() as connection:
            await connection.run_sync(migrate_to("0006", down=True))
        async with database.engine.connect() as connection:
            conversations = (
                (await connection.execute(text("SELECT id FROM conversations"))).scalars().all()
            )
    finally:
        await database.close()
    assert [tuple(row) for row in scopes] == [("bot", "documents_only"), ("new", "documents_only")]
    assert conversations == ["c1"]
