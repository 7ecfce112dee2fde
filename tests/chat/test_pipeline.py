"""The chat pipeline driven directly, without HTTP: ``ChatService`` built from real parts.

A SQLite database (migrated) behind the ``Store``, a Qdrant Edge shard seeded with a few
chunks, the ``ConfigCache`` over the store, and a ``ModelRegistry`` holding the real
``OpenAIChatModel`` (against the scripted OpenAI-compatible server, which records what it
was sent) and the ``ExtractiveModel``. What the HTTP layer adds on top (SSE frames, status
codes, the gate) is tested in ``tests/api``.
"""

from __future__ import annotations

import asyncio
import gc
import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import pytest

from sitechat.chat.answer_check import AnswerCheck
from sitechat.chat.answerability import Meaning, WordNetMeaning
from sitechat.chat.events import (
    ChatEvent,
    CompleteEvent,
    ErrorEvent,
    SourcesEvent,
    StartEvent,
    TokenEvent,
)
from sitechat.chat.pipeline import VISITOR_STOPPED, ChatService
from sitechat.chat.ports import ChatSettings
from sitechat.chat.turn import ChatRequest, ChatTurn
from sitechat.config import Settings
from sitechat.domain import Message
from sitechat.errors import ChatbotNotFound, InvalidInput, SitechatError
from sitechat.llm.base import ChatMessage, GenerationRequest
from sitechat.llm.extractive import ExtractiveModel
from sitechat.llm.openai_model import OpenAIChatModel
from sitechat.llm.registry import ModelRegistry
from sitechat.retrieval.base import Chunk
from sitechat.retrieval.edge_store import EdgeVectorStore
from sitechat.shared_state.config_cache import ConfigCache
from sitechat.storage import Database, Store
from tests.support.scripted_openai import Script, ScriptedOpenAI
from tests.support.wordnet import open_wordnet

SESSION = "visitor-session-1"
MAX_MESSAGE_CHARS = 500
DEADLINE = 10.0

DOCS: dict[str, list[str]] = {
    "hours": ["The Berlin store opens at 9 am and closes at 7 pm from Monday to Saturday."],
    "shipping": ["Orders ship within two business days. Shipping is free over 50 euros."],
    "returns": [
        "You can return any item within 30 days of delivery for a full refund.",
        "To return an item, print the return label from your account page and drop the "
        "parcel at any post office.",
    ],
}


def chunks(chatbot_id: str) -> list[Chunk]:
    return [
        Chunk(
            id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"{chatbot_id}/{document}/{position}")),
            chatbot_id=chatbot_id,
            document_id=document,
            position=position,
            text=text,
            title=document.capitalize(),
        )
        for document, texts in DOCS.items()
        for position, text in enumerate(texts)
    ]


@dataclass
class Parts:
    store: Store
    vectors: EdgeVectorStore
    models: ModelRegistry
    openai: OpenAIChatModel
    server: ScriptedOpenAI

    def service(
        self,
        meaning: Meaning | None = None,
        answer_check: AnswerCheck | None = None,
        **chat_settings: Any,
    ) -> ChatService:
        settings = {"max_message_chars": MAX_MESSAGE_CHARS, "first_token_timeout_seconds": 5.0}
        return ChatService(
            meaning=meaning,
            answer_check=answer_check,
            messages=self.store,
            vectors=self.vectors,
            models=self.models,
            configs=ConfigCache(self.store.get_chatbot, ttl_seconds=60.0),
            settings=ChatSettings(**{**settings, **chat_settings}),
        )


@pytest.fixture
async def parts(
    tmp_path: Path, settings: Settings, scripted_openai: ScriptedOpenAI
) -> AsyncIterator[Parts]:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'sitechat.db'}")
    await database.start(migrate=True)
    vectors = EdgeVectorStore(tmp_path / "qdrant")
    openai = scripted_openai.chat_model()
    try:
        await vectors.start()
        store = Store(database)
        org = await store.create_org("Shop Inc")
        await store.create_chatbot(org.id, name="Shop helper", chatbot_id="shop", provider="openai")
        await store.create_chatbot(
            org.id, name="Shop quotes", chatbot_id="quotes", provider="extractive"
        )
        await vectors.upsert([*chunks("shop"), *chunks("quotes")])
        models = ModelRegistry(
            settings, overrides={"openai": openai, "extractive": ExtractiveModel()}
        )
        yield Parts(store, vectors, models, openai, scripted_openai)
    finally:
        await openai.aclose()
        await vectors.close()
        await database.close()


