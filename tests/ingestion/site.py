"""A small website on 127.0.0.1 for fetch and crawl tests: pages, redirects, robots.txt, slow
and oversized answers, and a record of every request it received.

It runs ``http.server`` in a thread, so it serves whatever event loop the test uses.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.support.threaded_server import ThreadedServer


@dataclass
class Page:
    body: bytes = b""
    status: int = 200
    content_type: str = "text/html; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before the answer starts
    # Stream this many extra bytes after ``body`` without a Content-Length.
    endless_bytes: int = 0


@dataclass(frozen=True)
class Hit:
    path: str
    host: str
    user_agent: str


class Site(ThreadedServer):
    def __init__(self, host: str = "127.0.0.1") -> None:
        self.pages: dict[str, Page] = {}
        self.hits: list[Hit] = []
        self._host = host
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        assert self._server is not None
        return self._server.server_address[1]

    def url(self, path: str = "/", host: str | None = None) -> str:
        return f"http://{host or self._host}:{self.port}{path}"

    def add(self, path: str, body: str | bytes = b"", **options: object) -> None:
        data = body.encode() if isinstance(body, str) else body
        self.pages[path] = Page(data, **options)  # type: ignore[arg-type]

    def html(self, path: str, title: str, text: str, links: tuple[str, ...] = ()) -> None:
        anchors = "".join(f'<a href="{link}">{link}</a> ' for link in links)
        self.add(
            path,
            f"<html><head><title>{title}</title></head><body><nav>{anchors}</nav>"
            f"<main><h1>{title}</h1><p>{text}</p></main></body></html>",
        )

    def paths(self) -> list[str]:
        return [hit.path for hit in self.hits]

    def start(self) -> None:
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                site.hits.append(
                    Hit(self.path, self.headers.get("Host", ""), self.headers.get("User-Agent", ""))
                )
                page = site.pages.get(self.path)
                if page is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if page.delay:
                    time.sleep(page.delay)
                self.send_response(page.status)
                self.send_header("Content-Type", page.content_type)
                for key, value in page.headers.items():
                    self.send_header(key, value)
                if not page.endless_bytes:
                    self.send_header("Content-Length", str(len(page.body)))
                self.end_headers()
                try:
                    self.wfile.write(page.body)
                    for _ in _chunks(page.endless_bytes):
                        self.wfile.write(b"x" * 65536)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client stopped reading: that is what the test wanted

            def log_message(self, format: str, *args: object) -> None:
                return

        self._server = ThreadingHTTPServer((self._host, 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        assert self._server is not None and self._thread is not None
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


def _chunks(total: int) -> Iterator[None]:
    for _ in range(0, total, 65536):
        yield None
