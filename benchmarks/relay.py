"""The thinnest relay worth comparing sitechat with: ``AsyncOpenAI`` in, Starlette's
``StreamingResponse`` out, nothing stored, nothing searched.

``POST /chat/stream`` with ``{"message": ...}`` asks the upstream model and streams its
deltas as SSE frames shaped like sitechat's (``id: n`` + ``data: {"type": "token", ...}``,
then a ``complete`` frame), so a client reads both the same way. It is what the ``load``
benchmark measures sitechat against; run it as its own process::

    RELAY_UPSTREAM_URL=http://127.0.0.1:9000/v1 python -m uvicorn --factory \
        benchmarks.relay:create_app --loop uvloop --http httptools --port 8001
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from openai import AsyncOpenAI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from sitechat.llm.openai_model import DEFAULT_MAX_CONNECTIONS, pooled_http_client

UPSTREAM_ENV = "RELAY_UPSTREAM_URL"


def _frame(seq: int, data: dict[str, object]) -> bytes:
    payload = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return f"id: {seq}\ndata: {payload}\n\n".encode()


def create_app() -> Starlette:
    base_url = os.environ[UPSTREAM_ENV]

    async def chat_stream(request: Request) -> Response:
        client: AsyncOpenAI = request.app.state.client
        body = await request.json()
        stream = await client.chat.completions.create(
            model="relay-model",
            messages=[{"role": "user", "content": str(body.get("message", ""))}],
            stream=True,
        )

        async def frames() -> AsyncIterator[bytes]:
            seq = 0
            try:
                async for chunk in stream:
                    if chunk.choices and chunk.choices[0].delta.content:
                        seq += 1
                        content = chunk.choices[0].delta.content
                        yield _frame(seq, {"type": "token", "content": content})
                yield _frame(seq + 1, {"type": "complete"})
            finally:
                await stream.close()

        return StreamingResponse(
            frames(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
        )

    async def healthz(request: Request) -> Response:
        return PlainTextResponse("ok")

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # sitechat's connection pool (the SDK's own stops at 1,000 answers in flight).
        app.state.client = AsyncOpenAI(
            base_url=base_url,
            api_key="relay",
            max_retries=0,
            http_client=pooled_http_client(DEFAULT_MAX_CONNECTIONS),
        )
        try:
            yield
        finally:
            await app.state.client.close()

    return Starlette(
        routes=[
            Route("/chat/stream", chat_stream, methods=["POST"]),
            Route("/healthz", healthz),
        ],
        lifespan=lifespan,
    )
