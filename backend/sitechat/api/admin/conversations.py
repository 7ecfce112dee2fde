"""The admin API for a chatbot's conversations.

    GET    /api/admin/chatbots/{chatbot_id}/conversations             filtered, newest first
    GET    /api/admin/chatbots/{chatbot_id}/conversations/export      JSONL or CSV, streamed
    GET    /api/admin/chatbots/{chatbot_id}/conversations/{id}        with messages, sources
    DELETE /api/admin/chatbots/{chatbot_id}/conversations/{id}        with its messages

Filters: ``from`` / ``to`` (UTC dates, inclusive, on when the conversation started) and
``has_feedback``. Exports stream: one JSON object per conversation (JSONL) or one row per
message (CSV), read from storage in batches, so an export of any size holds little memory.

A CSV export is opened in spreadsheets, and its cells hold what visitors typed: a text cell
that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return gets a leading ``'``,
as OWASP advises against formula injection, so ``=HYPERLINK(...)`` shows as text instead of
running. JSONL is for programs and stays exactly as stored.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from sitechat.api.admin import examples
from sitechat.api.admin.common import ADMIN_ERRORS, DAY_RANGE, JSON_INT_MAX, Day, shown
from sitechat.api.auth import OwnedChatbot
from sitechat.api.deps import ServicesDep
from sitechat.api.schemas import ErrorBody
from sitechat.domain import Conversation, Feedback, Message
from sitechat.errors import ConversationNotFound, InvalidInput
from sitechat.storage.conversations import ConversationArchive

# --- bodies -----------------------------------------------------------------------------------


class FeedbackOut(BaseModel):
    rating: int
    comment: str | None
    created_at: datetime


class MessageOut(BaseModel):
    id: str
    role: Literal["user", "assistant"]
    content: str
    status: str
    created_at: datetime
    sources: list[dict[str, Any]]
    context_quality: dict[str, Any] | None
    usage: dict[str, Any] | None
    ttft_ms: float | None
    error_code: str | None
    feedback: FeedbackOut | None = None


class ConversationSummaryOut(BaseModel):
    id: str
    session_id: str
    created_at: datetime
    updated_at: datetime
    message_count: int
    has_feedback: bool


class ConversationPage(BaseModel):
    model_config = shown(examples.CONVERSATION_PAGE)

    conversations: list[ConversationSummaryOut]
    total: int
    limit: int
    offset: int


class ConversationOut(ConversationSummaryOut):
    model_config = shown(examples.CONVERSATION)

    messages: list[MessageOut]


# --- routes -----------------------------------------------------------------------------------

router = APIRouter(
    prefix="/api/admin/chatbots/{chatbot_id}/conversations",
    tags=["admin: conversations"],
    responses={**ADMIN_ERRORS, 404: {"model": ErrorBody, "description": "No such chatbot"}},
)

ConversationId = Annotated[str, Path(max_length=64, examples=[examples.CONVERSATION_SUMMARY["id"]])]
FromDay = Annotated[
    Day | None, Query(alias="from", description=f"Started on or after (UTC), {DAY_RANGE}.")
]
ToDay = Annotated[
    Day | None, Query(alias="to", description=f"Started on or before (UTC), {DAY_RANGE}.")
]
HasFeedback = Annotated[
    bool | None, Query(description="Only conversations with (true) or without (false) feedback.")
]


def _bounds(first: date | None, last: date | None) -> tuple[datetime | None, datetime | None]:
    if first is not None and last is not None and first > last:
        raise InvalidInput("'from' must not be after 'to'.")
    start = datetime.combine(first, time.min, tzinfo=UTC) if first else None
    end = datetime.combine(last + timedelta(days=1), time.min, tzinfo=UTC) if last else None
    return start, end


def _message_out(message: Message, feedback: Feedback | None) -> MessageOut:
    return MessageOut(
        id=message.id,
        role=message.role,
        content=message.content,
        status=message.status,
        created_at=message.created_at,
        sources=message.sources,
        context_quality=message.context_quality,
        usage=message.usage,
        ttft_ms=message.ttft_ms,
        error_code=message.error_code,
        feedback=FeedbackOut(
            rating=feedback.rating, comment=feedback.comment, created_at=feedback.created_at
        )
        if feedback
        else None,
    )


def _conversation_out(
    conversation: Conversation, messages: list[Message], feedback: dict[str, Feedback]
) -> ConversationOut:
    return ConversationOut(
        id=conversation.id,
        session_id=conversation.session_id,
        created_at=conversation.created_at,
        updated_at=conversation.updated_at,
        message_count=len(messages),
        has_feedback=bool(feedback),
        messages=[_message_out(m, feedback.get(m.id)) for m in messages],
    )


@router.get("", response_model=ConversationPage, summary="The chatbot's conversations")
async def list_conversations(
    chatbot: OwnedChatbot,
    services: ServicesDep,
    first: FromDay = None,
    last: ToDay = None,
    has_feedback: HasFeedback = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=JSON_INT_MAX)] = 0,
) -> ConversationPage:
    start, end = _bounds(first, last)
    summaries, total = await services.archive.page(
        chatbot.id,
        created_from=start,
        created_to=end,
        has_feedback=has_feedback,
        limit=limit,
        offset=offset,
    )
    return ConversationPage(
        conversations=[
            ConversationSummaryOut(
                id=s.conversation.id,
                session_id=s.conversation.session_id,
                created_at=s.conversation.created_at,
                updated_at=s.conversation.updated_at,
                message_count=s.message_count,
                has_feedback=s.has_feedback,
            )
            for s in summaries
        ],
        total=total,
        limit=limit,
        offset=offset,
    )


CSV_COLUMNS = (
    "conversation_id", "session_id", "message_id", "role", "status", "created_at", "content",
    "sources", "context_quality_level", "prompt_tokens", "completion_tokens", "ttft_ms",
    "error_code", "feedback_rating", "feedback_comment",
)  # fmt: skip

_EXPORT_EXAMPLES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "JSONL: one conversation per line; CSV: one message per row.",
        "content": {
            "application/x-ndjson": {"example": examples.CONVERSATION_EXPORT_LINE},
            "text/csv": {"example": ",".join(CSV_COLUMNS) + "\n"},
        },
    }
}


_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: Any) -> Any:
    """A text cell a spreadsheet would read as a formula, prefixed with ``'`` (OWASP's CSV
    injection advice); numbers and other text unchanged."""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def _csv_line(values: list[Any]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer).writerow([spreadsheet_safe(value) for value in values])
    return buffer.getvalue()


async def _export_lines(
    archive: ConversationArchive,
    chatbot_id: str,
    kind: Literal["jsonl", "csv"],
    **filters: Any,
) -> AsyncIterator[str]:
    if kind == "csv":
        yield _csv_line(list(CSV_COLUMNS))
    async for conversation, messages, feedback in archive.export(chatbot_id, **filters):
        if kind == "jsonl":
            document = _conversation_out(conversation, messages, feedback)
            yield document.model_dump_json() + "\n"
            continue
        for m in messages:
            f = feedback.get(m.id)
            usage = m.usage or {}
            yield _csv_line(
                [
                    conversation.id, conversation.session_id, m.id, m.role, m.status,
                    m.created_at.isoformat(), m.content, json.dumps(m.sources),
                    (m.context_quality or {}).get("level", ""), usage.get("prompt_tokens", ""),
                    usage.get("completion_tokens", ""), "" if m.ttft_ms is None else m.ttft_ms,
                    m.error_code or "", f.rating if f else "", (f.comment or "") if f else "",
                ]
            )  # fmt: skip


@router.get(
    "/export",
    summary="Export conversations as JSONL or CSV (streamed)",
    response_class=StreamingResponse,
    responses=_EXPORT_EXAMPLES,
)
async def export_conversations(
    chatbot: OwnedChatbot,
    services: ServicesDep,
    format: Annotated[Literal["jsonl", "csv"], Query(description="jsonl or csv")] = "jsonl",
    first: FromDay = None,
    last: ToDay = None,
    has_feedback: HasFeedback = None,
) -> StreamingResponse:
    start, end = _bounds(first, last)
    lines = _export_lines(
        services.archive,
        chatbot.id,
        format,
        created_from=start,
        created_to=end,
        has_feedback=has_feedback,
    )
    media = "application/x-ndjson" if format == "jsonl" else "text/csv; charset=utf-8"
    filename = f"{chatbot.id}-conversations.{format}"
    return StreamingResponse(
        lines,
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.get(
    "/{conversation_id}",
    response_model=ConversationOut,
    summary="One conversation with its messages, sources and feedback",
)
async def read_conversation(
    chatbot: OwnedChatbot, services: ServicesDep, conversation_id: ConversationId
) -> ConversationOut:
    conversation = await services.archive.get(chatbot.id, conversation_id)
    if conversation is None:
        raise ConversationNotFound()
    messages = await services.archive.messages(conversation.id)
    feedback = await services.archive.feedback(conversation.id)
    return _conversation_out(conversation, messages, feedback)


@router.delete(
    "/{conversation_id}",
    status_code=204,
    response_class=Response,
    summary="Delete a conversation and its messages",
)
async def delete_conversation(
    chatbot: OwnedChatbot, services: ServicesDep, conversation_id: ConversationId
) -> Response:
    if not await services.archive.delete(chatbot.id, conversation_id):
        raise ConversationNotFound()
    return Response(status_code=204)
