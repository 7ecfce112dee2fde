"""Regression: a hostile ``Origin`` answered 500, for anyone, before any rate limit.

``Origin: http://[fe80::1%\\xfc]`` (an IPv6 zone id holding a non-ASCII byte) passed
``normalize_origin``; with the same value in ``Host`` it passed the same-origin shortcut, the
config endpoint signed a visitor token for it, and every chat, session and feedback request
carrying that token then crashed in ``hmac.compare_digest`` (``TypeError`` on non-ASCII
``str``): 500 with a traceback logged each time, even past the per-IP limit.

Now origins that are not ASCII after IDNA, and zone ids, are refused (403), tokens are
compared as bytes, a malformed token is 401, and nothing a client puts in ``Origin``,
``Host`` or the visitor-token header reaches a 500 or logs a traceback. Header values are
sent as raw bytes, read by the server as latin-1, exactly as a hostile client can.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import httpx
import pytest

from sitechat.config import Settings
from sitechat.errors import VisitorTokenInvalid
from sitechat.gate.origins import InvalidOrigin, normalize_origin
from sitechat.gate.visitor_tokens import HEADER, VisitorTokens
from tests.support.admin import Admin, admin_app

SHOP = "https://shop.example"
QUESTION = {"message": "How much is shipping?", "chatbot_id": "shop"}

HOSTILE_HOSTS: list[bytes] = [
    b"[fe80::1%\xfc]",  # the reported one: a zone id holding a non-ASCII byte
    b"[fe80::1%25eth0]",  # a zone id, percent-encoded as URLs write it
    b"[fe80::1%eth0]",
    b"\xad.example",  # a soft hyphen: IDNA maps it to nothing, leaving an empty label
    b"\x85x.example",  # NEL, whitespace in Unicode
    b"a" * 64 + b".example",  # a label over 63 characters
    b"a." * 130 + b"example",  # a name over 253 characters
    b"[::1",
    b"[::1]x",
    b"shop.example:\xb9",  # a latin-1 superscript one: isdigit(), not ASCII
    b"shop.example:99999",
    b"user@shop.example",
    b"xn--zz.example",  # broken punycode
    b"",
]
HOSTILE_ORIGINS: list[bytes] = [b"http://" + host for host in HOSTILE_HOSTS] + [
    b"http://",
    b"https://[",
    b"http://\xef\xbc\x8f",  # UTF-8 bytes of a full-width slash, read as latin-1
    b"null",
    b"\xfc",
]
HOSTILE_TOKENS: list[bytes] = [
    b"\xfc.\xfc",
    b"\xe9" * 40,
    b"a.b",
    b".",
    b"x" * 5000,
    b"eyJjIjoi\xfc.c2ln",
    b"e30.e30",
]


@pytest.fixture
async def admin(settings: Settings) -> AsyncIterator[Admin]:
    async with admin_app(
        settings, allowed_origins=(SHOP,), policy={"require_visitor_token": True}
    ) as running:
        yield running


def routes(session_id: str = "a" * 16) -> list[tuple[str, str, dict[str, object] | None]]:
    base = f"/api/public/chatbots/shop/sessions/{session_id}"
    return [
        ("POST", "/api/public/chat/stream", QUESTION),
        ("POST", "/api/public/chat", QUESTION),
        ("GET", f"{base}/messages", None),
        ("POST", f"{base}/messages/m1/feedback", {"rating": 1}),
    ]


async def send(
    client: httpx.AsyncClient,
    method: str,
    path: str,
    body: dict[str, object] | None,
    headers: dict[bytes, bytes],
) -> httpx.Response:
    return await client.request(method, path, json=body, headers=headers)


def assert_nothing_logged(caplog: pytest.LogCaptureFixture) -> None:
    noisy = [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert noisy == [], [r.getMessage() for r in noisy]


@pytest.mark.parametrize("origin", HOSTILE_ORIGINS, ids=repr)
async def test_a_hostile_origin_with_the_same_host_is_refused_not_a_500(
    admin: Admin, origin: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    host = origin.split(b"://", 1)[-1]
    headers = {b"Origin": origin, b"Host": host} if host else {b"Origin": origin}
    config = await admin.client.get("/api/public/chatbots/shop/config", headers=headers)
    assert config.status_code == 403, config.text
    assert config.json()["code"] == "origin_not_allowed"
    for method, path, body in routes():
        response = await send(admin.client, method, path, body, headers)
        assert response.status_code == 403, (path, response.text)
    assert_nothing_logged(caplog)


@pytest.mark.parametrize("token", HOSTILE_TOKENS, ids=lambda t: repr(t[:20]))
async def test_a_hostile_visitor_token_is_401_not_a_500(
    admin: Admin, token: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    headers = {b"Origin": SHOP.encode(), HEADER.encode(): token}
    for method, path, body in routes():
        response = await send(admin.client, method, path, body, headers)
        assert response.status_code == 401, (path, response.text)
        assert response.json()["code"] == "visitor_token_invalid"
    # Refreshing with a malformed token just issues a new one.
    config = await admin.client.get("/api/public/chatbots/shop/config", headers=headers)
    assert config.status_code == 200
    assert_nothing_logged(caplog)


async def test_a_real_token_replayed_with_a_hostile_origin_is_refused(
    admin: Admin, caplog: pytest.LogCaptureFixture
) -> None:
    issued = await admin.client.get("/api/public/chatbots/shop/config", headers={"Origin": SHOP})
    token = issued.json()["visitor_token"].encode()
    for origin in HOSTILE_ORIGINS[:4]:
        headers = {b"Origin": origin, b"Host": origin.split(b"://", 1)[-1], HEADER.encode(): token}
        for method, path, body in routes():
            response = await send(admin.client, method, path, body, headers)
            assert response.status_code == 403, (origin, path, response.text)
    assert_nothing_logged(caplog)


async def test_a_hostile_host_does_not_break_the_same_origin_shortcut(
    admin: Admin, caplog: pytest.LogCaptureFixture
) -> None:
    for host in [*HOSTILE_HOSTS, b"sh\xf6p.example"]:  # latin-1 "shöp": a valid IDN
        headers = {b"Origin": b"http://sitechat.test", b"Host": host}
        response = await admin.client.get("/api/public/chatbots/shop/config", headers=headers)
        assert response.status_code in (200, 403), (host, response.text)
    assert_nothing_logged(caplog)


@pytest.mark.parametrize("origin", HOSTILE_ORIGINS, ids=repr)
def test_normalize_origin_refuses_with_invalid_origin_only(origin: bytes) -> None:
    with pytest.raises(InvalidOrigin):
        normalize_origin(origin.decode("latin-1"))


def test_tokens_compare_non_ascii_claims_without_a_type_error() -> None:
    tokens = VisitorTokens(b"s" * 32, ttl_seconds=60)
    token, _claims = tokens.issue("shop", "http://\u00fc.example")  # as an old token might hold
    with pytest.raises(VisitorTokenInvalid):
        tokens.verify(token, "shop", "http://\u00fd.example")
    assert tokens.verify(token, "shop", "http://\u00fc.example").chatbot_id == "shop"
    with pytest.raises(VisitorTokenInvalid):
        tokens.verify(token, "sh\udcfcop", "http://\u00fc.example")
