"""Conversations and their messages: what the chat pipeline reads and writes for a turn."""

from __future__ import annotations

from typing import Any, get_args

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from sitechat.domain import (
    Conversation,
    Message,
    MessageRole,
    MessageStatus,
)
from sitechat.errors import ChatbotNotFound, NotFound
from sitechat.storage import records
from sitechat.storage.base import Repository, check_choice, new_id, rowcount, utcnow
from sitechat.storage.models import (
    ChatbotRow,
    ConversationRow,
    MessageRow,
)
from sitechat.storage.translate import integrity_kind
from sitechat.storage.usage import add_usage, month_of
from sitechat.tokens import count_tokens

_ROLES = frozenset(get_args(MessageRole))
_MESSAGE_STATUSES = frozenset(get_args(MessageStatus))
# Messages that count as conversation history for the model.
_HISTORY_STATUSES = ("complete", "interrupted")


class MessageStore(Repository):
    # --- conversations -------------------------------------------------------------------

    async def get_or_create_conversation(self, chatbot_id: str, session_id: str) -> Conversation:
        """The conversation of a visitor's session, created on first use.

        Safe when several requests of one session race: the loser of the insert hits the
        unique constraint and reads the winner's row.
        """
        existing = await self.get_conversation(chatbot_id, session_id)
        if existing is not None:
            return existing
        now = utcnow()
        row = ConversationRow(
            id=new_id(),
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
        check_choice(role, _ROLES, "role")
        check_choice(status, _MESSAGE_STATUSES, "status")
        now = utcnow()
        row = MessageRow(
            id=new_id(),
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
            if rowcount(touched) == 0:
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
        check_choice(status, _MESSAGE_STATUSES, "status")
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
                period=month_of(utcnow()),
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


def _usage_int(usage: dict[str, Any] | None, name: str) -> int | None:
    value = (usage or {}).get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return max(int(value), 0)
