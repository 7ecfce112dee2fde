"""Request and response bodies of the admin API, with the examples ``/openapi.json`` shows.

Bodies are strict about what they accept (unknown fields are 422, so a typo is never
silently ignored) and validate what the public path relies on: origins are exactly
``scheme://host[:port]``, temperatures 0 to 2, rate limits in ``limits`` notation.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from sitechat.api.schemas import ErrorBody
from sitechat.chatbot_policy import check_limit_text
from sitechat.domain import ApiKeyRecord, ChatbotConfig, Org
from sitechat.origins import InvalidOrigin, normalize_origin

ProviderName = Literal["openai", "local", "extractive"]

# Every admin route can answer these; routes add their own (404, 409, ...).
ADMIN_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "Missing, wrong or revoked API key"},
    422: {"model": ErrorBody, "description": "A field is missing or invalid"},
    503: {"model": ErrorBody, "description": "A write while the shared cache is unreachable"},
}
MAX_ORIGINS = 100

_NOW = "2026-11-24T09:30:00Z"
EXAMPLE_ORG = {"id": "0b6f1a52-3c3e-4a7e-9d0c-2f6f3d7a9b10", "name": "Shop Inc"}
EXAMPLE_THEME = {
    "primary_color": "#0b7285",
    "position": "bottom-right",
    "avatar_url": "https://shop.example/bot.png",
}
EXAMPLE_LIMITS = {"per_ip": "20/minute", "per_visitor": "20/minute", "per_session": "12/minute"}
EXAMPLE_BUDGET = {
    "monthly_token_budget": 5_000_000,
    "used": {"prompt_tokens": 812_000, "completion_tokens": 95_500, "total_tokens": 907_500},
    "remaining": 4_092_500,
    "exceeded": False,
    "period": "2026-11",
}
EXAMPLE_KEY = {
    "id": "4a0e6c1e-8f77-4d59-9a57-0f0c5d0e2b41",
    "name": "deploy script",
    "prefix": "sck_Q2x9aB7k",
    "created_at": _NOW,
    "last_used_at": None,
    "revoked_at": None,
}
EXAMPLE_NEW_KEY = {**EXAMPLE_KEY, "key": "sck_Q2x9aB7kE3mZ0pW4vR8tY1uI6oP5aS2dF7gH9jK0lL"}
EXAMPLE_ORG_OUT = {**EXAMPLE_ORG, "created_at": _NOW, "budget": EXAMPLE_BUDGET}


def _strict(*examples: dict[str, Any]) -> ConfigDict:
    return ConfigDict(extra="forbid", json_schema_extra={"examples": list(examples)})


def _shown(*examples: dict[str, Any]) -> ConfigDict:
    return ConfigDict(json_schema_extra={"examples": list(examples)})


# --- orgs and keys --------------------------------------------------------------------------


class OrgCreate(BaseModel):
    model_config = _strict({"name": "Shop Inc", "monthly_token_budget": 5_000_000})

    name: str = Field(min_length=1, max_length=200)
    monthly_token_budget: int | None = Field(default=None, ge=0)


class OrgUpdate(BaseModel):
    model_config = _strict({"monthly_token_budget": 10_000_000}, {"name": "Shop GmbH"})

    name: str | None = Field(default=None, min_length=1, max_length=200)
    monthly_token_budget: int | None = Field(default=None, ge=0)


class UsageOut(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class BudgetOut(BaseModel):
    model_config = _shown(EXAMPLE_BUDGET)

    monthly_token_budget: int | None = Field(description="None: no budget.")
    used: UsageOut
    remaining: int | None
    exceeded: bool
    period: str = Field(description="The calendar month (UTC) the usage counts, YYYY-MM.")


class OrgOut(BaseModel):
    model_config = _shown(EXAMPLE_ORG_OUT)

    id: str
    name: str
    created_at: datetime
    budget: BudgetOut


class ApiKeyCreate(BaseModel):
    model_config = _strict({"name": "deploy script"})

    name: str = Field(default="default", min_length=1, max_length=200)


class ApiKeyOut(BaseModel):
    model_config = _shown(EXAMPLE_KEY)

    id: str
    name: str
    prefix: str = Field(description="The visible start of the key, to tell keys apart.")
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    @classmethod
    def of(cls, record: ApiKeyRecord) -> ApiKeyOut:
        return cls(
            id=record.id,
            name=record.name,
            prefix=record.prefix,
            created_at=record.created_at,
            last_used_at=record.last_used_at,
            revoked_at=record.revoked_at,
        )


class NewApiKeyOut(ApiKeyOut):
    model_config = _shown(EXAMPLE_NEW_KEY)

    key: str = Field(description="The key itself. Shown this once; only its hash is kept.")


class ApiKeyList(BaseModel):
    model_config = _shown({"keys": [EXAMPLE_KEY]})

    keys: list[ApiKeyOut]


class OrgCreated(BaseModel):
    model_config = _shown({"org": EXAMPLE_ORG_OUT, "api_key": EXAMPLE_NEW_KEY})

    org: OrgOut
    api_key: NewApiKeyOut


# --- chatbots ---------------------------------------------------------------------------------


class ThemeIn(BaseModel):
    model_config = _strict(EXAMPLE_THEME)

    primary_color: str | None = Field(default=None, pattern=r"^#[0-9a-fA-F]{6}$")
    position: Literal["bottom-right", "bottom-left"] = "bottom-right"
    avatar_url: str | None = Field(default=None, max_length=2048, pattern=r"^https://\S+$")


class RateLimitsIn(BaseModel):
    """Limits in ``limits`` notation, moving windows; omitted ones use the defaults."""

    model_config = _strict(EXAMPLE_LIMITS)

    per_ip: str | None = Field(default=None, max_length=100)
    per_visitor: str | None = Field(default=None, max_length=100)
    per_session: str | None = Field(default=None, max_length=100)
    per_chatbot: str | None = Field(default=None, max_length=100)

    @field_validator("per_ip", "per_visitor", "per_session", "per_chatbot")
    @classmethod
    def _parse(cls, value: str | None) -> str | None:
        return None if value is None else check_limit_text(value)


class MaxStreamsIn(BaseModel):
    model_config = _strict({"per_ip": 3, "per_chatbot": 50})

    per_ip: int | None = Field(default=None, ge=1, le=1000)
    per_chatbot: int | None = Field(default=None, ge=1, le=100_000)


class ChatbotFields(BaseModel):
    """Fields shared by create and update; every one optional here."""

    system_prompt: str | None = Field(default=None, max_length=20_000)
    provider: ProviderName | None = Field(
        default=None, description="None: the deployment's default provider."
    )
    model: str | None = Field(default=None, max_length=200)
    temperature: float | None = Field(default=None, ge=0, le=2)
    max_tokens: int | None = Field(default=None, ge=1, le=32_000)
    greeting: str | None = Field(default=None, max_length=2000)
    starter_questions: list[str] | None = Field(default=None, max_length=10)
    theme: ThemeIn | None = None
    fallback_message: str | None = Field(default=None, min_length=1, max_length=2000)
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
    monthly_token_budget: int | None = Field(default=None, ge=0)

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

    @field_validator("starter_questions")
    @classmethod
    def _questions(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and any(not q.strip() or len(q) > 300 for q in value):
            raise ValueError("each starter question is 1 to 300 characters")
        return value


_CREATE_EXAMPLE = {
    "id": "shop",
    "name": "Shop helper",
    "system_prompt": "You answer questions about Shop Inc's orders, shipping and returns.",
    "temperature": 0.2,
    "greeting": "Hi! Ask me about shipping, returns or opening hours.",
    "starter_questions": ["When do orders ship?", "How do returns work?"],
    "theme": EXAMPLE_THEME,
    "allowed_origins": ["https://shop.example", "https://www.shop.example"],
    "rate_limits": EXAMPLE_LIMITS,
    "monthly_token_budget": 2_000_000,
}


class ChatbotCreate(ChatbotFields):
    model_config = _strict(_CREATE_EXAMPLE)

    id: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$",
        description="Optional; a random id is chosen when omitted.",
    )
    name: str = Field(min_length=1, max_length=200)


class ChatbotUpdate(ChatbotFields):
    """Only the fields sent change; ``null`` resets an optional field to its default."""

    model_config = _strict(
        {"temperature": 0.5, "allowed_origins": ["https://shop.example"]},
        {"rate_limits": {"per_ip": "10/minute"}, "monthly_token_budget": None},
    )

    name: str | None = Field(default=None, min_length=1, max_length=200)


EXAMPLE_CHATBOT = {
    **_CREATE_EXAMPLE,
    "org_id": EXAMPLE_ORG["id"],
    "provider": None,
    "model": None,
    "max_tokens": None,
    "fallback_message": "I don't know that yet.",
    "any_origin": False,
    "require_visitor_token": True,
    "rate_limits": {**EXAMPLE_LIMITS, "per_chatbot": "600/minute"},
    "max_streams": {"per_ip": 3, "per_chatbot": 50},
    "created_at": _NOW,
    "updated_at": _NOW,
}


class ChatbotOut(BaseModel):
    model_config = _shown(EXAMPLE_CHATBOT)

    id: str
    org_id: str
    name: str
    system_prompt: str
    provider: str | None
    model: str | None
    temperature: float
    max_tokens: int | None
    greeting: str
    starter_questions: list[str]
    theme: dict[str, Any]
    fallback_message: str
    allowed_origins: list[str]
    any_origin: bool = Field(description="True when every origin may embed the chatbot.")
    require_visitor_token: bool
    rate_limits: dict[str, str] = Field(description="The limits in force, defaults included.")
    max_streams: dict[str, int]
    monthly_token_budget: int | None
    created_at: datetime | None
    updated_at: datetime | None


class ChatbotList(BaseModel):
    model_config = _shown({"chatbots": [EXAMPLE_CHATBOT]})

    chatbots: list[ChatbotOut]


# --- conversations --------------------------------------------------------------------------


class FeedbackOut(BaseModel):
    rating: int
    comment: str | None
    created_at: datetime


class MessageOut(BaseModel):
    id: str
    role: Literal["user", "assistant"]
    content: str
    status: str
    created_at: datetime
    sources: list[dict[str, Any]]
    context_quality: dict[str, Any] | None
    usage: dict[str, Any] | None
    ttft_ms: float | None
    error_code: str | None
    feedback: FeedbackOut | None = None


class ConversationSummaryOut(BaseModel):
    id: str
    session_id: str
    created_at: datetime
    updated_at: datetime
    message_count: int
    has_feedback: bool


_SUMMARY_EXAMPLE = {
    "id": "7d4c2f0e-1b5a-4a8e-8c61-5f3a2b9d0e17",
    "session_id": "f3b2c1d0e9a84b7c",
    "created_at": _NOW,
    "updated_at": "2026-11-24T09:31:12Z",
    "message_count": 4,
    "has_feedback": True,
}


class ConversationPage(BaseModel):
    model_config = _shown(
        {"conversations": [_SUMMARY_EXAMPLE], "total": 1, "limit": 50, "offset": 0}
    )

    conversations: list[ConversationSummaryOut]
    total: int
    limit: int
    offset: int


class ConversationOut(ConversationSummaryOut):
    model_config = _shown(
        {
            **_SUMMARY_EXAMPLE,
            "message_count": 2,
            "messages": [
                {
                    "id": "b1d0c9e8-7f6a-4b5c-9d8e-1f2a3b4c5d6e",
                    "role": "user",
                    "content": "When do orders ship?",
                    "status": "complete",
                    "created_at": _NOW,
                    "sources": [],
                    "context_quality": None,
                    "usage": None,
                    "ttft_ms": None,
                    "error_code": None,
                    "feedback": None,
                },
                {
                    "id": "c2e1d0f9-8a7b-4c6d-8e9f-2a3b4c5d6e7f",
                    "role": "assistant",
                    "content": "Orders ship within two business days [1].",
                    "status": "complete",
                    "created_at": "2026-11-24T09:30:01Z",
                    "sources": [
                        {
                            "number": 1,
                            "title": "Shipping",
                            "url": None,
                            "snippet": "Orders ship within two business days.",
                            "score": 0.83,
                        }
                    ],
                    "context_quality": {"level": "high"},
                    "usage": {"prompt_tokens": 412, "completion_tokens": 18, "total_tokens": 430},
                    "ttft_ms": 184.2,
                    "error_code": None,
                    "feedback": {"rating": 1, "comment": None, "created_at": _NOW},
                },
            ],
        }
    )

    messages: list[MessageOut]


# --- analytics --------------------------------------------------------------------------------


class DayOut(BaseModel):
    day: str = Field(description="UTC date, YYYY-MM-DD.")
    conversations: int = Field(description="Conversations started that day.")
    messages: int = Field(description="Messages stored that day, visitors' and answers.")
    answers: int
    tokens_in: int = Field(description="Prompt tokens of that day's answers.")
    tokens_out: int = Field(description="Completion tokens of that day's answers.")
    ttft_median_ms: float | None
    ttft_p95_ms: float | None
    no_context_answers: int = Field(description="Answers whose context_quality level is none.")
    errors: int = Field(description="Answers that failed or were interrupted by an error.")
    rejected: dict[str, int] = Field(
        description="Public requests refused, by reason: rate_limited, budget_exceeded, "
        "too_many_streams, origin, visitor_token."
    )


class AnalyticsOut(BaseModel):
    model_config = _shown(
        {
            "chatbot_id": "shop",
            "from": "2026-11-23",
            "to": "2026-11-24",
            "days": [
                {
                    "day": "2026-11-23",
                    "conversations": 31,
                    "messages": 118,
                    "answers": 59,
                    "tokens_in": 24_310,
                    "tokens_out": 3_904,
                    "ttft_median_ms": 212.5,
                    "ttft_p95_ms": 640.0,
                    "no_context_answers": 4,
                    "errors": 1,
                    "rejected": {"rate_limited": 12},
                },
                {
                    "day": "2026-11-24",
                    "conversations": 0,
                    "messages": 0,
                    "answers": 0,
                    "tokens_in": 0,
                    "tokens_out": 0,
                    "ttft_median_ms": None,
                    "ttft_p95_ms": None,
                    "no_context_answers": 0,
                    "errors": 0,
                    "rejected": {"budget_exceeded": 3},
                },
            ],
            "budget": {
                "chatbot": EXAMPLE_BUDGET,
                "org": {
                    "monthly_token_budget": None,
                    "used": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
                    "remaining": None,
                    "exceeded": False,
                    "period": "2026-11",
                },
            },
        }
    )

    chatbot_id: str
    from_: str = Field(alias="from")
    to: str
    days: list[DayOut]
    budget: dict[str, BudgetOut]


def org_out(org: Org, budget: BudgetOut) -> OrgOut:
    return OrgOut(id=org.id, name=org.name, created_at=org.created_at, budget=budget)


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
        temperature=config.temperature,
        max_tokens=config.max_tokens,
        greeting=config.greeting,
        starter_questions=list(config.starter_questions),
        theme=dict(config.theme),
        fallback_message=config.fallback_message,
        allowed_origins=list(config.allowed_origins),
        any_origin=bool(own.get("any_origin", False)),
        require_visitor_token=bool(own.get("require_visitor_token", False)),
        rate_limits=rate_limits,
        max_streams=streams,
        monthly_token_budget=budget if isinstance(budget, int) else None,
        created_at=config.created_at,
        updated_at=config.updated_at,
    )