@pytest.fixture
def service(parts: Parts) -> ChatService:
    return parts.service()


async def open_turn(
    service: ChatService, message: str, *, session_id: str | None = SESSION, bot: str = "shop"
) -> ChatTurn:
    return await service.open_turn(
        ChatRequest(message=message, chatbot_id=bot, session_id=session_id)
    )


async def events_of(service: ChatService, turn: ChatTurn) -> list[ChatEvent]:
    with anyio.fail_after(DEADLINE):
        return [event async for event in service.stream(turn)]


async def stored(parts: Parts, turn: ChatTurn) -> list[Message]:
    return await parts.store.list_messages(turn.conversation.id)


def tokens_of(events: list[ChatEvent]) -> str:
    return "".join(e.content for e in events if isinstance(e, TokenEvent))


def kinds(events: list[ChatEvent]) -> list[str]:
    return [e.type for e in events]


def prompt_sent(parts: Parts) -> str:
    """The last user message of the last request the model server got: sources + question."""
    return str(parts.server.requests[-1].body["messages"][-1]["content"])


# --- phase 1: open_turn ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "session_id", "bot", "error", "match"),
    [
        ("   \n ", SESSION, "shop", InvalidInput, "empty"),
        ("x" * (MAX_MESSAGE_CHARS + 1), SESSION, "shop", InvalidInput, "longer than 500"),
        ("When do you open?", "bad id!", "shop", InvalidInput, "session_id"),
        ("When do you open?", "short", "shop", InvalidInput, "session_id"),
        ("When do you open?", SESSION, "no-such-bot", ChatbotNotFound, None),
    ],
    ids=["empty", "too-long", "bad-session-chars", "short-session", "unknown-chatbot"],
)
async def test_open_turn_refuses_bad_requests_before_storing_or_generating_anything(
    parts: Parts,
    service: ChatService,
    message: str,
    session_id: str,
    bot: str,
    error: type[SitechatError],
    match: str | None,
) -> None:
    with pytest.raises(error, match=match):
        await open_turn(service, message, session_id=session_id, bot=bot)

    assert await parts.store.get_conversation(bot, session_id) is None
    assert parts.server.requests == []


async def test_open_turn_stores_the_user_message_before_anything_is_generated(
    parts: Parts, service: ChatService
) -> None:
    turn = await open_turn(service, "  When does the Berlin store open?  ", session_id=None)

    assert len(turn.session_id) >= 8  # a new session, for the client to send back
    # Stored with the answer's row, in one transaction: the answer streams into that row.
    [message, answer] = await stored(parts, turn)
    assert message.role == "user" and message.status == "complete"
    assert message.content == "When does the Berlin store open?"
    assert message.id == turn.user_message.id
    assert answer.role == "assistant" and answer.status == "streaming"
    assert answer.id == turn.answer.id and answer.content == ""
    assert turn.new_conversation
    assert parts.server.requests == []


# --- phase 2: stream -------------------------------------------------------------------


async def test_a_turn_streams_start_sources_tokens_complete_and_stores_the_answer(
    parts: Parts, service: ChatService
) -> None:
    answer = ["The store ", "opens at ", "9 am ", "[1]."]
    parts.server.script(Script(tokens=answer))
    turn = await open_turn(service, "When does the Berlin store open?")

    events = await events_of(service, turn)

    assert kinds(events) == ["start", "sources", "token", "token", "token", "token", "complete"]
    start, sources, complete = events[0], events[1], events[-1]
    assert isinstance(start, StartEvent) and start.session_id == SESSION
    assert isinstance(sources, SourcesEvent)
    assert sources.sources[0].document_id == "hours" and sources.sources[0].number == 1
    assert sources.context_quality["level"] in ("high", "medium")
    assert isinstance(complete, CompleteEvent) and not complete.fallback
    assert complete.content == tokens_of(events) == "".join(answer)
    assert complete.message_id == start.message_id
    assert complete.usage["provider"] == "openai" and complete.usage["source"] == "provider"
    assert complete.usage["completion_tokens"] == len(answer)

    user, assistant = await stored(parts, turn)
    assert user.id == turn.user_message.id
    assert assistant.id == start.message_id
    assert assistant.status == "complete" and assistant.content == "".join(answer)
    assert assistant.sources == [s.to_dict() for s in sources.sources]
    assert assistant.usage == complete.usage
    assert assistant.context_quality == complete.context_quality
    assert assistant.ttft_ms is not None and 0 < assistant.ttft_ms < DEADLINE * 1000
    assert assistant.error_code is None


