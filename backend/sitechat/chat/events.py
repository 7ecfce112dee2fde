"""Domain events of one chat turn. The pipeline yields these; ``sitechat.api.sse`` frames them.

The wire shapes of ``token``, ``complete`` and ``error`` are a public contract: clients
written for the original design parse exactly these keys.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sitechat.errors import SitechatError, error_body


@dataclass(frozen=True, slots=True)
class Source:
    number: int
    chunk_id: str
    document_id: str
    title: str
    url: str | None
    snippet: str
    score: float
    heading: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "chunk_id": self.chunk_id,
            "document_id": self.document_id,
            "title": self.title,
            "url": self.url,
            "heading": self.heading,
            "snippet": self.snippet,
            "score": round(self.score, 6),
        }


@dataclass(frozen=True, slots=True)
class StartEvent:
    message_id: str
    session_id: str
    type: str = "start"

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "message_id": self.message_id, "session_id": self.session_id}


@dataclass(frozen=True, slots=True)
class SourcesEvent:
    sources: tuple[Source, ...]
    context_quality: dict[str, Any]
    type: str = "sources"

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "sources": [s.to_dict() for s in self.sources],
            "context_quality": self.context_quality,
        }


@dataclass(frozen=True, slots=True)
class TokenEvent:
    content: str
    type: str = "token"

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "content": self.content, "done": False}


@dataclass(frozen=True, slots=True)
class CompleteEvent:
    content: str
    message_id: str
    session_id: str
    sources: tuple[Source, ...]
    context_quality: dict[str, Any]
    usage: dict[str, Any]
    fallback: bool = False
    # Stopped by the visitor (the stop endpoint): ``content`` is the answer so far. The key
    # is only sent when true, so the event is an ordinary ``complete`` for older clients.
    stopped: bool = False
    type: str = "complete"

    def to_dict(self) -> dict[str, Any]:
        body = {
            "type": self.type,
            "content": self.content,
            "done": True,
            "sources": [s.to_dict() for s in self.sources],
            "context_quality": self.context_quality,
            "usage": self.usage,
            "message_id": self.message_id,
            "session_id": self.session_id,
            "fallback": self.fallback,
        }
        if self.stopped:
            body["stopped"] = True
        return body


@dataclass(frozen=True, slots=True)
class ErrorEvent:
    error: str  # safe, public message
    code: str
    request_id: str | None = None
    message_id: str | None = None
    partial: bool = False  # a partial answer was stored, marked interrupted
    status: int = 500  # the HTTP status the non-streaming endpoint answers with; not sent
    extra: dict[str, Any] = field(default_factory=dict)
    type: str = "error"

    @classmethod
    def of(
        cls,
        exc: SitechatError,
        *,
        request_id: str | None,
        message_id: str | None = None,
        partial: bool = False,
    ) -> ErrorEvent:
        """The SSE ``error`` event for ``exc``: the same code and message as its HTTP answer."""
        return cls(
            error=exc.message,
            code=exc.code,
            request_id=request_id,
            message_id=message_id,
            partial=partial,
            status=exc.status,
        )

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": self.type,
            **error_body(self.code, self.error, request_id=self.request_id),
            "done": True,
        }
        if self.message_id is not None:
            body["message_id"] = self.message_id
        if self.partial:
            body["partial"] = True
        body.update(self.extra)
        return body


ChatEvent = StartEvent | SourcesEvent | TokenEvent | CompleteEvent | ErrorEvent
