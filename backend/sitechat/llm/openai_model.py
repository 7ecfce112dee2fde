"""OpenAI, or any server that speaks its chat-completions API, through the official async SDK.

Each answer is one streamed POST to ``/chat/completions``, sent with the SDK's ``post`` (see
``_open``). The SDK sends the request, and owns its headers, timeouts and HTTP error
statuses; the open stream's body is read here with a lean parser (``data:`` lines, as
bytes, decoded with orjson into plain dicts), because building the SDK's pydantic chunk
objects was the largest part of sitechat's own CPU per token under load. Text is yielded
as each content delta arrives; the provider's own usage chunk
(``stream_options.include_usage``) becomes the final ``Usage``, or tiktoken estimates it
when the server sends none.

Errors are translated here, where they enter: anything that fails before the first delta is
``ModelUnavailable`` (the caller may still fall back to another model), anything after it is
``ModelInterrupted`` (the visitor already saw part of an answer). A stream that ends without a
``finish_reason`` was cut off, so it counts as a failure too.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from typing import Any

import anyio
import httpx
import openai
import orjson
from openai import AsyncOpenAI
from openai._constants import DEFAULT_CONNECTION_LIMITS

from sitechat.errors import ModelInterrupted, ModelUnavailable
from sitechat.llm.base import ChatMessage, GenerationRequest, StreamItem, TextDelta, Usage
from sitechat.tokens import count_tokens

logger = logging.getLogger(__name__)

# The SDK's request header asking for the HTTP response with its body unread.
_RAW_RESPONSE_HEADER = "X-Stainless-Raw-Response"
# Closing an HTTP stream normally takes microseconds; this only bounds a wedged transport.
_CLOSE_TIMEOUT_SECONDS = 2.0


def _timeouts(name: str) -> tuple[type[BaseException], ...]:
    """``name`` from httpx and from httpx2 (the HTTP client newer openai SDKs ship with):
    a stream's own read errors are the SDK's transport's, not wrapped by it."""
    found: list[type[BaseException]] = [getattr(httpx, name)]
    with contextlib.suppress(ImportError):
        found.append(getattr(importlib.import_module("httpx2"), name))
    return tuple(found)


_CONNECT_TIMEOUTS = _timeouts("ConnectTimeout")
_READ_TIMEOUTS = _timeouts("TimeoutException")


# Answers in flight to one server from one worker. The SDK's own pool stops at 1,000
# connections, and a streamed answer holds its connection until its last token: the
# 1,001st answer would wait for one, silent, however idle the others are.
DEFAULT_MAX_CONNECTIONS = 10_000


def pooled_http_client(max_connections: int) -> Any:
    """The SDK's default HTTP client (its timeouts, redirects, transport) with a connection
    pool of ``max_connections``; keep-alive connections as the SDK keeps them. The limits
    are the SDK's own HTTP library's (httpx, or httpx2 in newer SDKs)."""
    defaults = DEFAULT_CONNECTION_LIMITS
    limits = type(defaults)(
        max_connections=max_connections,
        max_keepalive_connections=defaults.max_keepalive_connections,
        keepalive_expiry=defaults.keepalive_expiry,
    )
    return openai.DefaultAsyncHttpxClient(limits=limits)