async def test_without_relevant_context_the_fallback_answers_and_the_model_is_not_called(
    parts: Parts, service: ChatService
) -> None:
    turn = await open_turn(service, "Do you sell bicycles?")

    events = await events_of(service, turn)

    assert kinds(events) == ["start", "sources", "token", "complete"]
    complete = events[-1]
    assert isinstance(complete, CompleteEvent) and complete.fallback
    assert complete.content == turn.config.fallback_message
    assert complete.sources == () and complete.context_quality["level"] == "none"
    assert parts.server.requests == []
    _user, assistant = await stored(parts, turn)
    assert assistant.status == "complete" and assistant.content == turn.config.fallback_message


async def test_the_chatbots_provider_chooses_the_model(parts: Parts, service: ChatService) -> None:
    turn = await open_turn(service, "When does the Berlin store open?", bot="quotes")

    events = await events_of(service, turn)

    complete = events[-1]
    assert isinstance(complete, CompleteEvent)
    assert "opens at 9 am" in complete.content and "[1]" in complete.content
    assert complete.usage["provider"] == "extractive"
    assert parts.server.requests == []


async def test_a_model_failing_before_its_first_token_ends_in_model_unavailable_stored_failed(
    parts: Parts, service: ChatService
) -> None:
    parts.server.script(Script(status_error=500))
    turn = await open_turn(service, "Is shipping free?")

    events = await events_of(service, turn)

    assert kinds(events) == ["start", "sources", "error"]
    error = events[-1]
    assert isinstance(error, ErrorEvent)
    assert error.code == "model_unavailable" and not error.partial
    assert error.request_id == turn.request.request_id
    assert "Scripted failure" not in error.error
    _user, assistant = await stored(parts, turn)
    assert assistant.id == error.message_id
    assert assistant.status == "failed" and assistant.content == ""
    assert assistant.error_code == "model_unavailable"


async def test_a_model_silent_past_the_first_token_deadline_is_unavailable(
    parts: Parts,
) -> None:
    parts.server.script(Script(tokens=["Too ", "late."], first_token_delay=5.0))
    service = parts.service(first_token_timeout_seconds=0.3)
    turn = await open_turn(service, "Is shipping free?")

    events = await events_of(service, turn)

    error = events[-1]
    assert isinstance(error, ErrorEvent) and error.code == "model_unavailable"
    assert tokens_of(events) == ""
    assert (await stored(parts, turn))[-1].status == "failed"
    # The pipeline let go of the upstream answer it stopped waiting for.
    assert (await parts.server.wait_closed(timeout=1.0)).closed_by == "client"


async def test_a_model_failing_mid_stream_ends_partial_and_stores_what_was_said_as_interrupted(
    parts: Parts, service: ChatService
) -> None:
    parts.server.script(Script(tokens=["Orders ", "ship ", "within ", "two days."], fail_after=2))
    turn = await open_turn(service, "When do orders ship?")

    events = await events_of(service, turn)

    assert kinds(events) == ["start", "sources", "token", "token", "error"]
    error = events[-1]
    assert isinstance(error, ErrorEvent)
    assert error.code == "model_interrupted" and error.partial
    _user, assistant = await stored(parts, turn)
    assert assistant.status == "interrupted" and assistant.content == "Orders ship "
    assert assistant.error_code == "model_interrupted"
    assert assistant.sources and assistant.ttft_ms is not None


async def test_the_consumer_closing_the_stream_early_stores_the_answer_as_interrupted(
    parts: Parts, service: ChatService
) -> None:
    parts.server.script(Script(tokens=[f"word{i} " for i in range(200)], token_gap=0.02))
    turn = await open_turn(service, "When do orders ship?")
    stream = service.stream(turn)
    assert isinstance(stream, AsyncGenerator)  # typed as an iterator; it can be closed
    seen: list[ChatEvent] = []

    with anyio.fail_after(DEADLINE):
        async for event in stream:
            seen.append(event)
            if isinstance(event, TokenEvent):
                break
    await stream.aclose()  # what the SSE response does when the client goes away

    _user, assistant = await stored(parts, turn)
    assert assistant.status == "interrupted"
    assert assistant.content == tokens_of(seen) == "word0 "
    assert assistant.error_code == "client_disconnected"
    record = await parts.server.wait_closed(timeout=1.0)
    assert record.closed_by == "client" and record.tokens_sent < 200


