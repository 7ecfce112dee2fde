"""CORS for the public API, per deployment's allowed origins (pure ASGI, streaming-safe).

Replaces a wildcard: a response carries ``Access-Control-Allow-Origin`` only for an origin
that a chatbot allows (``OriginIndex``), echoing that one origin, never ``*``, and never with
credentials (sitechat uses no cookies). Preflights from other origins get 403. Whether the
origin may use *this* chatbot is the gate's question (403 ``origin_not_allowed``): CORS only
decides what a browser may read. Admin routes get no CORS headers at all; they are called
with a bearer key from servers, not from other websites' pages.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sitechat.api.errors import send_error
from sitechat.errors import OriginNotAllowed
from sitechat.gate.origins import InvalidOrigin, normalize_origin

ALLOW_METHODS = "GET, POST, OPTIONS"
ALLOW_HEADERS = "Content-Type, X-Sitechat-Visitor-Token, X-Request-ID"
EXPOSE_HEADERS = (
    "X-Request-ID, Retry-After, X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset"
)
MAX_AGE = "600"

OriginCheck = Callable[[Scope, str], Awaitable[bool]]


async def _index_allows(scope: Scope, origin: str) -> bool:
    services = scope["app"].state.services
    allowed: bool = await services.origin_index.allows(origin)
    return allowed


class PublicCorsMiddleware:
    def __init__(
        self, app: ASGIApp, *, prefix: str = "/api/public/", allows: OriginCheck = _index_allows
    ) -> None:
        self.app = app
        self.prefix = prefix
        self.allows = allows

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        raw_origin = headers.get("origin")
        if raw_origin is None:
            await self.app(scope, receive, send)
            return
        try:
            origin = normalize_origin(raw_origin)
            allowed = await self.allows(scope, origin)
        except InvalidOrigin:
            allowed = False
        preflight = scope["method"] == "OPTIONS" and "access-control-request-method" in headers
        if preflight:
            await self._preflight(scope, send, raw_origin if allowed else None)
            return

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                out = MutableHeaders(scope=message)
                out.add_vary_header("Origin")
                if allowed:
                    out["Access-Control-Allow-Origin"] = raw_origin
                    out["Access-Control-Expose-Headers"] = EXPOSE_HEADERS
            await send(message)

        await self.app(scope, receive, send_with_cors)

    async def _preflight(self, scope: Scope, send: Send, origin: str | None) -> None:
        if origin is None:
            await send_error(scope, send, OriginNotAllowed(), headers=[(b"vary", b"Origin")])
            return
        headers = [
            (b"access-control-allow-origin", origin.encode("latin-1")),
            (b"access-control-allow-methods", ALLOW_METHODS.encode()),
            (b"access-control-allow-headers", ALLOW_HEADERS.encode()),
            (b"access-control-max-age", MAX_AGE.encode()),
            (b"vary", b"Origin"),
            (b"content-length", b"0"),
        ]
        await send({"type": "http.response.start", "status": 204, "headers": headers})
        await send({"type": "http.response.body", "body": b""})
