"""Ingestion: a source document in, its chunks indexed for one chatbot.

The document row is the record of truth for what was ingested:

- A document is identified by its *source*: its URL, or ``file:<name>`` for an upload, or
  ``text:<title>`` for pasted text (``metadata["source"]``), so uploading the same file again
  updates the same document instead of adding a twin.
- ``content_hash`` is the hash of the text that is *indexed*: it changes only when indexing
  succeeded. Re-ingesting unchanged content does nothing; changed content replaces the
  document's chunks.
- A source that cannot be read fails *that* document with a reason and touches nothing else;
  a document that had been indexed before keeps its last good chunks (and says it failed).
- Deleting a document removes its chunks; deleting a crawl removes its pages too.

Progress lives in ``metadata["progress"]`` (pages, chunks) for the job API to show.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import anyio

from sitechat.domain import Document, DocumentStatus
from sitechat.errors import DocumentNotFound, IngestionError, SitechatError
from sitechat.ingestion.chunking import chunk_document
from sitechat.ingestion.loaders import LoadedDocument, load_document
from sitechat.retrieval.base import Chunk, VectorStore
from sitechat.storage.store import Store

logger = logging.getLogger(__name__)

CHUNK_NAMESPACE = uuid.UUID("6f1d3c52-6a43-4f5e-9a57-2f7b1e0c9d11")
UNEXPECTED = "Indexing failed unexpectedly."

Progress = Callable[[int], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class IngestResult:
    document: Document
    changed: bool  # False when the same content was already indexed


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def chunk_id(document_id: str, position: int, digest: str) -> str:
    return str(uuid.uuid5(CHUNK_NAMESPACE, f"{document_id}:{position}:{digest}"))


def source_key(
    *,
    url: str | None = None,
    filename: str | None = None,
    title: str | None = None,
    crawl: bool = False,
) -> str:
    """What identifies a document's source: a page's URL, a site crawl's start URL, an
    uploaded file's name, or pasted text's title."""
    if url:
        return f"{'crawl' if crawl else 'url'}:{url}"
    if filename:
        return f"file:{filename}"
    return f"text:{title or 'untitled'}"


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class Ingestor:
    def __init__(
        self,
        store: Store,
        vectors: VectorStore,
        *,
        max_chunk_tokens: int = 300,
        overlap_tokens: int = 50,
    ) -> None:
        self.store = store
        self.vectors = vectors
        self.max_chunk_tokens = max_chunk_tokens
        self.overlap_tokens = overlap_tokens

    # --- one call, start to end (CLI, demo, tests) ----------------------------------------

    async def ingest_bytes(
        self,
        chatbot_id: str,
        data: bytes | str,
        *,
        filename: str | None = None,
        url: str | None = None,
        title: str | None = None,
        content_type: str | None = None,
    ) -> IngestResult:
        """Load, chunk and index one document now. ``IngestionError`` when it fails (the
        document is recorded as failed with the reason)."""
        key = source_key(url=url, filename=filename, title=title)
        document = await self.claim(
            chatbot_id,
            key=key,
            title=title or filename or url or "Untitled",
            url=url,
            status="running",
        )
        return await self.ingest_claimed(
            document, data, filename=filename, title=title, content_type=content_type
        )

    async def ingest_loaded(
        self, chatbot_id: str, loaded: LoadedDocument, *, url: str | None = None
    ) -> IngestResult:
        key = source_key(url=url, title=loaded.title)
        document = await self.claim(
            chatbot_id, key=key, title=loaded.title, url=url, status="running"
        )
        return await self.index(document, loaded)

    # --- the steps a job runs -------------------------------------------------------------

    async def claim(
        self,
        chatbot_id: str,
        *,
        key: str,
        title: str,
        url: str | None,
        status: DocumentStatus,
        source_type: str = "unknown",
        metadata: dict[str, Any] | None = None,
    ) -> Document:
        """The document for this source, created if new, with ``status`` set.

        Its content hash and chunks stay as they are until indexing succeeds.
        """
        existing = await self.find_source(chatbot_id, key, url=url, title=title)
        extra = {"source": key, **(metadata or {})}
        if existing is None:
            return await self.store.create_document(
                chatbot_id,
                title=title,
                url=url,
                source_type=source_type,
                content_hash="",
                status=status,
                metadata=extra,
            )
        merged = {**existing.metadata, **extra}
        merged.pop("progress", None)
        updated = await self.store.update_document(
            existing.id, status=status, error=None, metadata=merged
        )
        if updated is None:
            raise DocumentNotFound()
        return updated

    async def find_source(
        self, chatbot_id: str, key: str, *, url: str | None, title: str | None
    ) -> Document | None:
        # The store has no lookup by metadata yet: a chatbot's documents number in the
        # hundreds, and this runs once per ingested source, never on the chat path.
        legacy: Document | None = None
        for document in await self.store.list_documents(chatbot_id):
            if document.metadata.get("source") == key:
                return document
            if legacy is None and "source" not in document.metadata:
                # Indexed before documents carried their source: matched as they were then.
                same = (
                    document.url == url
                    if url is not None
                    else (document.url is None and document.title == title)
                )
                legacy = document if same else None
        return legacy

    async def ingest_claimed(
        self,
        document: Document,
        data: bytes | str,
        *,
        filename: str | None = None,
        title: str | None = None,
        content_type: str | None = None,
        url: str | None = None,
    ) -> IngestResult:
        """Load ``data`` and index it into ``document``; on failure record why and raise."""
        try:
            loaded = await anyio.to_thread.run_sync(
                lambda: load_document(
                    data, filename=filename, content_type=content_type, url=url or document.url
                )
            )
        except IngestionError as exc:
            await self.fail(document, exc.message)
            raise IngestionError(f"{title or filename or document.title}: {exc.message}") from exc
        except Exception as exc:
            logger.exception("loading document %s failed", document.id)
            await self.fail(document, "The document could not be read.")
            raise IngestionError("The document could not be read.") from exc
        if title:
            loaded = dataclasses.replace(loaded, title=title)
        return await self.index(document, loaded)

    async def index(
        self, document: Document, loaded: LoadedDocument, *, on_chunks: Progress | None = None
    ) -> IngestResult:
        digest = content_hash(loaded.text)
        if document.content_hash == digest and document.chunk_count > 0:
            done = await self._finish(document, loaded, digest, document.chunk_count)
            return IngestResult(done, changed=False)
        try:
            drafts = await anyio.to_thread.run_sync(
                lambda: chunk_document(
                    loaded.text,
                    title=loaded.title,
                    fmt=loaded.fmt,
                    max_tokens=self.max_chunk_tokens,
                    overlap_tokens=self.overlap_tokens,
                )
            )
            if not drafts:
                raise IngestionError("The document has no text to index.")
            if on_chunks is not None:
                await on_chunks(len(drafts))
            chunks = [
                Chunk(
                    id=chunk_id(document.id, d.position, digest),
                    chatbot_id=document.chatbot_id,
                    document_id=document.id,
                    position=d.position,
                    text=d.text,
                    title=loaded.title,
                    url=document.url,
                    heading_path=d.heading_path,
                    token_count=d.token_count,
                )
                for d in drafts
            ]
            # Replace: chunk ids depend on the content hash, so old and new never collide.
            await self.vectors.delete_document(document.chatbot_id, document.id)
            await self.vectors.upsert(chunks)
        except SitechatError as exc:
            await self.fail(document, exc.message)
            raise
        except Exception as exc:
            logger.exception("indexing document %s failed", document.id)
            await self.fail(document, UNEXPECTED)
            raise IngestionError(UNEXPECTED) from exc
        done = await self._finish(document, loaded, digest, len(chunks))
        return IngestResult(done, changed=True)

    async def _finish(
        self, document: Document, loaded: LoadedDocument, digest: str, chunk_count: int
    ) -> Document:
        current = await self.store.get_document(document.chatbot_id, document.id)
        metadata = dict((current or document).metadata)
        progress = dict(metadata.get("progress") or {})
        progress["chunks"] = chunk_count
        metadata["progress"] = progress
        done = await self.store.update_document(
            document.id,
            status="done",
            error=None,
            title=loaded.title,
            source_type=loaded.source_type,
            content_hash=digest,
            chunk_count=chunk_count,
            metadata=metadata,
        )
        if done is None:
            raise DocumentNotFound()  # deleted while it was being indexed
        return done

    async def fail(self, document: Document, reason: str) -> Document | None:
        """Record why ``document`` failed. Its last good chunks, if any, stay searchable."""
        return await self.store.update_document(document.id, status="failed", error=reason)

    async def update_metadata(self, document: Document, **values: Any) -> Document | None:
        current = await self.store.get_document(document.chatbot_id, document.id)
        if current is None:
            return None
        return await self.store.update_document(
            document.id, metadata={**current.metadata, **values}
        )

    async def delete_document(self, chatbot_id: str, document_id: str) -> bool:
        """Remove a document and its chunks; for a crawl, its pages too."""
        document = await self.store.get_document(chatbot_id, document_id)
        if document is None:
            return False
        if document.source_type == "site":
            for page in await self.store.list_documents(chatbot_id):
                if page.metadata.get("parent") == document.id:
                    await self.vectors.delete_document(chatbot_id, page.id)
                    await self.store.delete_document(chatbot_id, page.id)
        await self.vectors.delete_document(chatbot_id, document_id)
        return await self.store.delete_document(chatbot_id, document_id)
