"""Answers that run apart from the connection that asked for them.

An ``AnswerRun`` is one answer being generated in this process: a task drives the chat
pipeline (``ChatService.stream``) and appends each event, as a frame, to the run's list and
(with Redis) to the shared ``RedisFrames``. Readers follow the list: the POST that asked,
and any number of resumes (``read(after)``), each from the frame after the one it last got.
The HTTP connection only reads; closing it does not stop the answer:

- when the last reader leaves, a grace timer starts (``grace_seconds``); a reader coming
  back (here, or through another process with Redis) cancels it;
- when it fires with nobody reading, the answer is stopped (``client_disconnected``): its
  upstream model stream is closed and the partial answer stored as interrupted, so an
  abandoned answer stops costing tokens;
- ``stop`` (the visitor's stop button) ends it at once with a ``complete`` marked stopped.

A run keeps its frames for ``frames_ttl`` seconds after it ends, so a late resume is served
from memory without Redis (the embedded default); the stream slot it holds is given back the
moment it ends.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from typing import Protocol

import anyio

from sitechat.answers.frames import Frame, RedisFrames, is_final, payload_of
from sitechat.chat.events import StartEvent, TokenEvent
from sitechat.chat.pipeline import ChatService
from sitechat.chat.turn import ChatTurn
from sitechat.errors import AnswerAbandoned, SharedStateUnavailable

logger = logging.getLogger(__name__)

Release = Callable[[], Awaitable[None]]
# Most runs that may stay in memory after they end (their frames serve late resumes).
MAX_ENDED_RUNS = 2000


class Draining(Protocol):
    def stream_started(self) -> None: ...

    def stream_ended(self) -> None: ...


class PartialAnswers(Protocol):
    async def save_partial_answers(self, contents: dict[str, str]) -> None: ...


class AnswerRun:
    def __init__(self, turn: ChatTurn) -> None:
        self.turn = turn
        self.message_id: str | None = None
        self.payloads: list[bytes] = []  # frame n is payloads[n - 1]
        self.parts: list[str] = []  # the answer's text so far
        self.checkpointed = 0  # len(parts) when its text was last saved
        self.ended = False
        self.ended_at = 0.0
        self.readers = 0
        self._changed = asyncio.Event()
        self._grace: asyncio.TimerHandle | None = None
        self.task: asyncio.Task[None] | None = None

    def append(self, payload: bytes) -> int:
        self.payloads.append(payload)
        self._wake()
        return len(self.payloads)

    def end(self) -> None:
        self.ended = True
        self.ended_at = time.monotonic()
        self.cancel_grace()
        self._wake()

    def _wake(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    def stop(self, reason: str) -> None:
        self.turn.stop.request(reason)

    def cancel_grace(self) -> None:
        if self._grace is not None:
            self._grace.cancel()
            self._grace = None

    async def changed(self) -> None:
        await self._changed.wait()

    @property
    def final(self) -> bool:
        return bool(self.payloads) and is_final(self.payloads[-1])


class RunReader:
    """One reader of a run: an async iterator of frame batches from ``after`` on.

    It counts as a reader from the moment it is made (not from its first ``__anext__``),
    and stops counting on ``aclose()``, which the response always calls, however it ends.
    """

    def __init__(self, runs: AnswerRuns, run: AnswerRun, after: int) -> None:
        self._runs = runs
        self._run = run
        self._next = after  # index into payloads of the next frame to send
        self._closed = False
        runs._attach(run)

    def __aiter__(self) -> RunReader:
        return self

    async def __anext__(self) -> list[Frame]:
        run = self._run
        while not self._closed:
            if self._next < len(run.payloads):
                start, self._next = self._next, len(run.payloads)
                return [(i + 1, run.payloads[i]) for i in range(start, self._next)]
            if run.ended:
                break
            await run.changed()
        await self.aclose()
        raise StopAsyncIteration

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            self._runs._detach(self._run)


class AnswerRuns:
    def __init__(
        self,
        chat: ChatService,
        *,
        grace_seconds: float,
        frames_ttl_seconds: float,
        recorder: RedisFrames | None = None,
        partials: PartialAnswers | None = None,
        recheck_seconds: float = 5.0,
    ) -> None:
        self.chat = chat
        self.grace_seconds = grace_seconds
        self.frames_ttl_seconds = frames_ttl_seconds
        self.recorder = recorder
        self.partials = partials
        self.recheck_seconds = recheck_seconds
        self.drain: Draining | None = None
        self._runs: dict[str, AnswerRun] = {}  # by message id, from the ``start`` frame on
        self._live: set[AnswerRun] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    # --- starting and finding runs ---------------------------------------------------------

    def start(self, turn: ChatTurn, release: Release) -> RunReader:
        """Run ``turn``'s answer in its own task; the reader returned is the asker's.
        ``release`` (the stream slot) is called when the answer ends."""
        run = AnswerRun(turn)
        reader = RunReader(self, run, 0)
        self._live.add(run)
        if self.drain is not None:
            self.drain.stream_started()
        run.task = asyncio.create_task(self._produce(run, release))
        return reader

    def get(self, message_id: str) -> AnswerRun | None:
        run = self._runs.get(message_id)
        if run is not None and run.ended and self._expired(run):
            self._runs.pop(message_id, None)
            return None
        return run

    def read(self, run: AnswerRun, after: int) -> RunReader:
        return RunReader(self, run, max(0, after))

    @property
    def live(self) -> int:
        return len(self._live)

    def stop_all(self, reason: str) -> int:
        for run in list(self._live):
            run.stop(reason)
        return len(self._live)

    async def cancel_all(self) -> None:
        """At shutdown: runs still going are cancelled (the pipeline stores their partial
        answers as interrupted) and awaited."""
        tasks = [run.task for run in self._live if run.task is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            try:
                await task
            except asyncio.CancelledError:
                pass
            except Exception:
                logger.exception("an answer failed while stopping")

    # --- the producer ------------------------------------------------------------------------

    async def _produce(self, run: AnswerRun, release: Release) -> None:
        try:
            async with aclosing(self.chat.stream(run.turn)) as events:
                async for event in events:
                    payload = payload_of(event.to_dict())
                    seq = run.append(payload)
                    if isinstance(event, TokenEvent):
                        run.parts.append(event.content)
                    elif isinstance(event, StartEvent):
                        run.message_id = event.message_id
                        self._runs[event.message_id] = run
                    if self.recorder is not None and run.message_id is not None:
                        self.recorder.record(run.message_id, seq, payload)
        except Exception:
            logger.exception("an answer's task failed")
        finally:
            run.end()
            self._live.discard(run)
            with anyio.CancelScope(shield=True):
                try:
                    await release()
                except Exception:
                    logger.exception("could not give back a stream slot")
            if self.drain is not None:
                self.drain.stream_ended()
            self._forget_expired()

    def _expired(self, run: AnswerRun) -> bool:
        return time.monotonic() - run.ended_at >= self.frames_ttl_seconds

    def _forget_expired(self) -> None:
        ended = [(mid, r) for mid, r in self._runs.items() if r.ended]
        excess = len(ended) - MAX_ENDED_RUNS
        for mid, run in ended:  # oldest first: dicts keep insertion order
            if excess > 0 or self._expired(run):
                excess -= 1
                del self._runs[mid]

    # --- readers and the grace period ------------------------------------------------------

    def _attach(self, run: AnswerRun) -> None:
        run.readers += 1
        run.cancel_grace()

    def _detach(self, run: AnswerRun) -> None:
        run.readers = max(0, run.readers - 1)
        if run.readers == 0 and not run.ended:
            self._start_grace(run, self.grace_seconds)

    def _start_grace(self, run: AnswerRun, seconds: float) -> None:
        run.cancel_grace()
        if seconds <= 0:
            self._grace_over(run)
            return
        loop = asyncio.get_running_loop()
        run._grace = loop.call_later(seconds, self._grace_over, run)

    def _grace_over(self, run: AnswerRun) -> None:
        run._grace = None
        if run.readers or run.ended:
            return
        if self.recorder is None or run.message_id is None:
            self._abandon(run)
            return
        task = asyncio.create_task(self._check_remote_readers(run))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _check_remote_readers(self, run: AnswerRun) -> None:
        assert self.recorder is not None and run.message_id is not None
        try:
            remote = await self.recorder.remote_readers(run.message_id)
        except SharedStateUnavailable:
            remote = 0
        if run.readers or run.ended:
            return
        if remote:  # a visitor came back through another process: look again later
            self._start_grace(run, min(self.recheck_seconds, self.grace_seconds))
        else:
            self._abandon(run)

    def _abandon(self, run: AnswerRun) -> None:
        logger.info("nobody is reading answer %s: stopping it", run.message_id)
        run.stop(AnswerAbandoned.code)

    # --- checkpoints (without a shared recording) ----------------------------------------------

    async def checkpoint(self) -> None:
        """Save the text so far of every answer that grew since the last checkpoint."""
        if self.partials is None:
            return
        grown = {
            run.message_id: run
            for run in self._live
            if run.message_id is not None and len(run.parts) > run.checkpointed
        }
        if not grown:
            return
        counts = {mid: len(run.parts) for mid, run in grown.items()}
        await self.partials.save_partial_answers(
            {mid: "".join(run.parts) for mid, run in grown.items()}
        )
        for mid, run in grown.items():
            run.checkpointed = counts[mid]

    async def run_checkpoints(self, interval_seconds: float) -> None:
        """Without Redis, the text of running answers reaches the database every
        ``interval_seconds``: a process killed mid-answer loses at most that much."""
        while True:
            await anyio.sleep(interval_seconds)
            try:
                await self.checkpoint()
            except Exception:
                logger.exception("could not save the text of running answers")

    # --- helpers for tests and benchmarks ---------------------------------------------------

    async def wait_idle(self) -> None:
        """Until no answer runs here (and, with Redis, their frames are recorded)."""
        while self._live:
            tasks = [r.task for r in self._live if r.task is not None]
            if tasks:
                await asyncio.wait(tasks)
            else:
                await asyncio.sleep(0.01)
        if self.recorder is not None:
            await self.recorder.flush()


async def drain_frames(reader: AsyncIterator[list[Frame]]) -> list[Frame]:
    """Every frame a reader yields, to the end (tests and the non-streaming paths)."""
    frames: list[Frame] = []
    async for batch in reader:
        frames.extend(batch)
    return frames
