"""Plain records the admin side reads from storage: conversation summaries, feedback, token
usage and the facts analytics are computed from. Like ``sitechat.domain``, no ORM and no HTTP.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sitechat.domain import Conversation


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
