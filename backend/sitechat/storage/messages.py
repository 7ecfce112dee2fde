"""Conversations and their messages: what the chat pipeline reads and writes for a turn."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast, get_args

from sqlalchemy import Table, bindparam, insert, select, text, tuple_, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from sitechat.domain import (
    Conversation,
    Message,
    MessageRole,
    MessageStatus,
    OpenedTurn,
)
from sitechat.errors import ChatbotNotFound, Conflict, ConversationNotFound, NotFound
from sitechat.storage import records
from sitechat.storage.base import Repository, check_choice, new_id, rowcount, utcnow
from sitechat.storage.group_commit import WriteBatch
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
_HISTORY_STATUSES = ("complete", "interrupted", "stopped")
_CONVERSATIONS = cast(Table, ConversationRow.__table__)
_MESSAGES = cast(Table, MessageRow.__table__)
_CHATBOTS = cast(Table, ChatbotRow.__table__)

# A turn's statements, built once: building a Core statement (coercing its columns and
# clauses) cost more than SQLite running it.
_C = _CONVERSATIONS.c
_FIND_CONVERSATIONS = select(
    _C.id, _C.chatbot_id, _C.session_id, _C.created_at, _C.updated_at, _C.visitor_id
).where(tuple_(_C.chatbot_id, _C.session_id).in_(bindparam("keys", expanding=True)))
_INSERT_CONVERSATIONS = insert(_CONVERSATIONS)
_TOUCH_CONVERSATIONS = (
    update(_CONVERSATIONS)
    .where(_C.id == bindparam("conversation"))
    .values(updated_at=bindparam("now"))
)
_INSERT_MESSAGES = insert(_MESSAGES)
# A new session's turn on Postgres as one statement (``Database.execute_single``): the
# conversation, then the question and the answer's row, in this order (``seq``). The
# messages' foreign key is checked at the end of the statement, when the conversation is in.
_OPEN_NEW_SESSION = """
WITH conversation AS (
    INSERT INTO conversations (id, chatbot_id, session_id, created_at, updated_at, visitor_id)
    VALUES ($1, $2, $3, $4, $4, $5)
)
INSERT INTO messages (id, conversation_id, role, content, status, created_at, worker_id)
VALUES ($6, $1, 'user', $7, 'complete', $4, NULL),
       ($8, $1, 'assistant', '', 'streaming', $4, $9)