class OpenAIChatModel:
    def __init__(
        self,
        *,
        api_key: str,
        base_url: str | None,
        model: str,
        timeout: float,
        context_window: int,
        name: str = "openai",
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
    ) -> None:
        self.name = name
        self.context_window = context_window
        self.max_passages: int | None = None
        self.max_answer_tokens: int | None = None
        self.default_model = model
        # max_retries=0: the SDK's retries re-send the whole request with backoff. For a
        # streamed answer that is the caller's decision, not the client's: before the first
        # token a retry only adds seconds of silence the visitor waits through (the pipeline
        # owns the first-token deadline and any fallback), and once tokens have been shown a
        # re-sent request would start a different answer under half of the old one.
        # ``timeout`` bounds connecting and every read, so a stalled stream fails after it.
        self._client = AsyncOpenAI(
            api_key=api_key,
            base_url=base_url,
            timeout=timeout,
            max_retries=0,
            http_client=pooled_http_client(max_connections),
        )
        # Some OpenAI-compatible servers reject ``stream_options`` with a 400; once a retry
        # without it has worked, later requests skip the failing attempt.
        self._send_stream_options = True

    async def aclose(self) -> None:
        await self._client.close()

    async def stream(self, request: GenerationRequest) -> AsyncGenerator[StreamItem, None]:
        model = request.model or self.default_model
        response = await self._open(request, model)
        # The prompt is sent: an answer that streams, or waits on a silent model, for
        # minutes keeps only what its usage estimate needs (nothing, when it was counted).
        counted, messages = request.prompt_tokens, request.messages
        if counted is not None:
            messages = ()
        del request
        produced: list[str] = []
        provider_usage: dict[str, Any] | None = None
        finished = False
        try:
            async for chunk in _chunks(response):
                usage = chunk.get("usage")
                if isinstance(usage, dict):
                    provider_usage = usage
                for choice in chunk.get("choices") or ():
                    if choice.get("finish_reason") is not None:
                        finished = True
                    delta = choice.get("delta")
                    text = delta.get("content") if isinstance(delta, dict) else None
                    if text and isinstance(text, str):
                        produced.append(text)
                        yield TextDelta(text)
        except Exception as exc:
            # Only vendor and transport errors reach here (GeneratorExit and cancellation
            # are BaseExceptions and pass through to ``finally``).
            if not finished:
                raise _failure(exc, produced=bool(produced), model=model) from exc
            # The answer was complete; only its trailer (usage chunk, [DONE]) was lost.
            logger.warning("openai stream for model %s failed after finish_reason: %r", model, exc)
        finally:
            # Runs on normal end, on error, on ``aclose()`` of this generator and when the
            # consuming task is cancelled: the HTTP response is closed right away, so the
            # server sees the client leave. Shielded, because a cancelled task would otherwise
            # abandon the close at its first await.
            with anyio.CancelScope(shield=True), anyio.move_on_after(_CLOSE_TIMEOUT_SECONDS):
                await response.aclose()
        if not finished:
            logger.warning("openai stream for model %s ended without finish_reason", model)
            if produced:
                raise ModelInterrupted()
            raise ModelUnavailable(reason="server_error")
        yield _usage(provider_usage, counted, messages, "".join(produced), model)

    async def _open(self, request: GenerationRequest, model: str) -> Any:
        """The HTTP response of the streamed request, its body not read yet.

        Sent with the SDK's ``post`` (its way to any endpoint), not ``chat.completions
        .create``: the request, headers, timeouts and error statuses are the SDK's all the
        same, but ``create`` first walks its typed parameters to transform them (nothing to
        transform in plain role/content messages), which took two thirds of the SDK's
        1.7 ms per request."""
        body: dict[str, Any] = {
            "model": model,
            "messages": [{"role": m.role, "content": m.content} for m in request.messages],
            "temperature": request.temperature,
            "max_tokens": request.max_tokens,
            "stream": True,
        }
        with_options = self._send_stream_options
        while True:
            if with_options:
                body["stream_options"] = {"include_usage": True}
            else:
                body.pop("stream_options", None)
            try:
                response = await self._client.post(
                    "/chat/completions",
                    body=body,
                    cast_to=httpx.Response,
                    # The body is left unread, to be streamed (the SDK's raw-stream mode).
                    options={"headers": {_RAW_RESPONSE_HEADER: "stream"}},
                )
            except openai.BadRequestError as exc:
                if with_options:
                    logger.info("openai server rejected stream_options; retrying without: %s", exc)
                    with_options = False
                    continue
                raise _failure(exc, produced=False, model=model, opened=False) from exc
            except Exception as exc:
                raise _failure(exc, produced=False, model=model, opened=False) from exc
            self._send_stream_options = with_options
            # The request it answers keeps only its method and URL: its JSON body (the
            # whole prompt) and headers would otherwise live as long as the answer streams.
            sent = response.request
            response.request = type(sent)(sent.method, sent.url)
            return response


class StreamError(Exception):
    """The server sent an error object inside an open stream."""


async def _chunks(response: Any) -> AsyncIterator[dict[str, Any]]:
    """The JSON objects of an OpenAI-style SSE body, up to ``data: [DONE]``.

    Read as bytes and parsed as bytes: the payload goes to orjson as it arrived, with no
    text decoding, line decoder or str copy in between (three async-generator layers of the
    HTTP client per open answer, and a decode per token)."""
    data: list[bytes] = []
    async for line in sse_lines(response.aiter_bytes()):
        if line:
            if line.startswith(b"data:"):
                data.append(line[6:] if line.startswith(b"data: ") else line[5:])
            continue  # comments (": ping"), event and id lines carry nothing we need
        if not data:
            continue
        payload = data[0] if len(data) == 1 else b"\n".join(data)
        data = []
        if payload == b"[DONE]":
            return
        chunk = orjson.loads(payload)
        if not isinstance(chunk, dict):
            continue
        if chunk.get("error") is not None:
            raise StreamError(str(chunk["error"])[:500])
        yield chunk


