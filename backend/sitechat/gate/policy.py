"""A chatbot's public-access policy: which origins, whether a visitor token is needed, its
rate limits, stream caps and monthly token budget.

The owner's choices live in the chatbot's ``settings`` JSON (so they are cached with the
config and invalidated with it); whatever the owner left out comes from the deployment's
``Settings``. ``policy_of`` merges the two; parsing limit strings is cached.

``settings`` keys (all optional)::

    any_origin            true: every origin may embed it (the owner set [] explicitly)
    require_visitor_token true: chat needs the token from the config endpoint
    rate_limits           {"per_ip", "per_visitor", "per_session", "per_chatbot"}: "20/minute"
    max_streams           {"per_ip": 3, "per_chatbot": 50}
    monthly_token_budget  tokens per calendar month (UTC), prompt + completion
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

from limits import RateLimitItem, parse_many

from sitechat.config import Settings
from sitechat.domain import ChatbotConfig

LimitScope = Literal["per_ip", "per_visitor", "per_session", "per_chatbot"]
LIMIT_SCOPES: tuple[LimitScope, ...] = ("per_ip", "per_visitor", "per_session", "per_chatbot")


@lru_cache(maxsize=1024)
def parse_limits(text: str) -> tuple[RateLimitItem, ...]:
    """``"5/second;100/hour"`` → the items; ``ValueError`` if it is not a limit."""
    items = tuple(parse_many(text))
    if not items:
        raise ValueError(f"not a rate limit: {text!r}")
    return items


def check_limit_text(text: str) -> str:
    try:
        parse_limits(text)
    except ValueError as exc:
        raise ValueError(
            f"{text!r} is not a rate limit; write it like '20/minute' or '5/second;100/hour'"
        ) from exc
    return text


@dataclass(frozen=True, slots=True)
class ChatbotPolicy:
    allowed_origins: frozenset[str]
    any_origin: bool
    require_visitor_token: bool
    limits: dict[LimitScope, tuple[RateLimitItem, ...]]
    limit_texts: dict[LimitScope, str]
    max_streams_per_ip: int
    max_streams_per_chatbot: int
    monthly_token_budget: int | None

    def allows_origin(self, origin: str) -> bool:
        return self.any_origin or origin in self.allowed_origins


def _defaults(settings: Settings) -> dict[LimitScope, str]:
    return {
        "per_ip": settings.rate_limit_per_ip,
        "per_visitor": settings.rate_limit_per_visitor,
        "per_session": settings.rate_limit_per_session,
        "per_chatbot": settings.rate_limit_per_chatbot,
    }


def policy_of(config: ChatbotConfig, settings: Settings) -> ChatbotPolicy:
    own: dict[str, Any] = config.settings or {}
    texts = _defaults(settings)
    overrides = own.get("rate_limits") or {}
    for scope in LIMIT_SCOPES:
        value = overrides.get(scope)
        if isinstance(value, str) and value:
            texts[scope] = value
    limits: dict[LimitScope, tuple[RateLimitItem, ...]] = {}
    for scope, text in texts.items():
        try:
            limits[scope] = parse_limits(text)
        except ValueError:  # validated on write; an old bad value falls back to the default
            texts[scope] = _defaults(settings)[scope]
            limits[scope] = parse_limits(texts[scope])
    streams = own.get("max_streams") or {}
    budget = own.get("monthly_token_budget")
    return ChatbotPolicy(
        allowed_origins=frozenset(config.allowed_origins),
        any_origin=bool(own.get("any_origin", False)),
        require_visitor_token=bool(own.get("require_visitor_token", False)),
        limits=limits,
        limit_texts=texts,
        max_streams_per_ip=_positive(streams.get("per_ip"), settings.max_streams_per_ip),
        max_streams_per_chatbot=_positive(
            streams.get("per_chatbot"), settings.max_streams_per_chatbot
        ),
        monthly_token_budget=budget if isinstance(budget, int) and budget >= 0 else None,
    )


def _positive(value: object, default: int) -> int:
    return (
        value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else default
    )
