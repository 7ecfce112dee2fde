"""Errors that answer with HTTP headers: ``Retry-After`` and ``X-RateLimit-*`` on a 429,
``WWW-Authenticate`` on a 401.

``api.errors`` maps every ``SitechatError`` to the one JSON error shape; for the two
classes whose responses need headers, this handler (more specific, so Starlette prefers it)
adds the headers an exception carries in ``headers`` and otherwise answers the same way.
"""

from __future__ import annotations

import math

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from sitechat.api.errors import error_response
from sitechat.errors import RateLimited, SitechatError, Unauthorized


async def _with_headers(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, SitechatError)
    headers: dict[str, str] = dict(getattr(exc, "headers", None) or {})
    if isinstance(exc, RateLimited):
        headers.setdefault("Retry-After", str(max(1, math.ceil(exc.retry_after))))
    return error_response(request, exc.status, exc.code, exc.message, headers=headers)


def install_header_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RateLimited, _with_headers)
    app.add_exception_handler(Unauthorized, _with_headers)
