"""The admin analytics route: a chatbot's numbers per UTC day, and its budgets.

    GET /api/admin/chatbots/{chatbot_id}/analytics?from=YYYY-MM-DD&to=YYYY-MM-DD

Both dates are inclusive; the default is the last 30 days, the longest range 366 days.
``budget`` shows this month's usage against the chatbot's and the org's budgets, so an owner
whose visitors are being refused (``rejected.budget_exceeded``) sees why. ``unanswered``
sums up the range's unanswered questions (``unanswered.py`` lists them all).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from sitechat.api.admin import examples
from sitechat.api.admin.common import (
    ADMIN_ERRORS,
    DAY_RANGE,
    Day,
    day_bounds,
    report_range,
    shown,
)
from sitechat.api.admin.orgs import BudgetOut, budget_out
from sitechat.api.admin.unanswered import (
    UnansweredQuestionOut,
    question_out,
    unanswered_groups,
)
from sitechat.api.auth import OwnedChatbot
from sitechat.api.deps import ServicesDep
from sitechat.api.schemas import ErrorBody
from sitechat.gate.policy import policy_of
from sitechat.reports.analytics import daily_stats
from sitechat.reports.unanswered import summarise
from sitechat.storage.usage import month_of

# --- bodies -----------------------------------------------------------------------------------


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


class UnansweredSummaryOut(BaseModel):
    questions: int = Field(description="Open unanswered questions (groups) in the range.")
    asked: int = Field(description="How often the open ones were asked.")
    resolved: int = Field(description="Questions marked resolved and not asked since.")
    top: list[UnansweredQuestionOut] = Field(description="The most asked open questions.")


class AnalyticsOut(BaseModel):
    model_config = shown(examples.ANALYTICS)

    chatbot_id: str
    from_: str = Field(alias="from")
    to: str
    days: list[DayOut]
    unanswered: UnansweredSummaryOut
    budget: dict[str, BudgetOut]


# --- routes -----------------------------------------------------------------------------------

router = APIRouter(
    prefix="/api/admin/chatbots/{chatbot_id}",
    tags=["admin: analytics"],
    responses={**ADMIN_ERRORS, 404: {"model": ErrorBody, "description": "No such chatbot"}},
)


@router.get(
    "/analytics",
    response_model=AnalyticsOut,
    response_model_by_alias=True,
    summary="Per-day conversations, messages, tokens, time to first token, gaps and errors",
)
async def chatbot_analytics(
    chatbot: OwnedChatbot,
    services: ServicesDep,
    first: Annotated[
        Day | None, Query(alias="from", description=f"First day (UTC), inclusive, {DAY_RANGE}.")
    ] = None,
    last: Annotated[
        Day | None, Query(alias="to", description=f"Last day (UTC), inclusive, {DAY_RANGE}.")
    ] = None,
) -> AnalyticsOut:
    first, last = report_range(first, last)
    start, end = day_bounds(first, last)
    facts, starts, stored, groups = await asyncio.gather(
        services.archive.message_facts(chatbot.id, start, end),
        services.archive.conversation_starts(chatbot.id, start, end),
        services.usage.rejections(chatbot.id, first.isoformat(), last.isoformat()),
        unanswered_groups(services, chatbot.id, first, last),
    )
    unanswered = summarise(groups)
    rejections = [*stored, *services.rejections.pending(chatbot.id)]
    days = daily_stats(
        first, last, messages=facts, conversation_starts=starts, rejections=rejections
    )
    period = month_of(datetime.now(UTC))
    policy = policy_of(chatbot, services.settings)
    bot_budget = await services.budgets.chatbot_status(chatbot, policy)
    org_budget = await services.budgets.org_status(chatbot.org_id)
    return AnalyticsOut.model_validate(
        {
            "chatbot_id": chatbot.id,
            "from": first.isoformat(),
            "to": last.isoformat(),
            "days": [DayOut.model_validate(day, from_attributes=True) for day in days],
            "unanswered": {
                "questions": unanswered.questions,
                "asked": unanswered.asked,
                "resolved": unanswered.resolved,
                "top": [question_out(group) for group in unanswered.top],
            },
            "budget": {
                "chatbot": budget_out(bot_budget, period),
                "org": budget_out(org_budget, period),
            },
        }
    )
