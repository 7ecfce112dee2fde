"""``UnansweredLog``: the questions whose answers had no usable context, and the owner's
"resolved" marks on them (the grouping itself is ``reports.unanswered``, no SQL there).

An answer does not point at its question; a question is the last visitor message before its
answer in the same conversation (``seq`` order), as the pipeline stores them. The query
starts from the partial index ``ix_messages_unanswered`` (only answers whose
``quality_level`` is ``none`` or ``low``), finds each one's question with the
``(conversation_id, seq)`` index, and reads nothing else of the messages table.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Select, delete, func, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased

from sitechat.domain import UnansweredAsk
from sitechat.errors import ChatbotNotFound
from sitechat.storage.base import Repository, rowcount, utcnow
from sitechat.storage.models import (
    UNANSWERED_LEVELS,
    ConversationRow,
    MessageRow,
    UnansweredResolutionRow,
)
from sitechat.storage.translate import integrity_kind


def asks_statement(
    chatbot_id: str, start: datetime, end: datetime
) -> Select[str, datetime, str | None, str, str]:
    """Question text and time, answer level, conversation and session of every answer of
    ``chatbot_id`` in ``[start, end)`` without enough context."""
    question = aliased(MessageRow, name="question")
    earlier = aliased(MessageRow, name="earlier")
    asked = (
        select(func.max(earlier.seq))
        .where(
            earlier.conversation_id == MessageRow.conversation_id,
            earlier.role == "user",
            earlier.seq < MessageRow.seq,
        )
        .correlate(MessageRow)
        .scalar_subquery()
    )
    return (
        select(
            question.content,
            question.created_at,
            MessageRow.quality_level,
            ConversationRow.id,
            ConversationRow.session_id,
        )
        .select_from(MessageRow)
        .join(ConversationRow, ConversationRow.id == MessageRow.conversation_id)
        .join(question, question.seq == asked)
        .where(
            ConversationRow.chatbot_id == chatbot_id,
            # Spelled as the partial index is, so SQLite and PostgreSQL use it.
            text(f"messages.{UNANSWERED_LEVELS}"),
            MessageRow.role == "assistant",
            MessageRow.created_at >= start,
            MessageRow.created_at < end,
        )
    )


class UnansweredLog(Repository):
    async def asks(self, chatbot_id: str, start: datetime, end: datetime) -> list[UnansweredAsk]:
        """Every question of ``chatbot_id`` answered in ``[start, end)`` without enough
        context, with when it was asked and its conversation."""
        statement = asks_statement(chatbot_id, start, end)
        async with self._db.session() as session:
            rows = (await session.execute(statement)).all()
        return [
            UnansweredAsk(
                question=row[0],
                asked_at=row[1],
                quality_level=row[2] or "none",
                conversation_id=row[3],
                session_id=row[4],
            )
            for row in rows
        ]

    async def resolutions(self, chatbot_id: str) -> dict[str, datetime]:
        """When each question of ``chatbot_id`` was last marked resolved, by question id."""
        async with self._db.session() as session:
            rows = await session.execute(
                select(
                    UnansweredResolutionRow.question_id, UnansweredResolutionRow.resolved_at
                ).where(UnansweredResolutionRow.chatbot_id == chatbot_id)
            )
            return {row.question_id: row.resolved_at for row in rows}

    async def resolve(self, chatbot_id: str, question_id: str) -> datetime:
        """Mark a question resolved now (again, if it was); ``ChatbotNotFound`` if the
        chatbot was deleted meanwhile."""
        now = utcnow()
        async with self._db.session(write=True) as session:
            dialect = session.get_bind().dialect.name
            insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
            statement = insert(UnansweredResolutionRow).values(
                chatbot_id=chatbot_id, question_id=question_id, resolved_at=now
            )
            statement = statement.on_conflict_do_update(
                index_elements=["chatbot_id", "question_id"],
                set_={"resolved_at": statement.excluded.resolved_at},
            )
            try:
                await session.execute(statement)
                await session.commit()
            except IntegrityError as exc:
                if integrity_kind(exc) == "foreign_key":
                    raise ChatbotNotFound() from exc
                raise
        return now

    async def unresolve(self, chatbot_id: str, question_id: str) -> bool:
        """Take the mark off; False if there was none."""
        async with self._db.session(write=True) as session:
            result = await session.execute(
                delete(UnansweredResolutionRow)
                .where(
                    UnansweredResolutionRow.chatbot_id == chatbot_id,
                    UnansweredResolutionRow.question_id == question_id,
                )
                .execution_options(synchronize_session=False)
            )
            await session.commit()
        return rowcount(result) > 0
