"""The public API a website visitor's browser calls. Routes stay thin: every request passes
the gate (``sitechat.gate``: origin, visitor token, rate limits, budgets, stream caps)
before anything is stored; validation happens in the body models and ``ChatService.open_turn``
(before any stream starts); the stream itself is ``ChatService.stream`` framed by
``sitechat.api.sse``, and gives its stream slot back when it ends, however it ends."""

from __future__ import annotations

from typing import Any

import anyio
from fastapi import APIRouter, Depends, Path, Request, Response
from fastapi.responses import JSONResponse
from starlette.types import Receive, Scope, Send

from sitechat.api.cors import follow_chatbot
from sitechat.api.deps import (
    DrainDep,
    RequestIdDep,
    ServicesDep,
    accepting_answers,
    client_ip,
)
from sitechat.api.schemas import (
    ChatAnswer,
    ChatBody,
    ErrorBody,
    FeedbackBody,
    PublicChatbotConfig,
    SessionMessages,
)
from sitechat.api.sse import EventStreamResponse
from sitechat.chat.events import CompleteEvent, ErrorEvent
from sitechat.chat.turn import ChatRequest, ChatTurn
from sitechat.domain import CHATBOT_ID_PATTERN, SESSION_ID_PATTERN
from sitechat.errors import ConversationNotFound, NotFound
from sitechat.gate.admission import Admission, GateRequest
from sitechat.gate.visitor_tokens import HEADER as VISITOR_TOKEN_HEADER
from sitechat.services import Services

router = APIRouter(prefix="/api/public", tags=["public"])

ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "The body is not a JSON object"},
    401: {"model": ErrorBody, "description": "A visitor token is required, invalid or expired"},
    403: {"model": ErrorBody, "description": "The page's origin may not use this chatbot"},
    404: {
        "model": ErrorBody,
        "description": "Unknown chatbot, or no such session (another visitor's included)",
    },
    413: {"model": ErrorBody, "description": "The request body is too large"},
    422: {"model": ErrorBody, "description": "A field is missing or invalid"},
    429: {
        "model": ErrorBody,
        "description": "Over a rate limit, the monthly token budget, or the cap on answers "
        "streaming at once (Retry-After and X-RateLimit-* headers)",
    },
}
DRAINING = {
    "model": ErrorBody,
    "description": "This worker is restarting (server_restarting): ask again at once",
}
ChatbotId = Path(pattern=CHATBOT_ID_PATTERN)


class GatedEventStream(EventStreamResponse):
    """An event stream that gives its admission's stream slot back when it ends: after the
    last frame, on a disconnect, or when the response could not even start."""

    def __init__(self, events: Any, admission: Admission, **options: Any) -> None:
        super().__init__(events, **options)
        self.admission = admission

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            with anyio.CancelScope(shield=True):
                await self.admission.release()


def gate_request(request: Request, chatbot_id: str, session_id: str | None = None) -> GateRequest:
    follow_chatbot(request.scope, chatbot_id)  # CORS answers for this chatbot's origins
    headers = request.headers
    return GateRequest(
        chatbot_id=chatbot_id,
        client_ip=client_ip(request),
        origin=headers.get("origin"),
        host=headers.get("host"),
        session_id=session_id,
        visitor_token=headers.get(VISITOR_TOKEN_HEADER),
    )


async def _admit_and_open(
    body: ChatBody, request: Request, services: Services, request_id: str
) -> tuple[Admission, ChatTurn]:
    """The gate, then the turn (the user message stored); the caller releases the
    admission, which is given back here already if the turn could not open."""
    admission = await services.gate.admit_chat(
        gate_request(request, body.chatbot_id, body.session_id)
    )
    try:
        turn = await services.chat.open_turn(
            ChatRequest(
                message=body.message,
                chatbot_id=body.chatbot_id,
                session_id=body.session_id,
                request_id=request_id,
                visitor_id=admission.visitor_id,
            )
        )
    except BaseException:
        with anyio.CancelScope(shield=True):
            await admission.release()
        raise
    return admission, turn


@router.post(
    "/chat/stream",
    dependencies=[Depends(accepting_answers)],
    summary="Ask a question; the answer streams as Server-Sent Events",
    response_model=None,
    responses={
        200: {
            "content": {"text/event-stream": {}},
            "description": "start, sources, token…, then complete or error",
        },
        **ERRORS,
        503: DRAINING,
    },
)
async def chat_stream(
    body: ChatBody,
    request: Request,
    services: ServicesDep,
    request_id: RequestIdDep,
    drain: DrainDep,
) -> EventStreamResponse:
    admission, turn = await _admit_and_open(body, request, services, request_id)
    return GatedEventStream(
        services.chat.stream(turn),
        admission,
        ping_interval=services.settings.sse_ping_interval_seconds,
        headers={"X-Request-ID": request_id},
        drain=drain,
        stop=turn.stop,
    )


