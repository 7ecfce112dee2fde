"""An answer's frames, recorded in Redis so any process can resume it.

A frame is ``(seq, payload)``: its sequence number within the answer (1, 2, 3...: the SSE
``id:``) and its event as one line of JSON, UTF-8 bytes as they go out: kept as ``str``, one
non-ASCII character (an em dash in a source's snippet) would make Python store the whole
payload at two or four bytes per character, for as long as the answer is kept. The process
generating an answer keeps its frames in memory (``runs.AnswerRun``) and, when Redis is
configured, also appends them to one Redis Stream per answer, ``<prefix>answer:<message id>``:

- the entry id is ``<seq>-0``, so a reader's ``Last-Event-ID`` is its Redis read cursor and
  ``XREAD ... <seq>-0`` returns exactly the frames after it;
- one field, ``f``, holds the payload;
- the stream is never trimmed; it expires ``live_ttl`` after its last frame while the answer
  runs, and ``ended_ttl`` after its final frame (``complete`` or ``error``).

Appending never waits for Redis: ``record`` queues the frame and one writer task sends all
that is queued in one script call (``_APPEND``: an ``XADD`` per frame, then each stream's
expiry), so an answer's first token reaches its own reader at once and Redis gets a batch
every ``batch_seconds`` (50 ms) at most, not a round trip per token. One call rather than a
pipeline of commands: with 200 answers streaming, redis-py's work per pipelined command
(building it, parsing its reply) was the largest cost Redis added to a worker.
A frame queued when the process dies is lost with the answer in flight; the orphan sweeper
ends that answer with what was recorded.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Mapping
from typing import Any

import anyio
import orjson
from redis.asyncio import Redis

from sitechat.errors import SharedStateUnavailable
from sitechat.shared_state.redis_link import REDIS_ERRORS, RedisLink

logger = logging.getLogger(__name__)

Frame = tuple[int, bytes]  # (seq, one-line JSON payload, UTF-8)

_FIELD = b"f"
# KEYS: the answers' streams. ARGV: each stream's expiry (ms), in KEYS' order; then, per
# frame, the index of its stream in KEYS, its seq and its payload. Returns the number of
# frames refused and the first refusal's message (an id at or below the last one: a bug).
_APPEND = (
    """
local streams = #KEYS
local failed, first = 0, ''
for i = streams + 1, #ARGV, 3 do
  local key, id = KEYS[tonumber(ARGV[i])], ARGV[i + 1] .. '-0'
  local done = redis.pcall('XADD', key, id, '"""
    + _FIELD.decode()
    + """', ARGV[i + 2])
  if type(done) == 'table' and done.err then
    failed = failed + 1
    if first == '' then first = done.err end
  end
end
for k = 1, streams do
  redis.call('PEXPIRE', KEYS[k], ARGV[k])
end
return {failed, first}
"""
)
# Frames per script call: a burst of answers does not become one huge command.
_PER_CALL = 2000
# How long a cancelled writer may take to send what is still queued.
_LAST_SEND_SECONDS = 2.0
_FINAL_PREFIXES = (b'{"type":"complete"', b'{"type":"error"')


def payload_of(event: Mapping[str, Any]) -> bytes:
    """One line of compact UTF-8 JSON (orjson: several times faster than ``json``; the same
    text but for float formatting details, which clients parse alike).

    Copied to a ``bytes`` of its own size: orjson hands back its whole write buffer (4 KiB
    at least, whatever the length), and a run keeps every frame of its answer."""
    return bytes(memoryview(orjson.dumps(event)))


def is_final(payload: bytes) -> bool:
    """True for the frame that ends an answer (``complete`` or ``error``)."""
    return payload.startswith(_FINAL_PREFIXES)


def replay(frames: list[Frame]) -> tuple[str, dict[str, Any] | None]:
    """The answer text and the ``sources`` event recorded in ``frames``: what the orphan
    sweeper stores for an answer whose process died."""
    parts: list[str] = []
    sources: dict[str, Any] | None = None
    for _, payload in frames:
        if payload.startswith(b'{"type":"token"'):
            parts.append(orjson.loads(payload).get("content", ""))
        elif payload.startswith(b'{"type":"sources"'):
            sources = orjson.loads(payload)
    return "".join(parts), sources


