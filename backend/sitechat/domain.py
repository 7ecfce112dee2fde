"""Plain records that cross layers. Storage returns these, never ORM objects.

The last group are the records the admin side reads: conversation summaries, feedback,
token usage and the facts analytics are computed from.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

MessageRole = Literal["user", "assistant"]
MessageStatus = Literal["complete", "streaming", "interrupted", "stopped", "failed"]
DocumentStatus = Literal["queued", "running", "done", "failed"]
# What an answer may draw on: the chatbot's documents alone, or general knowledge too,
# marked as not from the documents (``chat.prompt``).
AnswerScope = Literal["documents_only", "documents_and_general"]
ANSWER_SCOPES: tuple[AnswerScope, ...] = ("documents_only", "documents_and_general")

# The chatbot ``sitechat demo`` seeds and the demo page at ``/`` talks to.
DEMO_CHATBOT_ID = "demo"

# Ids that appear in URLs and embed snippets, checked the same way at every edge: a chatbot id
# is 1 to 64 letters, digits, '-' or '_', starting with a letter or digit; a visitor's
# session id is 8 to 64 of the same characters.
CHATBOT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"
SESSION_ID_PATTERN = r"^[A-Za-z0-9_-]{8,64}$"


@dataclass(frozen=True, slots=True)
class Org:
    id: str
    name: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ApiKeyRecord:
    id: str
    org_id: str
    prefix: str  # the visible start of the key, e.g. "sck_3fA9"
    name: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


@dataclass(frozen=True, slots=True)
class ChatbotConfig:
    """Everything the public path needs about a chatbot; cached as a whole."""

    id: str
    org_id: str
    name: str
    system_prompt: str = ""
    provider: str | None = None  # None: the deployment's default provider
    model: str | None = None
    # Providers tried in order when ``provider`` fails before its first token; empty: the
    # deployment's ``fallback_providers``.
    fallback_providers: tuple[str, ...] = ()
    temperature: float = 0.2
    max_tokens: int | None = None
    greeting: str = "Hi! How can I help?"
    starter_questions: tuple[str, ...] = ()
    theme: dict[str, Any] = field(default_factory=dict)
    fallback_message: str = (
        "I don't know that yet; the documents I was given don't cover it. "
        "Please rephrase, or contact the site's owner."
    )
    allowed_origins: tuple[str, ...] = ()
    answer_scope: AnswerScope = "documents_only"
    settings: dict[str, Any] = field(default_factory=dict)  # rate limits, budgets, flags
    created_at: datetime | None = None
    updated_at: datetime | None = None

    def public_dict(self) -> dict[str, Any]:
        """The fields a visitor's browser may see."""
        return {
            "id": self.id,
            "name": self.name,
            "greeting": self.greeting,
            "starter_questions": list(self.starter_questions),
            "theme": dict(self.theme),
        }


@dataclass(frozen=True, slots=True)
class Conversation:
    id: str
    chatbot_id: str
    session_id: str
    created_at: datetime
    updated_at: datetime
    # The visitor (from the visitor token) whose session this is; None when the chatbot did
    # not require tokens when it began. Only that visitor may read or extend it.
    visitor_id: str | None = None


@dataclass(frozen=True, slots=True)
class Message:
    id: str
    conversation_id: str
    role: MessageRole
    content: str
    status: MessageStatus
    created_at: datetime
    sources: list[dict[str, Any]] = field(default_factory=list)
    context_quality: dict[str, Any] | None = None
    usage: dict[str, Any] | None = None
    # Milliseconds from the request to the first token; None for user messages.
    ttft_ms: float | None = None
    error_code: str | None = None
    # The process generating a ``streaming`` answer (None once it ended).
    worker_id: str | None = None


@dataclass(frozen=True, slots=True)
class OpenedTurn:
    """What opening a chat turn stored, in one transaction: the session's conversation
    (``created`` if this turn began it), the visitor's message and the answer's row,
    ``streaming`` until the answer ends."""

    conversation: Conversation
    question: Message
    answer: Message
    created: bool


@dataclass(frozen=True, slots=True)
class Document:
    id: str
    chatbot_id: str
    title: str
    url: str | None
    source_type: str  # "text", "markdown", "html", "pdf", "url"
    content_hash: str
    status: DocumentStatus
    chunk_count: int
    error: str | None
    created_at: datetime
    updated_at: datetime
    metadata: dict[str, Any] = field(default_factory=dict)


# --- records the admin side reads -------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ConversationSummary:
    conversation: Conversation
    message_count: int
    has_feedback: bool


@dataclass(frozen=True, slots=True)
class Feedback:
    message_id: str
    conversation_id: str
    rating: int  # +1 helpful, -1 not helpful
    comment: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class TokenUsage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True, slots=True)
class MessageFacts:
    """What analytics needs of one message, without its text."""

    created_at: datetime
    role: str
    status: str
    prompt_tokens: int
    completion_tokens: int
    ttft_ms: float | None
    quality_level: str | None
    error_code: str | None


@dataclass(frozen=True, slots=True)
class RejectionCount:
    day: str  # "2026-11-21", UTC
    reason: str
    count: int


@dataclass(frozen=True, slots=True)
class UnansweredAsk:
    """A visitor's question whose answer had no usable context (``quality_level`` ``none``,
    the fallback) or little (``low``): what the unanswered-questions report groups."""

    question: str  # as the visitor typed it
    asked_at: datetime
    quality_level: str  # "none" | "low"
    conversation_id: str
    session_id: str
