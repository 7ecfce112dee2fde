"""The admin API for a chatbot's unanswered questions: what visitors asked that its
documents do not answer, so the owner knows what to add.

    GET  /api/admin/chatbots/{chatbot_id}/unanswered?from=&to=&include_resolved=&limit=&offset=
    POST /api/admin/chatbots/{chatbot_id}/unanswered/resolve   {"id": ...} or {"question": ...}

Questions whose answer was the fallback (context quality ``none``) or had little context
(``low``), grouped by normalised text (``reports.unanswered`` says how), most asked first.
The range is that of analytics: UTC days, inclusive, the last 30 by default, at most 366.
Resolved questions are hidden unless ``include_resolved=true``; one asked again after it
was resolved is open again. ``"resolved": false`` takes the mark off.
"""

from __future__ import annotations

import asyncio
from datetime import date, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Body, Query
from fastapi.openapi.models import Example
from pydantic import BaseModel, Field, StrictBool

from sitechat.api.admin import examples
from sitechat.api.admin.common import (
    ADMIN_ERRORS,
    BODY_ERRORS,
    DAY_RANGE,
    JSON_INT_MAX,
    Day,
    day_bounds,
    report_range,
    shown,
    strict,
)
from sitechat.api.auth import OwnedChatbot
from sitechat.api.deps import ServicesDep
from sitechat.api.schemas import ErrorBody
from sitechat.reports.unanswered import (
    UnansweredGroup,
    group_unanswered,
    normalise_question,
    question_id,
)
from sitechat.services import Services

QUESTION_ID_PATTERN = r"^[0-9a-f]{32}$"
MAX_QUESTION_CHARS = 10_000

# --- bodies -----------------------------------------------------------------------------------


class UnansweredQuestionOut(BaseModel):
    id: str = Field(description="Stable: a hash of the normalised question.")
    question: str = Field(description="The normalised text the asks are grouped by.")
    example: str = Field(description="The latest ask, as the visitor typed it.")
    count: int = Field(description="Times asked in the range.")
    fallbacks: int = Field(description="Asks answered with the fallback message.")
    first_seen: datetime
    last_seen: datetime
    quality: Literal["none", "low"] = Field(description="Context quality of the latest answer.")
    example_session_id: str = Field(description="The session of the latest ask.")
    example_conversation_id: str
    resolved: bool = Field(description="Marked resolved, and not asked again since.")
    resolved_at: datetime | None = Field(description="When it was last marked resolved.")
    asked_since_resolved: int = Field(description="Asks after resolved_at, in the range.")


class UnansweredPage(BaseModel):
    model_config = shown(examples.UNANSWERED_PAGE)

    chatbot_id: str
    from_: str = Field(alias="from")
    to: str
    questions: list[UnansweredQuestionOut]
    total: int = Field(description="Questions (groups) matching, for paging.")
    limit: int
    offset: int


class ResolveById(BaseModel):
    model_config = strict(examples.RESOLVE_BY_ID)

    id: str = Field(pattern=QUESTION_ID_PATTERN, description="A question's id from the list.")
    resolved: StrictBool = Field(default=True, description="false takes the mark off.")


class ResolveByQuestion(BaseModel):
    model_config = strict(examples.RESOLVE_BY_QUESTION)

    question: str = Field(
        min_length=1,
        max_length=MAX_QUESTION_CHARS,
        description="The question's text; it is normalised as the list groups it.",
    )
    resolved: StrictBool = Field(default=True, description="false takes the mark off.")


class ResolutionOut(BaseModel):
    model_config = shown(examples.RESOLUTION)

    id: str
    resolved: bool
    resolved_at: datetime | None


def question_out(group: UnansweredGroup) -> UnansweredQuestionOut:
    return UnansweredQuestionOut(
        id=group.id,
        question=group.question,
        example=group.example,
        count=group.count,
        fallbacks=group.fallbacks,
        first_seen=group.first_seen,
        last_seen=group.last_seen,
        quality="none" if group.quality == "none" else "low",
        example_session_id=group.session_id,
        example_conversation_id=group.conversation_id,
        resolved=group.resolved,
        resolved_at=group.resolved_at,
        asked_since_resolved=group.asked_since_resolved,
    )


async def unanswered_groups(
    services: Services, chatbot_id: str, first: date, last: date
) -> list[UnansweredGroup]:
    """Every group of the days ``first`` to ``last``, resolved or not, most asked first."""
    start, end = day_bounds(first, last)
    asks, resolutions = await asyncio.gather(
        services.unanswered.asks(chatbot_id, start, end),
        services.unanswered.resolutions(chatbot_id),
    )
    return group_unanswered(asks, resolutions)


# --- routes -----------------------------------------------------------------------------------

router = APIRouter(
    prefix="/api/admin/chatbots/{chatbot_id}/unanswered",
    tags=["admin: unanswered questions"],
    responses={**ADMIN_ERRORS, 404: {"model": ErrorBody, "description": "No such chatbot"}},
)


@router.get(
    "",
    response_model=UnansweredPage,
    response_model_by_alias=True,
    summary="Questions the documents did not answer, grouped, most asked first",
)
async def list_unanswered(
    chatbot: OwnedChatbot,
    services: ServicesDep,
    first: Annotated[
        Day | None, Query(alias="from", description=f"First day (UTC), inclusive, {DAY_RANGE}.")
    ] = None,
    last: Annotated[
        Day | None, Query(alias="to", description=f"Last day (UTC), inclusive, {DAY_RANGE}.")
    ] = None,
    include_resolved: Annotated[
        bool, Query(description="Also list questions marked resolved and not asked since.")
    ] = False,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=JSON_INT_MAX)] = 0,
) -> UnansweredPage:
    first, last = report_range(first, last)
    groups = await unanswered_groups(services, chatbot.id, first, last)
    if not include_resolved:
        groups = [group for group in groups if not group.resolved]
    return UnansweredPage.model_validate(
        {
            "chatbot_id": chatbot.id,
            "from": first.isoformat(),
            "to": last.isoformat(),
            "questions": [question_out(g) for g in groups[offset : offset + limit]],
            "total": len(groups),
            "limit": limit,
            "offset": offset,
        }
    )


_RESOLVE_EXAMPLES: dict[str, Example] = {
    "by_id": {"summary": "A question of the list, by id", "value": examples.RESOLVE_BY_ID},
    "by_question": {"summary": "A question, by text", "value": examples.RESOLVE_BY_QUESTION},
    "undo": {
        "summary": "Open it again",
        "value": {**examples.RESOLVE_BY_ID, "resolved": False},
    },
}


@router.post(
    "/resolve",
    response_model=ResolutionOut,
    responses=BODY_ERRORS,
    summary="Mark a question resolved (or, with resolved: false, open again)",
)
async def resolve_unanswered(
    chatbot: OwnedChatbot,
    services: ServicesDep,
    body: Annotated[ResolveById | ResolveByQuestion, Body(openapi_examples=_RESOLVE_EXAMPLES)],
) -> ResolutionOut:
    if isinstance(body, ResolveById):
        key = body.id
    else:
        key = question_id(normalise_question(body.question))
    if not body.resolved:
        await services.unanswered.unresolve(chatbot.id, key)
        return ResolutionOut(id=key, resolved=False, resolved_at=None)
    resolved_at = await services.unanswered.resolve(chatbot.id, key)
    return ResolutionOut(id=key, resolved=True, resolved_at=resolved_at)
