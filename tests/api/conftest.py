"""``any_database``: settings on SQLite, then on PostgreSQL, for admin tests whose outcome may
depend on the database (integer and date ranges differ: PostgreSQL refuses what SQLite
stores). Each PostgreSQL run gets a fresh database, dropped afterwards; PostgreSQL
unreachable skips (fails in CI), as in ``tests/storage``."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import asyncpg
import pytest

from sitechat.config import Settings
from tests.storage.conftest import (
    create_postgres_database,
    drop_postgres_database,
    require_postgres,
)
from tests.support.admin import with_settings


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
    ]
)
def any_database(request: pytest.FixtureRequest, settings: Settings) -> Iterator[Settings]:
    if request.param == "sqlite":
        yield settings
        return
    try:
        url = asyncio.run(create_postgres_database("sitechat_test_admin"))
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        require_postgres(exc)
    try:
        yield with_settings(settings, database_url=url)
    finally:
        asyncio.run(drop_postgres_database(url))
