"""Server-Sent Events transport: an answer's frames as ``text/event-stream``.

The chat pipeline yields events; ``sitechat.answers`` turns them into frames, ``(seq,
JSON)``, numbered within the answer; this module owns every transport concern:

- framing: each frame is ``id: <seq>`` + ``data: <one-line JSON>`` + a blank line; the id is
  the frame's number within the answer, the same on the first read and on every resume;
- batching: frames already waiting (a resume catching up) go out in one write;
- keep-alive: a ``: ping`` comment whenever nothing was sent for ``ping_interval`` seconds, so
  proxies with 60 s idle timeouts keep a slow answer open;
- disconnects: the body races a listener for ``http.disconnect``; whichever ends first cancels
  the other. A reader leaving does not stop the answer: the run it reads from decides that
  (grace period, stop endpoint, graceful restart);
- one send at a time, so a ping never interleaves with a frame, and a send timeout so a
  client that stops reading cannot pin the task forever (it counts as gone);
- a detached body: once the headers are out (through every middleware, which adds its
  headers to them), the body is handed to ``DetachedBodies``, the outermost middleware, and
  streamed from there with the server's own ``receive`` and ``send``. The router's, FastAPI's
  and the inner middleware's frames, the request and its parsed body are gone by then, not
  held for the minutes an answer may stay open (about 13 KiB per open stream). Without that
  middleware (an app that lacks it) the body streams in place.

Divergence from Starlette's ``StreamingResponse``: under ASGI spec 2.4 Starlette stops
listening for ``http.disconnect`` and relies on a failing ``send``. A stalled model never
sends, so that would keep the reader attached until the next ping; we always listen.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import anyio
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

logger = logging.getLogger(__name__)

SSE_HEADERS: dict[str, str] = {
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",  # nginx: never buffer this response
    "Connection": "keep-alive",
}


Frame = tuple[int, bytes]  # (seq, one-line JSON payload, UTF-8)


def encode_frame(event_id: int, data: Mapping[str, Any]) -> bytes:
    payload = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return f"id: {event_id}\ndata: {payload}\n\n".encode()


def encode_frames(frames: list[Frame]) -> bytes:
    return b"".join(b"id: %d\ndata: %b\n\n" % frame for frame in frames)


PING_FRAME = b": ping\n\n"

# The scope key under which ``DetachedBodies`` offers to stream a body after the app returns.
DETACH = "sitechat.detach"

Body = Callable[[Receive, Send], Awaitable[None]]


class EventStreamResponse(Response):
    """An ASGI response streaming batches of frames as SSE."""

    media_type = "text/event-stream; charset=utf-8"

    def __init__(
        self,
        frames: AsyncIterator[list[Frame]],
        *,
        ping_interval: float = 15.0,
        send_timeout: float = 30.0,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.status_code = 200
        self.background = None
        self.init_headers({**SSE_HEADERS, **(headers or {})})
        self.body_stream = EventStreamBody(frames, ping_interval, send_timeout)

    @property
    def disconnected(self) -> bool:
        return self.body_stream.disconnected

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        detach: Callable[[Body], None] | None = scope.get(DETACH)
        if detach is not None:
            detach(self.body_stream)  # only the body is kept, not this response
        else:
            await self.body_stream(receive, send)


class EventStreamBody:
    """The body of an ``EventStreamResponse``: frames, pings and the disconnect watch."""

    __slots__ = ("disconnected", "frames", "ping_interval", "send_timeout")

    def __init__(
        self, frames: AsyncIterator[list[Frame]], ping_interval: float, send_timeout: float
    ) -> None:
        self.frames = frames
        self.ping_interval = ping_interval
        self.send_timeout = send_timeout
        self.disconnected = False

    async def __call__(self, receive: Receive, send: Send) -> None:
        # The body is sent from this task; one helper task (``watch``) pings, enforces the
        # send timeout and listens for the disconnect. Two tasks per stream rather than one
        # per concern, and nothing created per frame: a frame's send is timed by the
        # watcher's clock, not by a cancel scope of its own.
        #
        # Plain asyncio rather than an anyio task group: a stream may stay open for minutes
        # and thousands may be open at once; the group, its scopes and task records cost
        # about 3 KiB per stream more than a bare task and ``asyncio.timeout``. So the
        # watcher cancels this task itself, and this task takes back (``uncancel``) only a
        # cancellation the watcher made; any other one goes on up.
        body_task = asyncio.current_task()
        assert body_task is not None
        body_running = True
        cancelled_by_watch = False
        last_sent = time.monotonic()
        sending_since: float | None = None  # when the send in progress began
        send_done: asyncio.Event | None = None  # made only when the other task waits for it

        async def send_body(chunk: bytes) -> None:
            nonlocal last_sent, sending_since, send_done
            while sending_since is not None:  # the other task is mid-send: one at a time
                if send_done is None:
                    send_done = asyncio.Event()
                await send_done.wait()
            sending_since = time.monotonic()
            try:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            finally:
                sending_since = None
                last_sent = time.monotonic()
                if send_done is not None:
                    send_done.set()
                    send_done = None

        def gone() -> None:
            nonlocal cancelled_by_watch
            self.disconnected = True
            if body_running:
                cancelled_by_watch = True
                body_task.cancel()

        async def watch() -> None:
            try:
                await watching()
            except Exception:  # never left unretrieved in a task nobody awaits
                logger.exception("the stream's watcher failed; closing the stream")
                gone()

        async def watching() -> None:
            while True:
                now = time.monotonic()
                if sending_since is not None:
                    stalled = now - sending_since
                    if stalled >= self.send_timeout:
                        # The client stopped reading: it counts as gone.
                        logger.info("client read nothing for %.0f s; closing", stalled)
                        gone()
                        return
                    # Checked again by the next ping's time: the send may end meanwhile.
                    wait = min(self.send_timeout - stalled, self.ping_interval)
                else:
                    idle = now - last_sent
                    if idle >= self.ping_interval:
                        try:
                            async with asyncio.timeout(self.send_timeout):
                                await send_body(PING_FRAME)
                        except (OSError, TimeoutError):
                            gone()
                            return
                        continue
                    # Checked again within ``send_timeout``: a send may begin and stall.
                    wait = min(self.ping_interval - idle, self.send_timeout)
                # Waiting for ``receive()`` consumes nothing until a message arrives, so it
                # may be cut short to ping or to check a send in progress.
                try:
                    async with asyncio.timeout(wait):
                        message: Message = await receive()
                except TimeoutError:
                    continue
                if message["type"] == "http.disconnect":
                    gone()
                    return

        watcher = asyncio.get_running_loop().create_task(watch())
        try:
            async for batch in self.frames:
                await send_body(encode_frames(batch))
        except OSError:
            # The client went away between our check and the write.
            self.disconnected = True
        except asyncio.CancelledError:
            if not cancelled_by_watch or body_task.uncancel() > 0:
                raise  # not (only) the watcher's: the server's, or a caller's
        finally:
            body_running = False  # before any await: the watcher may not cancel past here
            watcher.cancel()
            # The reader stops counting as one however the response ended.
            aclose = getattr(self.frames, "aclose", None)
            if aclose is not None:
                with anyio.CancelScope(shield=True):
                    await aclose()

        if not self.disconnected:
            try:
                await send({"type": "http.response.body", "body": b"", "more_body": False})
            except OSError:
                logger.debug("client gone before the end of the stream")
