"""The real nginx (Debian's package) with ``nginx/sitechat.conf.template`` in front of the real
app on loopback ports: the stream is not buffered, the widget is cached and compressed, and
the app learns the visitor's address."""

from __future__ import annotations

import gzip
import itertools
import json
import statistics
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request

from sitechat.api.web.assets import CACHE_VERSIONED
from tests.nginx.harness import RunningNginx, run_nginx
from tests.support.app_server import serve_app
from tests.support.scripted_openai import Script, ScriptedOpenAI
from tests.support.sse_client import Frame, iter_frames
from tests.widget.stack import CHATBOT_ID, Stack

pytestmark = [pytest.mark.nginx, pytest.mark.asyncio(loop_scope="module")]

ROOT = Path(__file__).resolve().parents[2]
WIDGET = ROOT / "backend" / "sitechat" / "api" / "web" / "static" / "sitechat.js"
ARTIFACTS = ROOT / "test-artifacts"
BODY = {"message": "When do orders ship?", "chatbot_id": CHATBOT_ID}


async def stream_frames(base_url: str, **headers: str) -> tuple[httpx.Headers, list[Frame]]:
    frames: list[Frame] = []
    async with (
        httpx.AsyncClient(base_url=base_url, timeout=30) as client,
        client.stream("POST", "/api/public/chat/stream", json=BODY, headers=headers) as response,
    ):
        assert response.status_code == 200
        async for frame in iter_frames(response):
            frames.append(frame)
        return response.headers, frames


async def test_tokens_200ms_apart_arrive_through_nginx_as_they_are_generated(
    nginx: RunningNginx, model: ScriptedOpenAI
) -> None:
    tokens = [f"word{i} " for i in range(8)]
    model.script(Script(tokens=tokens, token_gap=0.2))
    # The client offers gzip: the stream must still not be compressed (that would buffer it).
    headers, frames = await stream_frames(nginx.base_url, **{"Accept-Encoding": "gzip"})
    assert headers["content-type"].startswith("text/event-stream")
    assert "content-encoding" not in headers

    token_frames = [f for f in frames if f.type == "token"]
    assert [f.data["content"] for f in token_frames if f.data] == tokens
    assert frames[-1].type == "complete"
    sent = model.last_stream.token_sent_at
    generation_spread = sent[-1] - sent[0]  # about 1.4 s
    # The first token reached the client long before the model produced the last one...
    assert token_frames[0].arrived < sent[-1] - 0.5 * generation_spread
    # ...and the 200 ms gaps survived the proxy instead of arriving in one burst.
    arrival_spread = token_frames[-1].arrived - token_frames[0].arrived
    assert arrival_spread >= 0.5 * generation_spread
    gaps = [b.arrived - a.arrived for a, b in itertools.pairwise(token_frames)]
    assert statistics.median(gaps) >= 0.1


async def test_the_widget_is_served_by_nginx_gzipped_with_etag_and_cache_policy(
    nginx: RunningNginx,
) -> None:
    async with httpx.AsyncClient(base_url=nginx.base_url) as client:
        raw = await client.get("/widget/sitechat.js", headers={"Accept-Encoding": "gzip"})
        assert raw.status_code == 200
        assert raw.headers["content-encoding"] == "gzip"
        assert raw.headers["content-type"] == "text/javascript; charset=utf-8"
        assert (
            raw.headers["cache-control"] == "public, max-age=86400, stale-while-revalidate=604800"
        )
        assert raw.headers["vary"] == "Accept-Encoding"
        assert raw.headers["x-content-type-options"] == "nosniff"
        assert raw.content == WIDGET.read_bytes()  # httpx decoded the gzip
        etag = raw.headers["etag"]

        again = await client.get("/widget/sitechat.js", headers={"If-None-Match": etag})
        assert again.status_code == 304

        versioned = await client.get("/widget/sitechat.js?v=abc")
        assert versioned.headers["cache-control"] == CACHE_VERSIONED

        for private in ("/widget/tests/sse.test.js", "/widget/", "/widget/missing.js"):
            assert (await client.get(private)).status_code == 404, private


async def test_gzip_on_the_wire_is_smaller_than_the_file(nginx: RunningNginx) -> None:
    # Read the raw bytes nginx sent, without httpx's transparent decoding.
    async with (
        httpx.AsyncClient(base_url=nginx.base_url) as client,
        client.stream(
            "GET", "/widget/sitechat.js", headers={"Accept-Encoding": "gzip"}
        ) as response,
    ):
        wire = b"".join([chunk async for chunk in response.aiter_raw()])
    assert len(wire) < WIDGET.stat().st_size / 2
    assert gzip.decompress(wire) == WIDGET.read_bytes()


