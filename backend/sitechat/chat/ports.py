"""What the chat pipeline needs from the rest of sitechat, and nothing more.

``ChatService`` is built from these small protocols and a ``ChatSettings``, not from the
whole ``Store`` and ``Settings``: a reader sees at once what a chat turn can touch, and a
test can build the pipeline from the parts it exercises. The real implementations are
``storage.messages.MessageStore``, ``shared_state.config_cache.ConfigCache``,
``llm.registry.ModelRegistry`` and any ``retrieval.base.VectorStore``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from sitechat.domain import ChatbotConfig, Message, MessageStatus, OpenedTurn
from sitechat.llm.base import ChatModel
from sitechat.llm.fallback import FallbackChain
from sitechat.retrieval.base import ScoredChunk

if TYPE_CHECKING:
    from sitechat.config import Settings


class ModelSource(Protocol):
    def get(self, provider: str | None) -> ChatModel: ...

    def chain(
        self, provider: str | None, fallbacks: Sequence[str], *, first_token_timeout: float
    ) -> FallbackChain:
        """The model of ``provider`` followed by its fallbacks, for one turn; the chain
        owns the first-token deadline (``first_token_timeout`` for each member)."""
        ...


class ConfigSource(Protocol):
    async def get(self, chatbot_id: str) -> ChatbotConfig | None: ...


class Searcher(Protocol):
    async def search(
        self, chatbot_id: str, query: str, limit: int, *, variants: Sequence[str] = ()
    ) -> list[ScoredChunk]: ...


class MessageLog(Protocol):
    """The conversation store, as far as a chat turn reads and writes it."""

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
        """The conversation (created on first use), the question and the answer's
        ``streaming`` row, stored together before the answer is generated. With
        ``visitor_id``: ``ConversationNotFound`` for another visitor's session.
        ``new_session``: the session id was made for this turn, so no conversation can
        have it yet (nothing to look up)."""
        ...

    async def recent_messages(
        self, conversation_id: str, limit: int, *, before_message_id: str | None = None
    ) -> list[Message]: ...

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
    ) -> bool: ...


@dataclass(frozen=True, slots=True)
class ChatSettings:
    """The deployment settings a chat turn reads."""

    max_message_chars: int = 4000
    retrieval_top_k: int = 5
    history_messages: int = 10
    default_max_tokens: int = 400
    first_token_timeout_seconds: float = 60.0
    log_visitor_text: bool = False

    @classmethod
    def of(cls, settings: Settings) -> ChatSettings:
        return cls(
            max_message_chars=settings.max_message_chars,
            retrieval_top_k=settings.retrieval_top_k,
            history_messages=settings.history_messages,
            default_max_tokens=settings.default_max_tokens,
            first_token_timeout_seconds=settings.model_first_token_timeout_seconds,
            log_visitor_text=settings.log_visitor_text,
        )
