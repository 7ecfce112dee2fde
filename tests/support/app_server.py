"""Run a sitechat app under a real uvicorn server on a loopback port, inside the test's loop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import uvicorn
from fastapi import FastAPI


@dataclass(frozen=True)
class RunningServer:
    app: FastAPI
    host: str
    port: int

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"


@asynccontextmanager
async def serve_app(app: FastAPI, *, host: str = "127.0.0.1") -> AsyncIterator[RunningServer]:
    config = uvicorn.Config(app, host=host, port=0, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        for _ in range(600):
            if server.started or task.done():
                break
            await asyncio.sleep(0.02)
        if task.done():
            task.result()  # raises the startup error
            raise RuntimeError("uvicorn stopped during startup")
        if not server.started:
            raise RuntimeError("uvicorn did not start in time")
        port = server.servers[0].sockets[0].getsockname()[1]
        yield RunningServer(app, host, port)
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, timeout=15)
