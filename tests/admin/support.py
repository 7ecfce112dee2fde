"""Helpers for the tenancy, admin and limits tests: an app with an admin key, and the real
Redis on this machine under a key prefix of the test's own (db 0 is shared with other runs,
so every key a test makes starts with its prefix and is deleted afterwards).

Redis unreachable: the test skips on a developer's machine and fails when ``CI=true``.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from sitechat.config import Settings
from tests.conftest import AppHarness, running_app

IN_CI = os.environ.get("CI", "").lower() == "true"
REDIS_URL = os.environ.get("SITECHAT_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@dataclass
class Admin:
    """An app with the chatbot ``shop`` seeded, and an admin key of its org."""

    harness: AppHarness
    key: str

    @property
    def client(self) -> httpx.AsyncClient:
        return self.harness.client

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    async def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.client.get(path, headers=self.headers, **kwargs)

    async def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.client.post(path, headers=self.headers, **kwargs)

    async def patch(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.client.patch(path, headers=self.headers, **kwargs)

    async def delete(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.client.delete(path, headers=self.headers, **kwargs)


@asynccontextmanager
async def admin_app(
    settings: Settings, /, *, policy: dict[str, Any] | None = None, **chatbot_fields: Any
) -> AsyncIterator[Admin]:
    """``policy``: the chatbot's ``settings`` JSON (visitor token, limits, budget...)."""
    async with running_app(settings, **chatbot_fields) as harness:
        services = harness.services
        if policy is not None:
            await services.store.update_chatbot(harness.chatbot_id, settings=policy)
            services.configs.invalidate(harness.chatbot_id)
        _record, key = await services.store.create_api_key(harness.org_id, "test")
        yield Admin(harness, key)


def with_settings(settings: Settings, **overrides: Any) -> Settings:
    values = settings.model_dump()
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


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
