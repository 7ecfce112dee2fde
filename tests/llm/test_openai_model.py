"""OpenAIChatModel against a real HTTP server speaking OpenAI's API, through the real SDK."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import aclosing

import anyio
import pytest

from sitechat.errors import ModelInterrupted, ModelUnavailable
from sitechat.llm.base import ChatMessage, GenerationRequest, StreamItem, TextDelta, Usage
from sitechat.llm.openai_model import OpenAIChatModel, sse_lines
from sitechat.tokens import count_tokens
from tests.support.scripted_openai import Script, ScriptedOpenAI

REQUEST = GenerationRequest(
    messages=[
        ChatMessage("system", "Answer from the context.\n[1] The office opens at 9 am."),
        ChatMessage("user", "When does the office open?"),
    ],
    question="When does the office open?",
    max_tokens=50,
)
TOKENS = ["The", " office", " opens", " at", " 9", " am", "."]


@pytest.fixture
async def model(scripted_openai: ScriptedOpenAI) -> AsyncIterator[OpenAIChatModel]:
    m = scripted_openai.chat_model()
    yield m
    await m.aclose()


async def collect(stream: AsyncIterator[StreamItem]) -> tuple[list[str], list[Usage]]:
    texts: list[str] = []
    usages: list[Usage] = []
    with anyio.fail_after(10):
        async for item in stream:
            if isinstance(item, TextDelta):
                texts.append(item.text)
            else:
                usages.append(item)
    return texts, usages


async def test_yields_each_delta_then_provider_usage(
    model: OpenAIChatModel, scripted_openai: ScriptedOpenAI
) -> None:
    scripted_openai.script(Script(tokens=TOKENS))

    texts, usages = await collect(model.stream(REQUEST))

    assert texts == TOKENS
    expected_prompt = sum(count_tokens(m.content) for m in REQUEST.messages)
    assert usages == [
        Usage(
            prompt_tokens=expected_prompt,
            completion_tokens=len(TOKENS),
            source="provider",
            model="gpt-test",
        )
    ]
    body = scripted_openai.requests[-1].body
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert body["max_tokens"] == 50
    assert body["messages"][1] == {"role": "user", "content": "When does the office open?"}


async def test_first_delta_arrives_while_the_server_is_still_generating(
    model: OpenAIChatModel, scripted_openai: ScriptedOpenAI
) -> None:
    # The server sends one token and then holds the rest until the test lets it go on:
    # receiving that token at all proves nothing waits for the end of the answer.
    scripted_openai.script(Script(tokens=TOKENS, stall_after=1))

    async with aclosing(model.stream(REQUEST)) as stream:
        with anyio.fail_after(5):
            first = await anext(stream)

        assert first == TextDelta("The")
        assert scripted_openai.last_stream.tokens_sent == 1
        assert scripted_openai.last_stream.closed_at is None
        scripted_openai.resume()
        rest, usages = await collect(stream)

    assert [first.text, *rest] == TOKENS
    assert len(usages) == 1


async def test_request_model_overrides_the_default(
    model: OpenAIChatModel, scripted_openai: ScriptedOpenAI
) -> None:
    request = GenerationRequest(messages=REQUEST.messages, question="q", model="gpt-other")

    _texts, usages = await collect(model.stream(request))

    assert scripted_openai.requests[-1].body["model"] == "gpt-other"
    assert usages[0].model == "gpt-other"


async def test_usage_is_estimated_when_the_server_sends_none(
    model: OpenAIChatModel, scripted_openai: ScriptedOpenAI
) -> None:
    scripted_openai.script(Script(tokens=TOKENS, usage=False))

    texts, usages = await collect(model.stream(REQUEST))

    assert usages[0].source == "estimated"
    assert usages[0].completion_tokens == count_tokens("".join(texts))
    assert usages[0].prompt_tokens > sum(count_tokens(m.content) for m in REQUEST.messages)


async def test_retries_once_without_stream_options_when_the_server_rejects_them(
    model: OpenAIChatModel, scripted_openai: ScriptedOpenAI
) -> None:
    scripted_openai.script(Script(tokens=TOKENS, reject_stream_options=True))

    texts, usages = await collect(model.stream(REQUEST))

    assert texts == TOKENS
    assert usages[0].source == "estimated"
    sent = [r.body.get("stream_options") for r in scripted_openai.requests]
    assert sent == [{"include_usage": True}, None]

    # The model remembers: the next answer does not pay for a rejected attempt again.
    await collect(model.stream(REQUEST))
    assert len(scripted_openai.requests) == 3
    assert "stream_options" not in scripted_openai.requests[-1].body


@pytest.mark.parametrize("status", [500, 429, 401])
async def test_error_status_before_the_first_token_is_model_unavailable(
    model: OpenAIChatModel, scripted_openai: ScriptedOpenAI, status: int
) -> None:
    scripted_openai.script(Script(status_error=status))

    with pytest.raises(ModelUnavailable) as caught:
        await collect(model.stream(REQUEST))

    assert "Scripted failure" not in caught.value.message  # no upstream text leaks out
    assert len(scripted_openai.requests) == 1  # no silent SDK retries


@pytest.mark.parametrize(
    ("status", "reason"),
    [(500, "server_error"), (503, "server_error"), (429, "rate_limited"), (401, "rejected")],
)
async def test_an_error_status_says_why_for_fallbacks_and_metrics(
    model: OpenAIChatModel, scripted_openai: ScriptedOpenAI, status: int, reason: str
) -> None:
    scripted_openai.script(Script(status_error=status))

    with pytest.raises(ModelUnavailable) as caught:
        await collect(model.stream(REQUEST))

    assert caught.value.reason == reason
    assert caught.value.request_accepted is False  # refused: the provider bills nothing


async def test_connection_refused_is_model_unavailable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    model = OpenAIChatModel(
        api_key="sk-test",
        base_url=f"http://127.0.0.1:{port}/v1",
        model="gpt-test",
        timeout=2.0,
        context_window=16_000,
    )
    try:
        with pytest.raises(ModelUnavailable) as caught:
            await collect(model.stream(REQUEST))
    finally:
        await model.aclose()
    assert caught.value.reason == "connect_error"
    assert caught.value.request_accepted is False


async def test_connection_dropped_mid_stream_is_model_interrupted(
    model: OpenAIChatModel, scripted_openai: ScriptedOpenAI
) -> None:
    scripted_openai.script(Script(tokens=TOKENS, fail_after=3))
    texts: list[str] = []

    with pytest.raises(ModelInterrupted), anyio.fail_after(10):
        async for item in model.stream(REQUEST):
            assert isinstance(item, TextDelta)
            texts.append(item.text)

    assert texts == TOKENS[:3]
    assert scripted_openai.last_stream.closed_by == "abort"


async def test_connection_dropped_before_any_token_is_model_unavailable(
    model: OpenAIChatModel, scripted_openai: ScriptedOpenAI
) -> None:
    scripted_openai.script(Script(tokens=TOKENS, fail_after=0))

    with pytest.raises(ModelUnavailable):
        await collect(model.stream(REQUEST))


async def test_stream_ending_without_finish_reason_is_model_interrupted(
    model: OpenAIChatModel, scripted_openai: ScriptedOpenAI
) -> None:
    scripted_openai.script(Script(tokens=TOKENS, omit_finish_reason=True))
    texts: list[str] = []

    with pytest.raises(ModelInterrupted):
        async for item in model.stream(REQUEST):
            assert isinstance(item, TextDelta)  # no Usage for a cut-off answer
            texts.append(item.text)

    assert texts == TOKENS


async def test_stalled_stream_fails_as_interrupted_after_the_read_timeout(
    scripted_openai: ScriptedOpenAI,
) -> None:
    scripted_openai.script(Script(tokens=TOKENS, stall_after=2))
    model = scripted_openai.chat_model(timeout=0.3)
    texts: list[str] = []
    try:
        with pytest.raises(ModelInterrupted), anyio.fail_after(10):
            async for item in model.stream(REQUEST):
                assert isinstance(item, TextDelta)
                texts.append(item.text)
    finally:
        await model.aclose()

    assert texts == TOKENS[:2]
    record = await scripted_openai.wait_closed(timeout=1.0)
    assert record.closed_by == "client"


@pytest.mark.parametrize("how", ["aclose", "cancel"])
async def test_leaving_the_stream_closes_the_upstream_connection_within_a_second(
    model: OpenAIChatModel, scripted_openai: ScriptedOpenAI, how: str
) -> None:
    """``aclose()`` of the stream, or cancelling the task that consumes it."""
    many = [f" t{i}" for i in range(200)]
    scripted_openai.script(Script(tokens=many, token_gap=0.02))
    if how == "aclose":
        stream = model.stream(REQUEST)
        try:
            with anyio.fail_after(5):
                await anext(stream)
        finally:
            await stream.aclose()
    else:
        got_first = asyncio.Event()

        async def consume() -> None:
            async for _item in model.stream(REQUEST):
                got_first.set()

        task = asyncio.create_task(consume())
        with anyio.fail_after(5):
            await got_first.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    # Explicitly asked for: the server must see the client leave within 1 s.
    record = await scripted_openai.wait_closed(timeout=1.0)
    assert record.closed_by == "client"
    assert record.tokens_sent < len(many)


async def test_a_cancel_scope_deadline_closes_the_upstream_connection_within_a_second(
    model: OpenAIChatModel, scripted_openai: ScriptedOpenAI
) -> None:
    # anyio cancels level-triggered: every await in the scope is cancelled again, so the close
    # in ``finally`` only completes because it is shielded.
    scripted_openai.script(Script(tokens=TOKENS, stall_after=2))
    texts: list[str] = []

    with anyio.move_on_after(0.5) as scope:
        async for item in model.stream(REQUEST):
            if isinstance(item, TextDelta):
                texts.append(item.text)

    assert scope.cancelled_caught
    assert texts == TOKENS[:2]
    record = await scripted_openai.wait_closed(timeout=1.0)
    assert record.closed_by == "client"


async def test_closed_model_reports_unavailable_without_calling_the_server(
    scripted_openai: ScriptedOpenAI,
) -> None:
    model = scripted_openai.chat_model()
    await model.aclose()

    with pytest.raises(ModelUnavailable):
        await collect(model.stream(REQUEST))

    assert scripted_openai.requests == []


@pytest.mark.parametrize(("pool", "answering"), [(2, 2), (3, 3)])
async def test_answers_in_flight_are_bounded_by_the_connection_pool_only(
    scripted_openai: ScriptedOpenAI, pool: int, answering: int
) -> None:
    # A streamed answer holds its connection until its last token: with a pool of two, a
    # third answer waits, silent, until one of the others ends.
    scripted_openai.script(Script(tokens=TOKENS, stall_after=1))
    model = scripted_openai.chat_model(max_connections=pool)
    streams = [model.stream(REQUEST) for _ in range(3)]
    firsts = [asyncio.ensure_future(anext(s)) for s in streams]
    try:
        pending = set(firsts)
        with anyio.fail_after(10):
            while len(firsts) - len(pending) < answering:
                _, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        await asyncio.sleep(0.3)  # time enough for a third answer, were it let through
        done = [task for task in firsts if task.done()]
        assert len(done) == answering
        assert all(task.result() == TextDelta(TOKENS[0]) for task in done)
    finally:
        for task in firsts:
            task.cancel()
        await asyncio.gather(*firsts, return_exceptions=True)
        for stream in streams:
            await stream.aclose()
        await model.aclose()


@pytest.mark.parametrize("line_end", ["\n", "\r\n", "\r"], ids=["lf", "crlf", "cr"])
async def test_every_framing_sse_allows_gives_the_same_answer(
    scripted_openai: ScriptedOpenAI, line_end: str
) -> None:
    """Line ends of each kind, comments and ids between events, a JSON object over two
    ``data:`` lines, and the body arriving three bytes at a time (so CRLFs, lines and
    multi-byte characters are split across reads)."""
    tokens = ["Grüße", " aus", " 東京", " 🙂", "."]
    scripted_openai.script(
        Script(tokens=tokens, line_end=line_end, verbose_events=True, write_size=3)
    )
    model = scripted_openai.chat_model()
    try:
        texts, usages = await collect(model.stream(REQUEST))
    finally:
        await model.aclose()
    assert texts == tokens
    assert len(usages) == 1
    assert usages[0].completion_tokens == len(tokens)  # the provider's own usage chunk


@pytest.mark.parametrize("end", [b"\n", b"\r\n", b"\r"], ids=["lf", "crlf", "cr"])
async def test_lines_are_the_same_wherever_the_reads_split_the_body(end: bytes) -> None:
    lines = [b": keep-alive", b'data: {"a":', b'data: "\xc3\xbc"}', b"", b"data: [DONE]", b""]
    body = end.join(lines) + end

    async def read(pieces: list[bytes]) -> list[bytes]:
        async def chunks() -> AsyncIterator[bytes]:
            for piece in pieces:
                yield piece

        return [line async for line in sse_lines(chunks())]

    assert await read([body]) == lines
    for cut in range(1, len(body)):
        assert await read([body[:cut], body[cut:]]) == lines, cut
    assert await read([body[i : i + 1] for i in range(len(body))]) == lines
