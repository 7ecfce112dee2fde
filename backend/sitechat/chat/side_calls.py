"""Short calls to the chatbot's model beside its answer: the query rewrite (``chat.query``)
and the answerability check (``chat.answer_check``).

Both are bounded and optional: ``side_call`` gives up after its timeout (closing the stream),
and a failure or a timeout returns no text, so the caller falls back to what it knows
without the model. Both are paid: what the call cost is known from the moment it is made
(an estimate by tiktoken) and replaced by the provider's own count when that arrives, so a
call cut short is charged too. Their results are cached (``TtlCache``).
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from typing import Generic, TypeVar

import anyio

from sitechat.errors import ModelError, SitechatError
from sitechat.llm.base import ChatModel, GenerationRequest, TextDelta, Usage
from sitechat.tokens import count_tokens

logger = logging.getLogger(__name__)

V = TypeVar("V")


class TtlCache(Generic[V]):
    """At most ``size`` entries (least recently used go first), each for ``ttl`` seconds."""

    def __init__(self, size: int, ttl: float) -> None:
        self._size = size
        self._ttl = ttl
        self._items: OrderedDict[str, tuple[float, V]] = OrderedDict()

    def get(self, key: str) -> V | None:
        item = self._items.get(key)
        if item is None:
            return None
        stored_at, value = item
        if time.monotonic() - stored_at > self._ttl:
            del self._items[key]
            return None
        self._items.move_to_end(key)
        return value

    def put(self, key: str, value: V) -> None:
        self._items[key] = (time.monotonic(), value)
        self._items.move_to_end(key)
        while len(self._items) > self._size:
            self._items.popitem(last=False)


async def side_call(
    model: ChatModel, request: GenerationRequest, *, timeout_seconds: float, what: str
) -> tuple[str | None, Usage | None]:
    """The text ``model`` writes for ``request`` and what it cost; no text (None) when it
    failed or took over ``timeout_seconds``. ``what`` names the call in the log."""
    text: str | None = None
    cost: list[Usage] = []
    with anyio.move_on_after(timeout_seconds) as scope:
        try:
            text = await _collect(model, request, cost)
        except SitechatError as exc:
            if isinstance(exc, ModelError) and not exc.request_accepted:
                cost.clear()  # the provider never took it: nothing to pay
            logger.info("%s failed (%s): going without it", what, exc.code)
        except Exception:
            logger.warning("%s crashed: going without it", what, exc_info=True)
    if scope.cancelled_caught:
        logger.info("%s took over %.1fs: going without it", what, timeout_seconds)
    return text, cost[-1] if cost else None


async def _collect(model: ChatModel, request: GenerationRequest, cost: list[Usage]) -> str:
    """``cost`` gets what the call costs as soon as it is made (an estimate), then the
    provider's own count when it arrives."""
    parts: list[str] = []
    prompt_tokens = sum(count_tokens(m.content) for m in request.messages)
    cost[:] = [Usage(prompt_tokens, 0, "estimated")]
    stream = model.stream(request)
    try:
        async for item in stream:
            if isinstance(item, TextDelta):
                parts.append(item.text)
                cost[:] = [Usage(prompt_tokens, count_tokens("".join(parts)), "estimated")]
            else:
                cost[:] = [item]
    finally:
        with anyio.CancelScope(shield=True):
            await stream.aclose()
    return "".join(parts)
