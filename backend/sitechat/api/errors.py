"""The HTTP side of ``sitechat.errors``: every error a request can end in becomes one JSON
shape (``sitechat.errors.error_body``) with the status and headers its class decides.

Starlette's own HTTP exceptions (an unknown path, a wrong method, a body too large) are
translated into the same tree first, so a 413 answers ``payload_too_large`` whether the
body-size middleware or a route refused it. A 405's ``Allow`` names every method the path
takes: Starlette names only those of the first route it matched, which is one of several
when routes share a path (``GET`` and ``DELETE`` of one resource). Public clients never see
exception text: a code, a safe message and the request id; the details go to the log.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import Scope, Send

from sitechat.errors import (
    InvalidInput,
    InvalidJson,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    SitechatError,
    error_body,
)

logger = logging.getLogger(__name__)


def request_id_of(request: Request) -> str | None:
    return getattr(request.state, "request_id", None)


def error_response(
    request: Request, exc: SitechatError, *, details: list[dict[str, Any]] | None = None
) -> JSONResponse:
    request_id = request_id_of(request)
    body = error_body(exc.code, exc.message, request_id=request_id, details=details)
    headers = exc.headers()
    if request_id:
        # Also set here: a 500 is answered outside the request-id middleware.
        headers["X-Request-ID"] = request_id
    return JSONResponse(body, status_code=exc.status, headers=headers)


async def send_error(
    scope: Scope,
    send: Send,
    exc: SitechatError,
    *,
    headers: Iterable[tuple[bytes, bytes]] = (),
    close: bool = False,
) -> None:
    """The same answer as ``error_response``, sent from pure ASGI middleware (which answers
    before, or instead of, the app)."""
    body = json.dumps(exc.body(scope.get("state", {}).get("request_id"))).encode()
    raw = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in exc.headers().items()),
        *headers,
    ]
    if close:
        raw.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": exc.status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


def validation_error(errors: list[dict[str, Any]]) -> tuple[SitechatError, list[dict[str, Any]]]:
    """A request the schema refused: 400 when the body is not a JSON object at all, else 422
    naming the first field that is wrong (every one is listed in ``details``)."""
    details = []
    for err in errors:
        loc = [str(part) for part in err.get("loc", ()) if part != "body"]
        details.append({"field": ".".join(loc) or None, "problem": err.get("msg", "invalid")})
    if any(err.get("type") == "json_invalid" for err in errors):
        return InvalidJson(), details
    if any(err.get("type") == "model_attributes_type" for err in errors):
        return InvalidJson("The request body must be a JSON object."), details
    first = details[0] if details else {"field": None, "problem": "invalid"}
    where = f"'{first['field']}'" if first["field"] else "the request"
    return InvalidInput(f"Invalid {where}: {first['problem']}."), details


_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")


def allowed_methods(request: Request) -> str | None:
    """Every method some route of the app takes at this request's path, for ``Allow``.

    Each method is tried through the routes' own ``matches`` (FastAPI nests included
    routers, so the routes are not one flat list to read ``methods`` from)."""
    routes = request.app.router.routes
    allowed = [
        method
        for method in _METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] is Match.FULL for route in routes
        )
    ]
    return ", ".join(allowed) or None


def from_http_exception(exc: StarletteHTTPException, *, allow: str | None = None) -> SitechatError:
    """Starlette's routing and body errors, as members of the one tree. ``allow``: the
    methods of the path (``allowed_methods``); else a 405 keeps Starlette's ``Allow``."""
    if exc.status_code == 404:
        return NotFound()
    if exc.status_code == 405:
        return MethodNotAllowed(allow=allow or (exc.headers or {}).get("Allow"))
    if exc.status_code == 413:
        return PayloadTooLarge()
    error = SitechatError("The request failed.")
    error.status, error.code = exc.status_code, "http_error"
    return error


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def on_validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        error, details = validation_error(list(exc.errors()))
        return error_response(request, error, details=details)

    @app.exception_handler(SitechatError)
    async def on_sitechat_error(request: Request, exc: SitechatError) -> JSONResponse:
        if exc.status >= 500:
            logger.error("request %s failed: %r", request_id_of(request), exc, exc_info=exc)
        return error_response(request, exc)

    @app.exception_handler(StarletteHTTPException)
    async def on_http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        allow = allowed_methods(request) if exc.status_code == 405 else None
        return error_response(request, from_http_exception(exc, allow=allow))

    @app.exception_handler(Exception)
    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("unhandled error in request %s", request_id_of(request))
        return error_response(request, SitechatError())
