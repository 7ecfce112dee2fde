"""The real Redis on this machine under a key prefix of the test's own (db 0 is shared with
other runs, so every key a test makes starts with its prefix and is deleted afterwards).

Redis unreachable: the test skips on a developer's machine and fails when ``CI=true``.
``redis_prefix`` and ``redis_link`` are fixtures every test folder gets through the root
``conftest``.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from sitechat.shared_state.redis_link import RedisLink

IN_CI = os.environ.get("CI", "").lower() == "true"
REDIS_URL = os.environ.get("SITECHAT_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


async def redis_available() -> bool:
    client = Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        await client.ping()
        return True
    except Exception:
        return False
    finally:
        await client.aclose()


async def delete_prefix(prefix: str) -> None:
    client = Redis.from_url(REDIS_URL)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*", count=500)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


@pytest.fixture
async def redis_prefix() -> AsyncIterator[str]:
    """A fresh key prefix on the real Redis; every key under it is deleted afterwards."""
    if not await redis_available():
        message = f"Redis at {REDIS_URL} is not reachable"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    prefix = f"sitechat-test:{secrets.token_hex(6)}:"
    try:
        yield prefix
    finally:
        await delete_prefix(prefix)


@pytest.fixture
async def redis_link(redis_prefix: str) -> AsyncIterator[RedisLink]:
    """sitechat's link to the real Redis, its keys under the test's own prefix."""
    link = RedisLink(REDIS_URL, prefix=redis_prefix)
    try:
        yield link
    finally:
        await link.aclose()
