"""The admin API for chatbots: create, list, read, update, delete.

    POST   /api/admin/chatbots
    GET    /api/admin/chatbots
    GET    /api/admin/chatbots/{chatbot_id}
    PATCH  /api/admin/chatbots/{chatbot_id}
    DELETE /api/admin/chatbots/{chatbot_id}     with its conversations, documents and chunks

Every change is followed by ``Services.chatbot_changed``, which drops the config from every
process's cache, so the next public message already uses the new config.

Access settings (origins, visitor token, limits, stream caps, budget) are stored in the
chatbot's ``settings`` JSON, where the public path's ``gate.policy`` reads them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field, StringConstraints, field_validator

from sitechat.api.admin import examples
from sitechat.api.admin.common import (
    ADMIN_ERRORS,
    BODY_ERRORS,
    Name,
    TokenBudget,
    shown,
    strict,
)
from sitechat.api.auth import AdminOrg, OwnedChatbot
from sitechat.api.deps import ServicesDep
from sitechat.api.schemas import ErrorBody
from sitechat.config import Settings
from sitechat.domain import CHATBOT_ID_PATTERN, AnswerScope, ChatbotConfig
from sitechat.errors import ChatbotNotFound, InvalidInput
from sitechat.gate.origins import InvalidOrigin, normalize_origin
from sitechat.gate.policy import check_limit_text, policy_of

# --- bodies -----------------------------------------------------------------------------------

ProviderName = Literal["openai", "local", "extractive"]
# Checked against the deployment's providers by the routes (``check_providers``).
FallbackName = Annotated[str, StringConstraints(min_length=1, max_length=32)]
MAX_FALLBACKS = 5
MAX_ORIGINS = 100
StarterQuestion = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300, pattern=r"\S")
]


class ThemeIn(BaseModel):
    model_config = strict(examples.THEME)

    primary_color: str | None = Field(default=None, pattern=r"^#[0-9a-fA-F]{6}$")
    position: Literal["bottom-right", "bottom-left"] = "bottom-right"
    avatar_url: str | None = Field(default=None, max_length=2048, pattern=r"^https://\S+$")


class RateLimitsIn(BaseModel):
    """Limits in ``limits`` notation, moving windows; omitted ones use the defaults."""

    model_config = strict(examples.LIMITS)

    per_ip: str | None = Field(default=None, max_length=100)
    per_visitor: str | None = Field(default=None, max_length=100)
    per_session: str | None = Field(default=None, max_length=100)
    per_chatbot: str | None = Field(default=None, max_length=100)

    @field_validator("per_ip", "per_visitor", "per_session", "per_chatbot")
    @classmethod
    def _parse(cls, value: str | None) -> str | None:
        return None if value is None else check_limit_text(value)


class MaxStreamsIn(BaseModel):
    model_config = strict(examples.MAX_STREAMS)

    per_ip: int | None = Field(default=None, ge=1, le=1000)
    per_chatbot: int | None = Field(default=None, ge=1, le=100_000)


class ChatbotFields(BaseModel):
    """Fields shared by create and update; every one optional here."""

    system_prompt: str | None = Field(default=None, max_length=20_000)
    provider: ProviderName | None = Field(
        default=None, description="None: the deployment's default provider."
    )
    model: str | None = Field(default=None, max_length=200)
    fallback_providers: list[FallbackName] | None = Field(
        default=None,
        max_length=MAX_FALLBACKS,
        description=(
            "Providers that answer, in order, when the chatbot's own fails before its first "
            "token: built-in ones or the deployment's named endpoints. Empty or null: the "
            "deployment's default chain."
        ),
    )
    temperature: float | None = Field(default=None, ge=0, le=2)
    max_tokens: int | None = Field(default=None, ge=1, le=32_000)
    greeting: str | None = Field(default=None, max_length=2000)
    starter_questions: list[StarterQuestion] | None = Field(default=None, max_length=10)
    theme: ThemeIn | None = None
    fallback_message: str | None = Field(default=None, min_length=1, max_length=2000)
    answer_scope: AnswerScope | None = Field(
        default=None,
        description=(
            "documents_only (the default): answers come from the chatbot's documents alone. "
            "documents_and_general: the model may add general knowledge, saying it is not "
            "from the documents. Links are limited to sources and allowed origins either way."
        ),
    )
    allowed_origins: list[str] | None = Field(
        default=None,
        max_length=MAX_ORIGINS,
        description=(
            "Websites that may embed the chatbot, each scheme://host[:port]. An explicit "
            "empty list means any origin."
        ),
    )
    require_visitor_token: bool | None = Field(
        default=None,
        description="Chat requests need the short-lived token the config endpoint issues.",
    )
    rate_limits: RateLimitsIn | None = None
    max_streams: MaxStreamsIn | None = None
    monthly_token_budget: TokenBudget | None = None

    @field_validator("allowed_origins")
    @classmethod
    def _origins(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        normalized: list[str] = []
        for origin in value:
            try:
                canonical = normalize_origin(origin)
            except InvalidOrigin as exc:
                raise ValueError(str(exc)) from None
            if canonical not in normalized:
                normalized.append(canonical)
        return normalized


class ChatbotCreate(ChatbotFields):
    model_config = strict(examples.CHATBOT_CREATE)

    id: str | None = Field(
        default=None,
        pattern=CHATBOT_ID_PATTERN,
        description="Optional; a random id is chosen when omitted.",
    )
    name: Name


class ChatbotUpdate(ChatbotFields):
    """Only the fields sent change; ``null`` resets an optional field to its default."""

    model_config = strict(
        examples.CHATBOT_UPDATE, examples.CHATBOT_UPDATE_LIMITS, examples.CHATBOT_UPDATE_SCOPE
    )

    name: Name | None = None


class ChatbotOut(BaseModel):
    model_config = shown(examples.CHATBOT)

    id: str
    org_id: str
    name: str
    system_prompt: str
    provider: str | None
    model: str | None
    fallback_providers: list[str]
    temperature: float
    max_tokens: int | None
    greeting: str
    starter_questions: list[str]
    theme: dict[str, Any]
    fallback_message: str
    answer_scope: AnswerScope
    allowed_origins: list[str]
    any_origin: bool = Field(description="True when every origin may embed the chatbot.")
    require_visitor_token: bool
    rate_limits: dict[str, str] = Field(description="The limits in force, defaults included.")
    max_streams: dict[str, int]
    monthly_token_budget: int | None
    created_at: datetime | None
    updated_at: datetime | None


class ChatbotList(BaseModel):
    model_config = shown(examples.CHATBOT_LIST)

    chatbots: list[ChatbotOut]


def chatbot_out(
    config: ChatbotConfig, rate_limits: dict[str, str], streams: dict[str, int]
) -> ChatbotOut:
    own = config.settings or {}
    budget = own.get("monthly_token_budget")
    return ChatbotOut(
        id=config.id,
        org_id=config.org_id,
        name=config.name,
        system_prompt=config.system_prompt,
        provider=config.provider,
        model=config.model,
        fallback_providers=list(config.fallback_providers),
        temperature=config.temperature,
        max_tokens=config.max_tokens,
        greeting=config.greeting,
        starter_questions=list(config.starter_questions),
        theme=dict(config.theme),
        fallback_message=config.fallback_message,
        answer_scope=config.answer_scope,
        allowed_origins=list(config.allowed_origins),
        any_origin=bool(own.get("any_origin", False)),
        require_visitor_token=bool(own.get("require_visitor_token", False)),
        rate_limits=rate_limits,
        max_streams=streams,
        monthly_token_budget=budget if isinstance(budget, int) else None,
        created_at=config.created_at,
        updated_at=config.updated_at,
    )


# --- routes -----------------------------------------------------------------------------------

router = APIRouter(prefix="/api/admin/chatbots", tags=["admin: chatbots"], responses=ADMIN_ERRORS)
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "No such chatbot in this org"}
}

# Config fields that go to their own columns; ``None`` resets the ones with a default.
_COLUMNS = (
    "system_prompt", "provider", "model", "fallback_providers", "temperature", "max_tokens",
    "greeting", "starter_questions", "theme", "fallback_message", "answer_scope",
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


def check_providers(body: ChatbotFields, settings: Settings) -> None:
    """422 for a fallback provider this deployment does not know (names of its endpoints
    change with its settings, so a body model cannot list them)."""
    unknown = settings.unknown_providers(body.fallback_providers or ())
    if unknown:
        raise InvalidInput(
            f"Invalid fallback_providers: {unknown[0]!r} is not a provider here; choose from: "
            f"{', '.join(settings.provider_names)}."
        )


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
    responses={**BODY_ERRORS, 409: {"model": ErrorBody, "description": "That chatbot id is taken"}},
)
async def create_chatbot(body: ChatbotCreate, org: AdminOrg, services: ServicesDep) -> ChatbotOut:
    check_providers(body, services.settings)
    fields, settings = changes(body, {"require_visitor_token": True})
    config = await services.store.create_chatbot(
        org.id, name=body.name, chatbot_id=body.id, settings=settings, **fields
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
    responses={**BODY_ERRORS, **NOT_FOUND},
)
async def update_chatbot(
    body: ChatbotUpdate, chatbot: OwnedChatbot, services: ServicesDep
) -> ChatbotOut:
    check_providers(body, services.settings)
    fields, settings = changes(body, chatbot.settings)
    if body.name is not None:
        fields["name"] = body.name
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
