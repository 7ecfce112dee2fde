"""Translated connection arguments, as the real PostgreSQL server sees them."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from sqlalchemy import text

from sitechat.errors import StorageError
from sitechat.storage import Database
from tests.storage.conftest import with_params

pytestmark = pytest.mark.postgres


async def show(database: Database, setting: str) -> str:
    async with database.session() as session:
        return str((await session.execute(text(f"SHOW {setting}"))).scalar_one())


async def test_libpq_parameters_from_a_pasted_string_reach_the_server(postgres_url: str) -> None:
    url = with_params(
        postgres_url,
        sslmode="prefer",
        connect_timeout="5",
        application_name="sitechat-test",
        options="-c statement_timeout=4321",
        supa="base-pooler.x",
        connection_limit="1",
    )
    database = Database(url.replace("postgresql://", "postgres://", 1))
    await database.start(migrate=True)
    try:
        assert await show(database, "application_name") == "sitechat-test"
        assert await show(database, "statement_timeout") == "4321ms"
    finally:
        await database.close()


async def test_sslmode_require_is_enforced(postgres_url: str) -> None:
    database = Database(with_params(postgres_url, sslmode="require"))
    probe = Database(postgres_url)
    await probe.start(migrate=False)
    try:
        server_has_tls = await show(probe, "ssl") == "on"
    finally:
        await probe.close()
    try:
        if server_has_tls:
            await database.start(migrate=False)
            async with database.session() as session:
                encrypted = await session.scalar(
                    text("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
                )
            assert encrypted is True
        else:
            # A server without TLS must be refused, not silently used in plain text.
            with pytest.raises(StorageError):
                await database.start(migrate=True)
    finally:
        await database.close()


async def test_a_password_with_reserved_characters_pasted_raw_still_finds_the_database(
    postgres_url: str,
) -> None:
    """Raw '@', '/', '?', '#' in a password must not move the host, port or database.

    (The server here trusts local connections, so it does not check the password itself;
    test_urls checks that the password is read back exactly.)
    """
    password = "p@ss/w?rd#1:x"
    url = postgres_url.replace("postgres@", f"postgres:{password}@", 1)
    assert quote(password, safe="") not in url  # really pasted raw
    database = Database(url)
    assert database.target.url.password == password
    await database.start(migrate=True)
    try:
        async with database.session() as session:
            name = await session.scalar(text("SELECT current_database()"))
        assert name == database.target.url.database
        assert name is not None and name.startswith("sitechat_test_")
    finally:
        await database.close()


async def test_pooler_mode_keeps_no_prepared_statements_between_transactions(
    postgres_url: str,
) -> None:
    pooled = Database(with_params(postgres_url, pgbouncer="true"))
    direct = Database(postgres_url)
    await pooled.start(migrate=False)
    await direct.start(migrate=False)
    list_statements = text("SELECT name FROM pg_prepared_statements")
    try:
        for database, expect_cached in ((pooled, False), (direct, True)):
            async with database.engine.connect() as connection:
                for value in range(3):
                    await connection.execute(text("SELECT CAST(:v AS int)"), {"v": value})
                    await connection.commit()
                names = list((await connection.execute(list_statements)).scalars())
            if expect_cached:
                assert len(names) > 1
            else:
                # Only the statement running right now, under a name no one else will use.
                assert len(names) == 1 and names[0].startswith("__sitechat_")
    finally:
        await pooled.close()
        await direct.close()
