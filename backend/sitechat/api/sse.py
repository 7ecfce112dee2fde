"""Server-Sent Events transport: turns a stream of chat events into ``text/event-stream``.

This module owns every transport concern so the chat pipeline only yields events:

- framing: each event is ``id: N`` + ``data: <one-line JSON>`` + a blank line, ``N``
  increasing within the response;
- keep-alive: a ``: ping`` comment whenever nothing was sent for ``ping_interval`` seconds, so
  proxies with 60 s idle timeouts keep a slow answer open;
- disconnects: the body races a listener for ``http.disconnect``; whichever ends first cancels
  the other, so a visitor who closes the tab cancels the pipeline (and with it the upstream
  model stream) at once rather than at the next write;
- a lock so a ping never interleaves with a frame, and a send timeout so a client that stops
  reading cannot pin the task forever;
- graceful restarts: with a ``Drain``, the stream counts as in flight, and when the drain's
  grace period ends it asks the answer to stop (``StopSignal``); the pipeline then stores
  the partial answer and ends the stream with its own ``error`` event.

Divergence from Starlette's ``StreamingResponse``: under ASGI spec 2.4 Starlette stops
listening for ``http.disconnect`` and relies on a failing ``send``. A stalled model never
sends, so that would keep the upstream stream open until the next ping; we always listen.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any, Protocol

import anyio
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

logger = logging.getLogger(__name__)

SSE_HEADERS: dict[str, str] = {
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",  # nginx: never buffer this response
    "Connection": "keep-alive",
}


class Event(Protocol):
    def to_dict(self) -> dict[str, Any]: ...


class Stoppable(Protocol):
    def request(self, reason: str) -> None: ...


class Draining(Protocol):
    def stream_started(self) -> None: ...

    def stream_ended(self) -> None: ...

    async def stop_requested(self) -> None: ...


SERVER_RESTARTING = "server_restarting"


def encode_frame(event_id: int, data: Mapping[str, Any]) -> bytes:
    payload = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return f"id: {event_id}\ndata: {payload}\n\n".encode()


PING_FRAME = b": ping\n\n"


class EventStreamResponse(Response):
    """An ASGI response streaming ``events`` as SSE frames."""

    media_type = "text/event-stream; charset=utf-8"

    def __init__(
        self,
        events: AsyncIterator[Event],
        *,
        ping_interval: float = 15.0,
        send_timeout: float = 30.0,
        headers: Mapping[str, str] | None = None,
        drain: Draining | None = None,
        stop: Stoppable | None = None,
    ) -> None:
        self.events = events
        self.drain = drain
        self.stop = stop
        self.ping_interval = ping_interval
        self.send_timeout = send_timeout
        self.status_code = 200
        self.background = None
        self.extra_headers = {**SSE_HEADERS, **(headers or {})}
        self.init_headers(self.extra_headers)
        self.disconnected = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        raw_headers = [(b"content-type", self.media_type.encode())]
        raw_headers += [(k.lower().encode(), v.encode()) for k, v in self.extra_headers.items()]
        await send({"type": "http.response.start", "status": 200, "headers": raw_headers})

        lock = anyio.Lock()
        last_sent = time.monotonic()

        async def send_body(chunk: bytes) -> None:
            nonlocal last_sent
            async with lock:
                with anyio.fail_after(self.send_timeout):
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                last_sent = time.monotonic()

        async def stream_events(scope_to_cancel: anyio.CancelScope) -> None:
            event_id = 0
            try:
                async for event in self.events:
                    event_id += 1
                    await send_body(encode_frame(event_id, event.to_dict()))
            except OSError:
                # The client went away between our check and the write.
                self.disconnected = True
            finally:
                scope_to_cancel.cancel()

        async def keep_alive() -> None:
            while True:
                idle = time.monotonic() - last_sent
                if idle >= self.ping_interval:
                    try:
                        await send_body(PING_FRAME)
                    except OSError:
                        self.disconnected = True
                        return
                    continue
                await anyio.sleep(self.ping_interval - idle)

        async def listen_for_disconnect(scope_to_cancel: anyio.CancelScope) -> None:
            while True:
                message: Message = await receive()
                if message["type"] == "http.disconnect":
                    self.disconnected = True
                    scope_to_cancel.cancel()
                    return

        async def stop_when_draining(drain: Draining, stop: Stoppable) -> None:
            await drain.stop_requested()
            stop.request(SERVER_RESTARTING)  # the pipeline ends the stream itself

        if self.drain is not None:
            self.drain.stream_started()
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(stream_events, tg.cancel_scope)
                tg.start_soon(keep_alive)
                tg.start_soon(listen_for_disconnect, tg.cancel_scope)
                if self.drain is not None and self.stop is not None:
                    tg.start_soon(stop_when_draining, self.drain, self.stop)
        finally:
            # Runs the pipeline's own cleanup if it was cancelled before it started.
            aclose = getattr(self.events, "aclose", None)
            if aclose is not None:
                with anyio.CancelScope(shield=True):
                    await aclose()
            if self.drain is not None:
                self.drain.stream_ended()

        if not self.disconnected:
            try:
                await send({"type": "http.response.body", "body": b"", "more_body": False})
            except OSError:
                logger.debug("client gone before the end of the stream")
