"""Dependencies for routes: typed aliases so route signatures stay short."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from sitechat.api.shutdown import Drain
from sitechat.errors import ServerRestarting
from sitechat.services import Services


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def get_request_id(request: Request) -> str:
    request_id: str = request.state.request_id
    return request_id


def client_ip(request: Request) -> str:
    """The client's address: the peer, or the address a trusted proxy forwarded."""
    forwarded = ",".join(request.headers.getlist("x-forwarded-for")) or None
    peer = request.client.host if request.client else None
    return get_services(request).client_ips.resolve(peer, forwarded)


def get_drain(request: Request) -> Drain:
    drain: Drain = request.app.state.drain
    return drain


def accepting_answers(request: Request) -> None:
    """Refuses a new answer while this worker drains after SIGTERM: asking again at once
    reaches another worker."""
    if get_drain(request).draining:
        raise ServerRestarting()


ServicesDep = Annotated[Services, Depends(get_services)]
DrainDep = Annotated[Drain, Depends(get_drain)]
RequestIdDep = Annotated[str, Depends(get_request_id)]
