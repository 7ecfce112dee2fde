"""The application factory. ``create_app(settings)`` builds a FastAPI app whose clients are
created in the lifespan, so tests and the CLI can each build one with their own settings."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI

from sitechat import __version__
from sitechat.api import health, public
from sitechat.api.admin import analytics, chatbots, conversations, orgs, unanswered
from sitechat.api.admin.documents import build_documents_router
from sitechat.api.cors import PublicCorsMiddleware
from sitechat.api.errors import install_error_handlers
from sitechat.api.middleware import (
    BodySizeLimitMiddleware,
    DetachedBodies,
    RequestIdMiddleware,
)
from sitechat.api.shutdown import Drain
from sitechat.api.web.router import build_web_router
from sitechat.config import Settings
from sitechat.llm.registry import ModelRegistry
from sitechat.services import Services

DESCRIPTION = """
sitechat answers a website's visitors from the owner's own documents, streaming the answer
token by token over Server-Sent Events with its sources.
"""


def create_app(
    settings: Settings | None = None,
    *,
    models: ModelRegistry | None = None,
    preload_model: bool = False,
    handle_sigterm: bool = False,
    freeze_startup_heap: bool = False,
) -> FastAPI:
    """``handle_sigterm``: drain on SIGTERM (``api.shutdown``); ``freeze_startup_heap``: once
    started, move everything allocated so far out of the garbage collector's sight
    (``gc.freeze``). Both only for a real server process, never for an app a test builds
    inside its own process.

    Why freeze: what a worker imports and builds at startup (the SDKs' and the schemas'
    classes, the models) lives as long as the process, yet every full collection walks it
    all: about 100 ms with the event loop stopped, every stream waiting, whenever the
    garbage collector decides. Frozen, a full collection walks only what requests made."""
    settings = settings or Settings()
    drain = Drain(settings.shutdown_grace_seconds)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services = await Services.start(
            settings, models=models, preload_model=preload_model, serve_answers=True
        )
        services.follow_drain(drain)
        app.state.services = services
        if freeze_startup_heap:
            gc.collect()  # what startup left as garbage goes now, not frozen forever
            gc.freeze()
        restore_signals = drain.install() if handle_sigterm else None
        try:
            yield
        finally:
            if restore_signals is not None:
                restore_signals()
            await services.aclose()

    app = FastAPI(
        title="sitechat",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.drain = drain
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(public.router)
    for router in admin_routers():
        app.include_router(router)
    app.include_router(build_web_router(settings, widget_dir=settings.widget_dir))
    # Outermost last: detached stream bodies (``api.sse``), request ids, then CORS (so a
    # 413 still carries CORS headers), then the body-size limit, then the app.
    app.add_middleware(
        BodySizeLimitMiddleware,
        default=settings.max_public_body_bytes,
        limits={"/api/admin/": settings.max_admin_body_bytes},
    )
    app.add_middleware(PublicCorsMiddleware)
    app.add_middleware(RequestIdMiddleware, trusted_proxies=settings.trusted_proxies)
    app.add_middleware(DetachedBodies)
    return app


def admin_routers() -> list[APIRouter]:
    return [
        orgs.router,
        chatbots.router,
        build_documents_router(),
        conversations.router,
        analytics.router,
        unanswered.router,
    ]


def factory() -> FastAPI:
    """Entry point for ``uvicorn --factory sitechat.api.app:factory``: loads the local model (when
    it is the default) at startup, so the first visitor does not wait for it."""
    return create_app(preload_model=True, handle_sigterm=True, freeze_startup_heap=True)
