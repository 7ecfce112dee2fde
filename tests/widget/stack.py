"""The running pieces the browser and nginx tests need: the real app under uvicorn with the
scripted OpenAI-compatible model behind it and a seeded chatbot, plus small loopback servers
for host pages (on another origin than the API) and for catching requests that must not
happen."""

from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, Response

from sitechat.api.app import create_app
from sitechat.config import Settings
from sitechat.services import Services
from tests.conftest import seed_chatbot
from tests.support.app_server import RunningServer, serve_app
from tests.support.scripted_openai import ScriptedOpenAI

ROOT = Path(__file__).resolve().parents[2]
CHATBOT_ID = "demo"
THEME = {"primary_color": "#0b7285", "position": "bottom-right", "avatar_url": None}
GREETING = "Hello! Ask me about shipping, returns or opening hours."
STARTERS = ("When do orders ship?", "How do returns work?")


def settings_for(data_dir: Path, model: ScriptedOpenAI, **overrides: Any) -> Settings:
    """The test settings; ``overrides`` replace any of them (the resume tests ping faster)."""
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        environment="test",
        data_dir=data_dir,
        default_provider="openai",
        openai_api_key="test-key",
        openai_base_url=model.base_url,
        openai_model="scripted-model",
        # Every request of these tests comes from 127.0.0.1, and the nginx latency test alone
        # sends more than the default 20 a minute: the limits are tested in tests/gate.
        rate_limit_per_ip="1000/minute",
        rate_limit_config_per_ip="1000/minute",
        # The scripted model's answers are queued per test: no follow-up rewrites may take
        # one (query enhancement is tested in tests/retrieval).
        query_rewrite_providers=[],
        **overrides,
    )


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Stack:
    app: FastAPI
    api: RunningServer
    services: Services
    model: ScriptedOpenAI

    @property
    def widget_src(self) -> str:
        return f"{self.api.base_url}/widget/sitechat.js"


@asynccontextmanager
async def sitechat_stack(
    data_dir: Path,
    model: ScriptedOpenAI,
    *,
    allowed_origins: tuple[str, ...] = (),
    **overrides: Any,
) -> AsyncIterator[Stack]:
    """The app on a loopback port with the chatbot ``demo`` seeded from the shop documents."""
    settings = settings_for(data_dir, model, **overrides)
    app = create_app(settings)
    async with serve_app(app) as api:
        services: Services = app.state.services
        await seed_chatbot(
            services,
            chatbot_id=CHATBOT_ID,
            greeting=GREETING,
            starter_questions=STARTERS,
            theme=THEME,
            allowed_origins=(*allowed_origins, api.base_url),
        )
        # The demo page asks how to embed the widget: the widget's own guide answers that.
        guide = ROOT / "docs" / "widget.md"
        await services.ingestor.ingest_bytes(CHATBOT_ID, guide.read_bytes(), filename=guide.name)
        yield Stack(app, api, services, model)


@dataclass
class HostSite:
    """A website on its own origin whose pages the test writes."""

    server: RunningServer
    pages: dict[str, str] = field(default_factory=dict)

    @property
    def origin(self) -> str:
        return self.server.base_url

    def url(self, name: str) -> str:
        return f"{self.origin}/{name}"


@asynccontextmanager
async def host_site() -> AsyncIterator[HostSite]:
    app = FastAPI()
    site: dict[str, HostSite] = {}

    @app.get("/{name}")
    async def page(name: str) -> Response:
        html = site["it"].pages.get(name)
        if html is None:
            return Response(status_code=404)
        return HTMLResponse(html, headers={"Cache-Control": "no-store"})

    async with serve_app(app) as server:
        site["it"] = HostSite(server)
        yield site["it"]


@dataclass
class Trap:
    """Counts every request that reaches it: hostile markup points here."""

    server: RunningServer
    hits: list[str] = field(default_factory=list)

    @property
    def origin(self) -> str:
        return self.server.base_url


@asynccontextmanager
async def trap_server() -> AsyncIterator[Trap]:
    app = FastAPI()
    hits: list[str] = []

    @app.api_route("/{path:path}", methods=["GET", "POST", "HEAD", "OPTIONS"])
    async def catch(request: Request, path: str) -> Response:
        hits.append(f"{request.method} /{path}")
        return Response("trapped", media_type="text/plain")

    async with serve_app(app) as server:
        yield Trap(server, hits)


def embed_page(
    stack: Stack, *, head: str = "", body: str = "", before: str = "", attrs: str = ""
) -> str:
    """A host page with the one-line embed; ``before`` runs before the widget script."""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Host page</title>{head}</head>
<body>{body}
<script>{before}</script>
<script src="{stack.widget_src}" data-chatbot-id="{CHATBOT_ID}" {attrs} async></script>
</body></html>"""


def documented_queue_stub() -> str:
    """The stub snippet exactly as docs/widget.md gives it to owners."""
    doc = (ROOT / "docs" / "widget.md").read_text("utf-8")
    match = re.search(r"<!-- queue-stub -->\s*```html\s*<script>(.*?)</script>\s*```", doc, re.S)
    assert match, "docs/widget.md lost its queue-stub snippet"
    return match.group(1)


class FlakyNetwork:
    """A TCP proxy between the browser and the API whose connections a test can break, as a
    visitor's network does. Chromium's offline emulation (Playwright's ``set_offline``) fails
    new requests at once but leaves an answer stream that is already open flowing, so the
    drop itself happens here:

    - ``drop("reset")``: every open connection is reset (the stream fails at once);
    - ``drop("silence")``: open connections stay open but nothing more passes either way (a
      train in a tunnel: only the widget's idle timeout notices);
    - until ``restore()``, new connections are reset as soon as they open.
    """

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.down = False
        self.server: asyncio.Server | None = None
        self._links: set[_Link] = set()

    @property
    def base_url(self) -> str:
        assert self.server is not None
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def drop(self, how: str) -> None:
        assert how in ("reset", "silence")
        self.down = True
        for link in list(self._links):
            link.dead = True
            if how == "reset":
                link.abort()

    def restore(self) -> None:
        self.down = False
        for link in list(self._links):
            if link.dead:
                link.abort()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.down:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.transport.abort()
            return
        link = _Link(writer, up_writer)
        self._links.add(link)
        try:
            await asyncio.gather(link.pipe(reader, up_writer), link.pipe(up_reader, writer))
        finally:
            self._links.discard(link)
            link.abort()


@dataclass(eq=False)
class _Link:
    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter
    dead: bool = False

    async def pipe(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        try:
            while data := await src.read(65536):
                if not self.dead:  # a dead link swallows everything
                    dst.write(data)
                    await dst.drain()
        except OSError:
            pass
        finally:
            if not self.dead:
                self.abort()

    def abort(self) -> None:
        self.client.transport.abort()
        self.upstream.transport.abort()


@asynccontextmanager
async def flaky_network(target: RunningServer) -> AsyncIterator[FlakyNetwork]:
    network = FlakyNetwork(target.port)
    network.server = await asyncio.start_server(network._serve, "127.0.0.1", 0)
    try:
        yield network
    finally:
        network.restore()
        for link in list(network._links):
            link.abort()
        network.server.close()
        await network.server.wait_closed()
