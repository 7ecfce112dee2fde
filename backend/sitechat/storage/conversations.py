"""``ConversationArchive``: what the admin side reads about a chatbot's conversations.

Listing with filters, one conversation with its messages and feedback, export in pages,
deletion, visitor feedback, and the per-message facts analytics aggregate. Every method
takes the chatbot id and filters by it, so a conversation id from another chatbot is simply
not found: the caller has already checked that the chatbot belongs to the caller's org.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime

from sqlalchemy import Exists, Select, and_, delete, exists, func, select
from sqlalchemy.exc import IntegrityError

from sitechat.domain import Conversation, ConversationSummary, Feedback, Message, MessageFacts
from sitechat.errors import InvalidInput, NotFound
from sitechat.storage import records
from sitechat.storage.base import Repository, rowcount, utcnow
from sitechat.storage.messages import MessageStore
from sitechat.storage.models import ConversationRow, FeedbackRow, MessageRow
from sitechat.storage.translate import integrity_kind

MAX_PAGE = 500
MAX_COMMENT_CHARS = 2000


def _has_feedback() -> Exists:
    return exists().where(FeedbackRow.conversation_id == ConversationRow.id)


def _filtered(
    chatbot_id: str,
    *,
    created_from: datetime | None,
    created_to: datetime | None,
    has_feedback: bool | None,
) -> Select[ConversationRow]:
    statement = select(ConversationRow).where(ConversationRow.chatbot_id == chatbot_id)
    if created_from is not None:
        statement = statement.where(ConversationRow.created_at >= created_from)
    if created_to is not None:
        statement = statement.where(ConversationRow.created_at < created_to)
    if has_feedback is True:
        statement = statement.where(_has_feedback())
    elif has_feedback is False:
        statement = statement.where(~_has_feedback())
    return statement


class ConversationArchive(Repository):
    async def page(
        self,
        chatbot_id: str,
        *,
        created_from: datetime | None = None,
        created_to: datetime | None = None,
        has_feedback: bool | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[list[ConversationSummary], int]:
        """A page of conversations, newest first, and how many match in all."""
        if not (1 <= limit <= MAX_PAGE) or offset < 0:
            raise InvalidInput(f"limit is 1 to {MAX_PAGE}; offset is 0 or more.")
        base = _filtered(
            chatbot_id,
            created_from=created_from,
            created_to=created_to,
            has_feedback=has_feedback,
        )
        message_count = (
            select(func.count(MessageRow.seq))
            .where(MessageRow.conversation_id == ConversationRow.id)
            .scalar_subquery()
        )
        page = (
            base.add_columns(message_count, _has_feedback())
            .order_by(ConversationRow.created_at.desc(), ConversationRow.id)
            .limit(limit)
            .offset(offset)
        )
        async with self._db.session() as session:
            total = await session.scalar(select(func.count()).select_from(base.subquery()))
            rows = (await session.execute(page)).all()
        summaries = [
            ConversationSummary(records.conversation(row[0]), int(row[1]), bool(row[2]))
            for row in rows
        ]
        return summaries, int(total or 0)

    async def get(self, chatbot_id: str, conversation_id: str) -> Conversation | None:
        async with self._db.session() as session:
            row = await session.scalar(
                select(ConversationRow).where(
                    ConversationRow.id == conversation_id,
                    ConversationRow.chatbot_id == chatbot_id,
                )
            )
            return records.conversation(row) if row is not None else None

    async def messages(self, conversation_id: str) -> list[Message]:
        return await MessageStore(self._db).list_messages(conversation_id)

    async def feedback(self, conversation_id: str) -> dict[str, Feedback]:
        """Feedback of one conversation by message id."""
        async with self._db.session() as session:
            rows = await session.scalars(
                select(FeedbackRow).where(FeedbackRow.conversation_id == conversation_id)
            )
            return {row.message_id: _feedback(row) for row in rows}

    async def delete(self, chatbot_id: str, conversation_id: str) -> bool:
        """Delete a conversation with its messages and feedback (they cascade)."""
        async with self._db.session(write=True) as session:
            result = await session.execute(
                delete(ConversationRow)
                .where(
                    ConversationRow.id == conversation_id,
                    ConversationRow.chatbot_id == chatbot_id,
                )
                .execution_options(synchronize_session=False)
            )
            await session.commit()
        return rowcount(result) > 0

    async def export(
        self,
        chatbot_id: str,
        *,
        created_from: datetime | None = None,
        created_to: datetime | None = None,
        has_feedback: bool | None = None,
        batch: int = 100,
    ) -> AsyncIterator[tuple[Conversation, list[Message], dict[str, Feedback]]]:
        """Every matching conversation, oldest first, read ``batch`` at a time.

        Each batch is its own short session, so an export of any size never holds a
        connection while the HTTP client reads.
        """
        after: tuple[datetime, str] | None = None
        while True:
            statement = _filtered(
                chatbot_id,
                created_from=created_from,
                created_to=created_to,
                has_feedback=has_feedback,
            )
            if after is not None:
                statement = statement.where(
                    (ConversationRow.created_at > after[0])
                    | and_(ConversationRow.created_at == after[0], ConversationRow.id > after[1])
                )
            statement = statement.order_by(ConversationRow.created_at, ConversationRow.id).limit(
                batch
            )
            async with self._db.session() as session:
                conversations = [records.conversation(r) for r in await session.scalars(statement)]
                ids = [c.id for c in conversations]
                message_rows = await session.scalars(
                    select(MessageRow)
                    .where(MessageRow.conversation_id.in_(ids))
                    .order_by(MessageRow.seq)
                )
                by_conversation: dict[str, list[Message]] = {i: [] for i in ids}
                for row in message_rows:
                    by_conversation[row.conversation_id].append(records.message(row))
                feedback_rows = await session.scalars(
                    select(FeedbackRow).where(FeedbackRow.conversation_id.in_(ids))
                )
                feedback: dict[str, dict[str, Feedback]] = {i: {} for i in ids}
                for f in feedback_rows:
                    feedback[f.conversation_id][f.message_id] = _feedback(f)
            for conversation in conversations:
                yield conversation, by_conversation[conversation.id], feedback[conversation.id]
            if len(conversations) < batch:
                return
            last = conversations[-1]
            after = (last.created_at, last.id)

    async def set_feedback(
        self, conversation_id: str, message_id: str, *, rating: int, comment: str | None
    ) -> Feedback:
        """Rate an assistant message of ``conversation_id``; a second rating replaces the
        first. ``NotFound`` unless the message is an assistant message of that conversation.
        """
        if rating not in (1, -1):
            raise InvalidInput("rating is 1 (helpful) or -1 (not helpful).")
        if comment is not None and len(comment) > MAX_COMMENT_CHARS:
            raise InvalidInput(f"A comment is at most {MAX_COMMENT_CHARS} characters.")
        async with self._db.session(write=True) as session:
            found = await session.scalar(
                select(MessageRow.id).where(
                    MessageRow.id == message_id,
                    MessageRow.conversation_id == conversation_id,
                    MessageRow.role == "assistant",
                )
            )
            if found is None:
                raise NotFound("No answer with that id in this conversation.")
            row = await session.get(FeedbackRow, message_id)
            if row is None:
                row = FeedbackRow(message_id=message_id, conversation_id=conversation_id)
                session.add(row)
            row.rating = rating
            row.comment = comment
            row.created_at = utcnow()
            try:
                await session.commit()
            except IntegrityError as exc:  # the message was deleted meanwhile
                if integrity_kind(exc) == "foreign_key":
                    raise NotFound("No answer with that id in this conversation.") from exc
                raise
            return _feedback(row)

    async def message_facts(
        self, chatbot_id: str, start: datetime, end: datetime
    ) -> list[MessageFacts]:
        """Facts of every message of ``chatbot_id`` created in ``[start, end)``."""
        statement = (
            select(
                MessageRow.created_at,
                MessageRow.role,
                MessageRow.status,
                MessageRow.prompt_tokens,
                MessageRow.completion_tokens,
                MessageRow.ttft_ms,
                MessageRow.quality_level,
                MessageRow.error_code,
            )
            .join(ConversationRow, ConversationRow.id == MessageRow.conversation_id)
            .where(
                ConversationRow.chatbot_id == chatbot_id,
                MessageRow.created_at >= start,
                MessageRow.created_at < end,
            )
        )
        async with self._db.session() as session:
            rows = (await session.execute(statement)).all()
        return [
            MessageFacts(
                created_at=row.created_at,
                role=row.role,
                status=row.status,
                prompt_tokens=row.prompt_tokens or 0,
                completion_tokens=row.completion_tokens or 0,
                ttft_ms=row.ttft_ms,
                quality_level=row.quality_level,
                error_code=row.error_code,
            )
            for row in rows
        ]

    async def conversation_starts(
        self, chatbot_id: str, start: datetime, end: datetime
    ) -> list[datetime]:
        async with self._db.session() as session:
            rows = await session.scalars(
                select(ConversationRow.created_at).where(
                    ConversationRow.chatbot_id == chatbot_id,
                    ConversationRow.created_at >= start,
                    ConversationRow.created_at < end,
                )
            )
            return list(rows)


def _feedback(row: FeedbackRow) -> Feedback:
    return Feedback(row.message_id, row.conversation_id, row.rating, row.comment, row.created_at)
