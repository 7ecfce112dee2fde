"""A chat turn's records: the request, the turn it opened, and what it has produced so far.

``Progress`` is what the pipeline saves whichever way a turn ends; ``spent`` is what that
turn cost, the one number budgets are charged. ``ChatTurn.stop`` lets someone outside the
turn (a graceful restart today) ask its answer to end early.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sitechat.chat.events import Source
from sitechat.chat.quality import ContextQuality
from sitechat.chat.stopping import StopSignal
from sitechat.domain import ChatbotConfig, Conversation, Message
from sitechat.llm.base import ChatModel, ContextPassage, Usage
from sitechat.llm.fallback import FallbackChain
from sitechat.retrieval.base import ScoredChunk
from sitechat.tokens import count_tokens

SNIPPET_CHARS = 240
# The usage of an answer the model had no part in (the fallback): free.
FREE: dict[str, Any] = {
    "prompt_tokens": 0,
    "completion_tokens": 0,
    "total_tokens": 0,
    "source": "none",
    "provider": None,
    "model": None,
}


@dataclass(frozen=True, slots=True)
class ChatRequest:
    message: str
    chatbot_id: str
    session_id: str | None = None
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    # The visitor of the request's visitor token, when the chatbot requires one: their
    # sessions are theirs alone (another visitor's session id is ``ConversationNotFound``).
    visitor_id: str | None = None


@dataclass(slots=True)
class ChatTurn:
    request: ChatRequest
    config: ChatbotConfig
    conversation: Conversation
    user_message: Message
    # The answer's row, stored ``streaming`` with the question: its id is the answer's.
    answer: Message
    started_at: float  # time.monotonic() when the request arrived
    # This turn began the conversation: there is no history to read.
    new_conversation: bool = False
    # The search for the message as asked, begun as the turn opened (None: a greeting or a
    # follow-up, whose search waits for the rewritten question).
    search: asyncio.Future[list[ScoredChunk]] | None = field(default=None, compare=False)
    stop: StopSignal = field(default_factory=StopSignal, compare=False)

    @property
    def session_id(self) -> str:
        return self.conversation.session_id


def new_session_id() -> str:
    return uuid.uuid4().hex


def snippet(text: str, limit: int = SNIPPET_CHARS) -> str:
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0]
    return f"{cut}…"


def to_sources(results: Sequence[ScoredChunk]) -> tuple[Source, ...]:
    return tuple(
        Source(
            number=i,
            chunk_id=r.chunk.id,
            document_id=r.chunk.document_id,
            title=r.chunk.title,
            url=r.chunk.url,
            heading=r.chunk.heading,
            snippet=snippet(r.chunk.text),
            score=r.score,
        )
        for i, r in enumerate(results, start=1)
    )


def to_passages(results: Sequence[ScoredChunk]) -> list[ContextPassage]:
    passages = []
    for i, r in enumerate(results, start=1):
        title = r.chunk.title if not r.chunk.heading else f"{r.chunk.title} — {r.chunk.heading}"
        passages.append(
            ContextPassage(number=i, title=title, text=r.chunk.text, url=r.chunk.url, score=r.score)
        )
    return passages


@dataclass(slots=True)
class Progress:
    """What a turn has produced so far, for saving whatever way it ends."""

    assistant_id: str | None = None
    # (chatbot id, org id): whose usage the answer's cost is added to.
    owner: tuple[str, str] | None = None
    parts: list[str] = field(default_factory=list)
    sources: tuple[Source, ...] = ()
    quality: ContextQuality | None = None
    ttft_ms: float | None = None
    saved: bool = False
    # What the model cost so far: ``model`` is set as it is called, so the prompt is charged
    # however the turn ends; ``usage`` is the provider's own count, once it arrived.
    model: ChatModel | None = None
    prompt_tokens: int = 0
    usage: Usage | None = None
    rewrite: Usage | None = None  # the query rewrite's model call, when there was one
    check: Usage | None = None  # the answer check's model call, when there was one

    @property
    def text(self) -> str:
        return "".join(self.parts)


def spent(progress: Progress) -> dict[str, Any]:
    """What a turn that did not complete cost: nothing if no model was called; else its
    prompt plus the answer so far (the provider's count if it arrived, else tiktoken's),
    and the calls beside it, recorded like a complete answer's usage."""
    if progress.model is None:
        return with_side_calls(dict(FREE), progress)
    usage = progress.usage or Usage(
        progress.prompt_tokens, count_tokens(progress.text), source="estimated"
    )
    return usage_dict(usage, progress.model, side_calls=progress)


def usage_dict(
    usage: Usage, model: ChatModel, *, side_calls: Progress | None = None
) -> dict[str, Any]:
    """``provider`` is the model that answered; after a fallback chain handed the answer on,
    ``fallback_from`` lists the providers that failed before it, in order, and why."""
    cost: dict[str, Any] = {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.prompt_tokens + usage.completion_tokens,
        "source": usage.source,
        "provider": model.name,
        "model": usage.model or None,
    }
    if isinstance(model, FallbackChain) and model.attempts:
        cost["fallback_from"] = [
            {"provider": provider, "reason": reason} for provider, reason in model.attempts
        ]
    return with_side_calls(cost, side_calls)


def with_side_calls(cost: dict[str, Any], progress: Progress | None) -> dict[str, Any]:
    """A turn's cost including its model calls beside the answer: the one that rewrote its
    question (a follow-up made standalone) and the answer check. The totals budgets are
    charged count them, and ``query_rewrite`` and ``answer_check`` show each."""
    if progress is None:
        return cost
    calls = {"query_rewrite": progress.rewrite, "answer_check": progress.check}
    out = dict(cost)
    for name, call in calls.items():
        if call is None:
            continue
        out["prompt_tokens"] += call.prompt_tokens
        out["completion_tokens"] += call.completion_tokens
        out[name] = {
            "prompt_tokens": call.prompt_tokens,
            "completion_tokens": call.completion_tokens,
            "source": call.source,
        }
    out["total_tokens"] = out["prompt_tokens"] + out["completion_tokens"]
    return out
