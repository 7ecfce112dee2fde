"""The chat pipeline: one visitor message in, a stream of domain events out. No HTTP here.

A turn has two phases, so that every request error is known before a stream starts:

1. ``open_turn`` validates, loads the chatbot config (cached), gets or creates the
   conversation and saves the user message *before* anything is generated;
2. ``stream`` yields ``start``, ``sources``, ``token``... and ends with ``complete`` or
   ``error``. It saves the assistant message as it ends: complete, failed, or interrupted
   with the partial answer (model failure mid-stream, or the consumer going away).

Work that does not depend on each other runs concurrently: the history load, the assistant
row's creation and, when the message is not a follow-up, the search itself.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any

import anyio

from sitechat.chat.events import (
    ChatEvent,
    CompleteEvent,
    ErrorEvent,
    Source,
    SourcesEvent,
    StartEvent,
    TokenEvent,
)
from sitechat.chat.guard import RepetitionGuard
from sitechat.chat.ports import ChatSettings, ConfigSource, MessageLog, ModelSource, Searcher
from sitechat.chat.prompt import build_prompt
from sitechat.chat.quality import (
    DEFAULT_SIMILARITY_LEVELS,
    ContextQuality,
    SimilarityLevels,
    assess,
)
from sitechat.chat.query import EnhancedQuery, QueryEnhancer, is_follow_up
from sitechat.domain import SESSION_ID_PATTERN, ChatbotConfig, Conversation, Message
from sitechat.errors import (
    ChatbotNotFound,
    InvalidInput,
    ModelError,
    ModelInterrupted,
    ModelUnavailable,
    SitechatError,
)
from sitechat.llm.base import ChatModel, ContextPassage, GenerationRequest, TextDelta, Usage
from sitechat.retrieval.base import ScoredChunk
from sitechat.tokens import count_tokens

logger = logging.getLogger(__name__)

_SESSION_ID = re.compile(SESSION_ID_PATTERN)
SNIPPET_CHARS = 240


@dataclass(frozen=True, slots=True)
class ChatRequest:
    message: str
    chatbot_id: str
    session_id: str | None = None
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)


@dataclass(frozen=True, slots=True)
class ChatTurn:
    request: ChatRequest
    config: ChatbotConfig
    conversation: Conversation
    user_message: Message
    started_at: float  # time.monotonic() when the request arrived

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
class _Progress:
    """What a turn has produced so far, for saving whatever way it ends."""

    assistant_id: str | None = None
    parts: list[str] = field(default_factory=list)
    sources: tuple[Source, ...] = ()
    quality: ContextQuality | None = None
    ttft_ms: float | None = None
    saved: bool = False

    @property
    def text(self) -> str:
        return "".join(self.parts)


class ChatService:
    def __init__(
        self,
        *,
        messages: MessageLog,
        vectors: Searcher,
        models: ModelSource,
        configs: ConfigSource,
        settings: ChatSettings | None = None,
        enhancer: QueryEnhancer | None = None,
        similarity_levels: SimilarityLevels | None = None,
    ) -> None:
        self.messages = messages
        self.vectors = vectors
        self.models = models
        self.configs = configs
        self.settings = settings or ChatSettings()
        # Without an enhancer the heuristic alone rewrites follow-ups (no model calls).
        self.enhancer = enhancer or QueryEnhancer(rewrite_providers=())
        # How dense similarity maps to context-quality levels (hybrid search only).
        self.similarity_levels = similarity_levels or DEFAULT_SIMILARITY_LEVELS

    # --- phase 1 -------------------------------------------------------------------------

    async def open_turn(self, request: ChatRequest) -> ChatTurn:
        started_at = time.monotonic()
        message = request.message.strip()
        if not message:
            raise InvalidInput("The message is empty.")
        if len(message) > self.settings.max_message_chars:
            raise InvalidInput(
                f"The message is longer than {self.settings.max_message_chars} characters."
            )
        if request.session_id is not None and not _SESSION_ID.match(request.session_id):
            raise InvalidInput("session_id must be 8 to 64 letters, digits, '-' or '_'.")
        config = await self.configs.get(request.chatbot_id)
        if config is None:
            raise ChatbotNotFound()
        session_id = request.session_id or new_session_id()
        conversation = await self.messages.get_or_create_conversation(config.id, session_id)
        user_message = await self.messages.add_message(conversation.id, "user", message)
        return ChatTurn(request, config, conversation, user_message, started_at)

    # --- phase 2 -------------------------------------------------------------------------

    async def stream(self, turn: ChatTurn) -> AsyncIterator[ChatEvent]:
        progress = _Progress()
        request_id = turn.request.request_id
        try:
            # aclosing: when the consumer leaves, the generation's own cleanup (closing the
            # model stream) runs inside this aclose(), not later in a task asyncio starts.
            async with aclosing(self._generate(turn, progress)) as events:
                async for event in events:
                    yield event
        except ModelError as exc:
            logger.warning(
                "model failed: %s (request %s)", exc.__cause__ or exc, request_id, exc_info=exc
            )
            interrupted = isinstance(exc, ModelInterrupted) or bool(progress.parts)
            await self._save_end(
                progress, "interrupted" if interrupted else "failed", error_code=exc.code
            )
            yield self._error(exc, turn, progress, partial=interrupted)
        except SitechatError as exc:
            logger.warning("chat turn failed: %r (request %s)", exc, request_id, exc_info=exc)
            await self._save_end(
                progress, "interrupted" if progress.parts else "failed", error_code=exc.code
            )
            yield self._error(exc, turn, progress, partial=bool(progress.parts))
        except Exception:
            logger.exception("chat turn crashed (request %s)", request_id)
            internal = SitechatError()
            await self._save_end(
                progress, "interrupted" if progress.parts else "failed", error_code=internal.code
            )
            yield self._error(internal, turn, progress, partial=bool(progress.parts))
        finally:
            if not progress.saved and progress.assistant_id is not None:
                # The consumer went away (client disconnect, cancellation): keep the partial
                # answer, marked as interrupted. Shielded: we are inside a cancelled scope.
                with anyio.CancelScope(shield=True):
                    await self._save_end(progress, "interrupted", error_code="client_disconnected")

    async def answer(self, turn: ChatTurn) -> CompleteEvent | ErrorEvent:
        """The non-streaming outcome: the final ``complete`` or ``error`` event."""
        last: ChatEvent | None = None
        async for event in self.stream(turn):
            last = event
        assert isinstance(last, CompleteEvent | ErrorEvent)
        return last

    async def _generate(
        self, turn: ChatTurn, progress: _Progress
    ) -> AsyncGenerator[ChatEvent, None]:
        config = turn.config
        message = turn.user_message.content
        model = self.models.get(config.provider)

        async def search(query: str, variants: Sequence[str] = ()) -> list[ScoredChunk]:
            return await self.vectors.search(
                config.id, query, self.settings.retrieval_top_k, variants=variants
            )

        # The raw message is searched at once, while history loads and the query is
        # enhanced: most messages are not rewritten, and their search is then already done.
        speculative = None if is_follow_up(message) else asyncio.ensure_future(search(message))
        if speculative is not None:
            # Its result may go unused (the query got rewritten); never leave an error unread.
            speculative.add_done_callback(lambda t: t.cancelled() or t.exception())
        try:
            history, assistant = await asyncio.gather(
                self.messages.recent_messages(
                    turn.conversation.id,
                    self.settings.history_messages,
                    before_message_id=turn.user_message.id,
                ),
                self.messages.add_message(
                    turn.conversation.id, "assistant", "", status="streaming"
                ),
            )
            progress.assistant_id = assistant.id
            yield StartEvent(message_id=assistant.id, session_id=turn.session_id)

            # Bounded by the enhancer's timeout: never delays the answer by more than that.
            enhanced = await self.enhancer.enhance(config, message, history, model)
            if speculative is not None and enhanced.text == message and not enhanced.variants:
                results = await speculative
            else:
                results = await search(enhanced.text, enhanced.variants)
        finally:
            if speculative is not None and not speculative.done():
                speculative.cancel()

        quality = assess(enhanced.text, results, similarity_levels=self.similarity_levels)
        progress.quality = quality
        if quality.level == "none":
            async for event in self._fallback(turn, progress, enhanced):
                yield event
            return

        max_tokens = config.max_tokens or self.settings.default_max_tokens
        passages = to_passages(results)
        # A small model answers best from fewer passages and shorter answers: its own caps.
        if model.max_answer_tokens is not None:
            max_tokens = min(max_tokens, model.max_answer_tokens)
        if model.max_passages is not None:
            passages = passages[: model.max_passages]
        max_tokens = min(max_tokens, model.context_window // 2)
        prompt = build_prompt(
            config,
            message,
            passages,
            history,
            context_window=model.context_window,
            max_tokens=max_tokens,
        )
        used = results[: len(prompt.passages)]
        progress.sources = to_sources(used)
        if len(used) < len(results):
            # Report the context the answer actually had: the chunks that fit the prompt.
            quality = assess(enhanced.text, used, similarity_levels=self.similarity_levels)
            if quality.level == "none":  # the best chunks matched; keep the model's answer
                quality = dataclasses.replace(quality, level="low")
            progress.quality = quality
        yield SourcesEvent(progress.sources, quality.to_dict())

        generation = GenerationRequest(
            messages=prompt.messages,
            question=message,
            passages=prompt.passages,
            model=config.model,
            temperature=config.temperature,
            max_tokens=max_tokens,
        )
        usage: Usage | None = None
        guard = RepetitionGuard()
        stopped_looping = False
        stream = model.stream(generation)
        try:
            iterator = stream.__aiter__()
            while True:
                try:
                    if not progress.parts and usage is None:
                        with anyio.fail_after(self.settings.first_token_timeout_seconds):
                            item = await iterator.__anext__()
                    else:
                        item = await iterator.__anext__()
                except StopAsyncIteration:
                    break
                except TimeoutError as exc:
                    raise ModelUnavailable("The language model did not answer in time.") from exc
                if isinstance(item, TextDelta):
                    if not item.text:
                        continue
                    if progress.ttft_ms is None:
                        progress.ttft_ms = (time.monotonic() - turn.started_at) * 1000
                    progress.parts.append(item.text)
                    yield TokenEvent(item.text)
                    if guard.feed(item.text):
                        stopped_looping = True
                        logger.info(
                            "stopped a looping answer (request %s)", turn.request.request_id
                        )
                        break
                else:
                    usage = item
        finally:
            with anyio.CancelScope(shield=True):
                await stream.aclose()

        answer = progress.text
        if usage is None:
            usage = Usage(prompt.prompt_tokens, count_tokens(answer), source="estimated")
        usage_dict = self._usage_dict(usage, model)
        if stopped_looping:
            usage_dict["stopped"] = "repetition"
        await self.messages.finish_message(
            assistant.id,
            content=answer,
            status="complete",
            sources=[s.to_dict() for s in progress.sources],
            context_quality=quality.to_dict(),
            usage=usage_dict,
            ttft_ms=progress.ttft_ms,
        )
        progress.saved = True
        yield CompleteEvent(
            content=answer,
            message_id=assistant.id,
            session_id=turn.session_id,
            sources=progress.sources,
            context_quality=quality.to_dict(),
            usage=usage_dict,
        )

    async def _fallback(
        self, turn: ChatTurn, progress: _Progress, enhanced: EnhancedQuery
    ) -> AsyncIterator[ChatEvent]:
        """Nothing relevant was found: answer honestly without calling the model."""
        assert progress.quality is not None and progress.assistant_id is not None
        text = turn.config.fallback_message
        quality = progress.quality.to_dict()
        yield SourcesEvent((), quality)
        progress.ttft_ms = (time.monotonic() - turn.started_at) * 1000
        progress.parts.append(text)
        yield TokenEvent(text)
        usage = {
            "prompt_tokens": 0,
            "completion_tokens": 0,
            "total_tokens": 0,
            "source": "none",
            "provider": None,
            "model": None,
        }
        await self.messages.finish_message(
            progress.assistant_id,
            content=text,
            status="complete",
            sources=[],
            context_quality=quality,
            usage=usage,
            ttft_ms=progress.ttft_ms,
        )
        progress.saved = True
        logger.info("no context for %r (query %r): fallback answer", turn.config.id, enhanced.text)
        yield CompleteEvent(
            content=text,
            message_id=progress.assistant_id,
            session_id=turn.session_id,
            sources=(),
            context_quality=quality,
            usage=usage,
            fallback=True,
        )

    @staticmethod
    def _usage_dict(usage: Usage, model: ChatModel) -> dict[str, Any]:
        return {
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens,
            "total_tokens": usage.prompt_tokens + usage.completion_tokens,
            "source": usage.source,
            "provider": model.name,
            "model": usage.model or None,
        }

    async def _save_end(self, progress: _Progress, status: str, *, error_code: str) -> None:
        if progress.saved or progress.assistant_id is None:
            return
        progress.saved = True
        try:
            await self.messages.finish_message(
                progress.assistant_id,
                content=progress.text,
                status=status,  # type: ignore[arg-type]
                sources=[s.to_dict() for s in progress.sources],
                context_quality=progress.quality.to_dict() if progress.quality else None,
                ttft_ms=progress.ttft_ms,
                error_code=error_code,
            )
        except Exception:
            logger.exception("could not save the end of message %s", progress.assistant_id)

    @staticmethod
    def _error(
        exc: SitechatError, turn: ChatTurn, progress: _Progress, *, partial: bool
    ) -> ErrorEvent:
        return ErrorEvent.of(
            exc,
            request_id=turn.request.request_id,
            message_id=progress.assistant_id,
            partial=partial,
        )
