"""A scripted OpenAI-compatible server on loopback, for driving the real ``openai`` SDK.

``POST /v1/chat/completions`` answers as OpenAI does: streamed ``chat.completion.chunk``
objects over SSE (a role delta, content deltas, a chunk with ``finish_reason``, a usage chunk
when ``stream_options.include_usage`` is set, then ``data: [DONE]``) or one JSON
``chat.completion``. ``GET /v1/models`` lists one model. ``POST /v1/embeddings`` answers with
deterministic unit vectors of floats (hashed words: texts that share words are close). What
the next chat answers look like is set by ``Script`` objects; what the clients did is
recorded: every request body, and for every streamed answer the time each token went out and
the time the connection was closed (by the client, by the server aborting it, or by the
answer ending).

The server runs uvicorn in a thread with its own event loop, so it serves the same whether the
test drives it from an async test, a sync test (Starlette's ``TestClient`` runs the app in yet
another thread) or code that blocks its loop by mistake; and its timestamps are taken on a loop
no client can delay.

Usage::

    async with ScriptedOpenAI() as server:
        server.script(Script(tokens=["Hel", "lo"]))
        client = AsyncOpenAI(base_url=server.base_url, api_key="test")
        ...
        record = await server.wait_closed(timeout=1.0)
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import math
import re
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any, Literal

import anyio
import uvicorn

from sitechat.llm.openai_model import DEFAULT_MAX_CONNECTIONS, OpenAIChatModel
from sitechat.tokens import count_tokens
from tests.support.threaded_server import ThreadedServer

ASGIMessage = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[ASGIMessage]]
Send = Callable[[ASGIMessage], Awaitable[None]]

CloseReason = Literal["complete", "client", "abort"]


@dataclass(frozen=True, slots=True)
class Script:
    """How the server answers one request to ``/v1/chat/completions``.

    ``fail_after``, ``stall_after``, ``token_gap``, ``usage`` and ``omit_finish_reason`` shape
    streamed answers only; a non-streamed answer is the joined tokens after
    ``first_token_delay``.
    """

    tokens: list[str] = field(default_factory=lambda: ["Hello", ",", " world", "."])
    first_token_delay: float = 0.0
    token_gap: float = 0.0
    # Close the TCP connection (no chunked terminator, no [DONE]) after this many tokens.
    fail_after: int | None = None
    # Answer with this HTTP status and an OpenAI-style error body instead of a completion.
    status_error: int | None = None
    # After this many tokens send nothing more, but keep the connection open until the client
    # goes away or the test calls ``server.resume()``.
    stall_after: int | None = None
    # Answer 400 to a request that carries ``stream_options``, as some compatible servers do.
    # Such a rejection does not use the script up: the retry gets the same script.
    reject_stream_options: bool = False
    # Send the usage chunk when the client asks for it (``stream_options.include_usage``).
    usage: bool = True
    # End the stream with [DONE] but without any chunk carrying a ``finish_reason``.
    omit_finish_reason: bool = False
    finish_reason: str = "stop"
    # Stop after the request's ``max_tokens`` tokens with finish_reason "length", as OpenAI
    # does (each scripted token counts as one). Off by default: most scripts are the answer.
    stop_at_max_tokens: bool = False
    # How the stream's events are written, within what SSE allows: the line end (LF, CRLF
    # or CR); comment and ``id:`` lines around each event, and each JSON split over two
    # ``data:`` lines; and the body written in pieces of this many bytes (so lines, CRLFs
    # and multi-byte characters arrive split across reads).
    line_end: str = "\n"
    verbose_events: bool = False
    write_size: int | None = None

    def answer(self, body: dict[str, Any]) -> tuple[list[str], str]:
        """The tokens this script sends for a request, and its finish_reason."""
        limit = body.get("max_completion_tokens") or body.get("max_tokens")
        if self.stop_at_max_tokens and isinstance(limit, int) and limit < len(self.tokens):
            return self.tokens[:limit], "length"
        return list(self.tokens), self.finish_reason


@dataclass(slots=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    received_at: float  # time.monotonic()


@dataclass(slots=True)
class StreamRecord:
    """One streamed answer, as the server saw it."""

    request: RecordedRequest
    script: Script
    started_at: float
    token_sent_at: list[float] = field(default_factory=list)
    closed_at: float | None = None
    closed_by: CloseReason | None = None
    _closed: threading.Event = field(default_factory=threading.Event, repr=False)

    @property
    def tokens_sent(self) -> int:
        return len(self.token_sent_at)

    def mark_closed(self, reason: CloseReason) -> None:
        if self.closed_at is None:
            self.closed_at = time.monotonic()
            self.closed_by = reason
            self._closed.set()


class _AbortConnection(Exception):
    """Raised inside the app to make uvicorn drop the connection mid-response."""


class _DropAbortLogs(logging.Filter):
    # uvicorn logs every exception escaping an app; a scripted abort is not an error.
    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, _AbortConnection)


_abort_filter = _DropAbortLogs()


class ScriptedOpenAI(ThreadedServer):
    def __init__(self, *, model: str = "scripted-model", embedding_dimensions: int = 1536) -> None:
        self.model = model
        # The size of an embedding when the request does not ask for one (``dimensions``).
        self.embedding_dimensions = embedding_dimensions
        self.requests: list[RecordedRequest] = []
        self.streams: list[StreamRecord] = []
        self._default = Script()
        self._queue: deque[Script] = deque()
        self._lock = threading.Lock()
        self._resume = threading.Event()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    # --- control from the test -----------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def chat_model(
        self,
        *,
        model: str = "gpt-test",
        timeout: float = 5.0,
        context_window: int = 16_000,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
    ) -> OpenAIChatModel:
        """sitechat's OpenAI model, talking to this server; the caller closes it."""
        return OpenAIChatModel(
            api_key="sk-test",
            base_url=self.base_url,
            model=model,
            timeout=timeout,
            context_window=context_window,
            max_connections=max_connections,
        )

    def script(self, script: Script) -> None:
        """Answer every request with ``script`` from now on (queued scripts go first)."""
        with self._lock:
            self._default = script
            self._queue.clear()

    def enqueue(self, *scripts: Script) -> None:
        """Answer the next requests with these scripts, one each, then the default again."""
        with self._lock:
            self._queue.extend(scripts)

    def resume(self) -> None:
        """Let every stalled stream go on sending its remaining tokens."""
        self._resume.set()

    @property
    def last_stream(self) -> StreamRecord:
        if not self.streams:
            raise AssertionError("the server has not streamed anything")
        return self.streams[-1]

    async def wait_closed(self, timeout: float = 5.0) -> StreamRecord:  # noqa: ASYNC109
        """Wait until the last streamed answer's connection is closed, and return its record.

        Raises ``TimeoutError`` if it is still open after ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        while not self.streams:
            if time.monotonic() >= deadline:
                raise TimeoutError("no stream was started")
            await anyio.sleep(0.005)
        record = self.streams[-1]
        while not record._closed.is_set():
            if time.monotonic() >= deadline:
                raise TimeoutError(f"stream still open after {timeout} s")
            await anyio.sleep(0.005)
        return record

    # --- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        count_tokens("warm up")  # tiktoken loads its encoding on first use; not mid-stream
        # proto=IPPROTO_TCP matters: asyncio sets TCP_NODELAY only on sockets that say they
        # are TCP, and without it Nagle holds each small SSE frame for the client's delayed
        # ACK (~40 ms), which would make the fake server slower than any real one.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self._app,
            log_config=None,
            access_log=False,
            lifespan="off",
            interface="asgi3",
            timeout_graceful_shutdown=1,
        )
        logging.getLogger("uvicorn.error").addFilter(_abort_filter)
        server = uvicorn.Server(config)
        self._server = server
        started = threading.Event()

        def run() -> None:
            async def main() -> None:
                serve = asyncio.create_task(server.serve(sockets=[sock]))
                while not server.started and not serve.done():  # noqa: ASYNC110
                    await asyncio.sleep(0.002)  # uvicorn offers no "started" event
                started.set()
                await serve

            asyncio.run(main())

        self._thread = threading.Thread(target=run, name="scripted-openai", daemon=True)
        self._thread.start()
        if not started.wait(10) or not server.started:
            raise RuntimeError("the scripted OpenAI server did not start")

    def stop(self) -> None:
        self._resume.set()  # stalled streams would otherwise hold the shutdown
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(10)
        self._server = None
        self._thread = None

    # --- the ASGI app --------------------------------------------------------------------

    def _next_script(self, body: dict[str, Any]) -> Script:
        with self._lock:
            head = self._queue[0] if self._queue else self._default
            if head.reject_stream_options and "stream_options" in body:
                return head
            return self._queue.popleft() if self._queue else self._default

    async def _app(self, scope: ASGIMessage, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        raw = b""
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            raw += message.get("body", b"")
            if not message.get("more_body", False):
                break
        try:
            body = json.loads(raw) if raw else {}
        except json.JSONDecodeError:
            body = {}
        request = RecordedRequest(
            method=scope["method"],
            path=scope["path"],
            headers={k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]},
            body=body if isinstance(body, dict) else {},
            received_at=time.monotonic(),
        )
        self.requests.append(request)

        if scope["method"] == "GET" and scope["path"] == "/v1/models":
            models = {
                "object": "list",
                "data": [{"id": self.model, "object": "model", "created": 0, "owned_by": "test"}],
            }
            await _send_json(send, 200, models)
            return
        if scope["method"] == "POST" and scope["path"] == "/v1/embeddings":
            await _send_json(send, 200, self._embeddings(request.body))
            return
        if scope["method"] != "POST" or scope["path"] != "/v1/chat/completions":
            await _send_error(send, 404, "Unknown path.", "invalid_request_error")
            return

        script = self._next_script(request.body)
        if script.reject_stream_options and "stream_options" in request.body:
            await _send_error(
                send,
                400,
                "Unrecognized request argument supplied: stream_options",
                "invalid_request_error",
                param="stream_options",
            )
            return
        if script.status_error is not None:
            kind = "rate_limit_error" if script.status_error == 429 else "server_error"
            await _send_error(send, script.status_error, "Scripted failure.", kind)
            return
        if request.body.get("stream"):
            await self._stream(request, script, receive, send)
        else:
            await self._complete(request, script, send)

    def _embeddings(self, body: dict[str, Any]) -> dict[str, Any]:
        raw = body.get("input")
        texts = [raw] if isinstance(raw, str) else list(raw) if isinstance(raw, list) else []
        requested = body.get("dimensions")
        size = requested if isinstance(requested, int) else self.embedding_dimensions
        data = [
            {"object": "embedding", "index": i, "embedding": hashed_embedding(str(t), size)}
            for i, t in enumerate(texts)
        ]
        tokens = sum(count_tokens(str(text)) for text in texts)
        return {
            "object": "list",
            "data": data,
            "model": str(body.get("model") or "scripted-embedding"),
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }

    async def _complete(self, request: RecordedRequest, script: Script, send: Send) -> None:
        if script.first_token_delay:
            await asyncio.sleep(script.first_token_delay)
        tokens, finish_reason = script.answer(request.body)
        text = "".join(tokens)
        model = str(request.body.get("model") or self.model)
        body = {
            "id": f"chatcmpl-{uuid.uuid4().hex[:12]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text, "refusal": None},
                    "logprobs": None,
                    "finish_reason": finish_reason,
                }
            ],
            "usage": _usage(request.body, len(tokens)),
        }
        await _send_json(send, 200, body)

    async def _stream(
        self, request: RecordedRequest, script: Script, receive: Receive, send: Send
    ) -> None:
        record = StreamRecord(request=request, script=script, started_at=time.monotonic())
        self.streams.append(record)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"text/event-stream; charset=utf-8"),
                    (b"cache-control", b"no-cache"),
                ],
            }
        )
        # Starlette's way: race the body against the client going away; whichever ends first
        # cancels the other, and the record says which it was.
        body_task = asyncio.create_task(self._stream_body(request, script, record, send))
        watch_task = asyncio.create_task(_wait_disconnect(receive))
        done, _pending = await asyncio.wait(
            {body_task, watch_task}, return_when=asyncio.FIRST_COMPLETED
        )
        if watch_task in done and not body_task.done():
            record.mark_closed("client")
            body_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await body_task
            return
        watch_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watch_task
        exc = body_task.exception()
        if isinstance(exc, _AbortConnection):
            record.mark_closed("abort")
            raise exc
        if exc is not None:
            raise exc
        record.mark_closed("complete")

    async def _stream_body(
        self, request: RecordedRequest, script: Script, record: StreamRecord, send: Send
    ) -> None:
        chunk_id = f"chatcmpl-{uuid.uuid4().hex[:12]}"
        created = int(time.time())
        model = str(request.body.get("model") or self.model)
        options = request.body.get("stream_options") or {}
        include_usage = bool(options.get("include_usage")) if isinstance(options, dict) else False
        tokens, finish_reason = script.answer(request.body)

        def chunk(delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
            body: dict[str, Any] = {
                "id": chunk_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "system_fingerprint": "fp_scripted",
                "choices": [
                    {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
                ],
            }
            if include_usage:
                body["usage"] = None
            return body

        events = 0

        async def event(data: dict[str, Any] | str) -> None:
            nonlocal events
            events += 1
            payload = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
            end = script.line_end
            if script.verbose_events:
                first, comma, last = payload.partition(",")
                data_lines = f"data: {first}{comma}{end}data:{last}" if comma else f"data:{payload}"
                text = f": keep-alive{end}id: {events}{end}{data_lines}{end}{end}"
            else:
                text = f"data: {payload}{end}{end}"
            frame = text.encode()
            size = script.write_size or len(frame)
            for start in range(0, len(frame), size):
                if start:
                    await asyncio.sleep(0.001)  # a read of its own for each piece
                piece = frame[start : start + size]
                await send({"type": "http.response.body", "body": piece, "more_body": True})

        await event(chunk({"role": "assistant", "content": "", "refusal": None}, None))
        if script.first_token_delay:
            await asyncio.sleep(script.first_token_delay)
        for index, token in enumerate(tokens):
            if script.fail_after is not None and index >= script.fail_after:
                raise _AbortConnection
            if script.stall_after is not None and index == script.stall_after:
                # A threading.Event, set from the test's thread; poll it.
                while not self._resume.is_set():  # noqa: ASYNC110
                    await asyncio.sleep(0.005)
            if index and script.token_gap:
                await asyncio.sleep(script.token_gap)
            # Recorded before the write: once it is written, the client may already have it.
            record.token_sent_at.append(time.monotonic())
            await event(chunk({"content": token}, None))
        if script.fail_after is not None and script.fail_after >= len(tokens):
            raise _AbortConnection
        if not script.omit_finish_reason:
            await event(chunk({}, finish_reason))
        if include_usage and script.usage:
            await event(
                {
                    "id": chunk_id,
                    "object": "chat.completion.chunk",
                    "created": created,
                    "model": model,
                    "system_fingerprint": "fp_scripted",
                    "choices": [],
                    "usage": _usage(request.body, len(tokens)),
                }
            )
        await event("[DONE]")
        await send({"type": "http.response.body", "body": b"", "more_body": False})


def hashed_embedding(text: str, size: int) -> list[float]:
    """A deterministic unit vector for ``text``: its lowercased words hashed into ``size``
    buckets, so texts that share words point the same way."""
    vector = [0.0] * size
    for word in re.findall(r"\w+", text.lower()) or [text]:
        digest = hashlib.sha256(word.encode()).digest()
        vector[int.from_bytes(digest[:8], "big") % size] += 1.0
    norm = math.sqrt(sum(x * x for x in vector))
    return [x / norm for x in vector]


async def _wait_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


def _usage(body: dict[str, Any], completion_tokens: int) -> dict[str, Any]:
    """Deterministic counts a test can predict: tiktoken over the message contents."""
    messages = body.get("messages") or []
    prompt = sum(count_tokens(str(m.get("content") or "")) for m in messages if isinstance(m, dict))
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
    }


async def _send_json(send: Send, status: int, body: dict[str, Any]) -> None:
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload, "more_body": False})


async def _send_error(
    send: Send, status: int, message: str, kind: str, *, param: str | None = None
) -> None:
    await _send_json(
        send,
        status,
        {"error": {"message": message, "type": kind, "param": param, "code": None}},
    )
