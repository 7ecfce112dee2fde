"""Dependencies for routes: typed aliases so route signatures stay short.

Every dependency is ``async def``, even those that only read the app's state: FastAPI runs a
plain ``def`` dependency in a worker thread, and that hop cost more than the whole of the
public gate (about 0.3 ms each, several per request, under a busy event loop more)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from sitechat.api.shutdown import Drain
from sitechat.errors import ServerRestarting
from sitechat.services import Services


def services_of(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


async def get_services(request: Request) -> Services:
    return services_of(request)


async def get_request_id(request: Request) -> str:
    request_id: str = request.state.request_id
    return request_id


def client_ip(request: Request) -> str:
    """The client's address: the peer, or the address a trusted proxy forwarded."""
    forwarded = ",".join(request.headers.getlist("x-forwarded-for")) or None
    peer = request.client.host if request.client else None
    return services_of(request).client_ips.resolve(peer, forwarded)


def drain_of(request: Request) -> Drain:
    drain: Drain = request.app.state.drain
    return drain


async def get_drain(request: Request) -> Drain:
    return drain_of(request)


async def accepting_answers(request: Request) -> None:
    """Refuses a new answer while this worker drains after SIGTERM: asking again at once
    reaches another worker."""
    if drain_of(request).draining:
        raise ServerRestarting()


ServicesDep = Annotated[Services, Depends(get_services)]
DrainDep = Annotated[Drain, Depends(get_drain)]
RequestIdDep = Annotated[str, Depends(get_request_id)]
