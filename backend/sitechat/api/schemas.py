"""Request and response bodies of the public API (Pydantic at the edge)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from pydantic_core import PydanticCustomError

from sitechat.domain import CHATBOT_ID_PATTERN, SESSION_ID_PATTERN


class ChatBody(BaseModel):
    # Strict: a number is not a message. Unknown fields are ignored so that clients which
    # send extra context keep working.
    model_config = ConfigDict(strict=True, extra="ignore")

    message: str = Field(min_length=1, examples=["How do I embed the widget?"])
    chatbot_id: str = Field(pattern=CHATBOT_ID_PATTERN, examples=["demo"])
    session_id: str | None = Field(default=None, pattern=SESSION_ID_PATTERN)


class SourceOut(BaseModel):
    number: int
    chunk_id: str
    document_id: str
    title: str
    url: str | None
    heading: str | None
    snippet: str
    score: float


class ChatAnswer(BaseModel):
    """The non-streaming outcome: the fields of the stream's ``complete`` event."""

    type: Literal["complete"] = "complete"
    content: str
    done: bool = True
    sources: list[SourceOut]
    context_quality: dict[str, Any]
    usage: dict[str, Any]
    message_id: str
    session_id: str
    fallback: bool = False


class ErrorBody(BaseModel):
    error: str = Field(description="What is wrong, safe to show to a visitor.")
    code: str
    request_id: str | None = None
    details: list[dict[str, Any]] | None = None


class WidgetLimits(BaseModel):
    """Limits the widget enforces before the server would: so they are never duplicated."""

    max_message_chars: int = Field(description="The longest message the chat accepts.")
    idle_timeout_seconds: float = Field(
        description="Silence after which a stream is lost: three missed keep-alive pings."
    )


class PublicChatbotConfig(BaseModel):
    id: str
    name: str
    greeting: str
    starter_questions: list[str]
    theme: dict[str, Any]
    limits: WidgetLimits
    visitor_token: str | None = Field(
        default=None,
        description="Present when the chatbot requires it: send it as "
        "X-Sitechat-Visitor-Token on chat requests until it expires.",
    )
    visitor_token_expires_at: int | None = Field(
        default=None, description="When the visitor token expires, in unix seconds."
    )


def _json_integer(value: object) -> object:
    # A literal matches by equality, even in strict mode, so ``true`` and ``1.0`` would pass
    # as 1. JSON Schema cannot refuse ``1.0`` either (it is an integer there); we do.
    if type(value) is not int:
        raise PydanticCustomError("literal_error", "Input should be 1 or -1 (an integer)")
    return value


class FeedbackBody(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")

    rating: Annotated[Literal[1, -1], BeforeValidator(_json_integer)] = Field(
        description="1: helpful; -1: not helpful.", examples=[1]
    )
    comment: str | None = Field(default=None, max_length=2000)


class PublicMessage(BaseModel):
    id: str
    role: Literal["user", "assistant"]
    content: str
    status: str
    sources: list[dict[str, Any]]
    created_at: str


class SessionMessages(BaseModel):
    session_id: str
    messages: list[PublicMessage]


class StopAnswer(BaseModel):
    """``status``: ``stopping`` while the answer is being stopped, else the status it ended
    with (stopping an answer that already ended changes nothing)."""

    message_id: str
    status: Literal["stopping", "streaming", "complete", "stopped", "interrupted", "failed"]