"""


class MessageStore(Repository):
    # --- conversations -------------------------------------------------------------------

    async def get_or_create_conversation(
        self, chatbot_id: str, session_id: str, *, visitor_id: str | None = None
    ) -> Conversation:
        """The conversation of a visitor's session, created on first use.

        Safe when several requests of one session race: the loser of the insert hits the
        unique constraint and reads the winner's row. With ``visitor_id`` (the chatbot
        requires visitor tokens) a new conversation is that visitor's, and another
        visitor's is ``ConversationNotFound``, as if it did not exist (see ``_claim``).
        """
        existing = await self._find(chatbot_id, session_id)
        if existing is None:
            now = utcnow()
            row = ConversationRow(
                id=new_id(),
                chatbot_id=chatbot_id,
                session_id=session_id,
                created_at=now,
                updated_at=now,
                visitor_id=visitor_id,
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
            existing = await self._find(chatbot_id, session_id)
            if existing is None:  # only deleting the chatbot deletes conversations
                raise ChatbotNotFound()
        if visitor_id is None:
            return existing
        owned = await self._claim(existing, visitor_id)
        if owned is None:
            raise ConversationNotFound()
        return owned

    async def get_conversation(
        self, chatbot_id: str, session_id: str, *, visitor_id: str | None = None
    ) -> Conversation | None:
        """The conversation of a session; with ``visitor_id``, only if it is that visitor's
        (None for another visitor's, exactly as for a session that does not exist)."""
        found = await self._find(chatbot_id, session_id)
        if found is None or visitor_id is None:
            return found
        return await self._claim(found, visitor_id)

    async def _find(self, chatbot_id: str, session_id: str) -> Conversation | None:
        async with self._db.session() as session:
            row = await session.scalar(
                select(ConversationRow).where(
                    ConversationRow.chatbot_id == chatbot_id,
                    ConversationRow.session_id == session_id,
                )
            )
            return records.conversation(row) if row is not None else None

    async def _claim(self, conversation: Conversation, visitor_id: str) -> Conversation | None:
        """``conversation`` if it is ``visitor_id``'s, else None. One bound to no visitor
        (begun while the chatbot did not require tokens, or before sessions were bound)
        becomes the first token-holding visitor's to use it: one conditional update, so two
        visitors racing for it cannot both win."""
        if conversation.visitor_id is not None:
            return conversation if conversation.visitor_id == visitor_id else None
        if await self._db.group.run(
            lambda batch: _claim_in(batch.connection, conversation.id, visitor_id)
        ):
            return dataclasses.replace(conversation, visitor_id=visitor_id)
        again = await self._find(conversation.chatbot_id, conversation.session_id)
        return again if again is not None and again.visitor_id == visitor_id else None

    # --- a chat turn ----------------------------------------------------------------------

    async def begin_turn(
        self,
        chatbot_id: str,
        session_id: str,
        question: str,
        *,
        visitor_id: str | None = None,
        worker_id: str | None = None,
        new_session: bool = False,
    ) -> OpenedTurn:
        """Open a chat turn in one transaction, shared with other turns opening at the same
        time (``Database.group``): the session's conversation (created on first use, or
        claimed as in ``get_or_create_conversation``), the visitor's message, and the
        answer's row, ``streaming`` and owned by ``worker_id``. Durable when this returns.

        ``ConversationNotFound`` for another visitor's session; ``ChatbotNotFound`` if the
        chatbot was deleted meanwhile.
        """
        turn = _TurnToOpen(
            chatbot_id,
            session_id,
            question,
            visitor_id,
            worker_id,
            utcnow(),
            new_id(),
            new_id(),
            new_session,
        )
        try:
            opened = await self._open(turn)
        except Conflict:
            # Another process began this session's conversation a moment ago (its row is
            # there now), or the chatbot is gone (its conversations went with it).
            try:
                turn = dataclasses.replace(turn, new_session=False)
                opened = await self._db.group.bulk(_open_turns, turn)
            except Conflict:
                raise ChatbotNotFound() from None
        return opened

    async def _open(self, turn: _TurnToOpen) -> OpenedTurn:
        """A new session's turn on Postgres while no other write is in flight: one
        statement on its own (``_OPEN_NEW_SESSION``), one round trip. Otherwise, and so
        under load, in a transaction shared with the other writes waiting (``_open_turns``):
        many turns at once must not each take a pooled connection."""
        db = self._db
        if not (turn.new_session and db.single_statements and db.writes_idle):
            opened: OpenedTurn = await db.group.bulk(_open_turns, turn)
            return opened
        conversation = _new_conversation(turn)
        await db.execute_single(
            _OPEN_NEW_SESSION,
            conversation.id,
            turn.chatbot_id,
            turn.session_id,
            turn.now,
            turn.visitor_id,
            turn.question_id,
            turn.question,
            turn.answer_id,
            turn.worker_id,
        )
        return _opened(turn, conversation, created=True)

    # --- messages ------------------------------------------------------------------------

    async def add_message(
        self,
        conversation_id: str,
        role: MessageRole,
        content: str,
        *,
        status: MessageStatus = "complete",
        worker_id: str | None = None,
    ) -> Message:
        """Append a message and mark the conversation as updated; ``worker_id`` names the
        process generating a ``streaming`` answer (see ``streaming_answers``)."""
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
            worker_id=worker_id,
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
        only_if_streaming: bool = False,
        owner: tuple[str, str] | None = None,
    ) -> bool:
        """Write a streamed message's final state; ``NotFound`` if it no longer exists.
        With ``only_if_streaming`` (the orphan sweeper) nothing happens, and False is
        returned, when the message already ended: two sweepers never charge it twice.

        The tokens it used are added to its org's and chatbot's monthly usage in the same
        transaction, so budgets count exactly what is stored. Without ``usage`` (an answer
        cut short) the stored text is counted with tiktoken: an interrupted answer still
        cost tokens, and disconnecting early must not make generation free. ``owner``,
        ``(chatbot id, org id)`` when the caller knows them, saves looking them up.

        The write shares a transaction with other turns' writes (``Database.group``).
        """
        check_choice(status, _MESSAGE_STATUSES, "status")
        prompt_tokens = _usage_int(usage, "prompt_tokens")
        completion_tokens = _usage_int(usage, "completion_tokens")
        if usage is None and content:
            completion_tokens = count_tokens(content)
        level = (context_quality or {}).get("level")
        values = {
            "content": content,
            "status": status,
            "sources": list(sources) if sources is not None else None,
            "context_quality": context_quality,
            "usage": usage,
            "ttft_ms": ttft_ms,
            "error_code": error_code,
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "quality_level": level if isinstance(level, str) else None,
            "worker_id": None,
        }
        period = month_of(utcnow())

        def op(batch: WriteBatch) -> bool:
            connection = batch.connection
            known = owner or _owner(connection, message_id)
            statement = update(_MESSAGES).where(_MESSAGES.c.id == message_id)
            if only_if_streaming:
                statement = statement.where(_MESSAGES.c.status == "streaming")
            if rowcount(connection.execute(statement.values(values))) == 0:
                if only_if_streaming:
                    return False
                raise NotFound("No message with that id.")
            add_usage(
                batch,
                org_id=known[1],
                chatbot_id=known[0],
                period=period,
                prompt_tokens=prompt_tokens or 0,
                completion_tokens=completion_tokens or 0,
            )
            return True

        return await self._db.group.run(op)

    async def get_answer(self, conversation_id: str, message_id: str) -> Message | None:
        """An assistant message of this conversation (None for any other id)."""
        async with self._db.session() as session:
            row = await session.scalar(
                select(MessageRow).where(
                    MessageRow.id == message_id,
                    MessageRow.conversation_id == conversation_id,
                    MessageRow.role == "assistant",
                )
            )
            return records.message(row) if row is not None else None

    async def get_message(self, message_id: str) -> Message | None:
        async with self._db.session() as session:
            row = await session.scalar(select(MessageRow).where(MessageRow.id == message_id))
            return records.message(row) if row is not None else None

    async def save_partial_answers(self, contents: dict[str, str]) -> None:
        """The text so far of answers still streaming, in one transaction: without a shared
        frame recording, what the orphan sweeper keeps if this process dies."""
        if not contents:
            return
        async with self._db.session(write=True) as session:
            table = cast(Table, MessageRow.__table__)  # Core: one executemany, no ORM rules
            await session.execute(
                update(table)
                .where(table.c.id == bindparam("message_id"), table.c.status == "streaming")
                .values(content=bindparam("text")),
                [{"message_id": mid, "text": text} for mid, text in contents.items()],
            )
            await session.commit()

    async def streaming_answers(self, *, started_before: datetime) -> list[tuple[str, str | None]]:
        """(message id, worker id) of every answer still ``streaming`` that began before
        ``started_before``: what the orphan sweeper checks against live workers."""
        async with self._db.session() as session:
            rows = await session.execute(
                # The literal predicate (not a bound parameter) lets SQLite and Postgres use
                # the partial index ix_messages_streaming.
                select(MessageRow.id, MessageRow.worker_id).where(
                    text("messages.status = 'streaming'"), MessageRow.created_at < started_before
                )
            )
            return [(row.id, row.worker_id) for row in rows]

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


