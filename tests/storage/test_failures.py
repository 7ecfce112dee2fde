"""An unreachable or broken database surfaces as ``StorageError`` with a safe message."""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import make_url

from sitechat.errors import StorageError
from sitechat.storage import Database, Store
from sitechat.storage.translate import UNREACHABLE_MESSAGE

PASSWORD = "s3cret-pw"


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    yield port


def assert_safe(error: StorageError, *secrets: str) -> None:
    assert error.message == UNREACHABLE_MESSAGE
    assert error.code == "storage_error" and error.status == 503
    for secret in secrets:
        assert secret not in error.message
    assert error.__cause__ is not None  # the details stay with the log


async def test_starting_against_a_closed_port_is_a_storage_error(closed_port: int) -> None:
    database = Database(f"postgresql://postgres:{PASSWORD}@127.0.0.1:{closed_port}/sitechat")
    with pytest.raises(StorageError) as caught:
        await database.start(migrate=True)
    assert_safe(caught.value, PASSWORD, str(closed_port), "127.0.0.1")
    with pytest.raises(RuntimeError, match="start"):  # a failed start leaves nothing open
        _ = database.engine


async def test_store_calls_against_a_closed_port_are_storage_errors(closed_port: int) -> None:
    database = Database(
        f"postgresql://postgres:{PASSWORD}@127.0.0.1:{closed_port}/sitechat?pgbouncer=true"
    )
    await database.start(migrate=False)
    store = Store(database)
    calls: list[Callable[[], Awaitable[object]]] = [
        lambda: store.create_org("Acme"),
        lambda: store.get_chatbot("demo"),
        lambda: store.get_or_create_conversation("demo", "s1"),
        lambda: store.authenticate_api_key("sck_" + "a" * 43),
        lambda: store.list_messages("c1"),
    ]
    try:
        for call in calls:
            with pytest.raises(StorageError) as caught:
                await call()
            assert_safe(caught.value, PASSWORD, str(closed_port))
        assert await store.ping() is False
    finally:
        await database.close()


@pytest.mark.postgres
async def test_a_missing_postgres_database_is_a_storage_error(postgres_url: str) -> None:
    missing = make_url(postgres_url).set(database="sitechat_no_such_database")
    database = Database(missing.render_as_string(hide_password=False))
    with pytest.raises(StorageError) as caught:
        await database.start(migrate=True)
    assert_safe(caught.value, "sitechat_no_such_database")
    await database.close()


async def test_an_sqlite_file_that_cannot_be_created_is_a_storage_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    database = Database(f"sqlite+aiosqlite:///{blocker / 'sub' / 'sitechat.db'}")
    with pytest.raises(StorageError) as caught:
        await database.start(migrate=True)
    assert_safe(caught.value, str(tmp_path))
    await database.close()


async def test_using_a_database_before_start_is_a_programming_error() -> None:
    database = Database("sqlite+aiosqlite:///:memory:")
    with pytest.raises(RuntimeError, match="start"):
        async with database.session():
            pass
