"""The public API a website visitor's browser calls. Routes stay thin: validation happens in
the body models and ``ChatService.open_turn`` (before any stream starts); the stream itself
is ``ChatService.stream`` framed by ``sitechat.sse``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Path
from fastapi.responses import JSONResponse

from sitechat.api.deps import RequestIdDep, ServicesDep
from sitechat.api.schemas import (
    CHATBOT_ID_PATTERN,
    SESSION_ID_PATTERN,
    ChatAnswer,
    ChatBody,
    ErrorBody,
    PublicChatbotConfig,
    SessionMessages,
)
from sitechat.chat.events import CompleteEvent
from sitechat.chat.pipeline import ChatRequest
from sitechat.errors import ChatbotNotFound
from sitechat.sse import EventStreamResponse

router = APIRouter(prefix="/api/public", tags=["public"])

ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "The body is not a JSON object"},
    404: {"model": ErrorBody, "description": "Unknown chatbot"},
    422: {"model": ErrorBody, "description": "A field is missing or invalid"},
}
ChatbotId = Path(pattern=CHATBOT_ID_PATTERN)


def _chat_request(body: ChatBody, request_id: str) -> ChatRequest:
    return ChatRequest(
        message=body.message,
        chatbot_id=body.chatbot_id,
        session_id=body.session_id,
        request_id=request_id,
    )


@router.post(
    "/chat/stream",
    summary="Ask a question; the answer streams as Server-Sent Events",
    response_model=None,
    responses={
        200: {
            "content": {"text/event-stream": {}},
            "description": "start, sources, token…, then complete or error",
        },
        **ERRORS,
    },
)
async def chat_stream(
    body: ChatBody, services: ServicesDep, request_id: RequestIdDep
) -> EventStreamResponse:
    turn = await services.chat.open_turn(_chat_request(body, request_id))
    return EventStreamResponse(
        services.chat.stream(turn),
        ping_interval=services.settings.sse_ping_interval_seconds,
        headers={"X-Request-ID": request_id},
    )


@router.post(
    "/chat",
    summary="Ask a question; the whole answer as one JSON document",
    response_model=ChatAnswer,
    responses={**ERRORS, 502: {"model": ErrorBody, "description": "The model failed"}},
)
async def chat(body: ChatBody, services: ServicesDep, request_id: RequestIdDep) -> Any:
    turn = await services.chat.open_turn(_chat_request(body, request_id))
    outcome = await services.chat.answer(turn)
    if isinstance(outcome, CompleteEvent):
        return outcome.to_dict()
    body_out = {k: v for k, v in outcome.to_dict().items() if k not in {"type", "done"}}
    return JSONResponse(body_out, status_code=outcome.status)


@router.get(
    "/chatbots/{chatbot_id}/config",
    summary="The public-safe configuration of a chatbot (for the widget)",
    response_model=PublicChatbotConfig,
    responses={404: ERRORS[404]},
)
async def chatbot_config(services: ServicesDep, chatbot_id: str = ChatbotId) -> Any:
    config = await services.configs.get(chatbot_id)
    if config is None:
        raise ChatbotNotFound()
    return config.public_dict()


@router.get(
    "/chatbots/{chatbot_id}/sessions/{session_id}/messages",
    summary="The messages of one visitor session (restores a conversation after a reload)",
    response_model=SessionMessages,
    responses={404: ERRORS[404], 422: ERRORS[422]},
)
async def session_messages(
    services: ServicesDep,
    chatbot_id: str = ChatbotId,
    session_id: str = Path(pattern=SESSION_ID_PATTERN),
) -> Any:
    config = await services.configs.get(chatbot_id)
    if config is None:
        raise ChatbotNotFound()
    conversation = await services.store.get_conversation(config.id, session_id)
    messages = [] if conversation is None else await services.store.list_messages(conversation.id)
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
