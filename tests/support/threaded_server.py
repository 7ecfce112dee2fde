"""The context-manager half of a test server that runs in a thread of its own.

A subclass says how to ``start()`` and ``stop()`` it (both block until done); ``with`` runs
them around a block, and ``async with`` runs them in a worker thread, so an async test's
event loop keeps running while the server starts and stops.
"""

from __future__ import annotations

from types import TracebackType
from typing import Self

import anyio


class ThreadedServer:
    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        await anyio.to_thread.run_sync(self.start)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await anyio.to_thread.run_sync(self.stop)
