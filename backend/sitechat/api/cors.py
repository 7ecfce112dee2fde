"""CORS for the public API, following the chatbot being asked (pure ASGI, streaming-safe).

A response carries ``Access-Control-Allow-Origin`` only for an origin that the chatbot it
is about allows, echoing that one origin, never ``*``, and never with credentials (sitechat
uses no cookies). Which chatbot that is:

- ``/api/public/chatbots/{id}/...``: the one in the path, for preflights and responses;
- ``/api/public/chat`` and ``/chat/stream`` name it in the JSON body, which a preflight does
  not carry. Their preflights are answered for any origin *some* chatbot allows
  (``OriginIndex``): all a preflight grants is permission to send the POST, which the gate
  then checks against the named chatbot (403 ``origin_not_allowed``). The response itself
  follows the chatbot the route recorded (``follow_chatbot``), so a page whose origin that
  chatbot does not allow cannot read its answer, even if another chatbot, open to every
  origin, made the preflight pass. A request refused before it named a chatbot (invalid
  JSON, a missing field, too large) is answered like its preflight: such an error body
  says nothing about any chatbot.

Preflights refused get 403. Admin routes get no CORS headers at all; they are called with a
bearer key from servers, not from other websites' pages.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sitechat.api.errors import send_error
from sitechat.domain import CHATBOT_ID_PATTERN
from sitechat.errors import OriginNotAllowed, SitechatError
from sitechat.gate.origins import InvalidOrigin, normalize_origin

ALLOW_METHODS = "GET, POST, OPTIONS"
ALLOW_HEADERS = "Content-Type, X-Sitechat-Visitor-Token, X-Request-ID, Last-Event-ID"
EXPOSE_HEADERS = (
    "X-Request-ID, Retry-After, X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset"
)
MAX_AGE = "600"

# (scope, normalised origin, chatbot id or None for "any chatbot") -> may it read?
OriginCheck = Callable[[Scope, str, str | None], Awaitable[bool]]

_STATE_KEY = "cors_chatbot_id"
_CHATBOT_ID = re.compile(CHATBOT_ID_PATTERN)


def follow_chatbot(scope: Scope, chatbot_id: str) -> None:
    """Routes call this once they know which chatbot a request is for (from its body): the
    response's CORS headers then follow that chatbot's allowed origins."""
    scope.setdefault("state", {})[_STATE_KEY] = chatbot_id


async def _services_allow(scope: Scope, origin: str, chatbot_id: str | None) -> bool:
    services = scope["app"].state.services
    try:
        if chatbot_id is None:
            return bool(await services.origin_index.allows(origin))
        return bool(await services.gate.allows_origin(chatbot_id, origin))
    except SitechatError:  # storage unreachable: the browser reads nothing, the route says why
        return False


def _chatbot_in_path(path: str, prefix: str) -> str | None:
    """The id of ``{prefix}chatbots/{id}/...``; "" for a malformed one; None elsewhere."""
    rest = path[len(prefix) :]
    if not rest.startswith("chatbots/"):
        return None
    chatbot_id = rest[len("chatbots/") :].split("/", 1)[0]
    return chatbot_id if _CHATBOT_ID.match(chatbot_id) else ""


class PublicCorsMiddleware:
    def __init__(
        self, app: ASGIApp, *, prefix: str = "/api/public/", allows: OriginCheck = _services_allow
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
            origin: str | None = normalize_origin(raw_origin)
        except InvalidOrigin:
            origin = None
        in_path = _chatbot_in_path(scope["path"], self.prefix)

        async def allowed(chatbot_id: str | None) -> bool:
            if origin is None or chatbot_id == "":
                return False
            return await self.allows(scope, origin, chatbot_id)

        preflight = scope["method"] == "OPTIONS" and "access-control-request-method" in headers
        if preflight:
            await self._preflight(scope, send, raw_origin if await allowed(in_path) else None)
            return

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                out = MutableHeaders(scope=message)
                out.add_vary_header("Origin")
                chatbot_id = in_path if in_path is not None else _recorded_chatbot(scope)
                if await allowed(chatbot_id):
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


def _recorded_chatbot(scope: Scope) -> str | None:
    chatbot_id = scope.get("state", {}).get(_STATE_KEY)
    return chatbot_id if isinstance(chatbot_id, str) else None
