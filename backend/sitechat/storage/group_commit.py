"""Group commit: many callers' small write transactions, committed as one.

A chat turn writes twice: as it opens (the conversation, the visitor's message and the
answer's row) and as it ends (the answer and the month's usage). Each write is a few
statements; alone, each would pay a transaction of its own: SQLite's write lock and its WAL
commit, or a Postgres commit and a pooled connection. Under load those transactions queue
behind each other. Here they share one: a caller hands over its work (``run(op)``), a writer
task takes every op waiting and runs them in one transaction, commits, and then answers each
caller. Nobody returns before the commit, so what a caller was told is stored is durable.

If the shared transaction fails, no op's work is kept: each op of the batch is run again in a
transaction of its own, so one op's failure (a constraint, a row gone) is only its caller's.
Ops must therefore have no effect outside the transaction they are given.

Ops are plain functions of a ``WriteBatch``: its synchronous SQLAlchemy ``Connection``
(Core statements), and sums that many ops add to (a month's token usage) written once per
batch, just before the commit, rather than once per op. A whole batch runs in one call: on
SQLite in one worker thread, on Postgres through SQLAlchemy's ``run_sync`` bridge
(``Database.run_batch``). With aiosqlite every statement would be a round trip between the
event loop and SQLite's thread.

The writer is a task that lives while there is work and ends when the queue is empty, in
the event loop of the caller that found it idle. A caller that is cancelled while waiting
does not cancel its op: the op runs (or already ran) with the others.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, TypeVar

from sqlalchemy.engine import Connection

from sitechat import metrics

logger = logging.getLogger(__name__)

T = TypeVar("T")
Sums = dict[Hashable, list[int]]
SumsWriter = Callable[[Connection, Sums], None]


class WriteBatch:
    """What an op of a group commit writes through: the transaction's connection, and sums
    added up across the batch's ops, each kind written by its ``SumsWriter`` at the end."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self._sums: dict[SumsWriter, Sums] = {}

    def add(self, writer: SumsWriter, key: Hashable, values: tuple[int, ...]) -> None:
        """Add ``values`` to the sums under ``key``, which ``writer`` writes at the end."""
        sums = self._sums.setdefault(writer, {})
        if key in sums:
            sums[key] = [a + b for a, b in zip(sums[key], values, strict=True)]
        else:
            sums[key] = list(values)

    def finish(self) -> None:
        """Write the sums (before the commit)."""
        for writer, sums in self._sums.items():
            writer(self.connection, sums)
        self._sums.clear()


Op = Callable[[WriteBatch], T]
Item = TypeVar("Item")
# Many callers' items of one kind written together (one statement for all, not one each):
# a result per item, in order, or the exception that item alone failed with (having
# written nothing). Raising fails the whole transaction.
Bulk = Callable[[WriteBatch, list[Item]], list[Any]]
# Runs ops in one transaction, committed before it returns their results.
BatchRunner = Callable[[list[Op[Any]]], Awaitable[list[Any]]]

# Most ops in one transaction: bounds how long one commit holds SQLite's write lock.
MAX_BATCH = 128
# On a SQLite file a batch runs in the event loop itself (``Database.run_batch``): nothing
# else runs meanwhile, so batches are smaller there. 16 turns opened together held the loop
# for several milliseconds, and every answer streaming at that moment waited that long for
# its next token (the token-gap p99 of 50 answers at once).
MAX_INLINE_BATCH = 8


class _Pending:
    __slots__ = ("bulk", "future", "item", "op")

    def __init__(
        self, future: asyncio.Future[Any], op: Op[Any] | None, bulk: Bulk[Any] | None, item: Any
    ) -> None:
        self.future = future
        self.op = op
        self.bulk = bulk
        self.item = item


class GroupCommit:
    def __init__(self, run_batch: BatchRunner, *, max_batch: int = MAX_BATCH) -> None:
        self._run_batch = run_batch
        self.max_batch = max_batch
        self._pending: list[_Pending] = []
        self._writer: asyncio.Task[None] | None = None

    @property
    def idle(self) -> bool:
        """Nothing waiting and nothing being written: a write now would commit alone."""
        return not self._pending and (self._writer is None or self._writer.done())

    async def run(self, op: Op[T]) -> T:
        """Run ``op`` in a transaction shared with the other ops waiting; its result once
        that transaction has committed (or its own error)."""
        return await self._enqueue(op, None, None)  # type: ignore[no-any-return]

    async def bulk(self, bulk: Bulk[Item], item: Item) -> Any:
        """Write ``item`` with the other items of ``bulk`` waiting, in one call of ``bulk``
        inside a transaction shared with every other op waiting; its result once committed."""
        return await self._enqueue(None, bulk, item)

    async def _enqueue(self, op: Op[Any] | None, bulk: Bulk[Any] | None, item: Any) -> Any:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        # A caller cancelled while waiting never reads its op's error: do not warn of it.
        future.add_done_callback(lambda f: f.cancelled() or f.exception())
        self._pending.append(_Pending(future, op, bulk, item))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write())
        return await asyncio.shield(future)

    async def close(self) -> None:
        """Until every op handed over is written."""
        while self._writer is not None and not self._writer.done():
            await asyncio.shield(self._writer)

    async def _write(self) -> None:
        first = True
        while self._pending:
            if not first:
                # Between two batches, everything else that is ready runs (a batch run in
                # the event loop does not yield by itself).
                await asyncio.sleep(0)
            first = False
            batch = self._pending[: self.max_batch]
            del self._pending[: self.max_batch]
            metrics.GROUP_COMMIT_SIZE.observe(len(batch))
            try:
                await self._commit(batch)
            except BaseException as exc:
                if len(batch) == 1 or not isinstance(exc, Exception):
                    for pending in batch:
                        _settle(pending.future, exc=exc)
                    if not isinstance(exc, Exception):
                        raise
                    continue
                # Someone's op failed the whole batch: each runs alone, so only its own
                # caller hears of its failure.
                for pending in batch:
                    try:
                        await self._commit([pending])
                    except Exception as single:
                        _settle(pending.future, exc=single)

    async def _commit(self, batch: list[_Pending]) -> None:
        """One transaction for ``batch``: each op alone, each kind of bulk item together."""
        groups: dict[Any, list[_Pending]] = {}
        for pending in batch:
            groups.setdefault(pending.bulk or pending, []).append(pending)
        calls: list[Op[list[Any]]] = []
        for members in groups.values():
            first = members[0]
            if first.bulk is None:
                assert first.op is not None
                calls.append(_single(first.op))
            else:
                calls.append(_many(first.bulk, [m.item for m in members]))
        results = await self._run_batch(calls)
        for members, outcomes in zip(groups.values(), results, strict=True):
            for pending, outcome in zip(members, outcomes, strict=True):
                if isinstance(outcome, Exception):
                    _settle(pending.future, exc=outcome)
                else:
                    _settle(pending.future, result=outcome)


def _single(op: Op[Any]) -> Op[list[Any]]:
    return lambda batch: [op(batch)]


def _many(bulk: Bulk[Any], items: list[Any]) -> Op[list[Any]]:
    def call(batch: WriteBatch) -> list[Any]:
        outcomes = bulk(batch, items)
        if len(outcomes) != len(items):
            raise RuntimeError("a bulk write must give one outcome per item")
        return outcomes

    return call


def _settle(
    future: asyncio.Future[Any], *, result: Any = None, exc: BaseException | None = None
) -> None:
    if future.done():  # cannot happen (callers wait through a shield); never raise here
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(result)
