"""A lean load client: many SSE streams at once over plain asyncio sockets, each timed.

An ``httpx`` client reading hundreds of streams at once spends more CPU than the servers it
measures, on the same two cores. This one writes the request by hand (HTTP/1.1,
``Connection: close``), reads the status line, and then only counts frame markers in the raw
bytes as they arrive (``"type":"token"`` and friends), noting the time of every read that
brought tokens. The body is chunked; a chunk-size line can never hold a marker, and a marker
split across two reads is found because the tail of the previous read is searched again.
The payloads never need decoding: their ``content`` is JSON-escaped, so a visitor's text
cannot forge a marker.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

_TOKEN = b'"type":"token"'
_START = b'"type":"start"'
_COMPLETE = b'"type":"complete"'
_ERROR = b'"type":"error"'
_MARKERS = (_TOKEN, _START, _COMPLETE, _ERROR)
_TAIL = max(len(m) for m in _MARKERS) - 1


@dataclass(slots=True)
class StreamResult:
    """One stream as the client saw it; times are ``time.monotonic()``."""

    started: float
    status: int | None = None
    opened_at: float | None = None  # the first frame of any kind (sitechat: ``start``)
    token_times: list[float] = field(default_factory=list)
    complete: bool = False
    error: str | None = None

    @property
    def ttft_ms(self) -> float | None:
        return (self.token_times[0] - self.started) * 1000 if self.token_times else None

    @property
    def gaps_ms(self) -> list[float]:
        return [(b - a) * 1000 for a, b in itertools.pairwise(self.token_times)]

    @property
    def ok(self) -> bool:
        return self.status == 200 and self.complete and self.error is None


class _Reader(asyncio.Protocol):
    def __init__(self, request: bytes, result: StreamResult) -> None:
        self.request = request
        self.result = result
        self.transport: asyncio.Transport | None = None
        self.opened = asyncio.Event()
        self.headed = asyncio.Event()  # the status line and headers came
        self.closed = asyncio.get_running_loop().create_future()
        self._head = b""
        self._tail = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        now = time.monotonic()
        result = self.result
        if result.status is None:
            self._head += data
            end = self._head.find(b"\r\n\r\n")
            if end < 0:
                return
            head, data = self._head[:end], self._head[end + 4 :]
            self._head = b""
            try:
                result.status = int(head.split(b" ", 2)[1])
            except (IndexError, ValueError):
                result.status = -1
            if result.status != 200:
                result.error = f"HTTP {result.status}: {data[:200]!r}"
            self.headed.set()
        text = self._tail + data
        self._tail = text[-_TAIL:]
        if result.opened_at is None and b"data:" in text:
            result.opened_at = now
            self.opened.set()
        tokens = text.count(_TOKEN)
        if tokens:
            result.token_times.extend([now] * tokens)
        if _COMPLETE in text:
            result.complete = True
        if _ERROR in text and result.error is None:
            start = text.find(_ERROR)
            result.error = text[max(0, start - 10) : start + 200].decode(errors="replace")

    def connection_lost(self, exc: Exception | None) -> None:
        if exc is not None and self.result.error is None and not self.result.complete:
            self.result.error = f"connection lost: {exc!r}"
        self.opened.set()  # nobody waits for a frame that cannot come
        self.headed.set()
        if not self.closed.done():
            self.closed.set_result(None)


@dataclass(frozen=True)
class Target:
    """Where streams are opened: ``POST http://host:port{path}``, JSON bodies."""

    host: str
    port: int
    path: str

    def request(self, body: Mapping[str, Any]) -> bytes:
        payload = json.dumps(body).encode()
        head = (
            f"POST {self.path} HTTP/1.1\r\n"
            f"Host: {self.host}:{self.port}\r\n"
            "Content-Type: application/json\r\n"
            "Accept: text/event-stream\r\n"
            f"Content-Length: {len(payload)}\r\n"
            "Connection: close\r\n\r\n"
        )
        return head.encode() + payload


class OpenStream:
    """A stream that was opened and is being read; ``close()`` drops the connection."""

    def __init__(self, reader: _Reader) -> None:
        self._reader = reader
        self.result = reader.result

    async def wait_opened(self, timeout: float) -> bool:  # noqa: ASYNC109
        """Wait for the first frame; False when none came in time (or the stream ended)."""
        try:
            await asyncio.wait_for(self._reader.opened.wait(), timeout)
        except TimeoutError:
            return False
        return self.result.opened_at is not None

    async def wait_headers(self, timeout: float) -> bool:  # noqa: ASYNC109
        """Wait for the response's headers (a relay sends no frame before its first token);
        False when none came in time, or not a 200."""
        try:
            await asyncio.wait_for(self._reader.headed.wait(), timeout)
        except TimeoutError:
            return False
        return self.result.status == 200 and self.result.error is None

    async def wait_closed(self, timeout: float) -> None:  # noqa: ASYNC109
        """Read to the end; past ``timeout`` the connection is dropped and the result says so."""
        try:
            await asyncio.wait_for(asyncio.shield(self._reader.closed), timeout)
        except TimeoutError:
            if self.result.error is None:
                self.result.error = f"not complete after {timeout:.0f} s"
            self.close()

    def close(self) -> None:
        if self._reader.transport is not None:
            self._reader.transport.abort()


async def open_stream(
    target: Target,
    body: Mapping[str, Any],
    *,
    connect_timeout: float = 30.0,
) -> OpenStream:
    loop = asyncio.get_running_loop()
    result = StreamResult(started=time.monotonic())
    reader = _Reader(target.request(body), result)
    try:
        await asyncio.wait_for(
            loop.create_connection(lambda: reader, target.host, target.port), connect_timeout
        )
    except (OSError, TimeoutError) as exc:
        result.error = f"connect failed: {exc!r}"
        reader.connection_lost(None)
    return OpenStream(reader)


async def read_stream(
    target: Target,
    body: Mapping[str, Any],
    *,
    timeout: float = 120.0,  # noqa: ASYNC109 (a deadline that aborts the connection)
) -> StreamResult:
    """Open one stream and read it to its end (at most ``timeout`` seconds in all)."""
    stream = await open_stream(target, body, connect_timeout=timeout)
    await stream.wait_closed(timeout)
    return stream.result
