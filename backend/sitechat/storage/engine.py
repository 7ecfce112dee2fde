"""Build the async engine for a ``DatabaseTarget``: pool choice and SQLite connection setup.

SQLite needs WAL (readers never block the writer), switched on once per file before the
engine opens it, and two things on every new connection: foreign keys (off by default in
SQLite, and our cascades depend on them) and SQLAlchemy in charge of ``BEGIN``. Python's
sqlite3 driver otherwise starts transactions only before DML, so a read-then-write session
would not be one transaction; with SQLAlchemy emitting ``BEGIN`` itself, write sessions can
ask for ``BEGIN IMMEDIATE`` and take SQLite's write lock up front, instead of failing with
"database is locked" when their read snapshot goes stale.
"""

from __future__ import annotations

import sqlite3
import ssl
import time
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

from sitechat.storage.urls import DatabaseTarget

# Execution option that write sessions set; only SQLite acts on it.
SQLITE_BEGIN_OPTION = "sitechat_sqlite_begin"
# Switching a file to WAL needs a moment alone with it; wait this long for one.
WAL_SWITCH_TIMEOUT_SECONDS = 15.0
# Recycle pooled Postgres connections before managed poolers and load balancers drop them.
POOL_RECYCLE_SECONDS = 600


def build_engine(
    target: DatabaseTarget, *, echo: bool = False, ssl_context: ssl.SSLContext | None = None
) -> AsyncEngine:
    connect_args: dict[str, Any] = dict(target.connect_args)
    options: dict[str, Any] = {"echo": echo}
    if target.backend == "postgresql":
        if ssl_context is not None:
            connect_args["ssl"] = ssl_context
        # Behind a transaction pooler too, sitechat keeps its own small pool of client
        # connections to the pooler. An idle client connection holds no server connection
        # there, and with prepared statements never cached (see urls.py) nothing outlives a
        # transaction. SQLAlchemy's usual advice, NullPool, would instead pay a new TCP+TLS
        # connection and asyncpg's type introspection on every session: ~10 ms per Store call
        # on localhost, several round trips to a remote pooler.
        options["pool_recycle"] = POOL_RECYCLE_SECONDS
    engine = create_async_engine(target.url, connect_args=connect_args, **options)
    if target.backend == "sqlite":
        _install_sqlite_hooks(engine.sync_engine)
    return engine


def build_sqlite_writer(
    target: DatabaseTarget, *, echo: bool = False, busy_timeout: float | None = None
) -> Engine | None:
    """A synchronous engine on the same SQLite file, for writes that run whole in one call
    (``Database.run_batch``), where aiosqlite hops threads once per statement. None for an
    in-memory database (a second engine would not see it). Its transactions take the write
    lock at ``BEGIN``; ``busy_timeout`` (seconds) replaces the URL's wait for that lock."""
    if target.backend != "sqlite" or target.sqlite_path is None:
        return None
    connect_args = {**target.connect_args, "check_same_thread": False}
    if busy_timeout is not None:
        connect_args["timeout"] = busy_timeout
    engine = create_engine(
        target.url.set(drivername="sqlite"), connect_args=connect_args, echo=echo
    )
    _install_sqlite_hooks(engine)
    return engine.execution_options(**{SQLITE_BEGIN_OPTION: "IMMEDIATE"})


def _install_sqlite_hooks(sync_engine: Engine) -> None:
    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        # Hand BEGIN to SQLAlchemy (see the module docstring).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA foreign_keys=ON")
            # WAL makes NORMAL durable across application crashes; only power loss can drop
            # the last commits, never corrupt the file.
            cursor.execute("PRAGMA synchronous=NORMAL")
        finally:
            cursor.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(connection: Connection) -> None:
        mode = connection.get_execution_options().get(SQLITE_BEGIN_OPTION)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if mode == "IMMEDIATE" else "BEGIN")


def enable_sqlite_wal(path: Path) -> None:
    """Put the SQLite file at ``path`` (created if missing) in WAL mode. Blocking: use a thread.

    WAL is a property of the file, so this is done once, before the engine's connections
    open it. It is not done per connection: switching modes needs the file to itself, and
    SQLite answers "database is locked" at once, without waiting, while another connection
    is using it, which is exactly what several workers starting together would do.
    """
    deadline = time.monotonic() + WAL_SWITCH_TIMEOUT_SECONDS
    connection = sqlite3.connect(path, timeout=WAL_SWITCH_TIMEOUT_SECONDS)
    try:
        while True:
            try:
                mode = connection.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
                continue
            if str(mode).lower() != "wal":
                raise sqlite3.OperationalError(f"journal_mode stayed {mode!r}")
            return
    finally:
        connection.close()
