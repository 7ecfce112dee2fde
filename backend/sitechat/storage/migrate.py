"""Run the Alembic migrations from async code, safely when several workers start at once.

The scripts live inside the package (``storage/migrations``), so an installed sitechat can
migrate its database with no ``alembic.ini`` anywhere. The migration runs in one transaction
on a connection of the app's own async engine (``AsyncConnection.run_sync``). That
transaction first takes a lock, so concurrent workers run the migrations one after another
and the later ones find nothing to do:

- PostgreSQL: ``pg_advisory_xact_lock``. The transaction-scoped variant, because it is
  released by the commit itself and it also holds behind a transaction pooler, where a
  session-level lock could be left on a server connection someone else gets next.
- SQLite: ``BEGIN IMMEDIATE``, SQLite's write lock.

Within one process an ``asyncio.Lock`` comes first: Alembic's ``context`` and ``op`` are
process-wide proxies to the migration running *now*, so two migrations interleaving on one
event loop (say, two ``Database`` objects on different databases) would send each other's
DDL to the wrong connection.

Before taking any lock, the database's revision is compared with the scripts' heads; when it
is current (every start but the first after an upgrade), nothing is locked and nothing runs.
Under the lock it is compared again, so of several workers exactly one migrates.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from functools import cache
from pathlib import Path
from typing import Any

import anyio
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from sitechat.storage.engine import SQLITE_BEGIN_OPTION
from sitechat.storage.models import Base

logger = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# Any fixed 64-bit number, the same in every sitechat process: the first 8 bytes of
# sha256(b"sitechat:migrations"), as a signed integer.
ADVISORY_LOCK_KEY = -1639356931495252876

_loop_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
    weakref.WeakKeyDictionary()
)


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


@cache
def _revisions() -> tuple[frozenset[str], frozenset[str]]:
    """(heads, every known revision) of the scripts. Reads files: call it in a thread."""
    script = ScriptDirectory.from_config(alembic_config())
    known = frozenset(rev.revision for rev in script.walk_revisions())
    return frozenset(script.get_heads()), known


def current_revisions(connection: Connection) -> frozenset[str]:
    return frozenset(MigrationContext.configure(connection).get_current_heads())


def schema_differences(connection: Connection) -> list[Any]:
    """What autogenerate would change to make the database match the models ([] = none)."""
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


def _process_lock() -> asyncio.Lock:
    loop = asyncio.get_running_loop()
    lock = _loop_locks.get(loop)
    if lock is None:
        lock = _loop_locks[loop] = asyncio.Lock()
    return lock


def _upgrade(connection: Connection) -> None:
    command.upgrade(alembic_config(connection), "head")


async def migrate(engine: AsyncEngine) -> bool:
    """Bring the schema to the newest revision; True if anything ran."""
    heads, known = await anyio.to_thread.run_sync(_revisions)
    async with engine.connect() as connection:
        current = await connection.run_sync(current_revisions)
    if current == heads:
        return False
    if not current <= known:
        # A newer release migrated this database (e.g. during a rolling deploy). Running
        # against it is the operator's call; migrating "up" from here is impossible.
        logger.warning(
            "database schema %s is newer than this release's %s; not migrating",
            sorted(current),
            sorted(heads),
        )
        return False

    is_sqlite = engine.dialect.name == "sqlite"
    async with _process_lock(), engine.connect() as connection:
        if is_sqlite:
            connection = await connection.execution_options(**{SQLITE_BEGIN_OPTION: "IMMEDIATE"})
        async with connection.begin():
            if not is_sqlite:
                await connection.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADVISORY_LOCK_KEY}
                )
            # Whoever held the lock before us may have done the work already.
            if await connection.run_sync(current_revisions) == heads:
                return False
            # Alembic reads the (small, packaged) scripts synchronously here. This happens
            # once per upgrade, at start-up, before anything is served.
            await connection.run_sync(_upgrade)
    logger.info("database schema migrated to %s", sorted(heads))
    return True