async def test_the_models_own_caps_limit_the_passages_in_the_prompt_and_max_tokens_upstream(
    parts: Parts, service: ChatService
) -> None:
    question = "How do I return an item for a refund?"
    parts.server.script(Script(tokens=["Within 30 days [1]."]))

    # Without caps: both returns passages, and the deployment's default answer length.
    await events_of(service, await open_turn(service, question))
    assert parts.server.requests[-1].body["max_tokens"] == ChatSettings().default_max_tokens
    assert "[1] Returns" in prompt_sent(parts) and "[2] Returns" in prompt_sent(parts)

    parts.openai.max_passages = 1
    parts.openai.max_answer_tokens = 48
    turn = await open_turn(service, question, session_id="visitor-session-2")
    events = await events_of(service, turn)

    assert parts.server.requests[-1].body["max_tokens"] == 48
    assert "[1] Returns" in prompt_sent(parts) and "[2]" not in prompt_sent(parts)
    sources = events[1]
    assert isinstance(sources, SourcesEvent) and len(sources.sources) == 1
    assert sources.context_quality["chunks_used"] == 1
    assert len((await stored(parts, turn))[-1].sources) == 1


async def test_the_sessions_history_reaches_the_prompt_of_the_next_turn(
    parts: Parts, service: ChatService
) -> None:
    parts.server.enqueue(Script(tokens=["It opens ", "at 9 am [1]."]), Script(tokens=["Yes [1]."]))
    first = await open_turn(service, "When does the Berlin store open?")
    await events_of(service, first)

    second = await open_turn(service, "Is shipping free over 50 euros?")
    await events_of(service, second)

    assert second.conversation.id == first.conversation.id
    messages = parts.server.requests[-1].body["messages"]
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert messages[1]["content"] == "When does the Berlin store open?"
    assert messages[2]["content"] == "It opens at 9 am [1]."
    assert messages[3]["content"].endswith("Question: Is shipping free over 50 euros?")
    # The first request had no history: the system prompt and the question with sources.
    assert [m["role"] for m in parts.server.requests[0].body["messages"]] == ["system", "user"]


async def test_a_link_held_back_when_the_visitor_stops_is_sent_checked_before_the_end(
    parts: Parts, service: ChatService
) -> None:
    """The link guard holds "[docs](https://evil" waiting for its ")"; a stop ends the
    answer there, and what was held goes out (its invented URL removed) before ``complete``,
    so the stopped answer stored is what was streamed."""
    parts.server.script(
        Script(tokens=["See ", "[docs](https://evil", ".example) ok"], stall_after=2)
    )
    turn = await open_turn(service, "When do orders ship?")
    events: list[ChatEvent] = []

    async def stop_soon() -> None:
        await anyio.sleep(0.3)  # the second token has arrived and is held
        turn.stop.request(VISITOR_STOPPED)

    with anyio.fail_after(DEADLINE):
        async with anyio.create_task_group() as tasks:
            async for event in service.stream(turn):
                events.append(event)
                if isinstance(event, TokenEvent) and event.content == "See ":
                    tasks.start_soon(stop_soon)
        parts.server.resume()

    complete = events[-1]
    assert isinstance(complete, CompleteEvent) and complete.stopped
    assert tokens_of(events) == complete.content == "See [docs]("
    _user, assistant = await stored(parts, turn)
    assert assistant.status == "stopped" and assistant.content == "See [docs]("


