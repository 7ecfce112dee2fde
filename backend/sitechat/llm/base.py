"""The model interface: one small protocol, three implementations (openai, local, extractive).

A model streams ``TextDelta`` items as text arrives and ends with exactly one ``Usage``.
Failures are raised as ``ModelUnavailable`` (nothing was produced yet) or
``ModelInterrupted`` (text was already produced). Closing the iterator early (``aclose()``,
or cancellation of the consuming task) must release the upstream stream promptly: an HTTP
stream is closed, a local generation thread is told to stop.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True, slots=True)
class ChatMessage:
    role: Role
    content: str


@dataclass(frozen=True, slots=True)
class ContextPassage:
    """A retrieved passage as the model sees it; ``number`` is its citation ``[n]``."""

    number: int
    title: str
    text: str
    url: str | None = None
    score: float = 0.0


@dataclass(frozen=True, slots=True)
class GenerationRequest:
    messages: Sequence[ChatMessage]
    # The visitor's (enhanced) question and the passages behind the prompt: generative models
    # only need ``messages``; the extractive model answers from these directly.
    question: str
    passages: Sequence[ContextPassage] = ()
    model: str | None = None
    temperature: float = 0.2
    max_tokens: int = 400
    # The caller's count of the prompt's tokens (tiktoken), if it made one: a model that
    # must estimate its usage takes it instead of counting ``messages`` again, and need not
    # keep them once the request is sent.
    prompt_tokens: int | None = None
    # The reply's first word must be one of these (lower case): a model that can weigh them
    # picks the one its probability favours over all its spellings ("yes", "Yes", " yes"),
    # rather than its single most likely token. Others read them as part of the prompt only.
    choices: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class TextDelta:
    text: str


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int
    # "provider" when the model reported it, "estimated" when counted with tiktoken.
    source: Literal["provider", "estimated"] = "provider"
    model: str = ""
    extra: dict[str, int] = field(default_factory=dict)


StreamItem = TextDelta | Usage


@runtime_checkable
class ChatModel(Protocol):
    """A streaming chat model."""

    name: str  # provider name: "openai", "local", "extractive"
    context_window: int  # tokens the model accepts, prompt and answer together
    # Caps of the model's own, below what its context would allow (None: no cap). A small
    # model answers best from few passages and with short answers.
    max_passages: int | None
    max_answer_tokens: int | None

    def stream(self, request: GenerationRequest) -> AsyncGenerator[StreamItem, None]: ...

    async def aclose(self) -> None: ...
