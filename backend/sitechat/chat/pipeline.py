"""The chat pipeline: one visitor message in, a stream of domain events out. No HTTP here.

A turn has two phases, so that every request error is known before a stream starts:

1. ``open_turn`` validates, loads the chatbot config (cached), and stores, in one
   transaction shared with other turns (``MessageLog.begin_turn``), the conversation if
   new, the user message and the answer's ``streaming`` row, *before* anything is generated;
2. ``stream`` yields ``start``, ``sources``, ``token``... and ends with ``complete`` or
   ``error``. It saves the assistant message as it ends: complete, failed, or interrupted
   with the partial answer (model failure mid-stream, or the consumer going away).

Whatever way a turn ends, the stored message's ``usage`` says what it cost, and that is what
its org's and chatbot's monthly budgets are charged: once the model has been called, its
prompt plus the answer so far, even if the visitor disconnected at ``start`` (an answer
that failed before the provider took the request, ``request_accepted=False``, costs
nothing). The fallback answer, written without the model, is free.

Only what the first token needs goes before it. Work that does not depend on each other runs
concurrently: the history load (none for a new conversation) and, when the message is not a
follow-up, the search itself.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
import time
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from contextlib import aclosing
from typing import Any

import anyio

from sitechat import logs, metrics
from sitechat.chat.answer_check import AnswerCheck
from sitechat.chat.answerability import Answerability, Meaning, is_greeting, judge_with_meaning
from sitechat.chat.events import (
    ChatEvent,
    CompleteEvent,
    ErrorEvent,
    SourcesEvent,
    StartEvent,
    TokenEvent,
)
from sitechat.chat.guard import RepetitionGuard
from sitechat.chat.links import LinkGuard, LinkPolicy
from sitechat.chat.ports import ChatSettings, ConfigSource, MessageLog, ModelSource, Searcher
from sitechat.chat.prompt import build_prompt
from sitechat.chat.quality import (
    DEFAULT_SIMILARITY_LEVELS,
    SimilarityLevels,
    assess,
)
from sitechat.chat.query import EnhancedQuery, QueryEnhancer, is_follow_up
from sitechat.chat.turn import (
    FREE,
    ChatRequest,
    ChatTurn,
    Progress,
    new_session_id,
    spent,
    to_passages,
    to_sources,
    usage_dict,
    with_side_calls,
)
from sitechat.code_guard import CodeGuard
from sitechat.domain import SESSION_ID_PATTERN
from sitechat.errors import (
    AnswerAbandoned,
    ChatbotNotFound,
    InvalidInput,
    ModelError,
    ModelInterrupted,
    ServerRestarting,
    SitechatError,
)
from sitechat.llm.base import GenerationRequest, TextDelta, Usage
from sitechat.retrieval.base import ScoredChunk
from sitechat.tokens import count_tokens

logger = logging.getLogger(__name__)

_SESSION_ID = re.compile(SESSION_ID_PATTERN)


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
        worker_id: str | None = None,
        meaning: Meaning | None = None,
        answer_check: AnswerCheck | None = None,
    ) -> None:
        self.messages = messages
        # This process, on the answers it generates (the orphan sweeper reads it).
        self.worker_id = worker_id
        self.vectors = vectors
        self.models = models
        self.configs = configs
        self.settings = settings or ChatSettings()
        # Without an enhancer the heuristic alone rewrites follow-ups (no model calls).
        self.enhancer = enhancer or QueryEnhancer(rewrite_providers=())
        # How dense similarity maps to context-quality levels (hybrid search only).
        self.similarity_levels = similarity_levels or DEFAULT_SIMILARITY_LEVELS
        # Which words mean the same (WordNet, a local dense model): paraphrases become
        # answerable.
        self.meaning = meaning
        # The chatbot's model asked when the words say no (off unless providers are named).
        self.answer_check = answer_check or AnswerCheck()

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
        logs.chatbot_id.set(config.id)  # on every log line of this turn
        session_id = request.session_id or new_session_id()
        # The search needs nothing stored: it runs while the turn's rows are written.
        search = (
            None
            if is_greeting(message) or is_follow_up(message)
            else asyncio.ensure_future(self._search(config.id, message))
        )
        if search is not None:
            # Its result may go unused (the query got rewritten); never leave an error unread.
            search.add_done_callback(lambda t: t.cancelled() or t.exception())
        try:
            opened = await self.messages.begin_turn(
                config.id,
                session_id,
                message,
                visitor_id=request.visitor_id,
                worker_id=self.worker_id,
                new_session=request.session_id is None,
            )
        except BaseException:
            if search is not None:
                search.cancel()
            raise
        return ChatTurn(
            request,
            config,
            opened.conversation,
            opened.question,
            opened.answer,
            started_at,
            new_conversation=opened.created,
            search=search,
        )

    async def _search(
        self, chatbot_id: str, query: str, variants: Sequence[str] = ()
    ) -> list[ScoredChunk]:
        with metrics.RETRIEVAL.time():
            return await self.vectors.search(
                chatbot_id, query, self.settings.retrieval_top_k, variants=variants
            )

    # --- phase 2 -------------------------------------------------------------------------

    async def stream(self, turn: ChatTurn) -> AsyncGenerator[ChatEvent, None]:
        progress = Progress(assistant_id=turn.answer.id, owner=(turn.config.id, turn.config.org_id))
        request_id = turn.request.request_id
        metrics.ACTIVE_STREAMS.inc()
        try:
            # aclosing: when the consumer leaves, the generation's own cleanup (closing the
            # model stream) runs inside this aclose(), not later in a task asyncio starts.
            async with aclosing(self._generate(turn, progress)) as events:
                async for event in events:
                    _count_outcome(event)
                    yield event
            if turn.stop.reason == VISITOR_STOPPED and not progress.saved:
                yield await self._stopped(turn, progress)
            elif turn.stop.reason is not None and not progress.saved:
                stopped = stop_error(turn.stop.reason)
                await self._save_end(progress, "interrupted", error_code=stopped.code)
                event = self._error(stopped, turn, progress, partial=bool(progress.parts))
                _count_outcome(event)
                yield event
        except ModelError as exc:
            if not exc.request_accepted:
                progress.prompt_tokens = 0  # the provider never took it: nothing to pay
            logger.warning(
                "model failed: %s (request %s)", exc.__cause__ or exc, request_id, exc_info=exc
            )
            interrupted = isinstance(exc, ModelInterrupted) or bool(progress.parts)
            await self._save_end(
                progress, "interrupted" if interrupted else "failed", error_code=exc.code
            )
            yield _counted(self._error(exc, turn, progress, partial=interrupted))
        except SitechatError as exc:
            logger.warning("chat turn failed: %r (request %s)", exc, request_id, exc_info=exc)
            await self._save_end(
                progress, "interrupted" if progress.parts else "failed", error_code=exc.code
            )
            yield _counted(self._error(exc, turn, progress, partial=bool(progress.parts)))
        except Exception:
            logger.exception("chat turn crashed (request %s)", request_id)
            internal = SitechatError()
            await self._save_end(
                progress, "interrupted" if progress.parts else "failed", error_code=internal.code
            )
            yield _counted(self._error(internal, turn, progress, partial=bool(progress.parts)))
        finally:
            metrics.ACTIVE_STREAMS.dec()
            if not progress.saved and progress.assistant_id is not None:
                # The consumer went away (client disconnect, cancellation): keep the partial
                # answer, marked as interrupted. Shielded: we are inside a cancelled scope.
                metrics.ANSWERS.labels("interrupted", "client_disconnected").inc()
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
        self, turn: ChatTurn, progress: Progress
    ) -> AsyncGenerator[ChatEvent, None]:
        config = turn.config
        message = turn.user_message.content
        # The chatbot's model, then its fallbacks: the chain owns the first-token deadline
        # and names, as ``model.name``, the member that answered (metrics, usage).
        model = self.models.chain(
            config.provider,
            config.fallback_providers,
            first_token_timeout=self.settings.first_token_timeout_seconds,
        )

        async def search(query: str, variants: Sequence[str] = ()) -> list[ScoredChunk]:
            return await self._search(config.id, query, variants)

        # The raw message's search began with the turn (``open_turn``), while its rows were
        # written; history loads and the query is enhanced meanwhile: most messages are not
        # rewritten, and their search is then already done. A greeting gets the chatbot's
        # greeting: no search, no model, free.
        greeting = is_greeting(message)
        speculative = turn.search
        try:
            yield StartEvent(message_id=turn.answer.id, session_id=turn.session_id)
            history = (
                []
                if turn.new_conversation
                else await self.messages.recent_messages(
                    turn.conversation.id,
                    self.settings.history_messages,
                    before_message_id=turn.user_message.id,
                )
            )
            if greeting:
                yield TokenEvent(config.greeting)
                yield await self._greet(turn, progress)
                return

            # Bounded by the enhancer's timeout: never delays the answer by more than that.
            enhanced = await self.enhancer.enhance(config, message, history, model.primary)
            progress.rewrite = enhanced.usage
            if speculative is not None and enhanced.text == message and not enhanced.variants:
                results = await speculative
            else:
                results = await search(enhanced.text, enhanced.variants)
        finally:
            if speculative is not None and not speculative.done():
                speculative.cancel()
            turn.search = speculative = None  # the chunks found live on in ``results`` only

        quality = assess(enhanced.text, results, similarity_levels=self.similarity_levels)
        # Sharing words is not answering: passages that miss what the question asks about
        # (or small talk, which asks about nothing in them) get the fallback too.
        follow_up = is_follow_up(message) or enhanced.rewritten
        answerability = await judge_with_meaning(
            enhanced.text, results, follow_up=follow_up, meaning=self.meaning
        )
        if answerability.verdict == "unanswerable":  # a model asked, when one is configured
            answers = None
            # A local judge may read for seconds: a stop request (the visitor's button, a
            # restart) ends the wait, and the turn ends stopped, as before the model.
            with turn.stop.interruptible():
                answers, progress.check = await self.answer_check.answers(
                    config, model.primary, enhanced.text, results
                )
            if turn.stop.requested:
                return
            if answers:  # its words are in no passage, but its answer is
                answerability = Answerability("answerable", meant=answerability.unsupported)
        quality = dataclasses.replace(
            quality,
            level=(
                "none"
                if not answerability.answerable
                # Passages that hold what is asked only in other words share none of its
                # words: coverage says none, yet they answer.
                else "low"
                if quality.level == "none" and answerability.meant
                else quality.level
            ),
            answerability=answerability.verdict,
            unsupported_terms=answerability.unsupported,
        )
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
        # The chunks' texts are in the prompt now: an answer that streams for minutes (or
        # waits on a silent model) need not hold them twice.
        del results, used
        yield SourcesEvent(progress.sources, quality.to_dict())
        if turn.stop.requested:
            return  # stopped before the model was called: nothing to pay

        generation = GenerationRequest(
            messages=prompt.messages,
            question=message,
            passages=prompt.passages,
            model=config.model,
            temperature=config.temperature,
            max_tokens=max_tokens,
            prompt_tokens=prompt.prompt_tokens,
        )
        usage: Usage | None = None
        guard = RepetitionGuard()
        # Code must be quoted from the passages, and links to anything but the sources and the
        # chatbot's own sites lose their target.
        code = CodeGuard("\n".join([message, *(p.text for p in prompt.passages)]))
        links = LinkGuard(LinkPolicy.of(config.allowed_origins, prompt.passages))
        stopped_looping = False
        # From here the request may reach the model, and its prompt is paid for whatever
        # happens next: a visitor who disconnects early must not make generation free.
        progress.model, progress.prompt_tokens = model, prompt.prompt_tokens
        called_at = time.monotonic()
        stream = model.stream(generation)
        # The model holds its prompt as long as it needs it (the passages' texts are in it);
        # the answer, however long it streams, holds only what it reports.
        del prompt, passages, generation
        try:
            iterator = stream.__aiter__()
            while True:
                try:
                    # A stop request cancels the wait for the model (never a yield).
                    with turn.stop.interruptible():
                        item = await iterator.__anext__()
                except StopAsyncIteration:
                    break
                if turn.stop.requested:
                    break
                if isinstance(item, TextDelta):
                    if not item.text:
                        continue
                    if progress.ttft_ms is None:
                        first_token_at = time.monotonic()
                        progress.ttft_ms = (first_token_at - turn.started_at) * 1000
                        metrics.TIME_TO_FIRST_TOKEN.labels(model.name).observe(
                            first_token_at - turn.started_at
                        )
                        metrics.MODEL_FIRST_TOKEN.labels(model.name).observe(
                            first_token_at - called_at
                        )
                    if shown := links.feed(code.feed(item.text)):
                        progress.parts.append(shown)
                        yield TokenEvent(shown)
                    if turn.stop.requested:
                        break
                    if guard.feed(item.text):
                        stopped_looping = True
                        logger.info(
                            "stopped a looping answer (request %s)", turn.request.request_id
                        )
                        break
                else:
                    usage = progress.usage = item
        except Exception:
            # What the guards hold goes out before the error: the partial answer stored is
            # exactly what was streamed.
            if held := links.feed(code.flush()) + links.flush():
                progress.parts.append(held)
                yield TokenEvent(held)
            raise
        finally:
            with anyio.CancelScope(shield=True):
                await stream.aclose()

        if held := links.feed(code.flush()) + links.flush():  # ended, looped or stopped
            progress.parts.append(held)
            yield TokenEvent(held)
        if turn.stop.requested:
            return  # the stream() wrapper stores the partial answer and ends the stream
        answer = progress.text
        if usage is None:
            usage = Usage(progress.prompt_tokens, count_tokens(answer), source="estimated")
        _observe_answer(model.name, turn, progress, usage)
        cost = usage_dict(usage, model, side_calls=progress)
        if stopped_looping:
            cost["stopped"] = "repetition"
        # Shielded: a disconnect now must not leave it half-saved, or saved (and charged)
        # twice by the interrupted path.
        with anyio.CancelScope(shield=True):
            await self.messages.finish_message(
                turn.answer.id,
                content=answer,
                status="complete",
                sources=[s.to_dict() for s in progress.sources],
                context_quality=quality.to_dict(),
                usage=cost,
                ttft_ms=progress.ttft_ms,
                owner=progress.owner,
            )
        progress.saved = True
        yield CompleteEvent(
            content=answer,
            message_id=turn.answer.id,
            session_id=turn.session_id,
            sources=progress.sources,
            context_quality=quality.to_dict(),
            usage=cost,
        )

    async def _fallback(
        self, turn: ChatTurn, progress: Progress, enhanced: EnhancedQuery
    ) -> AsyncIterator[ChatEvent]:
        """Nothing relevant was found: answer honestly without calling the model."""
        assert progress.quality is not None and progress.assistant_id is not None
        text = turn.config.fallback_message
        quality = progress.quality.to_dict()
        yield SourcesEvent((), quality)
        progress.ttft_ms = (time.monotonic() - turn.started_at) * 1000
        progress.parts.append(text)
        yield TokenEvent(text)
        complete = await self._finish_without_model(
            turn,
            progress,
            context_quality=quality,
            usage=with_side_calls(dict(FREE), progress),
            fallback=True,
        )
        if self.settings.log_visitor_text:
            logger.info(
                "no context for %r (query %r): fallback answer (request %s)",
                turn.config.id,
                enhanced.text,
                turn.request.request_id,
            )
        else:  # the visitor's words stay out of the log unless the owner opted in
            logger.info(
                "no context for %r: fallback answer (request %s)",
                turn.config.id,
                turn.request.request_id,
            )
        yield complete

    async def _greet(self, turn: ChatTurn, progress: Progress) -> CompleteEvent:
        """A greeting is answered with the chatbot's own greeting, for free. No context
        quality: nothing was searched, so nothing went unanswered."""
        progress.ttft_ms = (time.monotonic() - turn.started_at) * 1000
        progress.parts.append(turn.config.greeting)
        return await self._finish_without_model(
            turn, progress, context_quality={}, usage=dict(FREE), fallback=False
        )

    async def _finish_without_model(
        self,
        turn: ChatTurn,
        progress: Progress,
        *,
        context_quality: dict[str, Any],
        usage: dict[str, Any],
        fallback: bool,
    ) -> CompleteEvent:
        """Store an answer written without the model (the fallback, a greeting) as complete,
        and its ``complete`` event: no sources, the usage given (free but for a rewrite)."""
        assert progress.assistant_id is not None
        await self.messages.finish_message(
            progress.assistant_id,
            content=progress.text,
            status="complete",
            sources=[],
            context_quality=context_quality or None,
            usage=usage,
            ttft_ms=progress.ttft_ms,
            owner=progress.owner,
        )
        progress.saved = True
        return CompleteEvent(
            content=progress.text,
            message_id=progress.assistant_id,
            session_id=turn.session_id,
            sources=(),
            context_quality=context_quality,
            usage=usage,
            fallback=fallback,
        )

    async def _stopped(self, turn: ChatTurn, progress: Progress) -> CompleteEvent:
        """The visitor pressed stop: the answer so far is stored as ``stopped`` and charged
        (its prompt, if the model was called, and its tokens), and the stream ends with an
        ordinary ``complete`` carrying ``stopped: true``."""
        assert progress.assistant_id is not None
        usage = spent(progress)
        quality = progress.quality.to_dict() if progress.quality else {}
        progress.saved = True
        with anyio.CancelScope(shield=True):
            await self.messages.finish_message(
                progress.assistant_id,
                content=progress.text,
                status="stopped",
                sources=[s.to_dict() for s in progress.sources],
                context_quality=quality or None,
                usage=usage,
                ttft_ms=progress.ttft_ms,
                owner=progress.owner,
            )
        metrics.ANSWERS.labels("stopped", "").inc()
        logger.info("answer stopped", extra={"outcome": "stopped"})
        return CompleteEvent(
            content=progress.text,
            message_id=progress.assistant_id,
            session_id=turn.session_id,
            sources=progress.sources,
            context_quality=quality,
            usage=usage,
            stopped=True,
        )

    async def _save_end(self, progress: Progress, status: str, *, error_code: str) -> None:
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
                usage=spent(progress),
                ttft_ms=progress.ttft_ms,
                error_code=error_code,
                owner=progress.owner,
            )
        except Exception:
            logger.exception("could not save the end of message %s", progress.assistant_id)

    @staticmethod
    def _error(
        exc: SitechatError, turn: ChatTurn, progress: Progress, *, partial: bool
    ) -> ErrorEvent:
        return ErrorEvent.of(
            exc,
            request_id=turn.request.request_id,
            message_id=progress.assistant_id,
            partial=partial,
        )


# The visitor asked for the answer to stop: it ends as a ``complete`` marked stopped.
VISITOR_STOPPED = "visitor_stopped"
# Why an answer was stopped from outside otherwise, as the error its readers get.
_STOP_ERRORS: dict[str, type[SitechatError]] = {
    ServerRestarting.code: ServerRestarting,
    AnswerAbandoned.code: AnswerAbandoned,
}


def stop_error(reason: str) -> SitechatError:
    return _STOP_ERRORS.get(reason, SitechatError)()


def _count_outcome(event: ChatEvent) -> None:
    if isinstance(event, CompleteEvent):
        outcome = "fallback" if event.fallback else "complete"
        metrics.ANSWERS.labels(outcome, "").inc()
        logger.info("answer %s", outcome, extra={"outcome": outcome})


def _counted(event: ErrorEvent) -> ErrorEvent:
    outcome = "interrupted" if event.partial else "error"
    metrics.ANSWERS.labels(outcome, event.code).inc()
    logger.info(
        "answer %s: %s", outcome, event.code, extra={"outcome": outcome, "code": event.code}
    )
    return event


def _observe_answer(provider: str, turn: ChatTurn, progress: Progress, usage: Usage) -> None:
    """Duration and speed of an answer the model finished."""
    ended = time.monotonic()
    metrics.ANSWER_DURATION.labels(provider).observe(ended - turn.started_at)
    if progress.ttft_ms is None:
        return
    streaming = ended - turn.started_at - progress.ttft_ms / 1000
    tokens = usage.completion_tokens
    if streaming > 0 and tokens > 1:
        metrics.TOKENS_PER_SECOND.labels(provider).observe((tokens - 1) / streaming)