async def test_an_answer_waiting_on_a_silent_model_holds_no_prompt(
    parts: Parts, service: ChatService
) -> None:
    """Once sent, the prompt (the passages' texts) is not kept by an answer that waits on its
    model, or streams, for minutes: only the HTTP client holds the body it sent."""
    question = "When does the Berlin store open on a silent day?"
    parts.server.script(Script(tokens=["9 am."], stall_after=0))
    turn = await open_turn(service, question)
    events = service.stream(turn)

    def prompts_held() -> list[object]:
        gc.collect()
        return [
            o
            for o in gc.get_objects()
            # ``type() is``, not isinstance: that reads ``__class__``, which some modules'
            # lazy attributes answer with a deprecation warning.
            if (type(o) is GenerationRequest and o.question == question)
            or (type(o) is ChatMessage and question in o.content)
        ]

    with anyio.fail_after(DEADLINE):
        assert [(await anext(events)).type for _ in range(2)] == ["start", "sources"]
        waiting = asyncio.ensure_future(anext(events))
        try:
            while prompts_held():  # noqa: ASYNC110 (nothing to wait on: memory is polled)
                await anyio.sleep(0.02)
            assert not waiting.done()  # still waiting on the model
            assert question in prompt_sent(parts)
        finally:
            turn.stop.request(VISITOR_STOPPED)
            last = await waiting
            await events.aclose()
            parts.server.resume()
    assert isinstance(last, CompleteEvent) and last.stopped


async def test_a_near_miss_in_the_documents_words_gets_the_fallback_without_the_model(
    parts: Parts, service: ChatService
) -> None:
    """The store and Berlin are in the documents; what is asked about is not."""
    turn = await open_turn(service, "Does the Berlin store repair bicycles?")

    complete = (await events_of(service, turn))[-1]

    assert isinstance(complete, CompleteEvent) and complete.fallback
    quality = complete.context_quality
    assert quality["level"] == "none" and quality["answerability"] == "unanswerable"
    assert set(quality["unsupported_terms"]) == {"repair", "bicycl"}
    assert parts.server.requests == []


async def test_passages_that_answer_only_in_other_words_are_answered_at_level_low(
    parts: Parts,
) -> None:
    """ "toddlers" shares no word with "Every child gets in free" (the search finds it by
    "get"), so coverage alone says none; WordNet knows a toddler is a child."""
    wordnet = open_wordnet()
    org = await parts.store.create_org("Zoo")
    await parts.store.create_chatbot(org.id, name="Zoo", chatbot_id="zoo", provider="openai")
    chunk = Chunk(
        id=str(uuid.uuid5(uuid.NAMESPACE_URL, "zoo/0")),
        chatbot_id="zoo",
        document_id="prices",
        position=0,
        text="Every child gets in free.",
        title="",
    )
    await parts.vectors.upsert([chunk])
    try:
        service = parts.service(meaning=WordNetMeaning(wordnet))
        events = await events_of(
            service, await open_turn(service, "Can toddlers get in?", bot="zoo")
        )
    finally:
        wordnet.close()

    complete = events[-1]
    assert isinstance(complete, CompleteEvent) and not complete.fallback
    quality = complete.context_quality
    assert quality["level"] == "low" and quality["coverage"] == 0.0
    assert quality["answerability"] == "answerable" and quality["unsupported_terms"] == []
    assert "Every child gets in free." in prompt_sent(parts)  # the model answers from it


# --- the answer check: the model asked when the words say no ---------------------------

CASH_BACK = "Is my money refunded?"  # "money" is in no passage; the refund one answers


def checked_service(parts: Parts, timeout_seconds: float = 5.0) -> ChatService:
    return parts.service(
        answer_check=AnswerCheck(providers=["openai"], timeout_seconds=timeout_seconds)
    )


def is_check(request: Any) -> bool:
    return "You check whether passages" in request.body["messages"][0]["content"]


async def test_the_models_yes_answers_a_question_whose_words_are_in_no_passage(
    parts: Parts,
) -> None:
    service = checked_service(parts)
    parts.server.enqueue(Script(tokens=["Yes"]), Script(tokens=["Refunds ", "come in 30 days."]))

    events = await events_of(service, await open_turn(service, CASH_BACK))

    check, answer = parts.server.requests
    assert is_check(check) and not is_check(answer)
    assert "full refund" in check.body["messages"][-1]["content"]  # the passages were shown
    complete = events[-1]
    assert isinstance(complete, CompleteEvent) and not complete.fallback
    assert complete.content == "Refunds come in 30 days."
    assert complete.context_quality["answerability"] == "answerable"
    assert complete.context_quality["level"] != "none"
    spent = complete.usage["answer_check"]
    assert spent["prompt_tokens"] > 0 and spent["completion_tokens"] == 1
    assert complete.usage["prompt_tokens"] > spent["prompt_tokens"]  # the answer's, plus it
    assert complete.usage["total_tokens"] == (
        complete.usage["prompt_tokens"] + complete.usage["completion_tokens"]
    )


