"""Documents of a chatbot and their ingestion status."""

from __future__ import annotations

from typing import Any, get_args

from sqlalchemy import delete, select

from sitechat.domain import (
    Document,
    DocumentStatus,
)
from sitechat.storage import records
from sitechat.storage.base import Repository, check_choice, check_fields, new_id, rowcount, utcnow
from sitechat.storage.models import (
    DocumentRow,
)

_DOCUMENT_FIELDS = frozenset(
    {"status", "chunk_count", "error", "content_hash", "title", "metadata", "url", "source_type"}
)
_DOCUMENT_STATUSES = frozenset(get_args(DocumentStatus))


class DocumentStore(Repository):
    # --- documents -----------------------------------------------------------------------

    async def create_document(
        self,
        chatbot_id: str,
        *,
        title: str,
        url: str | None,
        source_type: str,
        content_hash: str,
        status: DocumentStatus = "queued",
        metadata: dict[str, Any] | None = None,
    ) -> Document:
        check_choice(status, _DOCUMENT_STATUSES, "status")
        now = utcnow()
        row = DocumentRow(
            id=new_id(),
            chatbot_id=chatbot_id,
            title=title,
            url=url,
            source_type=source_type,
            content_hash=content_hash,
            status=status,
            chunk_count=0,
            error=None,
            meta=dict(metadata or {}),
            created_at=now,
            updated_at=now,
        )
        async with self._db.session(write=True) as session:
            session.add(row)
            await session.commit()
        return records.document(row)

    async def get_document(self, chatbot_id: str, document_id: str) -> Document | None:
        async with self._db.session() as session:
            row = await session.scalar(
                select(DocumentRow).where(
                    DocumentRow.id == document_id, DocumentRow.chatbot_id == chatbot_id
                )
            )
            return records.document(row) if row is not None else None

    async def find_document(
        self, chatbot_id: str, *, url: str | None = None, title: str | None = None
    ) -> Document | None:
        """The newest document from the same source: by ``url`` if given, else by ``title``."""
        statement = select(DocumentRow).where(DocumentRow.chatbot_id == chatbot_id)
        if url is not None:
            statement = statement.where(DocumentRow.url == url)
        elif title is not None:
            statement = statement.where(DocumentRow.title == title)
        else:
            return None
        statement = statement.order_by(DocumentRow.created_at.desc(), DocumentRow.id).limit(1)
        async with self._db.session() as session:
            row = await session.scalar(statement)
            return records.document(row) if row is not None else None

    async def update_document(self, document_id: str, **fields: Any) -> Document | None:
        """Change status, chunk_count, error, content_hash, title, metadata, url, source_type."""
        check_fields(fields, _DOCUMENT_FIELDS, "document")
        if "status" in fields:
            check_choice(fields["status"], _DOCUMENT_STATUSES, "status")
        async with self._db.session(write=True) as session:
            row = await session.get(DocumentRow, document_id)
            if row is None:
                return None
            for name, value in fields.items():
                if name == "metadata":
                    row.meta = dict(value or {})
                else:
                    setattr(row, name, value)
            row.updated_at = utcnow()
            await session.commit()
            return records.document(row)

    async def list_documents(self, chatbot_id: str) -> list[Document]:
        async with self._db.session() as session:
            rows = await session.scalars(
                select(DocumentRow)
                .where(DocumentRow.chatbot_id == chatbot_id)
                .order_by(DocumentRow.created_at, DocumentRow.id)
            )
            return [records.document(row) for row in rows]

    async def delete_document(self, chatbot_id: str, document_id: str) -> bool:
        async with self._db.session(write=True) as session:
            result = await session.execute(
                delete(DocumentRow)
                .where(DocumentRow.id == document_id, DocumentRow.chatbot_id == chatbot_id)
                .execution_options(synchronize_session=False)
            )
            await session.commit()
        return rowcount(result) > 0
