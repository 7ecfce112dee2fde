"""One place that maps errors to HTTP responses. Public clients never see exception text:
a code, a safe message and the request id; the details go to the log."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from sitechat.errors import RateLimited, SitechatError

logger = logging.getLogger(__name__)


def request_id_of(request: Request) -> str | None:
    return getattr(request.state, "request_id", None)


def error_response(
    request: Request,
    status: int,
    code: str,
    message: str,
    *,
    details: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    request_id = request_id_of(request)
    body: dict[str, Any] = {"error": message, "code": code, "request_id": request_id}
    if details:
        body["details"] = details
    all_headers = dict(headers or {})
    if request_id:
        # Also set here: a 500 is answered outside the request-id middleware.
        all_headers["X-Request-ID"] = request_id
    return JSONResponse(body, status_code=status, headers=all_headers)


def _describe(errors: list[dict[str, Any]]) -> tuple[int, str, list[dict[str, Any]]]:
    details = []
    for err in errors:
        loc = [str(part) for part in err.get("loc", ()) if part != "body"]
        details.append({"field": ".".join(loc) or None, "problem": err.get("msg", "invalid")})
    if any(err.get("type") == "json_invalid" for err in errors):
        return 400, "The request body is not valid JSON.", details
    if any(err.get("type") == "model_attributes_type" for err in errors):
        return 400, "The request body must be a JSON object.", details
    first = details[0] if details else {"field": None, "problem": "invalid"}
    where = f"'{first['field']}'" if first["field"] else "the request"
    return 422, f"Invalid {where}: {first['problem']}.", details


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def on_validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        status, message, details = _describe(list(exc.errors()))
        code = "invalid_json" if status == 400 else "invalid_input"
        return error_response(request, status, code, message, details=details)

    @app.exception_handler(SitechatError)
    async def on_sitechat_error(request: Request, exc: SitechatError) -> JSONResponse:
        headers = None
        if isinstance(exc, RateLimited):
            headers = {"Retry-After": str(max(1, round(exc.retry_after)))}
        if exc.status >= 500:
            logger.error("request %s failed: %r", request_id_of(request), exc, exc_info=exc)
        return error_response(request, exc.status, exc.code, exc.message, headers=headers)

    @app.exception_handler(StarletteHTTPException)
    async def on_http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        messages = {404: "Not found.", 405: "Method not allowed.", 413: "Request too large."}
        message = messages.get(exc.status_code, "The request failed.")
        code = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}.get(
            exc.status_code, "http_error"
        )
        headers = dict(exc.headers) if exc.headers else None
        return error_response(request, exc.status_code, code, message, headers=headers)

    @app.exception_handler(Exception)
    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("unhandled error in request %s", request_id_of(request))
        return error_response(request, 500, "internal_error", "Something went wrong.")
