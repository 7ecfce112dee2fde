"""Ingestion jobs: accept a source now, index it in the background, report status and progress.

A job's public record is its document row: ``status`` (``queued`` → ``running`` → ``done``
or ``failed`` with ``error``), ``chunk_count``, and ``metadata["progress"]``
(``pages_total``, ``pages_done``, ``pages_failed``, ``chunks``) and ``metadata["job"]``
(timestamps). A site crawl is one job whose record is a ``site`` document; each page becomes
a document of its own (``metadata["parent"]`` names the crawl), so a failing page fails alone.

Submitting writes the document and a job row in the database queue (``storage.jobs``) and
returns at once; whichever process runs a ``JobRunner`` (the server on the embedded
defaults, ``sitechat worker`` in a deployment, or the CLI for its own jobs when no server
holds the index) claims the job and calls ``execute``. So an upload through one API process
can be indexed by another, and the CLI can add documents while a server runs.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anyio

from sitechat.domain import Document
from sitechat.errors import Conflict, DocumentNotFound, IngestionError, SitechatError
from sitechat.ingestion.core import Ingestor, now_iso, source_key
from sitechat.ingestion.crawl import Crawler, CrawlOptions
from sitechat.ingestion.fetch import FetchedPage, Fetcher, FetchPolicy
from sitechat.ingestion.netguard import parse_networks
from sitechat.storage.jobs import Job, JobQueue, JobStatus

logger = logging.getLogger(__name__)

INTERRUPTED = "Ingestion was interrupted (the server stopped); submit the document again."
OPEN_STATUSES = ("queued", "running")


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
        queue: JobQueue,
        *,
        fetch_policy: FetchPolicy | None = None,
        wait_poll_seconds: float = 0.2,
    ) -> None:
        self.ingestor = ingestor
        self.queue = queue
        self.fetch_policy = fetch_policy or FetchPolicy()
        self.wait_poll_seconds = wait_poll_seconds
        # Called after a job is queued: the local runner, if this process has one, looks
        # at once instead of at its next poll.
        self.on_queued: Callable[[], None] | None = None

    # --- submitting -----------------------------------------------------------------------

    async def submit_upload(self, chatbot_id: str, upload: Upload) -> Document:
        """Queue a file or pasted text. Returns its document, status ``queued``."""
        key = source_key(filename=upload.filename, title=upload.title)
        document = await self._claim(
            chatbot_id, key=key, title=upload.title or upload.filename or "Untitled", url=None
        )
        is_text = isinstance(upload.data, str)
        data = upload.data.encode("utf-8") if isinstance(upload.data, str) else upload.data
        payload = {
            "filename": upload.filename,
            "content_type": upload.content_type,
            "title": upload.title,
            "text": is_text,
        }
        return await self._enqueue(document, "upload", payload, data)

    async def submit_url(
        self,
        chatbot_id: str,
        url: str,
        *,
        crawl: CrawlOptions | None = None,
        allowed_networks: list[str] | None = None,
    ) -> Document:
        """Queue one page, or a whole site when ``crawl`` is given.

        ``allowed_networks``: private networks this job may fetch from besides the
        deployment's own (the operator's CLI ``--allow-network``; the admin API never sets
        it). Checked here, so a bad entry fails the submission, not the job.
        """
        networks = list(allowed_networks or [])
        parse_networks(networks)  # ValueError names a bad entry
        if crawl is None:
            document = await self._claim(chatbot_id, key=source_key(url=url), title=url, url=url)
            return await self._enqueue(document, "url", {"url": url, "allowed_networks": networks})
        options = {
            "max_pages": crawl.max_pages,
            "max_depth": crawl.max_depth,
            "sitemap": crawl.use_sitemap,
        }
        document = await self._claim(
            chatbot_id,
            key=source_key(url=url, crawl=True),
            title=url,
            url=url,
            source_type="site",
            metadata={"crawl": options},
        )
        return await self._enqueue(
            document, "crawl", {"url": url, "crawl": options, "allowed_networks": networks}
        )

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
        existing = await self.ingestor.find_source(chatbot_id, key, url=url, title=title)
        if existing is not None and await self.queue.open_jobs([existing.id]):
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

    async def _enqueue(
        self, document: Document, kind: Any, payload: dict[str, Any], data: bytes | None = None
    ) -> Document:
        await self.queue.enqueue(
            document_id=document.id,
            chatbot_id=document.chatbot_id,
            kind=kind,
            payload=payload,
            data=data,
        )
        if self.on_queued is not None:
            self.on_queued()
        return document

    # --- running (in the process whose runner claimed the job) ----------------------------

    async def execute(self, job: Job) -> JobStatus:
        """Run a claimed job; its outcome is recorded on its document."""
        document = await self.ingestor.store.get_document(job.chatbot_id, job.document_id)
        if document is None:
            return "cancelled"  # deleted while queued
        await self.ingestor.store.update_document(document.id, status="running")
        await self._stamp(document, started_at=now_iso())
        try:
            await self._work(job, document)
        except (IngestionError, DocumentNotFound):
            pass  # recorded on the document by the ingestor
        except SitechatError as exc:
            await self.ingestor.fail(document, exc.message)
        except Exception:
            logger.exception("ingestion job for %s crashed", document.id)
            await self.ingestor.fail(document, "Ingestion failed unexpectedly.")
        await self._stamp(document, finished_at=now_iso())
        current = await self.ingestor.store.get_document(job.chatbot_id, job.document_id)
        return "done" if current is not None and current.status == "done" else "failed"

    async def _work(self, job: Job, document: Document) -> None:
        payload = job.payload
        if job.kind == "upload":
            raw = job.data or b""
            data: bytes | str = raw.decode("utf-8") if payload.get("text") else raw
            await self.ingestor.ingest_claimed(
                document,
                data,
                filename=payload.get("filename"),
                title=payload.get("title"),
                content_type=payload.get("content_type"),
            )
        elif job.kind == "url":
            await self._fetch_one(document, self._policy(payload))
        else:
            options = payload.get("crawl") or {}
            defaults = CrawlOptions()
            crawl = CrawlOptions(
                max_pages=int(options.get("max_pages", defaults.max_pages)),
                max_depth=int(options.get("max_depth", defaults.max_depth)),
                use_sitemap=bool(options.get("sitemap", defaults.use_sitemap)),
            )
            await self._crawl(document, crawl, self._policy(payload))

    def _policy(self, payload: dict[str, Any]) -> FetchPolicy:
        extra = parse_networks(payload.get("allowed_networks") or [])
        if not extra:
            return self.fetch_policy
        addresses = self.fetch_policy.addresses
        wider = dataclasses.replace(addresses, allowed=tuple(addresses.allowed) + tuple(extra))
        return dataclasses.replace(self.fetch_policy, addresses=wider)

    async def requeued(self, job: Job, failed: bool) -> None:
        """A job whose runner stopped or died: its document says so."""
        try:
            document = await self.ingestor.store.get_document(job.chatbot_id, job.document_id)
            if document is None or document.status not in OPEN_STATUSES:
                return
            if failed:
                await self.ingestor.fail(document, INTERRUPTED)
            else:
                await self.ingestor.store.update_document(document.id, status="queued")
        except Exception:
            logger.exception("could not record the requeue of document %s", job.document_id)

    async def _stamp(self, document: Document, **times: str) -> None:
        current = await self.ingestor.store.get_document(document.chatbot_id, document.id)
        if current is not None:
            job = {**(current.metadata.get("job") or {}), **times}
            await self.ingestor.update_metadata(current, job=job)

    async def _fetch_one(self, document: Document, policy: FetchPolicy) -> None:
        assert document.url is not None
        fetcher = Fetcher(policy)
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

    async def _crawl(self, root: Document, options: CrawlOptions, policy: FetchPolicy) -> None:
        assert root.url is not None
        progress = {"pages_total": 0, "pages_done": 0, "pages_failed": 0, "chunks": 0}
        fetcher = Fetcher(policy)
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

    # --- waiting and cancelling -----------------------------------------------------------

    async def running(self, document_id: str) -> bool:
        """True while the document has a job queued or running (in any process)."""
        return bool(await self.queue.open_jobs([document_id]))

    async def cancel(self, document_id: str) -> None:
        """Cancel the document's open jobs; a runner holding one stops it at its next
        heartbeat (and never writes chunks for a document that is gone)."""
        await self.queue.cancel_document(document_id)

    async def wait(self, document_id: str) -> None:
        """Until the document's jobs have ended (whoever runs them)."""
        # Polled: the job may run in another process, and only the database knows.
        while await self.running(document_id):  # noqa: ASYNC110
            await anyio.sleep(self.wait_poll_seconds)