@dataclass(frozen=True, slots=True)
class _TurnToOpen:
    chatbot_id: str
    session_id: str
    question: str
    visitor_id: str | None
    worker_id: str | None
    now: datetime
    question_id: str
    answer_id: str
    # The session id was made for this turn: there is no conversation to look up.
    new_session: bool = False


def _open_turns(batch: WriteBatch, turns: list[_TurnToOpen]) -> list[OpenedTurn | Exception]:
    """``MessageStore.begin_turn`` for many turns at once, inside the batch's transaction:
    one read of their conversations (none for sessions known to be new), then one statement
    each for the conversations created, those touched and all the messages."""
    connection = batch.connection
    keys = list(dict.fromkeys((t.chatbot_id, t.session_id) for t in turns if not t.new_session))
    known: dict[tuple[str, str], Conversation] = (
        {
            (row.chatbot_id, row.session_id): Conversation(
                row.id, row.chatbot_id, row.session_id, row.created_at, row.updated_at,
                row.visitor_id,
            )
            for row in connection.execute(_FIND_CONVERSATIONS, {"keys": keys})
        }
        if keys
        else {}
    )  # fmt: skip
    created: list[dict[str, Any]] = []
    touched: dict[str, datetime] = {}
    messages: list[dict[str, Any]] = []
    outcomes: list[OpenedTurn | Exception] = []
    for turn in turns:
        key = (turn.chatbot_id, turn.session_id)
        conversation = known.get(key)
        is_new = conversation is None
        if conversation is None:
            conversation = _new_conversation(turn)
            created.append(
                {
                    "id": conversation.id,
                    "chatbot_id": turn.chatbot_id,
                    "session_id": turn.session_id,
                    "created_at": turn.now,
                    "updated_at": turn.now,
                    "visitor_id": turn.visitor_id,
                }
            )
        elif turn.visitor_id is not None and conversation.visitor_id != turn.visitor_id:
            if conversation.visitor_id is not None or not _claim_in(
                connection, conversation.id, turn.visitor_id
            ):
                # Another visitor's session: as if it did not exist. Nothing was written.
                outcomes.append(ConversationNotFound())
                continue
            conversation = dataclasses.replace(conversation, visitor_id=turn.visitor_id)
        if not is_new:
            conversation = dataclasses.replace(conversation, updated_at=turn.now)
            touched[conversation.id] = turn.now
        known[key] = conversation
        common = {"conversation_id": conversation.id, "created_at": turn.now}
        question = {"id": turn.question_id, "role": "user", "content": turn.question}
        answer = {"id": turn.answer_id, "role": "assistant", "content": ""}
        # In this order: ``seq`` puts each answer after its question.
        messages.append({**question, **common, "status": "complete", "worker_id": None})
        messages.append({**answer, **common, "status": "streaming", "worker_id": turn.worker_id})
        outcomes.append(_opened(turn, conversation, created=is_new))
    if created:
        connection.execute(_INSERT_CONVERSATIONS, created)
    if touched:
        connection.execute(
            _TOUCH_CONVERSATIONS,
            [{"conversation": cid, "now": now} for cid, now in touched.items()],
        )
    if messages:
        connection.execute(_INSERT_MESSAGES, messages)
    return outcomes


