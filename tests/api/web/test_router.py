"""``build_web_router``: the widget file with ETag, gzip and cache headers, and the demo page
that embeds the real widget under a Content-Security-Policy that allows its inline blocks."""

from __future__ import annotations

import base64
import hashlib
import os
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from sitechat.api.web import build_web_router
from sitechat.api.web.assets import CACHE_UNVERSIONED, CACHE_VERSIONED
from sitechat.api.web.router import default_widget_dir
from sitechat.config import Settings

WIDGET = default_widget_dir() / "sitechat.js"


def make_client(settings: Settings, widget_dir: Path | None = None) -> httpx.AsyncClient:
    app = FastAPI()
    app.include_router(build_web_router(settings, widget_dir=widget_dir))
    transport = httpx.ASGITransport(app=app)
    return httpx.AsyncClient(transport=transport, base_url="http://sitechat.test")


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(_env_file=None, data_dir=tmp_path, environment="test")  # type: ignore[call-arg]
    async with make_client(settings) as c:
        yield c


async def test_widget_is_served_as_javascript_with_etag_and_a_day_of_cache(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/widget/sitechat.js", headers={"accept-encoding": "identity"})
    assert response.status_code == 200
    assert response.content == WIDGET.read_bytes()
    assert response.headers["content-type"] == "text/javascript; charset=utf-8"
    assert response.headers["cache-control"] == CACHE_UNVERSIONED
    assert re.fullmatch(r'W/"[0-9a-f]{32}"', response.headers["etag"])
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "content-encoding" not in response.headers


async def test_widget_is_gzipped_when_the_browser_accepts_it(client: httpx.AsyncClient) -> None:
    response = await client.get("/widget/sitechat.js", headers={"accept-encoding": "gzip, br"})
    assert response.headers["content-encoding"] == "gzip"
    assert response.headers["vary"] == "Accept-Encoding"
    # httpx decodes transparently; the wire body was the smaller gzip one.
    assert response.content == WIDGET.read_bytes()
    assert int(response.headers["content-length"]) < len(WIDGET.read_bytes()) / 2


async def test_gzip_refused_with_q_zero_is_not_sent(client: httpx.AsyncClient) -> None:
    response = await client.get("/widget/sitechat.js", headers={"accept-encoding": "gzip;q=0"})
    assert "content-encoding" not in response.headers


async def test_a_matching_if_none_match_gets_304_without_a_body(client: httpx.AsyncClient) -> None:
    first = await client.get("/widget/sitechat.js")
    etag = first.headers["etag"]
    for header in (etag, etag.removeprefix("W/"), f'"other", {etag}', "*"):
        again = await client.get("/widget/sitechat.js", headers={"if-none-match": header})
        assert again.status_code == 304, header
        assert again.content == b""
        assert again.headers["etag"] == etag
    changed = await client.get("/widget/sitechat.js", headers={"if-none-match": '"stale"'})
    assert changed.status_code == 200


async def test_a_versioned_url_is_cached_for_a_year(client: httpx.AsyncClient) -> None:
    response = await client.get("/widget/sitechat.js?v=abc123")
    assert response.headers["cache-control"] == CACHE_VERSIONED


async def test_head_answers_headers_only(client: httpx.AsyncClient) -> None:
    response = await client.head("/widget/sitechat.js", headers={"accept-encoding": "identity"})
    assert response.status_code == 200
    assert response.content == b""
    assert int(response.headers["content-length"]) == len(WIDGET.read_bytes())


async def test_only_the_widget_file_is_served_from_the_widget_folder(
    client: httpx.AsyncClient,
) -> None:
    for path in ("/widget/tests/sse.test.js", "/widget/..%2Fpyproject.toml", "/widget/nope.js"):
        response = await client.get(path)
        assert response.status_code == 404, path


async def test_demo_page_embeds_the_real_widget_for_the_demo_chatbot(
    client: httpx.AsyncClient,
) -> None:
    widget = await client.get("/widget/sitechat.js")
    version = hashlib.sha256(widget.content).hexdigest()[:12]
    page = await client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["cache-control"] == "no-cache"
    tag = f'<script src="/widget/sitechat.js?v={version}" data-chatbot-id="demo" async></script>'
    assert tag in page.text
    # The snippet shown to owners names this server.
    assert "http://sitechat.test/widget/sitechat.js" in page.text


async def test_demo_page_csp_allows_exactly_its_own_inline_blocks(
    client: httpx.AsyncClient,
) -> None:
    page = await client.get("/")
    csp = dict(
        part.strip().split(" ", 1) for part in page.headers["content-security-policy"].split(";")
    )
    assert csp["default-src"] == "'none'"
    assert csp["connect-src"] == "'self'"
    for tag, directive in (("script", "script-src"), ("style", "style-src")):
        blocks = re.findall(rf"<{tag}>(.*?)</{tag}>", page.text, flags=re.DOTALL)
        assert blocks
        for block in blocks:
            digest = base64.b64encode(hashlib.sha256(block.encode()).digest()).decode()
            assert f"'sha256-{digest}'" in csp[directive]


async def test_missing_widget_file_answers_404_but_the_demo_page_still_works(
    tmp_path: Path,
) -> None:
    settings = Settings(_env_file=None, data_dir=tmp_path, environment="test")  # type: ignore[call-arg]
    async with make_client(settings, widget_dir=tmp_path / "empty") as c:
        assert (await c.get("/widget/sitechat.js")).status_code == 404
        page = await c.get("/")
        assert page.status_code == 200
        assert 'src="/widget/sitechat.js"' in page.text


async def test_in_development_an_edited_widget_is_served_without_a_restart(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "widget"
    folder.mkdir()
    file = folder / "sitechat.js"
    file.write_text("console.log(1);\n")
    settings = Settings(_env_file=None, data_dir=tmp_path, environment="development")  # type: ignore[call-arg]
    async with make_client(settings, widget_dir=folder) as c:
        first = await c.get("/widget/sitechat.js")
        assert first.text == "console.log(1);\n"
        file.write_text("console.log(2);\n")
        stat = file.stat()
        os.utime(file, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
        second = await c.get("/widget/sitechat.js")
        assert second.text == "console.log(2);\n"
        assert second.headers["etag"] != first.headers["etag"]
