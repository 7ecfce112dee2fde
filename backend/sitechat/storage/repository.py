"""``Store``: every read and write sitechat makes, returning plain ``sitechat.domain`` records.

Each method opens one short session and closes it before returning, so nothing here holds a
connection while a caller streams an answer. Failures come out as ``StorageError`` (the
database is unreachable or broken), ``Conflict`` (a unique or foreign-key constraint),
``NotFound`` (a write to something that does not exist) or ``InvalidInput`` (a bad argument).
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, get_args
from uuid import uuid4

from sqlalchemy import CursorResult, delete, select, update
from sqlalchemy.exc import IntegrityError

from sitechat.domain import (
    ApiKeyRecord,
    ChatbotConfig,
    Conversation,
    Document,
    DocumentStatus,
    Message,
    MessageRole,
    MessageStatus,
    Org,
)
from sitechat.errors import ChatbotNotFound, Conflict, InvalidInput, NotFound
from sitechat.storage import records
from sitechat.storage.database import Database
from sitechat.storage.models import (
    ApiKeyRow,
    ChatbotRow,
    ConversationRow,
    DocumentRow,
    MessageRow,
    OrgRow,
    UsageCounterRow,
)
from sitechat.storage.translate import integrity_kind
from sitechat.storage.usage import add_usage, month_of
from sitechat.tokens import count_tokens

API_KEY_PREFIX = "sck_"
API_KEY_VISIBLE_CHARS = 12  # "sck_" and 8 random characters: enough to tell keys apart
_MAX_API_KEY_LENGTH = 256

# Chatbot ids appear in URLs and embed snippets.
_CHATBOT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
_CHATBOT_FIELDS = frozenset(f.name for f in dataclasses.fields(ChatbotConfig)) - {
    "id",
    "org_id",
    "created_at",
    "updated_at",
}
_DOCUMENT_FIELDS = frozenset(
    {"status", "chunk_count", "error", "content_hash", "title", "metadata", "url", "source_type"}
)
_ROLES = frozenset(get_args(MessageRole))
_MESSAGE_STATUSES = frozenset(get_args(MessageStatus))
_DOCUMENT_STATUSES = frozenset(get_args(DocumentStatus))
# Messages that count as conversation history for the model.
_HISTORY_STATUSES = ("complete", "interrupted")


class Store:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def ping(self) -> bool:
        return await self._db.ping()

    # --- orgs ----------------------------------------------------------------------------

    async def create_org(self, name: str) -> Org:
        row = OrgRow(id=_new_id(), name=name, created_at=_now())
        async with self._db.session(write=True) as session:
            session.add(row)
            await session.commit()
        return records.org(row)

    async def get_org(self, org_id: str) -> Org | None:
        async with self._db.session() as session:
            row = await session.get(OrgRow, org_id)
            return records.org(row) if row is not None else None

    async def rename_org(self, org_id: str, name: str) -> Org | None:
        async with self._db.session(write=True) as session:
            row = await session.get(OrgRow, org_id)
            if row is None:
                return None
            row.name = name
            await session.commit()
            return records.org(row)

    # --- api keys ------------------------------------------------------------------------

    async def create_api_key(self, org_id: str, name: str = "default") -> tuple[ApiKeyRecord, str]:
        """A new key for ``org_id``: its record and the plaintext, which is never stored."""
        plaintext = API_KEY_PREFIX + secrets.token_urlsafe(32)
        row = ApiKeyRow(
            id=_new_id(),
            org_id=org_id,
            prefix=plaintext[:API_KEY_VISIBLE_CHARS],
            key_hash=_key_hash(plaintext),
            name=name,
            created_at=_now(),
            last_used_at=None,
            revoked_at=None,
        )
        async with self._db.session(write=True) as session:
            session.add(row)
            await session.commit()
        return records.api_key(row), plaintext

    async def authenticate_api_key(self, plaintext: str) -> ApiKeyRecord | None:
        """The live key ``plaintext`` is, or None; records when it was last used.

        Candidates are found by their visible prefix and then compared by hash in constant
        time, so response timing says nothing about how much of a guess was right.
        """
        if not plaintext.startswith(API_KEY_PREFIX) or not (
            API_KEY_VISIBLE_CHARS < len(plaintext) <= _MAX_API_KEY_LENGTH
        ):
            return None
        digest = _key_hash(plaintext)
        async with self._db.session() as session:
            candidates = await session.scalars(
                select(ApiKeyRow).where(
                    ApiKeyRow.prefix == plaintext[:API_KEY_VISIBLE_CHARS],
                    ApiKeyRow.revoked_at.is_(None),
                )
            )
            match = None
            for row in candidates:
                if hmac.compare_digest(row.key_hash, digest):
                    match = records.api_key(row)
        if match is None:
            return None
        now = _now()
        async with self._db.session(write=True) as session:
            await session.execute(
                update(ApiKeyRow)
                .where(ApiKeyRow.id == match.id)
                .values(last_used_at=now)
                .execution_options(synchronize_session=False)
            )
            await session.commit()
        return dataclasses.replace(match, last_used_at=now)

    async def list_api_keys(self, org_id: str) -> list[ApiKeyRecord]:
        async with self._db.session() as session:
            rows = await session.scalars(
                select(ApiKeyRow)
                .where(ApiKeyRow.org_id == org_id)
                .order_by(ApiKeyRow.created_at, ApiKeyRow.id)
            )
            return [records.api_key(row) for row in rows]

    async def revoke_api_key(self, org_id: str, key_id: str) -> bool:
        """True if ``org_id`` has that key (revoking it again changes nothing)."""
        async with self._db.session(write=True) as session:
            row = await session.scalar(
                select(ApiKeyRow).where(ApiKeyRow.id == key_id, ApiKeyRow.org_id == org_id)
            )
            if row is None:
                return False
            if row.revoked_at is None:
                row.revoked_at = _now()
                await session.commit()
            return True

    # --- chatbots ------------------------------------------------------------------------

    async def create_chatbot(
        self, org_id: str, *, name: str, chatbot_id: str | None = None, **fields: Any
    ) -> ChatbotConfig:
        """A new chatbot; ``fields`` are any other ``ChatbotConfig`` fields.

        ``Conflict`` if ``chatbot_id`` is taken or ``org_id`` does not exist.
        """
        _check_fields(fields, _CHATBOT_FIELDS - {"name"}, "chatbot")
        new_id = chatbot_id if chatbot_id is not None else _new_id()
        if not _CHATBOT_ID.fullmatch(new_id):
            raise InvalidInput(
                "A chatbot id is 1 to 64 letters, digits, '-' or '_', starting with a letter "
                "or digit."
            )
        now = _now()
        config = ChatbotConfig(
            id=new_id,
            org_id=org_id,
            name=name,
            created_at=now,
            updated_at=now,
            **_normalize_chatbot_fields(fields),
        )
        row = ChatbotRow(**_chatbot_columns(config))
        async with self._db.session(write=True) as session:
            session.add(row)
            try:
                await session.commit()
            except IntegrityError as exc:
                if integrity_kind(exc) == "unique":
                    raise Conflict("A chatbot with that id already exists.") from exc
                raise
        return records.chatbot(row)

    async def get_chatbot(self, chatbot_id: str) -> ChatbotConfig | None:
        async with self._db.session() as session:
            row = await session.get(ChatbotRow, chatbot_id)
            return records.chatbot(row) if row is not None else None

    async def list_chatbots(self, org_id: str) -> list[ChatbotConfig]:
        async with self._db.session() as session:
            rows = await session.scalars(
                select(ChatbotRow)
                .where(ChatbotRow.org_id == org_id)
                .order_by(ChatbotRow.created_at, ChatbotRow.id)
            )
            return [records.chatbot(row) for row in rows]

    async def chatbot_origins(self) -> list[tuple[list[str], bool]]:
        """Every chatbot's allowed origins and whether it allows any origin: what CORS
        preflights (which carry no chatbot id) are answered from."""
        async with self._db.session() as session:
            rows = await session.execute(select(ChatbotRow.allowed_origins, ChatbotRow.settings))
            return [
                (list(origins or ()), bool((settings or {}).get("any_origin", False)))
                for origins, settings in rows
            ]

    async def update_chatbot(self, chatbot_id: str, **fields: Any) -> ChatbotConfig | None:
        """Change the given fields; None if there is no such chatbot."""
        _check_fields(fields, _CHATBOT_FIELDS, "chatbot")
        async with self._db.session(write=True) as session:
            row = await session.get(ChatbotRow, chatbot_id)
            if row is None:
                return None
            updated = dataclasses.replace(
                records.chatbot(row), updated_at=_now(), **_normalize_chatbot_fields(fields)
            )
            for column, value in _chatbot_columns(updated).items():
                setattr(row, column, value)
            await session.commit()
            return records.chatbot(row)

    async def delete_chatbot(self, chatbot_id: str) -> bool:
        """Delete a chatbot with its conversations, messages and documents.

        Its own usage counters go too (a new chatbot given the same id starts at zero);
        its org's counters keep what it used.
        """
        async with self._db.session(write=True) as session:
            result = await session.execute(
                delete(ChatbotRow)
                .where(ChatbotRow.id == chatbot_id)
                .execution_options(synchronize_session=False)
            )
            await session.execute(
                delete(UsageCounterRow)
                .where(UsageCounterRow.scope == "chatbot", UsageCounterRow.scope_id == chatbot_id)
                .execution_options(synchronize_session=False)
            )
            await session.commit()
        return _rowcount(result) > 0

    # --- conversations -------------------------------------------------------------------

    async def get_or_create_conversation(self, chatbot_id: str, session_id: str) -> Conversation:
        """The conversation of a visitor's session, created on first use.

        Safe when several requests of one session race: the loser of the insert hits the
        unique constraint and reads the winner's row.
        """
        existing = await self.get_conversation(chatbot_id, session_id)
        if existing is not None:
            return existing
        now = _now()
        row = ConversationRow(
            id=_new_id(),
            chatbot_id=chatbot_id,
            session_id=session_id,
            created_at=now,
            updated_at=now,
        )
        async with self._db.session(write=True) as session:
            session.add(row)
            try:
                await session.commit()
                return records.conversation(row)
            except IntegrityError as exc:
                if integrity_kind(exc) != "unique":
                    raise
                await session.rollback()
        winner = await self.get_conversation(chatbot_id, session_id)
        if winner is None:  # only deleting the chatbot deletes conversations
            raise ChatbotNotFound()
        return winner

    async def get_conversation(self, chatbot_id: str, session_id: str) -> Conversation | None:
        async with self._db.session() as session:
            row = await session.scalar(
                select(ConversationRow).where(
                    ConversationRow.chatbot_id == chatbot_id,
                    ConversationRow.session_id == session_id,
                )
            )
            return records.conversation(row) if row is not None else None

    # --- messages ------------------------------------------------------------------------

    async def add_message(
        self,
        conversation_id: str,
        role: MessageRole,
        content: str,
        *,
        status: MessageStatus = "complete",
    ) -> Message:
        """Append a message and mark the conversation as updated."""
        _check_choice(role, _ROLES, "role")
        _check_choice(status, _MESSAGE_STATUSES, "status")
        now = _now()
        row = MessageRow(
            id=_new_id(),
            conversation_id=conversation_id,
            role=role,
            content=content,
            status=status,
            created_at=now,
        )
        async with self._db.session(write=True) as session:
            touched = await session.execute(
                update(ConversationRow)
                .where(ConversationRow.id == conversation_id)
                .values(updated_at=now)
                .execution_options(synchronize_session=False)
            )
            if _rowcount(touched) == 0:
                raise NotFound("No conversation with that id.")
            session.add(row)
            await session.commit()
        return records.message(row)

    async def finish_message(
        self,
        message_id: str,
        *,
        content: str,
        status: MessageStatus,
        sources: list[dict[str, Any]] | None = None,
        context_quality: dict[str, Any] | None = None,
        usage: dict[str, Any] | None = None,
        ttft_ms: float | None = None,
        error_code: str | None = None,
    ) -> None:
        """Write a streamed message's final state; ``NotFound`` if it no longer exists.

        The tokens it used are added to its org's and chatbot's monthly usage in the same
        transaction, so budgets count exactly what is stored. Without ``usage`` (an answer
        cut short) the stored text is counted with tiktoken: an interrupted answer still
        cost tokens, and disconnecting early must not make generation free.
        """
        _check_choice(status, _MESSAGE_STATUSES, "status")
        prompt_tokens = _usage_int(usage, "prompt_tokens")
        completion_tokens = _usage_int(usage, "completion_tokens")
        if usage is None and content:
            completion_tokens = count_tokens(content)
        level = (context_quality or {}).get("level")
        async with self._db.session(write=True) as session:
            owner = (
                await session.execute(
                    select(MessageRow.created_at, ChatbotRow.id, ChatbotRow.org_id)
                    .join(ConversationRow, ConversationRow.id == MessageRow.conversation_id)
                    .join(ChatbotRow, ChatbotRow.id == ConversationRow.chatbot_id)
                    .where(MessageRow.id == message_id)
                )
            ).first()
            if owner is None:
                raise NotFound("No message with that id.")
            await session.execute(
                update(MessageRow)
                .where(MessageRow.id == message_id)
                .values(
                    content=content,
                    status=status,
                    sources=list(sources) if sources is not None else None,
                    context_quality=context_quality,
                    usage=usage,
                    ttft_ms=ttft_ms,
                    error_code=error_code,
                    prompt_tokens=prompt_tokens,
                    completion_tokens=completion_tokens,
                    quality_level=level if isinstance(level, str) else None,
                )
                .execution_options(synchronize_session=False)
            )
            await add_usage(
                session,
                org_id=owner.org_id,
                chatbot_id=owner.id,
                period=month_of(_now()),
                prompt_tokens=prompt_tokens or 0,
                completion_tokens=completion_tokens or 0,
            )
            await session.commit()

    async def recent_messages(
        self, conversation_id: str, limit: int, *, before_message_id: str | None = None
    ) -> list[Message]:
        """The last ``limit`` complete or interrupted messages, oldest first.

        With ``before_message_id``, only messages created before that one (an id not in
        this conversation gives no messages).
        """
        if limit <= 0:
            return []
        statement = select(MessageRow).where(
            MessageRow.conversation_id == conversation_id,
            MessageRow.status.in_(_HISTORY_STATUSES),
        )
        if before_message_id is not None:
            boundary = (
                select(MessageRow.seq)
                .where(
                    MessageRow.id == before_message_id,
                    MessageRow.conversation_id == conversation_id,
                )
                .scalar_subquery()
            )
            statement = statement.where(MessageRow.seq < boundary)
        statement = statement.order_by(MessageRow.seq.desc()).limit(limit)
        async with self._db.session() as session:
            rows = list(await session.scalars(statement))
            return [records.message(row) for row in reversed(rows)]

    async def list_messages(self, conversation_id: str) -> list[Message]:
        async with self._db.session() as session:
            rows = await session.scalars(
                select(MessageRow)
                .where(MessageRow.conversation_id == conversation_id)
                .order_by(MessageRow.seq)
            )
            return [records.message(row) for row in rows]

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
        _check_choice(status, _DOCUMENT_STATUSES, "status")
        now = _now()
        row = DocumentRow(
            id=_new_id(),
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
        _check_fields(fields, _DOCUMENT_FIELDS, "document")
        if "status" in fields:
            _check_choice(fields["status"], _DOCUMENT_STATUSES, "status")
        async with self._db.session(write=True) as session:
            row = await session.get(DocumentRow, document_id)
            if row is None:
                return None
            for name, value in fields.items():
                if name == "metadata":
                    row.meta = dict(value or {})
                else:
                    setattr(row, name, value)
            row.updated_at = _now()
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
        return _rowcount(result) > 0


def _now() -> datetime:
    return datetime.now(UTC)


def _new_id() -> str:
    return str(uuid4())


def _key_hash(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode("utf-8")).hexdigest()


def _usage_int(usage: dict[str, Any] | None, name: str) -> int | None:
    value = (usage or {}).get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return max(int(value), 0)


def _rowcount(result: Any) -> int:
    if isinstance(result, CursorResult):
        return int(result.rowcount)
    raise TypeError("expected a CursorResult from a DML statement")


def _check_fields(fields: Iterable[str], allowed: frozenset[str], what: str) -> None:
    unknown = sorted(set(fields) - allowed)
    if unknown:
        raise InvalidInput(f"Unknown {what} field: {', '.join(unknown)}.")


def _check_choice(value: object, allowed: frozenset[str], what: str) -> None:
    if value not in allowed:
        raise InvalidInput(f"Unknown {what}; use one of: {', '.join(sorted(allowed))}.")


def _normalize_chatbot_fields(fields: dict[str, Any]) -> dict[str, Any]:
    """Lists become the tuples ``ChatbotConfig`` holds; mappings are copied."""
    normalized = dict(fields)
    for name in ("starter_questions", "allowed_origins"):
        if name in normalized:
            normalized[name] = tuple(normalized[name] or ())
    for name in ("theme", "settings"):
        if name in normalized:
            normalized[name] = dict(normalized[name] or {})
    return normalized


def _chatbot_columns(config: ChatbotConfig) -> dict[str, Any]:
    columns = dataclasses.asdict(config)
    columns["starter_questions"] = list(config.starter_questions)
    columns["allowed_origins"] = list(config.allowed_origins)
    return columns
