"""The application factory. ``create_app(settings)`` builds a FastAPI app whose clients are
created in the lifespan, so tests and the CLI can each build one with their own settings."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from sitechat import __version__
from sitechat.api import health, public
from sitechat.api.errors import install_error_handlers
from sitechat.api.middleware import RequestIdMiddleware
from sitechat.config import Settings
from sitechat.llm.registry import ModelRegistry
from sitechat.services import Services
from sitechat.web.router import build_web_router

DESCRIPTION = """
sitechat answers a website's visitors from the owner's own documents, streaming the answer
token by token over Server-Sent Events with its sources.
"""


def create_app(
    settings: Settings | None = None,
    *,
    models: ModelRegistry | None = None,
    preload_model: bool = False,
) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services = await Services.start(settings, models=models, preload_model=preload_model)
        app.state.services = services
        try:
            yield
        finally:
            await services.aclose()

    app = FastAPI(
        title="sitechat",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.settings = settings
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(public.router)
    app.include_router(build_web_router(settings, widget_dir=settings.widget_dir))
    # Public endpoints are called from any website that embeds the widget. No cookies are
    # used anywhere (admin calls carry a bearer key), so a wildcard without credentials is
    # safe; per-chatbot allowed origins are enforced by the public gate.
    app.add_middleware(
        CORSMiddleware,
        allow_origins=["*"],
        allow_credentials=False,
        allow_methods=["GET", "POST", "OPTIONS"],
        allow_headers=["Content-Type", "X-Sitechat-Visitor-Token", "X-Request-ID"],
        expose_headers=[
            "X-Request-ID",
            "Retry-After",
            "X-RateLimit-Limit",
            "X-RateLimit-Remaining",
            "X-RateLimit-Reset",
        ],
        max_age=600,
    )
    app.add_middleware(RequestIdMiddleware)
    return app


def factory() -> FastAPI:
    """Entry point for ``uvicorn --factory sitechat.app:factory``: loads the local model (when
    it is the default) at startup, so the first visitor does not wait for it."""
    return create_app(preload_model=True)
