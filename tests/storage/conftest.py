"""Backends for the storage contract suite: SQLite, PostgreSQL, PostgreSQL behind a pooler.

Every ``store`` test runs three times:

- ``sqlite``: a fresh SQLite file per test.
- ``postgres``: the PostgreSQL server on 127.0.0.1:5432, in a database made for this test
  session (``sitechat_test_<random>``, dropped at the end) so runs never collide.
- ``postgres_pooler``: the same database through a URL with ``pgbouncer=true``, the
  transaction-pooler mode (no prepared-statement caches, unique statement names).
  ``test_pgbouncer.py`` runs the same mode through a real PgBouncer.

PostgreSQL unreachable: its tests skip on a developer's machine and fail when ``CI=true``.
``SITECHAT_TEST_POSTGRES_URL`` points the suite at another server (default: the local one).
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import NoReturn

import asyncpg
import pytest
from sqlalchemy import make_url, text

from sitechat.storage import Database, Store

IN_CI = os.environ.get("CI", "").lower() == "true"
POSTGRES_ADMIN_URL = os.environ.get(
    "SITECHAT_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def require_postgres(reason: BaseException) -> NoReturn:
    message = f"PostgreSQL at {_safe(POSTGRES_ADMIN_URL)} is not reachable: {reason!r}"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


async def create_postgres_database(prefix: str = "sitechat_test") -> str:
    """A new, empty database on the test server; returns its URL."""
    name = f"{prefix}_{secrets.token_hex(6)}"
    admin = await asyncpg.connect(POSTGRES_ADMIN_URL, timeout=5)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)


async def drop_postgres_database(url: str) -> None:
    name = make_url(url).database
    admin = await asyncpg.connect(POSTGRES_ADMIN_URL, timeout=5)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A migrated database for this test session, dropped at the end."""

    async def create() -> str:
        url = await create_postgres_database()
        database = Database(url)
        try:
            await database.start(migrate=True)
        finally:
            await database.close()
        return url

    try:
        url = asyncio.run(create())
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        require_postgres(exc)
    yield url
    asyncio.run(drop_postgres_database(url))


@pytest.fixture
def fresh_postgres_url() -> Iterator[str]:
    """An empty, unmigrated database for one test (sync, so sync fixtures can ask for it)."""
    try:
        url = asyncio.run(create_postgres_database("sitechat_test_fresh"))
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        require_postgres(exc)
    try:
        yield url
    finally:
        asyncio.run(drop_postgres_database(url))


def with_params(url: str, **params: str) -> str:
    return make_url(url).update_query_dict(params).render_as_string(hide_password=False)


BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
    pytest.param("postgres_pooler", id="postgres_pooler", marks=pytest.mark.postgres),
]


def backend_url(request: pytest.FixtureRequest, sqlite_file: Path, postgres_fixture: str) -> str:
    """The URL for the backend ``request.param`` names: an SQLite file, or the database of
    the fixture ``postgres_fixture`` (through the pooler mode for ``postgres_pooler``)."""
    kind: str = request.param
    if kind == "sqlite":
        return f"sqlite+aiosqlite:///{sqlite_file}"
    # Asked for lazily: an SQLite-only run (-m "not postgres") never touches PostgreSQL.
    url: str = request.getfixturevalue(postgres_fixture)
    return with_params(url, pgbouncer="true") if kind == "postgres_pooler" else url


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return backend_url(request, tmp_path / "data" / "sitechat.db", "postgres_url")


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    db = Database(database_url)
    await db.start(migrate=True)
    try:
        yield db
    finally:
        if db.backend == "postgresql":
            # Everything hangs off an org and cascades; on tables this small DELETE is much
            # quicker than TRUNCATE.
            async with db.engine.begin() as connection:
                await connection.execute(text("DELETE FROM orgs"))
                # Usage counters outlive orgs and chatbots on purpose (no foreign key).
                await connection.execute(text("DELETE FROM usage_counters"))
        await db.close()


@pytest.fixture
def store(database: Database) -> Store:
    return Store(database)


def _safe(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)
