"""Pure ASGI middleware (no BaseHTTPMiddleware: it would buffer streaming responses)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sitechat import logs
from sitechat.api.errors import send_error
from sitechat.api.sse import DETACH, Body
from sitechat.errors import PayloadTooLarge
from sitechat.gate.client_ip import ClientIpResolver

_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,128}$")


class RequestIdMiddleware:
    """Gives every request an id, exposed as ``request.state.request_id`` and echoed in the
    response (``X-Request-ID``).

    An incoming ``X-Request-ID`` is kept only from a trusted proxy (``trusted_proxies``,
    the rule ``X-Forwarded-For`` follows in ``gate.client_ip``), and only if it looks like
    an id: 8 to 128 letters, digits, ``.``, ``_`` or ``-``. Anyone else's is replaced by a
    new one: ids go into logs and error bodies, where a client must not write what it
    likes, nor reuse another request's id to muddle them.
    """

    def __init__(self, app: ASGIApp, *, trusted_proxies: Iterable[str] = ()) -> None:
        self.app = app
        self.proxies = ClientIpResolver(trusted_proxies)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = ""
        client = scope.get("client")
        if self.proxies.trusts(client[0] if client else None):
            for name, value in scope.get("headers", ()):
                if name == b"x-request-id":
                    incoming = value.decode("latin-1")
                    break
        request_id = incoming if _SAFE_REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        logs.request_id.set(request_id)  # on every log line of this request

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)["X-Request-ID"] = request_id
            await send(message)

        await self.app(scope, receive, send_with_id)


class _BodyTooLarge(Exception):
    pass


class BodySizeLimitMiddleware:
    """Refuses request bodies over a size with 413 JSON, before the app buffers them.

    A ``Content-Length`` over the limit is refused at once, unread. A body without one
    (chunked) is counted as the app reads it; past the limit the read fails and whatever
    the app was about to answer is replaced by the 413. Responses are passed through
    untouched otherwise, so streaming answers stream. ``limits`` maps path prefixes to
    sizes (longest prefix wins); other paths get ``default``.
    """

    def __init__(self, app: ASGIApp, *, default: int, limits: dict[str, int] | None = None):
        self.app = app
        self.default = default
        self.limits = sorted((limits or {}).items(), key=lambda item: -len(item[0]))

    def limit_for(self, path: str) -> int:
        for prefix, size in self.limits:
            if path.startswith(prefix):
                return size
        return self.default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                if value.isdigit() and int(value) > limit:
                    await _send_too_large(scope, send, limit)
                    return
                break

        received = 0
        exceeded = False
        started = False

        async def counting_receive() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    exceeded = True
                    raise _BodyTooLarge()
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if exceeded:
                return  # the app's answer to a failed read; the 413 replaces it
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except _BodyTooLarge:
            pass
        except Exception:
            if not exceeded:
                raise
        if exceeded and not started:
            await _send_too_large(scope, send, limit)


async def _send_too_large(scope: Scope, send: Send, limit: int) -> None:
    refusal = PayloadTooLarge(f"The request body is larger than {limit} bytes.")
    await send_error(scope, send, refusal, close=True)


class DetachedBodies:
    """Streams a detached response body (``api.sse``) once the app has returned.

    Outermost of sitechat's middleware. A streaming response sends its headers through the
    whole stack, offers its body here (``scope["sitechat.detach"]``) and returns; the app,
    the router and the inner middleware then unwind, and the body streams with the server's
    own ``receive`` and ``send``. The inner middleware only touch ``http.response.start``,
    which has gone through them by then.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body = await self._app_detaching(scope, receive, send)
        if body is not None:
            await body(receive, send)

    async def _app_detaching(self, scope: Scope, receive: Receive, send: Send) -> Body | None:
        """Runs the app on a copy of the scope, so that what the app adds to it (FastAPI's
        closed exit stacks, the route) goes when the app returns. The ``state`` dict stays
        shared: an error answered out here (a 500) still finds the request's id in it."""
        scope.setdefault("state", {})
        detached: list[Body] = []
        await self.app({**scope, DETACH: detached.append}, receive, send)
        return detached[0] if detached else None