def _new_conversation(turn: _TurnToOpen) -> Conversation:
    return Conversation(
        new_id(), turn.chatbot_id, turn.session_id, turn.now, turn.now, visitor_id=turn.visitor_id
    )


def _opened(turn: _TurnToOpen, conversation: Conversation, *, created: bool) -> OpenedTurn:
    return OpenedTurn(
        conversation,
        Message(turn.question_id, conversation.id, "user", turn.question, "complete", turn.now),
        Message(turn.answer_id, conversation.id, "assistant", "", "streaming", turn.now,
                worker_id=turn.worker_id),
        created=created,
    )  # fmt: skip


def _claim_in(connection: Connection, conversation_id: str, visitor_id: str) -> bool:
    """Make a conversation bound to no visitor ``visitor_id``'s (see ``_claim``); False if
    another visitor claimed it first."""
    claimed = connection.execute(
        update(_CONVERSATIONS)
        .where(_CONVERSATIONS.c.id == conversation_id, _CONVERSATIONS.c.visitor_id.is_(None))
        .values(visitor_id=visitor_id)
    )
    return rowcount(claimed) == 1


def _owner(connection: Connection, message_id: str) -> tuple[str, str]:
    """(chatbot id, org id) of a message; ``NotFound`` if there is no such message."""
    found = connection.execute(
        select(_CHATBOTS.c.id, _CHATBOTS.c.org_id)
        .select_from(
            _MESSAGES.join(_CONVERSATIONS, _CONVERSATIONS.c.id == _MESSAGES.c.conversation_id).join(
                _CHATBOTS, _CHATBOTS.c.id == _CONVERSATIONS.c.chatbot_id
            )
        )
        .where(_MESSAGES.c.id == message_id)
    ).first()
    if found is None:
        raise NotFound("No message with that id.")
    return found.id, found.org_id


def _usage_int(usage: dict[str, Any] | None, name: str) -> int | None:
    value = (usage or {}).get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return max(int(value), 0)
