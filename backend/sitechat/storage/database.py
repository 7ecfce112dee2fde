"""``Database``: the engine and its sessions, built in the app's lifespan from a URL.

Constructing one only parses the URL. ``start()`` builds the engine (loading certificate
files and creating SQLite's folder in a worker thread) and, if asked, migrates the schema;
``close()`` releases every connection. Sessions are meant to be short: open one per storage
operation, never across a streamed answer.

The chat turn's own writes (opening a turn, ending an answer) go through ``group``: a
``GroupCommit`` that commits the writes of many turns in one transaction.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import asyncpg
from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from sitechat.storage import migrate as migrations
from sitechat.storage.engine import (
    SQLITE_BEGIN_OPTION,
    build_engine,
    build_sqlite_writer,
    enable_sqlite_wal,
)
from sitechat.storage.group_commit import MAX_INLINE_BATCH, GroupCommit, Op, WriteBatch
from sitechat.storage.translate import translate_errors
from sitechat.storage.urls import Backend, DatabaseTarget, build_ssl_context, parse_database_url

if TYPE_CHECKING:
    from sitechat.config import Settings

logger = logging.getLogger(__name__)

# Server errors after which a connection is no use.
_CONNECTION_LOST = (asyncpg.PostgresConnectionError, asyncpg.OperatorInterventionError)

# Conversations, keys' hashes and the visitor-token secret live under the data folder.
PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600


class Database:
    def __init__(self, url: str, *, echo: bool = False) -> None:
        # ValueError for a URL that cannot work; its message never repeats the URL.
        self.target: DatabaseTarget = parse_database_url(url)
        self._echo = echo
        self._engine: AsyncEngine | None = None
        self._reader: async_sessionmaker[AsyncSession] | None = None
        self._writer: async_sessionmaker[AsyncSession] | None = None
        self._write_engine: AsyncEngine | None = None
        self._sqlite_writer: Engine | None = None
        self._sqlite_inline: Engine | None = None  # never waits for the write lock
        self.group = GroupCommit(self.run_batch)
        self._singles = 0  # execute_single calls running

    @classmethod
    def from_settings(cls, settings: Settings) -> Database:
        return cls(settings.resolved_database_url)

    @property
    def backend(self) -> Backend:
        return self.target.backend

    @property
    def engine(self) -> AsyncEngine:
        if self._engine is None:
            raise RuntimeError("Database.start() has not been called")
        return self._engine

    async def start(self, migrate: bool = True) -> None:
        """Build the engine; with ``migrate``, bring the schema up to date (connects).

        If it fails, nothing is left open: callers need not ``close()`` a failed start.
        """
        built_now = self._engine is None
        if self._engine is None:
            self._engine = await self._build()
            self._reader = async_sessionmaker(self._engine, expire_on_commit=False)
            # On SQLite, write sessions take the write lock at BEGIN (see engine.py).
            writer_engine = self._engine.execution_options(**{SQLITE_BEGIN_OPTION: "IMMEDIATE"})
            self._write_engine = writer_engine
            self._writer = async_sessionmaker(writer_engine, expire_on_commit=False)
            self._sqlite_writer = build_sqlite_writer(self.target, echo=self._echo)
            self._sqlite_inline = build_sqlite_writer(self.target, echo=self._echo, busy_timeout=0)
            if self._sqlite_inline is not None:
                self.group.max_batch = MAX_INLINE_BATCH  # batches run in the event loop
            logger.info("database: %s", self.target.safe_url)
        if migrate:
            try:
                await self.migrate()
            except BaseException:
                if built_now:
                    await self.close()
                raise

    async def migrate(self) -> bool:
        """Upgrade the schema to the newest revision; True if a migration ran."""
        with translate_errors():
            return await migrations.migrate(self.engine)

    async def ping(self) -> bool:
        """True if a trivial query succeeds; never raises for an unreachable database."""
        try:
            with translate_errors():
                async with self.engine.connect() as connection:
                    await connection.execute(text("SELECT 1"))
        except Exception:
            logger.warning("database ping failed", exc_info=True)
            return False
        return True

    async def close(self) -> None:
        await self.group.close()
        if self._engine is not None:
            engine, self._engine = self._engine, None
            self._reader = self._writer = None
            self._write_engine = None
            await engine.dispose()
        if self._sqlite_inline is not None:
            inline, self._sqlite_inline = self._sqlite_inline, None
            inline.dispose()
        if self._sqlite_writer is not None:
            writer, self._sqlite_writer = self._sqlite_writer, None
            await anyio.to_thread.run_sync(writer.dispose)

    @asynccontextmanager
    async def session(self, *, write: bool = False) -> AsyncIterator[AsyncSession]:
        """A session whose database errors come out as ``StorageError`` or ``Conflict``.

        ``write=True`` for sessions that will write: on SQLite their transaction holds the
        write lock from the start, so a read-then-write never fails half way.
        """
        maker = self._writer if write else self._reader
        if maker is None:
            raise RuntimeError("Database.start() has not been called")
        with translate_errors():
            async with maker() as session:
                yield session

    async def run_batch(self, ops: list[Op[Any]]) -> list[Any]:
        """Run ``ops`` (functions of a ``WriteBatch``: a synchronous Core connection) in one write
        transaction and commit it; their results. Elsewhere than SQLite, through
        SQLAlchemy's ``run_sync``. On a SQLite file, right here in the event loop: a batch
        is a few statements on a local file, cheaper than handing it to a thread that then
        contends with the loop for the GIL. That connection never waits for SQLite's write
        lock (a blocked event loop could not let another connection finish): if someone
        holds it (an admin write, another process), the batch runs in a worker thread that
        waits for it."""
        with translate_errors():
            if self._sqlite_inline is not None:
                try:
                    return _run_all(self._sqlite_inline, ops)
                except OperationalError as exc:
                    if "locked" not in str(exc.orig) and "busy" not in str(exc.orig):
                        raise
            if self._sqlite_writer is not None:
                return await anyio.to_thread.run_sync(_run_all, self._sqlite_writer, ops)
            if self._write_engine is None:
                raise RuntimeError("Database.start() has not been called")
            async with self._write_engine.begin() as connection:
                return await connection.run_sync(_in_transaction, ops)

    @property
    def single_statements(self) -> bool:
        """Whether ``execute_single`` may be used: on Postgres reached directly. Not behind
        a transaction pooler, which may hand a statement's preparation and its execution to
        different server connections when no transaction holds one."""
        return (
            self.backend == "postgresql"
            and not self.target.transaction_pooler
            and self._write_engine is not None
        )

    @property
    def writes_idle(self) -> bool:
        """No write in flight: nothing in the group commit, no ``execute_single`` running.
        A write now would have the database to itself; under load, writes should rather
        join the group commit than each take a pooled connection."""
        return self.group.idle and self._singles == 0

    async def execute_single(self, sql: str, *args: Any) -> None:
        """Run one Postgres statement (``$1`` parameters) as a transaction of its own, on
        the driver (asyncpg) of a pooled connection: one round trip to the server, where a
        Core statement inside ``BEGIN``...``COMMIT`` takes three, plus SQLAlchemy's work
        around each. Durable when this returns. Errors as from ``session()``: a broken
        constraint is ``Conflict``. Only where ``single_statements`` is true."""
        if self._write_engine is None or not self.single_statements:
            raise RuntimeError("execute_single needs Postgres reached directly")
        self._singles += 1
        try:
            with translate_errors():
                await self._execute_single(self._write_engine, sql, args)
        finally:
            self._singles -= 1

    @staticmethod
    async def _execute_single(engine: AsyncEngine, sql: str, args: tuple[Any, ...]) -> None:
        async with engine.connect() as connection:
            driver = (await connection.get_raw_connection()).driver_connection
            assert driver is not None  # a checked-out connection has its driver's
            try:
                await driver.execute(sql, *args)
            except asyncpg.PostgresError as exc:  # the statement failed, or the server
                if isinstance(exc, _CONNECTION_LOST):
                    await connection.invalidate()
                raise
            except BaseException:
                # Cancelled mid-statement, a broken socket: a connection in an unknown
                # state must not go back to the pool.
                with anyio.CancelScope(shield=True):
                    await connection.invalidate()
                raise

    async def _build(self) -> AsyncEngine:
        target = self.target
        ssl_context = None
        if target.ssl is not None:
            try:
                ssl_context = await anyio.to_thread.run_sync(build_ssl_context, target.ssl)
            except OSError as exc:
                raise ValueError("The SSL files named in the database URL cannot be read.") from exc
        if target.sqlite_path is not None:
            with translate_errors():  # e.g. the folder's parent is a file, or read-only
                await anyio.to_thread.run_sync(_prepare_sqlite_file, target.sqlite_path)
        return build_engine(target, echo=self._echo, ssl_context=ssl_context)


def _run_all(engine: Engine, ops: list[Op[Any]]) -> list[Any]:
    with engine.begin() as connection:
        return _in_transaction(connection, ops)


def _in_transaction(connection: Connection, ops: list[Op[Any]]) -> list[Any]:
    batch = WriteBatch(connection)
    results = [op(batch) for op in ops]
    batch.finish()
    return results


def _prepare_sqlite_file(path: Path) -> None:
    """The file holds every conversation: only sitechat's own user may read it. A new
    folder is made 0700 and a new file 0600 before SQLite opens it (SQLite gives its -wal
    and -shm files the mode of the database file); an existing file, or its -wal and -shm,
    readable by others is tightened to 0600."""
    path.parent.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, PRIVATE_FILE_MODE))
    for file in (path, *(path.with_name(path.name + s) for s in ("-wal", "-shm", "-journal"))):
        _make_private(file)
    enable_sqlite_wal(path)


def _make_private(file: Path) -> None:
    try:
        mode = stat.S_IMODE(file.stat().st_mode)
    except FileNotFoundError:
        return
    if mode & 0o077:
        file.chmod(PRIVATE_FILE_MODE)
        logger.warning("%s was readable by other users: now %o", file.name, PRIVATE_FILE_MODE)
