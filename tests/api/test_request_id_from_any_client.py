"""Regression: ``X-Request-ID`` was taken from any client.

Any caller could choose the id its request is logged under and answered with: reuse a real
request's id to muddle the logs, or pick one that looks like sitechat's own. Now an incoming
id is kept only from a trusted proxy (``SITECHAT_TRUSTED_PROXIES``, the rule
``X-Forwarded-For`` follows), and only if it is 8 to 128 letters, digits, ``.``, ``_`` or
``-``; every other request gets an id of sitechat's making.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx

from sitechat.api.app import create_app
from sitechat.config import Settings
from tests.support.admin import with_settings

OURS = re.compile(r"^[0-9a-f]{32}$")
CHOSEN = "proxy-chosen-id.42"


@asynccontextmanager
async def client_from(settings: Settings, peer: str) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=(peer, 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://sitechat.test") as c:
            yield c


async def request_id_for(client: httpx.AsyncClient, value: bytes) -> str:
    response = await client.get(
        "/api/public/chatbots/nobody/config", headers={b"X-Request-ID": value}
    )
    assert response.status_code == 404
    assert response.json()["request_id"] == response.headers["x-request-id"]
    return response.headers["x-request-id"]


async def test_a_client_cannot_choose_its_request_id(settings: Settings) -> None:
    async with client_from(settings, "203.0.113.7") as client:
        assert OURS.match(await request_id_for(client, CHOSEN.encode()))


async def test_a_trusted_proxys_request_id_is_kept_if_it_looks_like_one(
    settings: Settings,
) -> None:
    proxied = with_settings(settings, trusted_proxies=["10.0.0.0/8"])
    async with client_from(proxied, "10.1.2.3") as client:
        assert await request_id_for(client, CHOSEN.encode()) == CHOSEN
        for bad in (b"short", b"x" * 129, b"has space in it", b"caf\xe9-latin-1", b"a/b/c/d/e/f"):
            assert OURS.match(await request_id_for(client, bad)), bad
    async with client_from(proxied, "127.0.0.1") as client:  # not a listed proxy
        assert OURS.match(await request_id_for(client, CHOSEN.encode()))
