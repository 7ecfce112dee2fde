"""Ingestion: a source document in, its chunks indexed for one chatbot.

The document row is the record of truth for what was ingested: re-ingesting unchanged
content (same content hash) does nothing; changed content replaces the document's chunks;
a source that cannot be read fails *that* document with a reason and touches nothing else.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import uuid
from dataclasses import dataclass

import anyio

from sitechat.domain import Document
from sitechat.errors import IngestionError, SitechatError
from sitechat.retrieval.base import Chunk, VectorStore
from sitechat.retrieval.chunking import chunk_document
from sitechat.retrieval.loaders import LoadedDocument, load_text
from sitechat.storage.repository import Store

logger = logging.getLogger(__name__)

CHUNK_NAMESPACE = uuid.UUID("6f1d3c52-6a43-4f5e-9a57-2f7b1e0c9d11")


@dataclass(frozen=True, slots=True)
class IngestResult:
    document: Document
    changed: bool  # False when the same content was already indexed


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def chunk_id(document_id: str, position: int, digest: str) -> str:
    return str(uuid.uuid5(CHUNK_NAMESPACE, f"{document_id}:{position}:{digest}"))


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

    async def ingest_bytes(
        self,
        chatbot_id: str,
        data: bytes | str,
        *,
        filename: str | None = None,
        url: str | None = None,
        title: str | None = None,
    ) -> IngestResult:
        try:
            loaded = await anyio.to_thread.run_sync(lambda: load_text(data, filename=filename))
        except IngestionError as exc:
            doc = await self._record_failure(
                chatbot_id, title or filename or url or "untitled", url, exc.message
            )
            raise IngestionError(f"{doc.title}: {exc.message}") from exc
        if title:
            loaded = dataclasses.replace(loaded, title=title)
        return await self.ingest_loaded(chatbot_id, loaded, url=url)

    async def ingest_loaded(
        self, chatbot_id: str, loaded: LoadedDocument, *, url: str | None = None
    ) -> IngestResult:
        digest = content_hash(loaded.text)
        existing = await self.store.find_document(chatbot_id, url=url, title=loaded.title)
        if existing is not None and existing.content_hash == digest and existing.status == "done":
            return IngestResult(existing, changed=False)

        if existing is None:
            document = await self.store.create_document(
                chatbot_id,
                title=loaded.title,
                url=url,
                source_type=loaded.source_type,
                content_hash=digest,
                status="running",
            )
        else:
            updated = await self.store.update_document(
                existing.id, status="running", error=None, content_hash=digest, title=loaded.title
            )
            assert updated is not None
            document = updated

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
            chunks = [
                Chunk(
                    id=chunk_id(document.id, d.position, digest),
                    chatbot_id=chatbot_id,
                    document_id=document.id,
                    position=d.position,
                    text=d.text,
                    title=loaded.title,
                    url=url,
                    heading_path=d.heading_path,
                    token_count=d.token_count,
                )
                for d in drafts
            ]
            await self.vectors.delete_document(chatbot_id, document.id)
            await self.vectors.upsert(chunks)
        except SitechatError as exc:
            await self.store.update_document(document.id, status="failed", error=exc.message)
            raise
        except Exception as exc:
            logger.exception("ingestion of %s failed", document.id)
            await self.store.update_document(
                document.id, status="failed", error="Indexing failed unexpectedly."
            )
            raise IngestionError("Indexing failed unexpectedly.") from exc

        done = await self.store.update_document(
            document.id, status="done", chunk_count=len(chunks), error=None
        )
        assert done is not None
        return IngestResult(done, changed=True)

    async def delete_document(self, chatbot_id: str, document_id: str) -> bool:
        await self.vectors.delete_document(chatbot_id, document_id)
        return await self.store.delete_document(chatbot_id, document_id)

    async def _record_failure(
        self, chatbot_id: str, title: str, url: str | None, reason: str
    ) -> Document:
        existing = await self.store.find_document(chatbot_id, url=url, title=title)
        if existing is not None:
            # Keep the last good chunks of an existing document; only record the failure.
            updated = await self.store.update_document(existing.id, error=reason)
            assert updated is not None
            return updated
        created = await self.store.create_document(
            chatbot_id, title=title, url=url, source_type="unknown", content_hash="",
            status="failed",
        )
        failed = await self.store.update_document(created.id, error=reason)
        assert failed is not None
        return failed
