"""The widget file and the demo page, as one router the app includes.

``GET /widget/sitechat.js`` serves the embeddable widget: the file esbuild bundles from
``widget/src/`` into this package's ``static/`` folder (``make widget``), so a wheel install
serves it without node. ``GET /`` is the demo page that
``make run`` opens: a plain page embedding the real widget for the chatbot ``demo``, the way
an owner's site would, with a strict Content-Security-Policy that the widget must live with.
"""

from __future__ import annotations

import base64
import hashlib
import html
import logging
import re
from importlib import resources
from pathlib import Path

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from sitechat.api.web.assets import StaticAsset, asset_response, load_asset, reload_if_changed
from sitechat.config import Settings
from sitechat.domain import DEMO_CHATBOT_ID

log = logging.getLogger(__name__)

WIDGET_FILES: dict[str, str] = {"sitechat.js": "text/javascript; charset=utf-8"}


def default_widget_dir() -> Path:
    """The built widget inside this package (``static/``)."""
    return Path(__file__).resolve().parent / "static"


def _inline_hashes(page: str, tag: str) -> str:
    """CSP source expressions for the page's own inline ``<script>``/``<style>`` blocks."""
    blocks = re.findall(rf"<{tag}>(.*?)</{tag}>", page, flags=re.DOTALL)
    return " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(b.encode()).digest()).decode() + "'"
        for b in blocks
    )


def demo_csp(page: str) -> str:
    return "; ".join(
        [
            "default-src 'none'",
            f"script-src 'self' {_inline_hashes(page, 'script')}",
            f"style-src 'self' {_inline_hashes(page, 'style')}",
            "connect-src 'self'",
            "img-src 'self' https: data:",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        ]
    )


def render_demo_page(template: str, *, widget_src: str, widget_url: str, chatbot_id: str) -> str:
    values = {
        "WIDGET_SRC": html.escape(widget_src),
        "WIDGET_URL": html.escape(widget_url),
        "CHATBOT_ID": html.escape(chatbot_id),
    }
    return re.sub(r"\{\{(\w+)\}\}", lambda m: values[m.group(1)], template)


def build_web_router(settings: Settings, *, widget_dir: Path | None = None) -> APIRouter:
    """Routes for ``/widget/<file>`` and the demo page at ``/``.

    Files are read here, once, when the app is built; in ``development`` a changed file is
    re-read on the next request. A missing widget file is logged and answered with 404, so
    the API still serves.
    """
    folder = widget_dir or default_widget_dir()
    reload = settings.environment == "development"
    assets: dict[str, StaticAsset] = {}
    for name, media_type in WIDGET_FILES.items():
        path = folder / name
        if path.is_file():
            assets[name] = load_asset(path, media_type)
        else:
            log.warning("widget file %s is missing: /widget/%s will answer 404", path, name)
    template = (resources.files("sitechat.api.web") / "static" / "demo.html").read_text("utf-8")

    router = APIRouter(include_in_schema=False)

    async def widget_file(request: Request, name: str) -> Response:
        asset = assets.get(name)
        if asset is None:
            return Response("Not found\n", status_code=404, media_type="text/plain")
        if reload:
            asset = assets[name] = await reload_if_changed(asset, folder / name)
        return asset_response(request, asset)

    async def demo_page(request: Request) -> Response:
        asset = assets.get("sitechat.js")
        version = f"?v={asset.version}" if asset is not None else ""
        page = render_demo_page(
            template,
            widget_src=f"/widget/sitechat.js{version}",
            widget_url=f"{str(request.base_url).rstrip('/')}/widget/sitechat.js",
            chatbot_id=DEMO_CHATBOT_ID,
        )
        headers = {
            "Cache-Control": "no-cache",
            "Content-Security-Policy": demo_csp(page),
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
        }
        return HTMLResponse(page, headers=headers)

    router.add_api_route("/widget/{name}", widget_file, methods=["GET", "HEAD"])
    router.add_api_route("/", demo_page, methods=["GET", "HEAD"])
    return router
