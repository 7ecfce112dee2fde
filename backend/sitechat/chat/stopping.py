"""Stopping an answer from outside its turn: the visitor's stop button (``visitor_stopped``),
a grace period that ended with nobody reading (``client_disconnected``), or a graceful
restart (``server_restarting``).

The turn's ``StopSignal`` is set by whoever decides the answer must end; the pipeline checks
it after every token and, while it waits for the model, runs that one ``await`` inside a
cancel scope the signal can cancel. The scope never spans a ``yield``: cancelling a scope
while its generator is suspended would land in the consumer's code instead.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import anyio


class StopSignal:
    def __init__(self) -> None:
        self.reason: str | None = None  # an error code, e.g. "server_restarting"
        self._waiting: anyio.CancelScope | None = None

    def request(self, reason: str) -> None:
        """Ask the answer to stop; the first reason given is the one kept."""
        if self.reason is None:
            self.reason = reason
        if self._waiting is not None:
            self._waiting.cancel()

    @property
    def requested(self) -> bool:
        return self.reason is not None

    @contextmanager
    def interruptible(self) -> Iterator[anyio.CancelScope]:
        """Around one ``await`` (never a ``yield``): a stop request cancels it."""
        with anyio.CancelScope() as scope:
            if self.reason is not None:
                scope.cancel()
            self._waiting = scope
            try:
                yield scope
            finally:
                self._waiting = None
