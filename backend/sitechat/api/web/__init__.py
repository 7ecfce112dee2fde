"""The browser-facing side: the embeddable widget file and the demo page."""

from __future__ import annotations

from sitechat.api.web.router import build_web_router

__all__ = ["build_web_router"]
