"""Liveness and readiness."""

from __future__ import annotations

from typing import Any

import anyio
from fastapi import APIRouter
from fastapi.responses import JSONResponse

from sitechat.api.deps import ServicesDep

router = APIRouter(tags=["health"])

READINESS_TIMEOUT_SECONDS = 3.0


@router.get("/healthz", summary="The process is up")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="The database and the vector store answer")
async def readyz(services: ServicesDep) -> JSONResponse:
    checks: dict[str, Any] = {}

    async def check(name: str, probe: Any) -> None:
        try:
            with anyio.fail_after(READINESS_TIMEOUT_SECONDS):
                checks[name] = "ok" if await probe() else "failing"
        except Exception:
            checks[name] = "failing"

    async with anyio.create_task_group() as tg:
        tg.start_soon(check, "database", services.store.ping)
        tg.start_soon(check, "vector_store", services.vectors.ping)
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "not_ready", "checks": checks},
        status_code=200 if ready else 503,
    )
