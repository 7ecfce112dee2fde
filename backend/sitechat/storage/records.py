"""ORM rows → the plain records of ``sitechat.domain``, so no ORM object leaves storage."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, TypeVar, cast

from sitechat.domain import (
    AnswerScope,
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
    Base,
    ChatbotRow,
    ConversationRow,
    DocumentRow,
    MessageRow,
    OrgRow,
)

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

R = TypeVar("R", bound="DataclassInstance")


def _record(kind: type[R], row: Base, **converted: Any) -> R:
    """A ``kind`` from the row's columns of the same names; ``converted`` gives the fields
    whose stored form differs (JSON lists as tuples, strings as their literal types)."""
    names = [f.name for f in dataclasses.fields(kind) if f.name not in converted]
    return kind(**{name: getattr(row, name) for name in names}, **converted)


def org(row: OrgRow) -> Org:
    return _record(Org, row)


def api_key(row: ApiKeyRow) -> ApiKeyRecord:
    return _record(ApiKeyRecord, row)


def chatbot(row: ChatbotRow) -> ChatbotConfig:
    return _record(
        ChatbotConfig,
        row,
        fallback_providers=tuple(row.fallback_providers or ()),
        starter_questions=tuple(row.starter_questions or ()),
        theme=dict(row.theme or {}),
        allowed_origins=tuple(row.allowed_origins or ()),
        answer_scope=cast(AnswerScope, row.answer_scope),
        settings=dict(row.settings or {}),
    )


def conversation(row: ConversationRow) -> Conversation:
    return _record(Conversation, row)


def message(row: MessageRow) -> Message:
    return _record(
        Message,
        row,
        role=cast(MessageRole, row.role),
        status=cast(MessageStatus, row.status),
        sources=list(row.sources or []),
    )


def document(row: DocumentRow) -> Document:
    return _record(
        Document,
        row,
        status=cast(DocumentStatus, row.status),
        metadata=dict(row.meta or {}),
    )
