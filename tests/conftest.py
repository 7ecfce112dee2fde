"""Shared fixtures: settings on a temp data dir, an app with its lifespan running, a seeded
chatbot, and the scripted OpenAI-compatible server."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from sitechat.api.app import create_app
from sitechat.config import Settings
from sitechat.services import Services

pytest_plugins = ["tests.support.fixtures", "tests.support.redis", "tests.support.hang_watch"]

IN_CI = os.environ.get("CI", "").lower() == "true"

SHOP_DOCS: dict[str, str] = {
    "shipping.md": (
        "# Shipping\n\n## Delivery times\n\nOrders ship within two business days. Delivery "
        "inside the EU takes three to five days.\n\n## Shipping costs\n\nShipping is free "
        "for orders over 50 euros. Smaller orders pay a flat fee of 4.90 euros.\n"
    ),
    "returns.md": (
        "# Returns\n\nYou can return any item within 30 days of delivery for a full refund. "
        "Print the return label from your account page and drop the parcel at any post "
        "office.\n"
    ),
    "hours.md": (
        "# Opening hours\n\nThe Berlin store opens at 9 am and closes at 7 pm from Monday "
        "to Saturday. It is closed on Sundays and public holidays.\n"
    ),
}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        data_dir=tmp_path / "data",
        default_provider="extractive",
        sse_ping_interval_seconds=15.0,
    )


@dataclass
class AppHarness:
    app: FastAPI
    services: Services
    client: httpx.AsyncClient
    chatbot_id: str
    org_id: str


async def seed_chatbot(services: Services, chatbot_id: str = "shop", **fields: Any) -> str:
    org = await services.store.create_org("Shop Inc")
    await services.store.create_chatbot(org.id, name="Shop helper", chatbot_id=chatbot_id, **fields)
    for name, text in SHOP_DOCS.items():
        await services.ingestor.ingest_bytes(chatbot_id, text.encode(), filename=name)
    return org.id


@asynccontextmanager
async def running_app(settings: Settings, **chatbot_fields: Any) -> AsyncIterator[AppHarness]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        services: Services = app.state.services
        org_id = await seed_chatbot(services, **chatbot_fields)
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://sitechat.test") as c:
            yield AppHarness(app, services, c, "shop", org_id)


@pytest.fixture
async def harness(settings: Settings) -> AsyncIterator[AppHarness]:
    async with running_app(settings) as h:
        yield h


@pytest.fixture
def openai_settings(settings: Settings, scripted_openai: Any) -> Callable[..., Settings]:
    """Settings whose default provider is the scripted OpenAI-compatible server."""

    def make(**overrides: Any) -> Settings:
        values = settings.model_dump()
        values.update(
            default_provider="openai",
            openai_api_key="test-key",
            openai_base_url=scripted_openai.base_url,
            openai_model="scripted-model",
        )
        values.update(overrides)
        return Settings(_env_file=None, **values)  # type: ignore[call-arg]

    return make
