"""ORM rows → the plain records of ``sitechat.domain``, so no ORM object leaves storage."""

from __future__ import annotations

from typing import cast

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
from sitechat.storage.models import (
    ApiKeyRow,
    ChatbotRow,
    ConversationRow,
    DocumentRow,
    MessageRow,
    OrgRow,
)


def org(row: OrgRow) -> Org:
    return Org(id=row.id, name=row.name, created_at=row.created_at)


def api_key(row: ApiKeyRow) -> ApiKeyRecord:
    return ApiKeyRecord(
        id=row.id,
        org_id=row.org_id,
        prefix=row.prefix,
        name=row.name,
        created_at=row.created_at,
        last_used_at=row.last_used_at,
        revoked_at=row.revoked_at,
    )


def chatbot(row: ChatbotRow) -> ChatbotConfig:
    return ChatbotConfig(
        id=row.id,
        org_id=row.org_id,
        name=row.name,
        system_prompt=row.system_prompt,
        provider=row.provider,
        model=row.model,
        temperature=row.temperature,
        max_tokens=row.max_tokens,
        greeting=row.greeting,
        starter_questions=tuple(row.starter_questions or ()),
        theme=dict(row.theme or {}),
        fallback_message=row.fallback_message,
        allowed_origins=tuple(row.allowed_origins or ()),
        settings=dict(row.settings or {}),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def conversation(row: ConversationRow) -> Conversation:
    return Conversation(
        id=row.id,
        chatbot_id=row.chatbot_id,
        session_id=row.session_id,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def message(row: MessageRow) -> Message:
    return Message(
        id=row.id,
        conversation_id=row.conversation_id,
        role=cast(MessageRole, row.role),
        content=row.content,
        status=cast(MessageStatus, row.status),
        created_at=row.created_at,
        sources=list(row.sources or []),
        context_quality=row.context_quality,
        usage=row.usage,
        ttft_ms=row.ttft_ms,
        error_code=row.error_code,
    )


def document(row: DocumentRow) -> Document:
    return Document(
        id=row.id,
        chatbot_id=row.chatbot_id,
        title=row.title,
        url=row.url,
        source_type=row.source_type,
        content_hash=row.content_hash,
        status=cast(DocumentStatus, row.status),
        chunk_count=row.chunk_count,
        error=row.error,
        created_at=row.created_at,
        updated_at=row.updated_at,
        metadata=dict(row.meta or {}),
    )
