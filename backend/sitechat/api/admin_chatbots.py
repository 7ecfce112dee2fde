"""The admin API for chatbots: create, list, read, update, delete.

    POST   /api/admin/chatbots
    GET    /api/admin/chatbots
    GET    /api/admin/chatbots/{chatbot_id}
    PATCH  /api/admin/chatbots/{chatbot_id}
    DELETE /api/admin/chatbots/{chatbot_id}     with its conversations, documents and chunks

Every change is followed by ``Services.chatbot_changed``, which drops the config from every
process's cache, so the next public message already uses the new config.

Access settings (origins, visitor token, limits, stream caps, budget) are stored in the
chatbot's ``settings`` JSON, where the public path's ``chatbot_policy`` reads them.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from sitechat.api.admin_schemas import (
    ADMIN_ERRORS,
    ChatbotCreate,
    ChatbotFields,
    ChatbotList,
    ChatbotOut,
    ChatbotUpdate,
    chatbot_out,
)
from sitechat.api.auth import AdminOrg, OwnedChatbot
from sitechat.api.deps import ServicesDep
from sitechat.api.schemas import ErrorBody
from sitechat.chatbot_policy import policy_of
from sitechat.config import Settings
from sitechat.domain import ChatbotConfig
from sitechat.errors import ChatbotNotFound

router = APIRouter(prefix="/api/admin/chatbots", tags=["admin: chatbots"], responses=ADMIN_ERRORS)
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "No such chatbot in this org"}
}

# Config fields that go to their own columns; ``None`` resets the ones with a default.
_COLUMNS = (
    "system_prompt", "provider", "model", "temperature", "max_tokens", "greeting",
    "starter_questions", "theme", "fallback_message",
)  # fmt: skip
_BLANK = ChatbotConfig(id="", org_id="", name="")
_DEFAULTS = {name: getattr(_BLANK, name) for name in _COLUMNS}
# Keys of ``settings`` this API manages; others (if any) are kept as they are.
_SETTINGS = ("require_visitor_token", "rate_limits", "max_streams", "monthly_token_budget")


def out(config: ChatbotConfig, settings: Settings) -> ChatbotOut:
    policy = policy_of(config, settings)
    streams = {"per_ip": policy.max_streams_per_ip, "per_chatbot": policy.max_streams_per_chatbot}
    limits = {str(scope): text for scope, text in policy.limit_texts.items()}
    return chatbot_out(config, limits, streams)


def changes(
    body: ChatbotFields, current: dict[str, Any] | None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(column fields, new ``settings``) for the fields ``body`` sets."""
    sent = body.model_fields_set
    fields: dict[str, Any] = {}
    for name in _COLUMNS:
        if name not in sent:
            continue
        value = getattr(body, name)
        if name == "theme" and value is not None:
            value = value.model_dump(exclude_none=True)
        fields[name] = _DEFAULTS[name] if value is None else value
    settings = dict(current or {})
    if "allowed_origins" in sent:
        origins = body.allowed_origins
        # An explicit [] is the owner's choice of "any origin"; null clears the list.
        settings["any_origin"] = origins == []
        fields["allowed_origins"] = origins or []
    for name in _SETTINGS:
        if name not in sent:
            continue
        value = getattr(body, name)
        if hasattr(value, "model_dump"):
            value = value.model_dump(exclude_none=True)
        if value is None or value == {}:
            settings.pop(name, None)
        else:
            settings[name] = value
    return fields, settings


@router.post(
    "",
    status_code=201,
    response_model=ChatbotOut,
    summary="Create a chatbot",
    responses={409: {"model": ErrorBody, "description": "That chatbot id is taken"}},
)
async def create_chatbot(body: ChatbotCreate, org: AdminOrg, services: ServicesDep) -> ChatbotOut:
    fields, settings = changes(body, {"require_visitor_token": True})
    config = await services.store.create_chatbot(
        org.id, name=body.name.strip(), chatbot_id=body.id, settings=settings, **fields
    )
    await services.chatbot_changed(config.id)  # a cached "unknown id" must not outlive it
    return out(config, services.settings)


@router.get("", response_model=ChatbotList, summary="The org's chatbots")
async def list_chatbots(org: AdminOrg, services: ServicesDep) -> ChatbotList:
    configs = await services.store.list_chatbots(org.id)
    return ChatbotList(chatbots=[out(c, services.settings) for c in configs])


@router.get("/{chatbot_id}", response_model=ChatbotOut, summary="One chatbot", responses=NOT_FOUND)
async def read_chatbot(chatbot: OwnedChatbot, services: ServicesDep) -> ChatbotOut:
    return out(chatbot, services.settings)


@router.patch(
    "/{chatbot_id}",
    response_model=ChatbotOut,
    summary="Change a chatbot; only the fields sent change",
    responses=NOT_FOUND,
)
async def update_chatbot(
    body: ChatbotUpdate, chatbot: OwnedChatbot, services: ServicesDep
) -> ChatbotOut:
    fields, settings = changes(body, chatbot.settings)
    if body.name is not None:
        fields["name"] = body.name.strip()
    updated = await services.store.update_chatbot(chatbot.id, settings=settings, **fields)
    if updated is None:  # deleted meanwhile
        raise ChatbotNotFound()
    await services.chatbot_changed(chatbot.id)
    return out(updated, services.settings)


@router.delete(
    "/{chatbot_id}",
    status_code=204,
    response_class=Response,
    summary="Delete a chatbot with its conversations, documents and their chunks",
    responses=NOT_FOUND,
)
async def delete_chatbot(chatbot: OwnedChatbot, services: ServicesDep) -> Response:
    if not await services.store.delete_chatbot(chatbot.id):
        raise ChatbotNotFound()
    await services.vectors.delete_chatbot(chatbot.id)
    await services.chatbot_changed(chatbot.id)
    return Response(status_code=204)
