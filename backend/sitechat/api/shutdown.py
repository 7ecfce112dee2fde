"""Graceful restarts: what a worker does between SIGTERM and exiting.

1. Readiness fails at once (``/readyz`` answers 503 ``draining``), so a load balancer or
   Kubernetes stops sending new visitors here, and new answers are refused with a
   retryable 503 (``server_restarting``) while the ones in flight go on.
2. Answers in flight (counted by ``sitechat.answers.runs``, whether or not anyone still
   reads them) may finish for ``grace_seconds``.
3. Then each answer still running is stopped: its partial text is stored as interrupted
   and its stream ends with an ``error`` event whose code, ``server_restarting``, tells the
   widget the question can be asked again at once (another worker will take it).
4. Only then is uvicorn told to exit, so its own shutdown finds no stream left to cut.

A second SIGTERM skips the wait. ``install`` only takes over SIGTERM in a real server
process (the CLI's app factory); apps built in tests leave the test process's signals alone.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable
from types import FrameType
from typing import Any

import anyio

logger = logging.getLogger(__name__)

# How long streams get, after being told to stop, to store their partial answer and send
# their last event before uvicorn's own shutdown takes over.
STOP_SECONDS = 5.0

SignalHandler = Callable[[int, FrameType | None], Any]


class Drain:
    def __init__(self, grace_seconds: float) -> None:
        self.grace_seconds = grace_seconds
        self.draining = False
        self._streams = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._stop = asyncio.Event()

    # --- streams --------------------------------------------------------------------------

    def stream_started(self) -> None:
        self._streams += 1
        self._idle.clear()

    def stream_ended(self) -> None:
        self._streams = max(0, self._streams - 1)
        if self._streams == 0:
            self._idle.set()

    @property
    def active_streams(self) -> int:
        return self._streams

    async def stop_requested(self) -> None:
        """Returns when streams still running must stop (the grace period is over)."""
        await self._stop.wait()

    # --- the drain ------------------------------------------------------------------------

    async def drain(self) -> None:
        """Refuse new answers, wait for those in flight, then stop the rest."""
        self.draining = True
        logger.info(
            "draining: %d answers in flight, up to %.0f s to finish",
            self._streams,
            self.grace_seconds,
        )
        with anyio.move_on_after(self.grace_seconds):
            await self._idle.wait()
        if self._streams:
            logger.warning("grace period over: stopping %d answers in flight", self._streams)
        self._stop.set()
        with anyio.move_on_after(STOP_SECONDS):
            await self._idle.wait()

    def install(self) -> Callable[[], None]:
        """Take over SIGTERM for this process (main thread, inside a running loop): drain
        first, then hand the signal to the handler that was there (uvicorn's). Returns a
        function that puts that handler back."""
        loop = asyncio.get_running_loop()
        previous: SignalHandler | int | None = signal.getsignal(signal.SIGTERM)
        tasks: set[asyncio.Task[None]] = set()

        def pass_on(sig: int, frame: FrameType | None) -> None:
            if callable(previous):
                previous(sig, frame)
            else:
                signal.signal(sig, signal.SIG_DFL)
                signal.raise_signal(sig)

        async def drain_then_exit() -> None:
            try:
                await self.drain()
            finally:
                pass_on(signal.SIGTERM, None)

        def start() -> None:
            task = loop.create_task(drain_then_exit())
            tasks.add(task)
            task.add_done_callback(tasks.discard)

        def on_sigterm(sig: int, frame: FrameType | None) -> None:
            if self.draining:  # a second SIGTERM: no more waiting
                pass_on(sig, frame)
                return
            self.draining = True  # readiness fails from this instant
            loop.call_soon_threadsafe(start)  # safe from a signal handler

        signal.signal(signal.SIGTERM, on_sigterm)

        def restore() -> None:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)

        return restore
