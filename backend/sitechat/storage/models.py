"""The tables, as SQLAlchemy ORM classes. Only ``storage`` sees these; others get records.

Types are the portable ones (String, Text, JSON, Float, Integer, DateTime with time zone) so
one schema and one migration serve SQLite and PostgreSQL. Deletes cascade in the database
(``ON DELETE CASCADE``), not in the ORM: deleting a chatbot is one statement, whatever it owns.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Names for constraints and indexes, so migrations can refer to them on every backend.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

ID_LENGTH = 36  # a uuid4 string
CHATBOT_ID_LENGTH = 64


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in and out, on every backend.

    PostgreSQL keeps ``timestamptz``; SQLite has no time zones, so UTC is stored naive and
    made aware again when read.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are ambiguous; pass an aware UTC datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


# SQLite only auto-increments a column declared exactly ``INTEGER PRIMARY KEY``.
SequenceInteger = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class OrgRow(Base):
    __tablename__ = "orgs"

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # Tokens (prompt + completion) the org's chatbots may use per calendar month (UTC);
    # None: no org-wide budget.
    monthly_token_budget: Mapped[int | None] = mapped_column(BigInteger)


class ApiKeyRow(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    org_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("orgs.id", ondelete="CASCADE"), index=True
    )
    # The visible start of the key; lookups go by prefix, then a constant-time hash compare.
    prefix: Mapped[str] = mapped_column(String(16), index=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)  # sha256 hex
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class ChatbotRow(Base):
    __tablename__ = "chatbots"

    id: Mapped[str] = mapped_column(String(CHATBOT_ID_LENGTH), primary_key=True)
    org_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("orgs.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    system_prompt: Mapped[str] = mapped_column(Text)
    provider: Mapped[str | None] = mapped_column(String(32))
    model: Mapped[str | None] = mapped_column(String(200))
    fallback_providers: Mapped[list[str]] = mapped_column(JSON, server_default=text("'[]'"))
    temperature: Mapped[float] = mapped_column(Float)
    max_tokens: Mapped[int | None] = mapped_column(Integer)
    greeting: Mapped[str] = mapped_column(Text)
    starter_questions: Mapped[list[str]] = mapped_column(JSON)
    theme: Mapped[dict[str, Any]] = mapped_column(JSON)
    fallback_message: Mapped[str] = mapped_column(Text)
    allowed_origins: Mapped[list[str]] = mapped_column(JSON)
    answer_scope: Mapped[str] = mapped_column(String(32), server_default="documents_only")
    settings: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ConversationRow(Base):
    __tablename__ = "conversations"
    __table_args__ = (
        UniqueConstraint("chatbot_id", "session_id"),
        Index(None, "chatbot_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    chatbot_id: Mapped[str] = mapped_column(
        String(CHATBOT_ID_LENGTH), ForeignKey("chatbots.id", ondelete="CASCADE")
    )
    session_id: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    visitor_id: Mapped[str | None] = mapped_column(String(64))


# The answers the unanswered-questions report lists; a literal, so the partial index below
# matches the queries that spell it the same way (SQLite needs the same expression).
UNANSWERED_LEVELS = "quality_level IN ('none', 'low')"


class MessageRow(Base):
    """A message; ``seq`` orders messages, even two created in the same microsecond."""

    __tablename__ = "messages"
    __table_args__ = (
        Index(None, "conversation_id", "created_at"),
        Index(None, "conversation_id", "seq"),
        # Only the answers streaming right now: what the orphan sweeper reads.
        Index(
            "ix_messages_streaming",
            "created_at",
            postgresql_where=text("status = 'streaming'"),
            sqlite_where=text("status = 'streaming'"),
        ),
        # Only the answers without (enough) context: what the unanswered-questions report
        # reads, without touching every other message of a conversation.
        Index(
            "ix_messages_unanswered",
            "conversation_id",
            "created_at",
            postgresql_where=text(UNANSWERED_LEVELS),
            sqlite_where=text(UNANSWERED_LEVELS),
        ),
    )

    seq: Mapped[int] = mapped_column(SequenceInteger, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(ID_LENGTH), unique=True)
    conversation_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("conversations.id", ondelete="CASCADE")
    )
    role: Mapped[str] = mapped_column(String(16))
    content: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    sources: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    context_quality: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    usage: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    ttft_ms: Mapped[float | None] = mapped_column(Float)
    error_code: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # Copied out of ``usage`` and ``context_quality`` when the message is finished, so
    # analytics aggregate plain columns instead of parsing JSON on every backend.
    prompt_tokens: Mapped[int | None] = mapped_column(Integer)
    completion_tokens: Mapped[int | None] = mapped_column(Integer)
    quality_level: Mapped[str | None] = mapped_column(String(16))
    # The process (``WorkerPresence.worker_id``) generating a streaming answer.
    worker_id: Mapped[str | None] = mapped_column(String(32))


class DocumentRow(Base):
    __tablename__ = "documents"
    __table_args__ = (Index(None, "chatbot_id"),)

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    chatbot_id: Mapped[str] = mapped_column(
        String(CHATBOT_ID_LENGTH), ForeignKey("chatbots.id", ondelete="CASCADE")
    )
    title: Mapped[str] = mapped_column(Text)
    url: Mapped[str | None] = mapped_column(Text)
    source_type: Mapped[str] = mapped_column(String(32))
    content_hash: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16))
    chunk_count: Mapped[int] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    # ``metadata`` is taken on declarative classes; the column keeps the name.
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class FeedbackRow(Base):
    """A visitor's rating of one assistant message (one per message; a new one replaces it)."""

    __tablename__ = "feedback"

    message_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True
    )
    conversation_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("conversations.id", ondelete="CASCADE"), index=True
    )
    rating: Mapped[int] = mapped_column(Integer)  # +1 helpful, -1 not helpful
    comment: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class UsageCounterRow(Base):
    """Tokens used per org or chatbot per calendar month (UTC), for budgets.

    Incremented in the transaction that finishes a message; no foreign key, so an org's
    month keeps counting what a deleted chatbot used.
    """

    __tablename__ = "usage_counters"

    scope: Mapped[str] = mapped_column(String(16), primary_key=True)  # "org" | "chatbot"
    scope_id: Mapped[str] = mapped_column(String(CHATBOT_ID_LENGTH), primary_key=True)
    period: Mapped[str] = mapped_column(String(7), primary_key=True)  # "2026-11"
    prompt_tokens: Mapped[int] = mapped_column(BigInteger)
    completion_tokens: Mapped[int] = mapped_column(BigInteger)


