"""Answers a visitor can leave and come back to: start, resume, stop, and the orphan sweep.

``Answers`` is what the public routes call; it composes the in-process runs
(``runs.AnswerRuns``), the shared recording (``frames.RedisFrames``, with Redis), which
processes are alive (``shared_state.workers.WorkerPresence``) and the message store.

Where a resume is served from, in order:

1. the run in this process (live, or ended less than ``frames_ttl`` ago);
2. the answer's Redis Stream (another process generates it, or did): the frames after the
   reader's cursor, then live ones as they are recorded, until the final frame. While it
   waits it tells the generating process it is there (so its grace period does not end the
   answer), and if that process's heartbeat lapses the answer is an orphan: swept here;
3. the stored message, as one ``complete`` (or ``error``) event: its frames expired.

Stop is delivered where the answer runs: directly in this process, else over Redis pub/sub
to every process, whose runs are looked up by message id.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any, Protocol

import anyio

from sitechat import metrics
from sitechat.answers.frames import Frame, RedisFrames, is_final, payload_of, replay
from sitechat.answers.runs import AnswerRuns, RunReader
from sitechat.chat.pipeline import VISITOR_STOPPED
from sitechat.chat.ports import MessageLog
from sitechat.chat.turn import ChatTurn
from sitechat.domain import Conversation, Message
from sitechat.errors import (
    AnswerAbandoned,
    AnswerNotResumable,
    AnswerOrphaned,
    ModelInterrupted,
    ModelUnavailable,
    NotFound,
    ServerRestarting,
    SharedStateUnavailable,
    SitechatError,
    error_body,
)
from sitechat.shared_state.redis_link import RedisLink
from sitechat.shared_state.workers import WorkerPresence
from sitechat.storage.base import utcnow

logger = logging.getLogger(__name__)

FrameBatches = AsyncIterator[list[Frame]]


class AnswerStore(MessageLog, Protocol):
    """The message store as resuming, stopping and sweeping answers use it."""

    async def get_answer(self, conversation_id: str, message_id: str) -> Message | None: ...

    async def get_message(self, message_id: str) -> Message | None: ...

    async def streaming_answers(
        self, *, started_before: datetime
    ) -> list[tuple[str, str | None]]: ...


class Releasable(Protocol):
    async def release(self) -> None: ...


class Answers:
    def __init__(
        self,
        runs: AnswerRuns,
        store: AnswerStore,
        presence: WorkerPresence,
        *,
        redis: RedisLink | None = None,
        recorder: RedisFrames | None = None,
        sweep_interval_seconds: float = 30.0,
    ) -> None:
        self.runs = runs
        self.store = store
        self.presence = presence
        self.redis = redis
        self.recorder = recorder
        self.sweep_interval_seconds = sweep_interval_seconds
        self.stop_channel = redis.key("answers", "stop") if redis is not None else ""
        self.subscribed = anyio.Event()

    # --- start -------------------------------------------------------------------------------

    def start(self, turn: ChatTurn, admission: Releasable) -> RunReader:
        """Generate ``turn``'s answer apart from the request; the reader is the asker's."""
        return self.runs.start(turn, admission.release)

    # --- resume ------------------------------------------------------------------------------

    async def resume(self, conversation: Conversation, message_id: str, after: int) -> FrameBatches:
        """The frames of an answer after ``after``, then live ones until it ends.
        ``NotFound`` for an id that is not an answer of this conversation."""
        session_id = conversation.session_id
        message = await self.store.get_answer(conversation.id, message_id)
        if message is None:
            raise NotFound("No answer with that id in this conversation.")
        run = self.runs.get(message_id)
        if run is not None:
            metrics.ANSWER_RESUMES.labels("local").inc()
            return self.runs.read(run, after)
        if message.status == "streaming" and not await self.presence.alive([message.worker_id]):
            # Its process died and no sweep has ended it yet: end it now (its recording, if
            # any, gets the final error frame the reader then receives).
            await self.end_orphan(message.id)
            message = await self.store.get_answer(conversation.id, message_id) or message
        if self.recorder is not None:
            try:
                if await self.recorder.exists(message_id) or message.status == "streaming":
                    metrics.ANSWER_RESUMES.labels("recorded").inc()
                    return self._follow_recorded(message, session_id, after)
            except SharedStateUnavailable:
                pass  # answered from the database below
        metrics.ANSWER_RESUMES.labels("stored").inc()
        if message.status == "streaming":  # alive elsewhere, and nothing shared to follow
            code = AnswerNotResumable.code
            return _single(after, _ended_event(message, session_id, code=code))
        return _single(after, _ended_event(message, session_id))

    async def _follow_recorded(self, message: Message, session_id: str, after: int) -> FrameBatches:
        assert self.recorder is not None
        recorder = self.recorder
        reader = secrets.token_hex(6)
        presence_ttl = recorder.block_seconds * 3
        cursor = after
        try:
            while True:
                await recorder.reader_seen(message.id, reader, presence_ttl)
                frames = await recorder.wait_after(message.id, cursor)
                if frames:
                    cursor = frames[-1][0]
                    yield frames
                    if is_final(frames[-1][1]):
                        return
                    continue
                # Nothing new for a while: is the answer still being written?
                stored = await self.store.get_answer(message.conversation_id, message.id)
                if stored is None:
                    return
                if stored.status != "streaming":
                    if not await recorder.exists(message.id):
                        yield [(cursor + 1, payload_of(_ended_event(stored, session_id)))]
                        return
                    continue  # its final frame is on its way
                if not await self.presence.alive([stored.worker_id]):
                    await self.end_orphan(stored.id)  # appends the final frame we then read
        except SharedStateUnavailable:
            stored = await self.store.get_answer(message.conversation_id, message.id)
            if stored is not None:
                code = AnswerNotResumable.code if stored.status == "streaming" else None
                yield [(cursor + 1, payload_of(_ended_event(stored, session_id, code=code)))]
        finally:
            with anyio.CancelScope(shield=True), anyio.move_on_after(1.0):
                with contextlib.suppress(SharedStateUnavailable):
                    await recorder.reader_gone(message.id, reader)

    # --- stop --------------------------------------------------------------------------------

    async def stop(self, conversation: Conversation, message_id: str) -> str:
        """Stop an answer wherever it runs; its status, or ``stopping`` if it was running.
        Stopping an answer that already ended changes nothing."""
        conversation_id = conversation.id
        message = await self.store.get_answer(conversation_id, message_id)
        if message is None:
            raise NotFound("No answer with that id in this conversation.")
        run = self.runs.get(message_id)
        if run is not None:
            if run.ended:
                stored = await self.store.get_answer(conversation_id, message_id)
                return stored.status if stored is not None else message.status
            run.stop(VISITOR_STOPPED)
            return "stopping"
        if message.status != "streaming":
            return message.status
        if self.redis is not None:
            async with self.redis.translated("sending a stop request"):
                await self.redis.client.publish(self.stop_channel, message_id)
            return "stopping"
        if not await self.presence.alive([message.worker_id]):
            await self.end_orphan(message_id)
            stored = await self.store.get_answer(conversation_id, message_id)
            return stored.status if stored is not None else message.status
        return "stopping"

    def _stop_here(self, message_id: str) -> None:
        run = self.runs.get(message_id)
        if run is not None and not run.ended:
            run.stop(VISITOR_STOPPED)

    async def listen_for_stops(self, *, retry_seconds: float = 1.0) -> None:
        """Stop requests from other processes (Redis pub/sub), until cancelled."""
        if self.redis is None:
            return
        while True:
            try:
                async with (
                    self.redis.translated("listening for stop requests"),
                    self.redis.client.pubsub(ignore_subscribe_messages=True) as pubsub,
                ):
                    await pubsub.subscribe(self.stop_channel)
                    self.subscribed.set()
                    while True:
                        message = await pubsub.get_message(timeout=5.0)
                        if message is None:
                            continue
                        data = message.get("data")
                        if isinstance(data, bytes):
                            self._stop_here(data.decode(errors="replace"))
            except SharedStateUnavailable:
                self.subscribed = anyio.Event()
                await anyio.sleep(retry_seconds)

    # --- orphans -------------------------------------------------------------------------------

    async def sweep(self) -> int:
        """End every answer still ``streaming`` whose process is dead; how many were ended.
        An answer's row names its process from the start, and a process beats before it
        serves, so only the last second's answers are left for the next sweep."""
        started_before = utcnow() - timedelta(seconds=1)
        candidates = await self.store.streaming_answers(started_before=started_before)
        if not candidates:
            return 0
        alive = await self.presence.alive(worker for _, worker in candidates)
        ended = 0
        for message_id, worker in candidates:
            if (worker in alive) or self.runs.get(message_id) is not None:
                continue
            if await self.end_orphan(message_id):
                ended += 1
        if ended:
            logger.warning("orphan sweep: %d answers whose process died were ended", ended)
        return ended

    async def end_orphan(self, message_id: str) -> bool:
        """Store an orphaned answer as interrupted, with the text its frames recorded, and
        end its recording with an ``answer_orphaned`` error frame. False if it had ended."""
        frames: list[Frame] = []
        if self.recorder is not None:
            try:
                frames = await self.recorder.after(message_id, 0)
            except SharedStateUnavailable:
                frames = []
        text, sources = replay(frames)
        if not frames:  # no shared recording: the last checkpoint is what there is
            stored = await self.store.get_message(message_id)
            text = stored.content if stored is not None else ""
        try:
            ended = await self.store.finish_message(
                message_id,
                content=text,
                status="interrupted",
                sources=(sources or {}).get("sources"),
                context_quality=(sources or {}).get("context_quality"),
                usage=None,  # the recorded text is counted with tiktoken
                error_code=AnswerOrphaned.code,
                only_if_streaming=True,
            )
        except NotFound:
            return False
        if ended:
            metrics.ORPHANS_SWEPT.inc()
        if ended and frames and self.recorder is not None:
            orphaned = AnswerOrphaned()
            event = _error_event(orphaned.code, orphaned.message, message_id, partial=bool(text))
            with contextlib.suppress(SharedStateUnavailable):
                await self.recorder.append_final(message_id, payload_of(event))
        return ended

    async def run_sweeper(self) -> None:
        """Sweep at start-up, then every ``sweep_interval`` seconds, until cancelled."""
        while True:
            try:
                await self.sweep()
            except SitechatError as exc:
                logger.warning("orphan sweep failed: %r", exc)
            except Exception:
                logger.exception("orphan sweep failed")
            await anyio.sleep(self.sweep_interval_seconds)


