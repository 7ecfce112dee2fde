"""Build the async engine for a ``DatabaseTarget``: pool choice and SQLite connection setup.

SQLite needs three things on every new connection: WAL (readers never block the writer),
foreign keys (off by default in SQLite, and our cascades depend on them), and SQLAlchemy in
charge of ``BEGIN``. Python's sqlite3 driver otherwise starts transactions only before DML,
so a read-then-write session would not be one transaction; with SQLAlchemy emitting
``BEGIN`` itself, write sessions can ask for ``BEGIN IMMEDIATE`` and take SQLite's write lock
up front, instead of failing with "database is locked" when their read snapshot goes stale.
"""

from __future__ import annotations

import ssl
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry, NullPool

from sitechat.storage.urls import DatabaseTarget

# Execution option that write sessions set; only SQLite acts on it.
SQLITE_BEGIN_OPTION = "sitechat_sqlite_begin"
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
        if target.transaction_pooler:
            # The pooler is the pool; a client-side one would pin server connections.
            options["poolclass"] = NullPool
        else:
            options["pool_recycle"] = POOL_RECYCLE_SECONDS
    engine = create_async_engine(target.url, connect_args=connect_args, **options)
    if target.backend == "sqlite":
        _install_sqlite_hooks(engine)
    return engine


def _install_sqlite_hooks(engine: AsyncEngine) -> None:
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        # Hand BEGIN to SQLAlchemy (see the module docstring).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
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
