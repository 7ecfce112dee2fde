"""Ingestion jobs: accept a source now, index it in the background, report status and progress.

A job's record is its document row: ``status`` (``queued`` → ``running`` → ``done`` or
``failed`` with ``error``), ``chunk_count``, and ``metadata["progress"]`` (``pages_total``,
``pages_done``, ``pages_failed``, ``chunks``) and ``metadata["job"]`` (timestamps). A site
crawl is one job whose record is a ``site`` document; each page becomes a document of its
own (``metadata["parent"]`` names the crawl), so a failing page fails alone.

Jobs run in this process, at most ``concurrency`` at a time, on tasks owned by
``IngestionJobs``; ``aclose()`` cancels what is still running and marks it failed, so no
document stays ``running`` forever after a shutdown. The admin API and the CLI both submit
through here; the CLI waits for its jobs with ``wait()``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import anyio

from sitechat.domain import Document
from sitechat.errors import Conflict, DocumentNotFound, IngestionError, SitechatError
from sitechat.ingestion.core import Ingestor, now_iso, source_key
from sitechat.ingestion.crawl import Crawler, CrawlOptions
from sitechat.ingestion.fetch import FetchedPage, Fetcher, FetchPolicy

logger = logging.getLogger(__name__)

INTERRUPTED = "Ingestion was interrupted (the server stopped); submit the document again."

Work = Callable[[], Coroutine[Any, Any, None]]


@dataclass(frozen=True, slots=True)
class Upload:
    data: bytes | str
    filename: str | None = None
    content_type: str | None = None
    title: str | None = None


class IngestionJobs:
    def __init__(
        self,
        ingestor: Ingestor,
        *,
        fetch_policy: FetchPolicy | None = None,
        concurrency: int = 2,
    ) -> None:
        self.ingestor = ingestor
        self.fetch_policy = fetch_policy or FetchPolicy()
        self._limiter = anyio.CapacityLimiter(concurrency)
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._documents: dict[str, Document] = {}
        self._closed = False

    # --- submitting -----------------------------------------------------------------------

    async def submit_upload(self, chatbot_id: str, upload: Upload) -> Document:
        """Queue a file or pasted text. Returns its document, status ``queued``."""
        key = source_key(filename=upload.filename, title=upload.title)
        document = await self._claim(
            chatbot_id, key=key, title=upload.title or upload.filename or "Untitled", url=None
        )

        async def work() -> None:
            await self.ingestor.ingest_claimed(
                document,
                upload.data,
                filename=upload.filename,
                title=upload.title,
                content_type=upload.content_type,
            )

        return self._start(document, work)

    async def submit_url(
        self, chatbot_id: str, url: str, *, crawl: CrawlOptions | None = None
    ) -> Document:
        """Queue one page, or a whole site when ``crawl`` is given."""
        if crawl is None:
            document = await self._claim(chatbot_id, key=source_key(url=url), title=url, url=url)
            return self._start(document, lambda: self._fetch_one(document))
        document = await self._claim(
            chatbot_id,
            key=source_key(url=url, crawl=True),
            title=url,
            url=url,
            source_type="site",
            metadata={
                "crawl": {
                    "max_pages": crawl.max_pages,
                    "max_depth": crawl.max_depth,
                    "sitemap": crawl.use_sitemap,
                }
            },
        )
        return self._start(document, lambda: self._crawl(document, crawl))

    async def _claim(
        self,
        chatbot_id: str,
        *,
        key: str,
        title: str,
        url: str | None,
        source_type: str = "unknown",
        metadata: dict[str, Any] | None = None,
    ) -> Document:
        if self._closed:
            raise SitechatError("Ingestion is shutting down.")
        existing = await self.ingestor.find_source(chatbot_id, key, url=url, title=title)
        if existing is not None and existing.id in self._tasks:
            raise Conflict("This document is already being ingested.")
        return await self.ingestor.claim(
            chatbot_id,
            key=key,
            title=title,
            url=url,
            status="queued",
            source_type=source_type if existing is None else existing.source_type,
            metadata={"job": {"submitted_at": now_iso()}, **(metadata or {})},
        )

    def _start(self, document: Document, work: Work) -> Document:
        task = asyncio.create_task(self._run(document, work), name=f"ingest-{document.id}")
        self._tasks[document.id] = task
        self._documents[document.id] = document

        def forget(_task: asyncio.Task[None]) -> None:
            self._tasks.pop(document.id, None)
            self._documents.pop(document.id, None)

        task.add_done_callback(forget)
        return document

    # --- running --------------------------------------------------------------------------

    async def _run(self, document: Document, work: Work) -> None:
        try:
            async with self._limiter:
                await self.ingestor.store.update_document(document.id, status="running")
                await self._stamp(document, started_at=now_iso())
                try:
                    await work()
                except (IngestionError, DocumentNotFound):
                    pass  # recorded on the document by the ingestor
                except SitechatError as exc:
                    await self.ingestor.fail(document, exc.message)
                except Exception:
                    logger.exception("ingestion job for %s crashed", document.id)
                    await self.ingestor.fail(document, "Ingestion failed unexpectedly.")
                await self._stamp(document, finished_at=now_iso())
        except asyncio.CancelledError:
            with anyio.CancelScope(shield=True):
                await self._mark_interrupted(document)
            raise

    async def _stamp(self, document: Document, **times: str) -> None:
        current = await self.ingestor.store.get_document(document.chatbot_id, document.id)
        if current is not None:
            job = {**(current.metadata.get("job") or {}), **times}
            await self.ingestor.update_metadata(current, job=job)

    async def _mark_interrupted(self, document: Document) -> None:
        try:
            current = await self.ingestor.store.get_document(document.chatbot_id, document.id)
            if current is not None and current.status in ("queued", "running"):
                await self.ingestor.fail(current, INTERRUPTED)
        except Exception:
            logger.exception("could not mark document %s as interrupted", document.id)

    async def _fetch_one(self, document: Document) -> None:
        assert document.url is not None
        fetcher = Fetcher(self.fetch_policy)
        try:
            page = await fetcher.fetch(document.url)
        except IngestionError as exc:
            await self.ingestor.fail(document, exc.message)
            return
        finally:
            await fetcher.aclose()
        await self.ingestor.update_metadata(
            document, progress={"pages_total": 1, "pages_done": 1, "pages_failed": 0}
        )
        await self.ingestor.ingest_claimed(document, page.data, content_type=page.content_type)

    async def _crawl(self, root: Document, options: CrawlOptions) -> None:
        assert root.url is not None
        progress = {"pages_total": 0, "pages_done": 0, "pages_failed": 0, "chunks": 0}
        fetcher = Fetcher(self.fetch_policy)
        try:
            async for result in Crawler(fetcher, options).pages(root.url):
                progress["pages_total"] += 1
                ok, chunks = await self._crawled_page(root, result.url, result.page, result.error)
                progress["pages_done" if ok else "pages_failed"] += 1
                progress["chunks"] += chunks
                await self.ingestor.update_metadata(root, progress=dict(progress))
        except IngestionError as exc:
            await self.ingestor.fail(root, exc.message)
            return
        finally:
            await fetcher.aclose()
        if progress["pages_done"] == 0:
            await self.ingestor.fail(root, "No page of the site could be ingested.")
            return
        await self.ingestor.store.update_document(
            root.id, status="done", error=None, chunk_count=progress["chunks"]
        )

    async def _crawled_page(
        self, root: Document, url: str, page: FetchedPage | None, error: str | None
    ) -> tuple[bool, int]:
        document = await self.ingestor.claim(
            root.chatbot_id,
            key=source_key(url=url),
            title=url,
            url=url,
            status="running",
            metadata={"parent": root.id},
        )
        if page is None:
            await self.ingestor.fail(document, error or "The page could not be fetched.")
            return False, 0
        try:
            result = await self.ingestor.ingest_claimed(
                document, page.data, content_type=page.content_type
            )
        except (IngestionError, DocumentNotFound):
            return False, 0
        return True, result.document.chunk_count

    # --- waiting and closing --------------------------------------------------------------

    def running(self, document_id: str) -> bool:
        return document_id in self._tasks

    async def cancel(self, document_id: str) -> None:
        """Stop the job of ``document_id`` (if any) and wait until it has stopped."""
        task = self._tasks.get(document_id)
        if task is not None:
            task.cancel()
            await asyncio.wait({task})

    async def wait(self, document_id: str) -> None:
        """Until the job of ``document_id`` (if any) has ended."""
        task = self._tasks.get(document_id)
        if task is not None:
            await asyncio.wait({task})

    async def aclose(self) -> None:
        self._closed = True
        tasks = list(self._tasks.values())
        documents = list(self._documents.values())
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
        # A job cancelled before it started never ran its own handler: mark it here.
        for document in documents:
            await self._mark_interrupted(document)
