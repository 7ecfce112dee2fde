"""Alembic environment for sitechat.

Two ways in:

- The app (``sitechat.storage.migrate``) passes an open connection of its async engine in
  ``config.attributes["connection"]``, from inside ``AsyncConnection.run_sync``, already in
  a transaction that holds the migration lock. This file then only runs the migrations.
- A developer's ``alembic -c backend/sitechat/storage/migrations/alembic.ini ...`` has no
  connection: one is opened from ``SITECHAT_DATABASE_URL`` (or the default SQLite file)
  through the same ``Database`` the app uses, so Supabase URLs work here too.
"""

from __future__ import annotations

import asyncio
import logging.config
from typing import Any, Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy.engine import Connection

from sitechat.storage.models import Base, UTCDateTime

config = context.config
target_metadata = Base.metadata


def render_item(kind: str, obj: Any, _context: AutogenContext) -> str | Literal[False]:
    """Draft revisions spell column types with plain ``sa`` types.

    A revision is frozen history: it must not import today's models, which will change.
    """
    if kind == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        render_item=render_item,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_offline() -> None:
    context.configure(
        url=_database_url(),
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_with_own_connection() -> None:
    from sitechat.storage.database import Database

    database = Database(_database_url())
    await database.start(migrate=False)
    try:
        async with database.engine.connect() as connection:
            await connection.run_sync(run_migrations)
            await connection.commit()
    finally:
        await database.close()


def _database_url() -> str:
    from sitechat.config import Settings

    return config.get_main_option("sqlalchemy.url") or Settings().resolved_database_url


shared_connection = config.attributes.get("connection")
if shared_connection is not None:
    run_migrations(shared_connection)
elif context.is_offline_mode():
    run_offline()
else:
    if config.config_file_name is not None:
        logging.config.fileConfig(config.config_file_name, disable_existing_loggers=False)
    asyncio.run(run_with_own_connection())