@router.post(
    "/chat",
    dependencies=[Depends(accepting_answers)],
    summary="Ask a question; the whole answer as one JSON document",
    response_model=ChatAnswer,
    responses={
        **ERRORS,
        502: {"model": ErrorBody, "description": "The model failed"},
        503: DRAINING,
    },
)
async def chat(
    body: ChatBody, request: Request, services: ServicesDep, request_id: RequestIdDep
) -> Any:
    admission, turn = await _admit_and_open(body, request, services, request_id)
    try:
        outcome: CompleteEvent | ErrorEvent = await services.chat.answer(turn)
    finally:
        with anyio.CancelScope(shield=True):
            await admission.release()
    if isinstance(outcome, CompleteEvent):
        return outcome.to_dict()
    body_out = {k: v for k, v in outcome.to_dict().items() if k not in {"type", "done"}}
    return JSONResponse(body_out, status_code=outcome.status)


@router.get(
    "/chatbots/{chatbot_id}/config",
    summary="The public-safe configuration of a chatbot (for the widget)",
    response_model=PublicChatbotConfig,
    response_model_exclude_unset=True,
    responses={k: ERRORS[k] for k in (403, 404, 422, 429)},
)
async def chatbot_config(
    request: Request, response: Response, services: ServicesDep, chatbot_id: str = ChatbotId
) -> Any:
    admission, token, expires_at = await services.gate.admit_config(
        gate_request(request, chatbot_id)
    )
    public = admission.config.public_dict()
    settings = services.settings
    public["limits"] = {
        "max_message_chars": settings.max_message_chars,
        "idle_timeout_seconds": 3 * settings.sse_ping_interval_seconds,
    }
    if token is not None:
        public.update(visitor_token=token, visitor_token_expires_at=expires_at)
        response.headers["Cache-Control"] = "no-store"
    return public


@router.get(
    "/chatbots/{chatbot_id}/sessions/{session_id}/messages",
    summary="The messages of one visitor session (restores a conversation after a reload)",
    response_model=SessionMessages,
    responses={k: ERRORS[k] for k in (401, 403, 404, 422, 429)},
)
async def session_messages(
    request: Request,
    services: ServicesDep,
    chatbot_id: str = ChatbotId,
    session_id: str = Path(pattern=SESSION_ID_PATTERN),
) -> Any:
    admission = await services.gate.admit_visitor_read(
        gate_request(request, chatbot_id, session_id)
    )
    conversation = await services.store.get_conversation(
        admission.config.id, session_id, visitor_id=admission.visitor_id
    )
    if conversation is None:  # unknown, or another visitor's: the same answer
        raise ConversationNotFound()
    messages = await services.store.list_messages(conversation.id)
    return {
        "session_id": session_id,
        "messages": [
            {
                "id": m.id,
                "role": m.role,
                "content": m.content,
                "status": m.status,
                "sources": m.sources,
                "created_at": m.created_at.isoformat(),
            }
            for m in messages
            if m.status != "failed"
        ],
    }


@router.post(
    "/chatbots/{chatbot_id}/sessions/{session_id}/messages/{message_id}/feedback",
    status_code=204,
    response_class=Response,
    summary="Rate an answer (helpful or not), optionally with a comment",
    responses={k: ERRORS[k] for k in (400, 401, 403, 404, 413, 422, 429)},
)
async def answer_feedback(
    body: FeedbackBody,
    request: Request,
    services: ServicesDep,
    chatbot_id: str = ChatbotId,
    session_id: str = Path(pattern=SESSION_ID_PATTERN),
    message_id: str = Path(max_length=64),
) -> Response:
    admission = await services.gate.admit_visitor_read(
        gate_request(request, chatbot_id, session_id)
    )
    conversation = await services.store.get_conversation(
        admission.config.id, session_id, visitor_id=admission.visitor_id
    )
    if conversation is None:  # unknown, or another visitor's: the same answer
        raise NotFound("No answer with that id in this conversation.")
    await services.archive.set_feedback(
        conversation.id, message_id, rating=body.rating, comment=body.comment
    )
    return Response(status_code=204)