async def test_api_demo_page_and_health_are_proxied(nginx: RunningNginx) -> None:
    async with httpx.AsyncClient(base_url=nginx.base_url) as client:
        config = await client.get(f"/api/public/chatbots/{CHATBOT_ID}/config")
        assert config.status_code == 200
        assert config.json()["id"] == CHATBOT_ID
        page = await client.get("/")
        assert page.status_code == 200
        assert f'data-chatbot-id="{CHATBOT_ID}"' in page.text
        assert (await client.get("/healthz")).status_code == 200
        missing = await client.get("/api/public/chatbots/nope/config")
        assert missing.status_code == 404
        assert missing.json()["code"] == "chatbot_not_found"


async def test_the_app_receives_the_client_address_and_nginx_request_id(tmp_path: Path) -> None:
    echo = FastAPI()
    seen: list[dict[str, Any]] = []

    @echo.post("/api/public/chat/stream")
    @echo.get("/api/{rest:path}")
    async def record(request: Request) -> dict[str, str]:
        seen.append({"headers": dict(request.headers), "version": request.scope["http_version"]})
        return {"ok": "yes"}

    async with (
        serve_app(echo) as upstream,
        run_nginx(tmp_path, upstream_ports=[upstream.port]) as proxy,
        httpx.AsyncClient(base_url=proxy.base_url) as client,
    ):
        spoofed = {"X-Forwarded-For": "203.0.113.9", "X-Request-ID": "client-chosen-id"}
        await client.get("/api/public/anything", headers=spoofed)
        await client.post("/api/public/chat/stream", json={}, headers=spoofed)
    assert len(seen) == 2
    for request in seen:
        headers = request["headers"]
        assert headers["x-real-ip"] == "127.0.0.1"
        # The client's claim is kept but the address nginx saw is appended last.
        assert headers["x-forwarded-for"] == "203.0.113.9, 127.0.0.1"
        assert headers["x-forwarded-proto"] == "http"
        assert len(headers["x-request-id"]) == 32 and headers["x-request-id"] != "client-chosen-id"
        assert headers["host"] == "127.0.0.1"  # $host: the name without nginx's port
        # HTTP/1.1 to the upstream with the Connection header cleared (keepalive).
        assert request["version"] == "1.1"
        assert "connection" not in headers or headers["connection"].lower() != "close"


async def first_token_seconds(client: httpx.AsyncClient) -> float:
    """Seconds from sending the request to the first token frame (the stream is read to its
    end, so every request is complete before the next one starts)."""
    started = time.monotonic()
    first: float | None = None
    async with client.stream("POST", "/api/public/chat/stream", json=BODY) as response:
        assert response.status_code == 200
        async for frame in iter_frames(response):
            if frame.type == "token" and first is None:
                first = frame.arrived - started
    assert first is not None, "no token frame"
    return first


async def test_first_token_time_through_nginx_against_direct(
    nginx: RunningNginx, stack: Stack, model: ScriptedOpenAI
) -> None:
    """Measures (does not bound) what nginx adds to time-to-first-token: the scripted model
    answers at once, so the numbers are sitechat's own path plus the proxy. Requests to the
    two paths alternate so drift on a busy machine hits both alike. Printed and written to
    test-artifacts/first-token-nginx.json."""
    model.script(Script(tokens=["Orders ", "ship ", "fast."]))
    rounds = 12
    times: dict[str, list[float]] = {"direct": [], "nginx": []}
    async with (
        httpx.AsyncClient(base_url=stack.api.base_url, timeout=30) as direct,
        httpx.AsyncClient(base_url=nginx.base_url, timeout=30) as proxied,
    ):
        await first_token_seconds(direct)  # warm both paths (connections, caches)
        await first_token_seconds(proxied)
        for _ in range(rounds):
            times["direct"].append(await first_token_seconds(direct))
            times["nginx"].append(await first_token_seconds(proxied))
    summary = {
        path: {
            "requests": len(values),
            "median_ms": round(statistics.median(values) * 1000, 1),
            "worst_ms": round(max(values) * 1000, 1),
        }
        for path, values in times.items()
    }
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "first-token-nginx.json").write_text(json.dumps(summary, indent=2) + "\n")
    print("\nfirst token (scripted model, no model time):", json.dumps(summary))
    assert all(len(v) == rounds for v in times.values())