def _error_event(code: str, text: str, message_id: str, *, partial: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": "error",
        **error_body(code, text, request_id=None),
        "done": True,
        "message_id": message_id,
    }
    if partial:
        body["partial"] = True
    return body


# The errors an ended answer may carry, for a safe public message by code.
_KNOWN_ERRORS: dict[str, type[SitechatError]] = {
    cls.code: cls
    for cls in (
        AnswerOrphaned,
        AnswerNotResumable,
        AnswerAbandoned,
        ServerRestarting,
        ModelInterrupted,
        ModelUnavailable,
    )
}


def _ended_event(message: Message, session_id: str, *, code: str | None = None) -> dict[str, Any]:
    """A stored answer as the one event a resume sends when its frames are gone."""
    if code is None and message.status in ("complete", "stopped"):
        usage = message.usage or {}
        body: dict[str, Any] = {
            "type": "complete",
            "content": message.content,
            "done": True,
            "sources": message.sources,
            "context_quality": message.context_quality or {},
            "usage": usage,
            "message_id": message.id,
            "session_id": session_id,
            "fallback": usage.get("source") == "none" and not message.sources,
        }
        if message.status == "stopped":
            body["stopped"] = True
        return body
    code = code or message.error_code or ModelInterrupted.code
    known = _KNOWN_ERRORS.get(code)
    text = known.message if known is not None else ModelInterrupted.message
    return _error_event(code, text, message.id, partial=bool(message.content))


async def _single(after: int, event: dict[str, Any]) -> FrameBatches:
    yield [(after + 1, payload_of(event))]
