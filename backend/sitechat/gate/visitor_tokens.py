"""Visitor tokens: short-lived, signed proof that a chat request comes from a widget that
loaded the chatbot's config, on a given origin, as a given visitor.

``Origin`` can be forged by any script outside a browser, so origin checks alone do not stop
someone from using a widget as a free LLM API. A chatbot can therefore require a token: the
public config endpoint issues one (bound to chatbot, origin and a random visitor id, valid
for ``ttl`` seconds), the widget sends it in ``X-Sitechat-Visitor-Token``, and the limits
apply per visitor id as well as per IP. A script can still fetch tokens, but every token
costs a config request (itself limited per IP), so it stays held to one IP's budget.

Format: ``base64url(json payload) "." base64url(HMAC-SHA256(secret, payload))``. No
encryption: the payload holds nothing secret. Verification compares in constant time, on
bytes: ``hmac.compare_digest`` raises ``TypeError`` for ``str`` holding anything but ASCII,
and a token, its claims and the request they are checked against all come from the client.
Anything malformed is ``VisitorTokenInvalid`` (401), never another exception.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from sitechat.errors import VisitorTokenExpired, VisitorTokenInvalid, VisitorTokenRequired

HEADER = "X-Sitechat-Visitor-Token"
SECRET_FILE = "visitor_token.secret"
_MAX_TOKEN_CHARS = 1024


@dataclass(frozen=True, slots=True)
class VisitorClaims:
    chatbot_id: str
    origin: str  # "" when the config request carried no Origin (not a browser)
    visitor_id: str
    expires_at: int  # unix seconds


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _equal(a: str, b: str) -> bool:
    """Constant-time equality of two texts, whatever characters they hold."""
    return hmac.compare_digest(
        a.encode("utf-8", "surrogatepass"), b.encode("utf-8", "surrogatepass")
    )


class VisitorTokens:
    def __init__(self, secret: bytes, *, ttl_seconds: int) -> None:
        if len(secret) < 32:
            raise ValueError("a visitor-token secret needs at least 32 bytes")
        self._secret = secret
        self.ttl_seconds = ttl_seconds

    def _sign(self, payload: bytes) -> bytes:
        return hmac.new(self._secret, payload, hashlib.sha256).digest()

    def issue(
        self,
        chatbot_id: str,
        origin: str,
        *,
        visitor_id: str | None = None,
        now: float | None = None,
    ) -> tuple[str, VisitorClaims]:
        issued = int(now if now is not None else time.time())
        claims = VisitorClaims(
            chatbot_id, origin, visitor_id or secrets.token_urlsafe(12), issued + self.ttl_seconds
        )
        payload = json.dumps(
            {
                "c": claims.chatbot_id,
                "o": claims.origin,
                "v": claims.visitor_id,
                "e": claims.expires_at,
            },
            separators=(",", ":"),
        ).encode()
        return f"{_b64(payload)}.{_b64(self._sign(payload))}", claims

    def read(self, token: str) -> VisitorClaims:
        """The claims of a token this deployment signed, expired or not."""
        if (
            not token
            or len(token) > _MAX_TOKEN_CHARS
            or not token.isascii()
            or token.count(".") != 1
        ):
            raise VisitorTokenInvalid()
        encoded_payload, encoded_signature = token.split(".")
        try:
            payload = _unb64(encoded_payload)
            signature = _unb64(encoded_signature)
        except (binascii.Error, ValueError) as exc:
            raise VisitorTokenInvalid() from exc
        if not hmac.compare_digest(signature, self._sign(payload)):
            raise VisitorTokenInvalid()
        try:
            data = json.loads(payload)
            return VisitorClaims(str(data["c"]), str(data["o"]), str(data["v"]), int(data["e"]))
        except (ValueError, KeyError, TypeError, OverflowError) as exc:
            raise VisitorTokenInvalid() from exc

    def verify(
        self, token: str | None, chatbot_id: str, origin: str, *, now: float | None = None
    ) -> VisitorClaims:
        """The claims if ``token`` is valid now for ``chatbot_id`` on ``origin``; else 401."""
        if not token:
            raise VisitorTokenRequired()
        claims = self.read(token)
        if not (_equal(claims.chatbot_id, chatbot_id) and _equal(claims.origin, origin)):
            raise VisitorTokenInvalid()
        if claims.expires_at <= int(now if now is not None else time.time()):
            raise VisitorTokenExpired()
        return claims


def load_or_create_secret(data_dir: Path) -> bytes:
    """The development secret: made once (0600) under ``data_dir`` and reused, so tokens
    survive a restart. Blocking file I/O: call it in a worker thread."""
    path = data_dir / SECRET_FILE
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        pass
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48).encode()
    # Written aside, then linked into place: another process never reads a half-written
    # file, and if two race, both end up with the one that was linked first.
    temporary = data_dir / f".{SECRET_FILE}.{secrets.token_hex(6)}"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(secret)
        try:
            os.link(temporary, path)
        except FileExistsError:
            return path.read_bytes().strip()
    finally:
        temporary.unlink(missing_ok=True)
    return secret
