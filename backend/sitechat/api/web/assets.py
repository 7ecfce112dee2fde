"""Static files served from memory: bytes, their gzip, an ETag, and conditional answers.

The widget is one small file that every visitor of every embedding site downloads, so it is
read once, compressed once, and answered with ``304 Not Modified`` when the browser already
has it. In development the file is re-read when it changes on disk, so a rebuild
(``make widget``, after editing ``widget/src/``) shows up on the next page load without a
restart.

Caching: the embed URL ``/widget/sitechat.js`` carries no version, so a year-long cache would
pin visitors to an old widget after a fix; it gets one day (and a week of
stale-while-revalidate) plus the ETag. A URL with ``?v=…`` (the demo page uses the content
hash) is immutable for a year. nginx's ``/widget/`` location uses the same two policies.
"""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass
from pathlib import Path

import anyio
from starlette.requests import Request
from starlette.responses import Response

CACHE_UNVERSIONED = "public, max-age=86400, stale-while-revalidate=604800"
CACHE_VERSIONED = "public, max-age=31536000, immutable"


@dataclass(frozen=True, slots=True)
class StaticAsset:
    body: bytes
    gzipped: bytes
    etag: str  # weak: the gzip and identity bodies are the same resource
    version: str  # short content hash, for ``?v=`` URLs
    media_type: str
    mtime_ns: int

    @classmethod
    def from_bytes(cls, body: bytes, media_type: str, mtime_ns: int = 0) -> StaticAsset:
        digest = hashlib.sha256(body).hexdigest()
        return cls(
            body=body,
            gzipped=gzip.compress(body, compresslevel=9, mtime=0),
            etag=f'W/"{digest[:32]}"',
            version=digest[:12],
            media_type=media_type,
            mtime_ns=mtime_ns,
        )


def load_asset(path: Path, media_type: str) -> StaticAsset:
    """Reads a file synchronously: for startup, before the event loop serves anything."""
    return StaticAsset.from_bytes(path.read_bytes(), media_type, path.stat().st_mtime_ns)


async def reload_if_changed(asset: StaticAsset, path: Path) -> StaticAsset:
    """The same asset, or a fresh one if the file changed on disk (reads in a thread)."""
    apath = anyio.Path(path)
    stat = await apath.stat()
    if stat.st_mtime_ns == asset.mtime_ns:
        return asset
    body = await apath.read_bytes()
    return StaticAsset.from_bytes(body, asset.media_type, stat.st_mtime_ns)


def _etag_matches(header: str, etag: str) -> bool:
    if header.strip() == "*":
        return True
    opaque = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == opaque for tag in header.split(","))


def _accepts_gzip(header: str) -> bool:
    for part in header.split(","):
        coding, _, params = part.strip().partition(";")
        if coding.strip().lower() in {"gzip", "*"}:
            q = params.strip().removeprefix("q=") if params.strip().startswith("q=") else "1"
            try:
                return float(q) > 0
            except ValueError:
                return False
    return False


def asset_response(request: Request, asset: StaticAsset) -> Response:
    """200 (gzip when accepted), or 304 when the browser's copy is current."""
    cache = CACHE_VERSIONED if request.query_params.get("v") else CACHE_UNVERSIONED
    headers = {
        "ETag": asset.etag,
        "Cache-Control": cache,
        "Vary": "Accept-Encoding",
        "X-Content-Type-Options": "nosniff",
        # Host pages that isolate themselves (COEP) may still load the widget script.
        "Cross-Origin-Resource-Policy": "cross-origin",
    }
    if _etag_matches(request.headers.get("if-none-match", ""), asset.etag):
        return Response(status_code=304, headers=headers)
    body = asset.body
    if _accepts_gzip(request.headers.get("accept-encoding", "")):
        body = asset.gzipped
        headers["Content-Encoding"] = "gzip"
    if request.method == "HEAD":
        headers["Content-Length"] = str(len(body))
        return Response(status_code=200, headers=headers, media_type=asset.media_type)
    return Response(body, headers=headers, media_type=asset.media_type)
