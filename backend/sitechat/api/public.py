"""The public API a website visitor's browser calls. Routes stay thin: every request passes
the gate (``sitechat.gate``: origin, visitor token, rate limits, budgets, stream caps)
before anything is stored; validation happens in the body models and ``ChatService.open_turn``
(before any stream starts). An answer then runs apart from its request (``sitechat.answers``):
the POST reads it as it is written, a resume reads it again from any frame, stop ends it,
and its stream slot is given back when the answer ends, however it ends."""

from __future__ import annotations

from typing import Any

import anyio
from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response
from fastapi.responses import JSONResponse

from sitechat.api.cors import follow_chatbot
from sitechat.api.deps import (
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
    StopAnswer,
)
from sitechat.api.sse import EventStreamResponse
from sitechat.chat.events import CompleteEvent, ErrorEvent
from sitechat.chat.turn import ChatRequest, ChatTurn
from sitechat.domain import CHATBOT_ID_PATTERN, SESSION_ID_PATTERN, Conversation
from sitechat.errors import ConversationNotFound, NotFound, SitechatError
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


MessageId = Path(max_length=64)
SessionId = Path(pattern=SESSION_ID_PATTERN)


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


async def _visitor_conversation(
    request: Request,
    services: Services,
    chatbot_id: str,
    session_id: str,
    *,
    missing: SitechatError | None = None,
) -> Conversation:
    """A session's conversation, for its own visitor only, after the gate's checks for
    reading a session (origin, visitor token, per-IP limit). Unknown, or another visitor's:
    the same ``missing`` error (by default: no such answer)."""
    admission = await services.gate.admit_visitor_read(
        gate_request(request, chatbot_id, session_id)
    )
    conversation = await services.store.get_conversation(
        admission.config.id, session_id, visitor_id=admission.visitor_id
    )
    if conversation is None:
        raise missing or NotFound("No answer with that id in this conversation.")
    return conversation


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
) -> EventStreamResponse:
    admission, turn = await _admit_and_open(body, request, services, request_id)
    return EventStreamResponse(
        services.answers.start(turn, admission),
        ping_interval=services.settings.sse_ping_interval_seconds,
        headers={"X-Request-ID": request_id},
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
    conversation = await _visitor_conversation(
        request, services, chatbot_id, session_id, missing=ConversationNotFound()
    )
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
    conversation = await _visitor_conversation(request, services, chatbot_id, session_id)
    await services.archive.set_feedback(
        conversation.id, message_id, rating=body.rating, comment=body.comment
    )
    return Response(status_code=204)


def _resume_cursor(last_event_id: str, after: int | None) -> int:
    """``Last-Event-ID`` (what EventSource sends on a reconnect) or ``?after=``; the header
    wins. Both are frame numbers, checked by their declared patterns and bounds."""
    if last_event_id:
        return int(last_event_id)
    return after or 0


MAX_FRAME = 999_999_999


@router.get(
    "/chatbots/{chatbot_id}/sessions/{session_id}/messages/{message_id}/stream",
    summary="Resume an answer's stream: every frame after Last-Event-ID (or ?after=), then "
    "live until it ends",
    response_model=None,
    responses={
        200: {
            "content": {"text/event-stream": {}},
            "description": "The frames after the cursor, with their original ids, then live "
            "ones until complete or error; an answer whose frames expired is sent as one "
            "complete (or error) event",
        },
        **{k: ERRORS[k] for k in (401, 403, 404, 422, 429)},
    },
)
async def resume_answer(
    request: Request,
    services: ServicesDep,
    request_id: RequestIdDep,
    chatbot_id: str = ChatbotId,
    session_id: str = SessionId,
    message_id: str = MessageId,
    after: int | None = Query(default=None, ge=0, le=MAX_FRAME),
    last_event_id: str = Header(
        default="",
        pattern=r"^[0-9]{0,9}$",
        description="The id of the last frame the client has (what EventSource sends)",
    ),
) -> EventStreamResponse:
    cursor = _resume_cursor(last_event_id, after)
    conversation = await _visitor_conversation(request, services, chatbot_id, session_id)
    frames = await services.answers.resume(conversation, message_id, cursor)
    return EventStreamResponse(
        frames,
        ping_interval=services.settings.sse_ping_interval_seconds,
        headers={"X-Request-ID": request_id},
    )


@router.post(
    "/chatbots/{chatbot_id}/sessions/{session_id}/messages/{message_id}/stop",
    summary="Stop an answer being written; its readers get a complete event marked stopped",
    response_model=StopAnswer,
    responses={k: ERRORS[k] for k in (401, 403, 404, 422, 429)},
)
async def stop_answer(
    request: Request,
    services: ServicesDep,
    chatbot_id: str = ChatbotId,
    session_id: str = SessionId,
    message_id: str = MessageId,
) -> Any:
    conversation = await _visitor_conversation(request, services, chatbot_id, session_id)
    status = await services.answers.stop(conversation, message_id)
    return {"message_id": message_id, "status": status}