async def sse_lines(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """The lines of a byte stream, without their ends (LF, CRLF or CR, as SSE allows).

    A chunk ending in CR keeps it back until the next chunk says whether LF follows, so a
    CRLF split across two reads is one line end, not two."""
    rest = b""
    async for chunk in chunks:
        buffer = rest + chunk if rest else chunk
        held = buffer.endswith(b"\r")
        if held:
            buffer = buffer[:-1]
        if b"\r" in buffer:
            buffer = buffer.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        *lines, rest = buffer.split(b"\n")
        if held:
            rest += b"\r"
        for line in lines:
            yield line
    if rest:
        yield rest.removesuffix(b"\r")


def _failure(
    exc: Exception, *, produced: bool, model: str, opened: bool = True
) -> ModelUnavailable | ModelInterrupted:
    """The sitechat error for a vendor error; the details go to the log, never to clients.

    ``opened``: the answer's stream had started (HTTP 200). Before that, a request the
    server never took (unreachable, or refused with an error status) is not billed by
    providers, so it is marked ``request_accepted=False`` and not charged to budgets; a
    request sent and then left unanswered past the timeout may have been processed, and is.
    """
    if isinstance(exc, openai.APIStatusError):
        detail = f"HTTP {exc.status_code}: {exc.message}"
    elif isinstance(exc, openai.APITimeoutError):
        detail = "timed out"
    elif isinstance(exc, openai.APIConnectionError):
        detail = f"connection failed: {exc.__cause__ or exc}"
    else:
        detail = f"{type(exc).__name__}: {exc}"
    stage = "mid-stream" if produced else "before the first token"
    logger.warning("openai model %s failed %s: %s", model, stage, detail)
    if produced:
        return ModelInterrupted()
    accepted = opened or not _never_taken(exc)
    reason = _reason(exc)
    if isinstance(exc, openai.RateLimitError):
        return ModelUnavailable(
            "The language model is busy right now; try again shortly.",
            request_accepted=accepted,
            reason=reason,
        )
    return ModelUnavailable(request_accepted=accepted, reason=reason)


def _never_taken(exc: Exception) -> bool:
    if isinstance(exc, openai.APITimeoutError):
        return isinstance(exc.__cause__, _CONNECT_TIMEOUTS)
    return isinstance(exc, openai.APIStatusError | openai.APIConnectionError)


def _reason(exc: Exception) -> str:
    """Why the answer failed before its first token, in ``ModelError.reason``'s words."""
    if isinstance(exc, openai.APIStatusError):
        if exc.status_code == 429:
            return "rate_limited"
        return "server_error" if exc.status_code >= 500 else "rejected"
    if isinstance(exc, openai.APITimeoutError):  # a subclass of APIConnectionError
        return "connect_error" if isinstance(exc.__cause__, _CONNECT_TIMEOUTS) else "timeout"
    if isinstance(exc, openai.APIConnectionError):
        return "connect_error"
    if isinstance(exc, _READ_TIMEOUTS):  # a read of the open stream, not wrapped
        return "timeout"
    return "server_error"  # the open stream broke (cut off, or not what the API sends)


def _usage(
    reported: dict[str, Any] | None,
    counted: int | None,
    messages: Sequence[ChatMessage],
    completion: str,
    model: str,
) -> Usage:
    if reported is not None:
        extra: dict[str, int] = {}
        details = reported.get("prompt_tokens_details")
        cached = details.get("cached_tokens") if isinstance(details, dict) else None
        if isinstance(cached, int) and cached:
            extra["cached_tokens"] = cached
        return Usage(
            prompt_tokens=_count(reported.get("prompt_tokens")),
            completion_tokens=_count(reported.get("completion_tokens")),
            source="provider",
            model=model,
            extra=extra,
        )
    return Usage(
        prompt_tokens=counted if counted is not None else estimate_prompt_tokens(messages),
        completion_tokens=count_tokens(completion),
        source="estimated",
        model=model,
    )


def _count(value: Any) -> int:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0


def estimate_prompt_tokens(messages: Sequence[ChatMessage]) -> int:
    """OpenAI's published rule of thumb: content plus ~3 tokens of framing per message and
    3 to prime the reply."""
    return sum(count_tokens(m.content) + 3 for m in messages) + 3