class GateRejectionRow(Base):
    """Public requests the gate refused, per chatbot, UTC day and reason (for analytics)."""

    __tablename__ = "gate_rejections"

    chatbot_id: Mapped[str] = mapped_column(
        String(CHATBOT_ID_LENGTH),
        ForeignKey("chatbots.id", ondelete="CASCADE"),
        primary_key=True,
    )
    day: Mapped[str] = mapped_column(String(10), primary_key=True)  # "2026-11-21"
    reason: Mapped[str] = mapped_column(String(32), primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger)


class IngestionJobRow(Base):
    """A piece of ingestion work waiting for, or held by, a job runner.

    The document row shows an owner the status and progress; this row is how processes
    share the work: whichever runner claims it (``storage.jobs``) indexes it. ``data`` holds
    an upload's bytes until the job ends; ``payload`` the rest (file name, URL, crawl
    options). ``heartbeat_at`` tells a dead runner's jobs from slow ones.
    """

    __tablename__ = "ingestion_jobs"
    __table_args__ = (Index(None, "status", "created_at"),)

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    document_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("documents.id", ondelete="CASCADE"), index=True
    )
    chatbot_id: Mapped[str] = mapped_column(String(CHATBOT_ID_LENGTH))
    kind: Mapped[str] = mapped_column(String(16))  # "upload" | "url" | "crawl"
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    data: Mapped[bytes | None] = mapped_column(LargeBinary)
    status: Mapped[str] = mapped_column(String(16))  # queued, running, done, failed, cancelled
    attempts: Mapped[int] = mapped_column(Integer)
    worker: Mapped[str | None] = mapped_column(String(128))
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class UnansweredResolutionRow(Base):
    """An owner marked an unanswered question as resolved (``reports.unanswered``).

    ``question_id`` is the hash of the question's normalised text; the question shows as
    resolved until it is asked again after ``resolved_at``.
    """

    __tablename__ = "unanswered_resolutions"

    chatbot_id: Mapped[str] = mapped_column(
        String(CHATBOT_ID_LENGTH),
        ForeignKey("chatbots.id", ondelete="CASCADE"),
        primary_key=True,
    )
    question_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    resolved_at: Mapped[datetime] = mapped_column(UTCDateTime())