@pytest.mark.parametrize(
    "reply",
    [Script(tokens=["No"]), Script(tokens=["Maybe, ", "it depends."]), Script(status_error=500)],
    ids=["no", "neither-yes-nor-no", "server-error"],
)
async def test_without_the_models_yes_the_fallback_stands_and_the_check_is_paid(
    parts: Parts, reply: Script
) -> None:
    service = checked_service(parts)
    parts.server.enqueue(reply)

    turn = await open_turn(service, CASH_BACK)
    complete = (await events_of(service, turn))[-1]

    assert isinstance(complete, CompleteEvent) and complete.fallback
    assert complete.context_quality["answerability"] == "unanswerable"
    assert [is_check(r) for r in parts.server.requests] == [True]  # no answer was asked for
    [_, assistant] = await stored(parts, turn)
    if reply.status_error is None:  # a refused request costs nothing
        assert assistant.usage is not None and assistant.usage["answer_check"]["prompt_tokens"]
        assert assistant.usage["total_tokens"] > 0


async def test_a_check_that_takes_too_long_is_abandoned_for_the_fallback(parts: Parts) -> None:
    service = checked_service(parts, timeout_seconds=0.2)
    parts.server.enqueue(Script(tokens=["Yes"], first_token_delay=3.0))

    complete = (await events_of(service, await open_turn(service, CASH_BACK)))[-1]

    assert isinstance(complete, CompleteEvent) and complete.fallback
    record = await parts.server.wait_closed()
    assert record.closed_by == "client"  # its stream was closed, not left running


async def test_a_stop_request_ends_the_wait_for_a_slow_check(parts: Parts) -> None:
    """A local judge reads for seconds: the visitor's stop button (or a restart) must not
    wait for it."""
    service = checked_service(parts, timeout_seconds=30)
    parts.server.enqueue(Script(tokens=["Yes"], first_token_delay=30.0))
    turn = await open_turn(service, CASH_BACK)
    events = service.stream(turn)

    with anyio.fail_after(DEADLINE):
        assert (await anext(events)).type == "start"
        waiting = asyncio.ensure_future(anext(events))
        while not parts.server.requests:  # noqa: ASYNC110 (the server records, nothing to await)
            await anyio.sleep(0.01)
        assert not waiting.done()  # the check is being read
        turn.stop.request(VISITOR_STOPPED)
        last = await waiting
        rest = [event async for event in events]

    assert isinstance(last, CompleteEvent) and last.stopped and not rest
    assert [is_check(r) for r in parts.server.requests] == [True]  # no answer was asked for
    record = await parts.server.wait_closed()
    assert record.closed_by == "client"
    [_, assistant] = await stored(parts, turn)
    assert assistant.status == "stopped"


async def test_verdicts_are_cached_and_answerable_questions_are_never_checked(
    parts: Parts,
) -> None:
    service = checked_service(parts)
    parts.server.enqueue(Script(tokens=["No"]), Script(tokens=["Nine."]))

    for _ in range(2):
        complete = (await events_of(service, await open_turn(service, CASH_BACK)))[-1]
        assert isinstance(complete, CompleteEvent) and complete.fallback
    await events_of(service, await open_turn(service, "When does the Berlin store open?"))

    assert [is_check(r) for r in parts.server.requests] == [True, False]


async def test_a_greeting_gets_the_greeting_without_search_or_model(
    parts: Parts, service: ChatService
) -> None:
    turn = await open_turn(service, "Hello there!")

    events = await events_of(service, turn)

    assert kinds(events) == ["start", "token", "complete"]
    complete = events[-1]
    assert isinstance(complete, CompleteEvent) and not complete.fallback
    assert tokens_of(events) == complete.content
    assert complete.content == turn.config.greeting
    assert complete.sources == () and complete.context_quality == {}
    assert parts.server.requests == []
    _user, assistant = await stored(parts, turn)
    assert assistant.content == turn.config.greeting and assistant.context_quality is None
    assert assistant.usage is not None and assistant.usage["total_tokens"] == 0
