"""Helpers for the admin, gate and tenancy tests: an app with an admin key. The real Redis
these tests share lives in ``tests.support.redis``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from sitechat.config import Settings
from tests.conftest import AppHarness, running_app


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
