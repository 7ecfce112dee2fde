"""A fallback chain: one answer, tried on each model of an ordered list until one starts.

``FallbackChain`` is itself a ``ChatModel``, made for one turn by ``ModelRegistry.chain``
from the chatbot's provider and its fallback providers (or the deployment's). It owns the
first-token deadline, per member: a member that fails before its first non-empty text
(``ModelError``: unreachable, an error status such as 429 or 5xx, a broken stream) or stays
silent past the deadline is closed, and the next member gets the same request. Once a member
has produced text there is no switching: its errors reach the caller unchanged, so a visitor
never reads half of one model's answer followed by another's.

Choices this module makes, and why:

- **Prompt sizing.** The pipeline builds the prompt once, before any member is called, from
  the chain's ``context_window``, ``max_passages`` and ``max_answer_tokens``. Those are the
  smallest and strictest of all members, so the prompt fits whichever member answers; the
  price is that a large primary answers from the prompt a small fallback could take.
- **The chatbot's ``model``.** ``GenerationRequest.model`` names a model of the chatbot's own
  provider; later members are asked with ``model=None``, their own configured default.
- **Billing.** The answer's usage is the answering member's. A member that failed before its
  first token is not charged, even when it may have processed the prompt (a first-token
  timeout after the request was sent): budgets count one prompt per answer. When every member
  fails, the last member's error is raised, marked ``request_accepted`` if any member might
  have taken the request, so at most one prompt is charged, as for a single model.
- **Which model answered.** ``name`` follows the member being tried, so the pipeline's
  per-provider metrics and the usage record name the member that answered (after a total
  failure, the last one tried); ``attempts`` lists the members that failed before it, with
  ``ModelError.reason``, and each hand-over is counted in ``sitechat_model_fallbacks_total``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import AsyncGenerator, Iterable, Sequence

import anyio

from sitechat import metrics
from sitechat.errors import ModelError, ModelUnavailable
from sitechat.llm.base import ChatModel, GenerationRequest, StreamItem, TextDelta

logger = logging.getLogger(__name__)

FIRST_TOKEN_TIMEOUT = "first_token_timeout"


class FallbackChain:
    """The members of one turn's chain, the primary first.

    ``name``, ``answered`` and ``attempts`` describe the latest ``stream()``: a chain serves
    one answer at a time (the registry makes one per turn; the members are shared)."""

    def __init__(self, members: Sequence[ChatModel], *, first_token_timeout: float) -> None:
        if not members:
            raise ValueError("a fallback chain needs at least one model")
        self.members: tuple[ChatModel, ...] = tuple(members)
        self.first_token_timeout = first_token_timeout
        self.name = self.primary.name
        self.context_window = min(m.context_window for m in self.members)
        self.max_passages = _strictest(m.max_passages for m in self.members)
        self.max_answer_tokens = _strictest(m.max_answer_tokens for m in self.members)
        # The member that produced the first token of the last answer (None: none did yet).
        self.answered: ChatModel | None = None
        # (provider, reason) of each member that failed before the one named by ``name``.
        self.attempts: list[tuple[str, str]] = []

    @property
    def primary(self) -> ChatModel:
        return self.members[0]

    async def aclose(self) -> None:
        """Nothing to close: the members belong to the registry and serve every turn."""

    async def stream(self, request: GenerationRequest) -> AsyncGenerator[StreamItem, None]:
        self.answered, self.attempts = None, []
        accepted = False  # whether any failed member may have taken the request
        for index, member in enumerate(self.members):
            self.name = member.name
            asked = request if index == 0 else dataclasses.replace(request, model=None)
            stream = member.stream(asked)
            del asked
            if index + 1 == len(self.members):
                # Nobody after this member needs the prompt: an answer that waits on a
                # silent model, or streams, for minutes need not hold it here too.
                del request
            try:
                try:
                    head = await self._head(stream)
                except ModelError as exc:
                    accepted = accepted or exc.request_accepted
                    following = self.members[index + 1] if index + 1 < len(self.members) else None
                    if following is None:
                        exc.request_accepted = accepted
                        raise
                    self._hand_over(member, following, exc)
                    continue
                self.answered = member
                for item in head:
                    yield item
                # From here on errors are the caller's: no silent switch mid-answer.
                async for item in stream:
                    yield item
                return
            finally:
                # Runs on hand-over, at the end, on error and when the consumer closes this
                # generator or is cancelled: the member's upstream stream is released now.
                with anyio.CancelScope(shield=True):
                    await stream.aclose()

    async def _head(self, stream: AsyncGenerator[StreamItem, None]) -> list[StreamItem]:
        """The items up to and including the first non-empty text (all of them, for an
        answer without text), within the first-token deadline."""
        head: list[StreamItem] = []
        try:
            # asyncio's timeout rather than an anyio scope: every answer still waiting for
            # its first token holds one, and it is about 1 KiB lighter.
            async with asyncio.timeout(self.first_token_timeout):
                async for item in stream:
                    if isinstance(item, TextDelta):
                        if not item.text:
                            continue
                        head.append(item)
                        break
                    head.append(item)
        except TimeoutError as exc:
            raise ModelUnavailable(
                "The language model did not answer in time.", reason=FIRST_TOKEN_TIMEOUT
            ) from exc
        return head

    def _hand_over(self, failed: ChatModel, following: ChatModel, exc: ModelError) -> None:
        self.attempts.append((failed.name, exc.reason))
        metrics.MODEL_FALLBACKS.labels(failed.name, following.name, exc.reason).inc()
        logger.warning(
            "model provider %s failed before its first token (%s); trying %s",
            failed.name,
            exc.reason,
            following.name,
        )


def _strictest(caps: Iterable[int | None]) -> int | None:
    """The smallest of the caps that are set (None: no member caps it)."""
    values = [cap for cap in caps if cap is not None]
    return min(values) if values else None
