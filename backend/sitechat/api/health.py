"""Liveness, readiness and metrics: what an orchestrator and a scraper ask.

``/readyz`` fails (503) as soon as the process starts draining after SIGTERM, before it
stops serving, so a load balancer stops sending it new visitors first.

``/metrics`` is not public: it answers clients in ``metrics_allowed_networks`` (default:
loopback), judged by the address the gate resolves (so a visitor behind a trusted proxy is
judged by their own address, not the proxy's), or any client presenting
``Authorization: Bearer <metrics_token>``. Anyone else gets 404, as if it did not exist.
"""

from __future__ import annotations

import hmac
import ipaddress
from typing import Any

import anyio
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from sitechat import metrics
from sitechat.api.deps import DrainDep, ServicesDep, client_ip
from sitechat.errors import NotFound

router = APIRouter(tags=["health"])

READINESS_TIMEOUT_SECONDS = 3.0


@router.get("/healthz", summary="The process is up")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="The database and the vector store answer")
async def readyz(services: ServicesDep, drain: DrainDep) -> JSONResponse:
    checks: dict[str, Any] = {}

    async def check(name: str, probe: Any) -> None:
        try:
            with anyio.fail_after(READINESS_TIMEOUT_SECONDS):
                checks[name] = "ok" if await probe() else "failing"
        except Exception:
            checks[name] = "failing"

    if drain.draining:
        return JSONResponse({"status": "draining", "checks": {}}, status_code=503)
    async with anyio.create_task_group() as tg:
        tg.start_soon(check, "database", services.store.ping)
        tg.start_soon(check, "vector_store", services.vectors.ping)
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "not_ready", "checks": checks},
        status_code=200 if ready else 503,
    )


@router.get("/metrics", include_in_schema=False)
async def prometheus_metrics(request: Request, services: ServicesDep) -> Response:
    if not _may_read_metrics(request, services):
        raise NotFound()
    body, content_type = metrics.render()
    return Response(body, media_type=content_type, headers={"Cache-Control": "no-store"})


def _may_read_metrics(request: Request, services: ServicesDep) -> bool:
    settings = services.settings
    token = settings.metrics_token.get_secret_value() if settings.metrics_token else ""
    presented = request.headers.get("authorization", "")
    if token and hmac.compare_digest(
        presented.encode("utf-8", "replace"), f"Bearer {token}".encode()
    ):
        return True
    try:
        client = ipaddress.ip_address(client_ip(request))
    except ValueError:
        return False
    return any(
        client in ipaddress.ip_network(network, strict=False)
        for network in settings.metrics_allowed_networks
    )
