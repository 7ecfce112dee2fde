"""Regression: the SQLite file was world-readable (0644).

Every conversation, every visitor's question and the admin keys' hashes sit in that file,
and any local user could read it. Now the data folder is created 0700, and the database
file (and with it SQLite's -wal and -shm files, which take its mode), and the visitor-token
secret, 0600. An existing database file readable by others is tightened when sitechat starts.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from sitechat.config import Settings
from sitechat.storage import Database
from tests.conftest import running_app


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True)
def permissive_umask() -> Iterator[None]:
    """The loosest usual umask, so the modes come from sitechat, not from the test's shell."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


async def test_a_new_deployment_keeps_its_files_to_itself(settings: Settings) -> None:
    assert not settings.data_dir.exists()
    async with running_app(settings):
        data = settings.data_dir
        assert mode(data) == 0o700
        database = data / "sitechat.db"
        assert mode(database) == 0o600
        for sibling in ("sitechat.db-wal", "sitechat.db-shm"):
            if (data / sibling).exists():
                assert mode(data / sibling) == 0o600, sibling
        assert mode(data / "visitor_token.secret") == 0o600


async def test_an_existing_world_readable_database_is_tightened(tmp_path: Path) -> None:
    path = tmp_path / "sitechat.db"
    path.touch()
    path.chmod(0o644)
    database = Database(f"sqlite+aiosqlite:///{path}")
    await database.start(migrate=True)
    try:
        assert mode(path) == 0o600
        wal = tmp_path / "sitechat.db-wal"
        assert not wal.exists() or mode(wal) == 0o600
    finally:
        await database.close()
