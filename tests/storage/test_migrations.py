"""Migrations: idempotent, safe when workers start together, and exactly the models' schema."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from sitechat.storage import Database
from sitechat.storage import migrate as migrate_module
from tests.storage.conftest import BACKENDS, backend_url

HEAD = "0008"


@pytest.fixture(params=BACKENDS)
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return backend_url(request, tmp_path / "nested" / "dirs" / "sitechat.db", "fresh_postgres_url")


async def versions(database: Database) -> list[str]:
    async with database.engine.connect() as connection:
        rows = await connection.execute(text("SELECT version_num FROM alembic_version"))
        return [row[0] for row in rows]


async def test_migrating_creates_the_schema_once_and_then_does_nothing(
    empty_database_url: str,
) -> None:
    database = Database(empty_database_url)
    await database.start(migrate=False)
    try:
        assert await database.migrate() is True
        assert await versions(database) == [HEAD]
        assert await database.migrate() is False
        # Even past the "already current" shortcut, Alembic's upgrade is a no-op.
        async with database.engine.begin() as connection:
            await connection.run_sync(migrate_module._upgrade)
        assert await versions(database) == [HEAD]
    finally:
        await database.close()


async def test_the_migrated_schema_is_exactly_the_models(empty_database_url: str) -> None:
    database = Database(empty_database_url)
    await database.start(migrate=True)
    try:
        async with database.engine.connect() as connection:
            differences = await connection.run_sync(migrate_module.schema_differences)
        assert differences == []
    finally:
        await database.close()


async def test_workers_starting_together_migrate_once(empty_database_url: str) -> None:
    workers = [Database(empty_database_url) for _ in range(4)]
    try:
        await asyncio.gather(*(worker.start(migrate=False) for worker in workers))
        ran = await asyncio.gather(*(worker.migrate() for worker in workers))
        assert sorted(ran) == [False, False, False, True]
        assert await versions(workers[0]) == [HEAD]
    finally:
        await asyncio.gather(*(worker.close() for worker in workers))


# One worker process: migrate the database at argv[1], print whether it did.
WORKER_SCRIPT = """
import asyncio, sys
from sitechat.storage import Database

async def main() -> None:
    database = Database(sys.argv[1])
    await database.start(migrate=False)
    try:
        print("migrated" if await database.migrate() else "current")
    finally:
        await database.close()

asyncio.run(main())
"""


# Pooler mode takes the very same lock; two backends are enough for the process case.
@pytest.mark.parametrize("empty_database_url", BACKENDS[:2], indirect=True)
async def test_worker_processes_starting_together_migrate_once(empty_database_url: str) -> None:
    processes = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            WORKER_SCRIPT,
            empty_database_url,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        for _ in range(3)
    ]
    outputs = await asyncio.wait_for(
        asyncio.gather(*(process.communicate() for process in processes)), timeout=60
    )
    for process, (_out, err) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, err.decode()
    assert sorted(out.decode().strip() for out, _err in outputs) == [
        "current",
        "current",
        "migrated",
    ]
    database = Database(empty_database_url)
    await database.start(migrate=False)
    try:
        assert await versions(database) == [HEAD]
    finally:
        await database.close()


async def test_sqlite_connections_use_wal_and_enforce_foreign_keys(tmp_path: Path) -> None:
    path = tmp_path / "not" / "there" / "yet.db"
    database = Database(f"sqlite+aiosqlite:///{path}")
    await database.start(migrate=True)
    try:
        assert path.exists()
        async with database.engine.connect() as connection:
            journal = (await connection.execute(text("PRAGMA journal_mode"))).scalar_one()
            foreign_keys = (await connection.execute(text("PRAGMA foreign_keys"))).scalar_one()
        assert (journal, foreign_keys) == ("wal", 1)
    finally:
        await database.close()


async def test_a_database_newer_than_this_release_is_left_alone(tmp_path: Path) -> None:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}")
    await database.start(migrate=True)
    try:
        async with database.engine.begin() as connection:
            await connection.execute(text("UPDATE alembic_version SET version_num = '9999'"))
        assert await database.migrate() is False
        assert await versions(database) == ["9999"]
    finally:
        await database.close()