class RedisFrames:
    def __init__(
        self,
        redis: RedisLink,
        *,
        ended_ttl_seconds: float,
        live_ttl_seconds: float = 3600.0,
        block_seconds: float = 5.0,
        batch_seconds: float = 0.05,
    ) -> None:
        self.redis = redis
        self.batch_seconds = batch_seconds
        self.ended_ttl_ms = math.ceil(ended_ttl_seconds * 1000)
        self.live_ttl_ms = math.ceil(max(live_ttl_seconds, ended_ttl_seconds) * 1000)
        self.block_seconds = block_seconds
        self._queue: list[tuple[str, int, bytes]] = []
        self._queued = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._append_script = redis.client.register_script(_APPEND)
        # Blocking reads (XREAD BLOCK) wait longer than the shared pool's socket timeout,
        # so they have their own connections.
        self._blocking: Redis | None = None

    def key(self, message_id: str) -> str:
        return self.redis.key("answer", message_id)

    def readers_key(self, message_id: str) -> str:
        return self.redis.key("answer", message_id, "readers")

    # --- writing ---------------------------------------------------------------------------

    def record(self, message_id: str, seq: int, payload: bytes) -> None:
        """Queue a frame; the writer task sends it with whatever else is queued."""
        self._queue.append((message_id, seq, payload))
        self._idle.clear()
        self._queued.set()

    async def run(self) -> None:
        """The writer: until cancelled, send queued frames in one pipeline per batch.

        A batch is sent ``batch_seconds`` after its first frame was queued, with every frame
        queued meanwhile: an answer streaming a token every 20 ms costs Redis one round trip
        per few tokens, not one per token (a reader resuming through another process gets
        them that much later; the answer's own reader reads them from memory at once).
        Cancelled, it sends what is queued before it ends (answers stopped at shutdown
        queue their last frame just before)."""
        try:
            while True:
                await self._queued.wait()
                if self.batch_seconds:
                    await asyncio.sleep(self.batch_seconds)
                await self._send_queued()
        finally:
            if self._queue:
                with anyio.CancelScope(shield=True), anyio.move_on_after(_LAST_SEND_SECONDS):
                    await self._send_queued()

    async def _send_queued(self) -> None:
        self._queued.clear()
        batch, self._queue = self._queue, []
        try:
            await self._send(batch)
        except SharedStateUnavailable:
            logger.warning("%d answer frames not recorded (redis unreachable)", len(batch))
        finally:
            if not self._queue:
                self._idle.set()

    async def flush(self) -> None:
        """Wait until every frame queued so far was sent (or given up)."""
        await self._idle.wait()

    async def _send(self, batch: list[tuple[str, int, bytes]]) -> None:
        for start in range(0, len(batch), _PER_CALL):
            await self._append(batch[start : start + _PER_CALL])

    async def _append(self, batch: list[tuple[str, int, bytes]]) -> None:
        if not batch:
            return
        index: dict[str, int] = {}  # stream key -> its place in KEYS (from 1)
        ttls: list[int] = []
        frames: list[bytes | int] = []
        for message_id, seq, payload in batch:
            key = self.key(message_id)
            number = index.get(key)
            if number is None:
                number = index[key] = len(index) + 1
                ttls.append(self.live_ttl_ms)
            if is_final(payload):
                ttls[number - 1] = self.ended_ttl_ms
            frames += (number, seq, payload)
        async with self.redis.translated("recording answer frames"):
            failed, first = await self._append_script(keys=list(index), args=[*ttls, *frames])
        if failed:  # e.g. an id at or below the last one: a bug, never silently
            logger.error("recording answer frames: %d refused: %s", failed, first)

    async def append_final(self, message_id: str, payload: bytes) -> int | None:
        """Append an ending frame after the last recorded one (the orphan sweeper ends an
        answer whose process died this way). None if nothing was recorded for it."""
        key = self.key(message_id)
        async with self.redis.translated("ending a recorded answer"):
            last: Any = await self.redis.client.xrevrange(key, count=1)
            if not last:
                return None
            seq = _seq(last[0][0]) + 1
            await self.redis.client.xadd(key, {_FIELD: payload}, id=f"{seq}-0")
            await self.redis.client.pexpire(key, self.ended_ttl_ms)
        return seq

    # --- reading ---------------------------------------------------------------------------

    async def exists(self, message_id: str) -> bool:
        async with self.redis.translated("looking up a recorded answer"):
            return bool(await self.redis.client.exists(self.key(message_id)))

    async def after(self, message_id: str, after: int) -> list[Frame]:
        """Every recorded frame after ``after``, at once."""
        async with self.redis.translated("reading a recorded answer"):
            entries: Any = await self.redis.client.xrange(
                self.key(message_id), min=f"{after + 1}-0"
            )
        return [(_seq(entry_id), fields[_FIELD]) for entry_id, fields in entries]

    async def wait_after(self, message_id: str, after: int) -> list[Frame]:
        """The frames after ``after``, waiting up to ``block_seconds`` for the first one
        (an empty list: none came)."""
        client = self._blocking_client()
        try:
            found: Any = await client.xread(
                {self.key(message_id): f"{after}-0"}, block=math.ceil(self.block_seconds * 1000)
            )
        except REDIS_ERRORS as exc:
            self.redis.record_failure("waiting for answer frames", exc)
            raise SharedStateUnavailable() from exc
        frames: list[Frame] = []
        for _key, entries in found or ():
            frames.extend((_seq(i), fields[_FIELD]) for i, fields in entries)
        return frames

    def _blocking_client(self) -> Redis:
        if self._blocking is None:
            self._blocking = Redis.from_url(
                self.redis.url,
                socket_connect_timeout=1.0,
                socket_timeout=self.block_seconds + 2.0,
                max_connections=1000,
            )
        return self._blocking

    # --- readers in other processes (for the grace period) ---------------------------------

    async def reader_seen(self, message_id: str, reader: str, ttl_seconds: float) -> None:
        key = self.readers_key(message_id)
        async with (
            self.redis.translated("registering an answer's reader"),
            self.redis.client.pipeline(transaction=False) as pipe,
        ):
            now_ms = await self._now_ms()
            pipe.zadd(key, {reader: now_ms + math.ceil(ttl_seconds * 1000)})
            pipe.pexpire(key, math.ceil(ttl_seconds * 1000))
            await pipe.execute()

    async def reader_gone(self, message_id: str, reader: str) -> None:
        async with self.redis.translated("removing an answer's reader"):
            await self.redis.client.zrem(self.readers_key(message_id), reader)

    async def remote_readers(self, message_id: str) -> int:
        """Readers of this answer in other processes seen within their ttl."""
        async with self.redis.translated("counting an answer's readers"):
            now_ms = await self._now_ms()
            return int(await self.redis.client.zcount(self.readers_key(message_id), now_ms, "+inf"))

    async def _now_ms(self) -> int:
        seconds, micros = await self.redis.client.time()
        return int(seconds) * 1000 + int(micros) // 1000

    async def aclose(self) -> None:
        if self._blocking is not None:
            await self._blocking.aclose()


def _seq(entry_id: bytes | str) -> int:
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    return int(text.split("-", 1)[0])
